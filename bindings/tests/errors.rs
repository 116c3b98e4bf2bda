//! The one conversion of core errors into the FFI's error, as a table: every kind of core
//! error gives the variant, the typed detail and the message the shells rely on, and exactly
//! the serious kinds (internal, storage, tampering of the store or of an audit chain, keys) are logged, once, without personal
//! data.

use std::path::PathBuf;
use std::sync::Mutex;

use carepass_core::domain::bills::doorbell::DoorbellError;
use carepass_core::domain::crypto::KeyError;
use carepass_core::domain::family::audit::ChainError;
use carepass_core::domain::family::Refusal;
use carepass_core::domain::money::MoneyError;
use carepass_core::domain::pharmacy::PharmacyError;
use carepass_core::domain::settlement::SettlementError;
use carepass_core::domain::voucher::VoucherError;
use carepass_core::domain::{Field, InvalidInput};
use carepass_core::io::net::NetError;
use carepass_core::io::store::StoreError;
use carepass_core::wire::PlatformCode;
use carepass_core::CoreError;
use carepass_ffi::{CarePassError, FamilyProblem, InputField, PlatformErrorCode, PushRefusal, RefusalKind};

/// Log lines the conversion wrote.
static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        if record.target() == "carepass::ffi" {
            LOGGED.lock().unwrap().push(format!("{} {}", record.level(), record.args()));
        }
    }

    fn flush(&self) {}
}

fn convert(e: CoreError) -> (CarePassError, Vec<String>) {
    // One conversion at a time: the log capture is process-wide and tests run in parallel.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
    });
    LOGGED.lock().unwrap().clear();
    let converted = CarePassError::from(e);
    let logged = std::mem::take(&mut *LOGGED.lock().unwrap());
    (converted, logged)
}

/// One row: a core error, the check of what it became, and whether it must be logged.
type Row = (CoreError, fn(&CarePassError) -> bool, bool);

fn table() -> Vec<Row> {
    vec![
        (
            InvalidInput::new(Field::Phone, "a phone number is 11 digits starting with 1").into(),
            |e| matches!(e, CarePassError::InvalidInput { field: InputField::Phone, reason } if reason == "phone: a phone number is 11 digits starting with 1"),
            false,
        ),
        (
            CoreError::Money(MoneyError::Unparsable("x".into())),
            |e| matches!(e, CarePassError::InvalidInput { field: InputField::Amount, .. }),
            false,
        ),
        (
            CoreError::Money(MoneyError::Overflow),
            |e| matches!(e, CarePassError::Refused { kind: RefusalKind::Overflow, .. }),
            false,
        ),
        (CoreError::WrongVerificationCode, |e| matches!(e, CarePassError::WrongVerificationCode { .. }), false),
        (CoreError::NotEnrolled, |e| matches!(e, CarePassError::NotEnrolled { .. }), false),
        (CoreError::NotLinked, |e| matches!(e, CarePassError::NotLinked { .. }), false),
        (
            CoreError::Family(Refusal::LinkRevoked),
            |e| matches!(e, CarePassError::FamilyRefused { kind: FamilyProblem::LinkRevoked, reason } if reason.contains("revoked")),
            false,
        ),
        (
            CoreError::Family(Refusal::MutualAidRelationship),
            |e| matches!(e, CarePassError::FamilyRefused { kind: FamilyProblem::MutualAidRelationship, .. }),
            false,
        ),
        (
            CoreError::AuditChain(ChainError::Tampered(3)),
            |e| matches!(e, CarePassError::AuditTampered { reason } if reason.contains("audit record 3")),
            true,
        ),
        (
            CoreError::NotSignedIn,
            |e| matches!(e, CarePassError::NotSignedIn { reason } if reason == "no one is signed in"),
            false,
        ),
        (CoreError::SessionExpired, |e| matches!(e, CarePassError::SessionExpired { .. }), false),
        (CoreError::NoPrescription, |e| matches!(e, CarePassError::NoPrescription { .. }), false),
        (CoreError::NotLinked, |e| matches!(e, CarePassError::NotLinked { .. }), false),
        (
            CoreError::OtherPlatform { signed_in_at: "https://a.example".into(), asked: "https://b.example".into() },
            |e| matches!(e, CarePassError::OtherPlatform { reason } if reason.contains("https://a.example")),
            false,
        ),
        (CoreError::Closed, |e| matches!(e, CarePassError::Closed { .. }), false),
        (CoreError::NotInExtension, |e| matches!(e, CarePassError::NotInExtension { .. }), false),
        (
            CoreError::Key(KeyError::Platform("secure element busy".into())),
            |e| matches!(e, CarePassError::KeyStore { .. }),
            true,
        ),
        (NetError::InsecureUrl.into(), |e| matches!(e, CarePassError::InsecureServerUrl { .. }), false),
        (NetError::InvalidUrl("x".into()).into(), |e| matches!(e, CarePassError::InsecureServerUrl { .. }), false),
        (NetError::Network("down".into()).into(), |e| matches!(e, CarePassError::Network { .. }), false),
        (NetError::Timeout.into(), |e| matches!(e, CarePassError::Timeout { .. }), false),
        (NetError::Undecodable("?".into()).into(), |e| matches!(e, CarePassError::InvalidServerAnswer { .. }), false),
        (
            NetError::Platform {
                status: 409,
                code: PlatformCode::AlreadyOrdered,
                message: "the prescription is already ordered".into(),
                retry_after_s: None,
            }
            .into(),
            |e| matches!(e, CarePassError::Platform { code: PlatformErrorCode::AlreadyOrdered, status: 409, retry_after_s: None, reason } if reason == "the prescription is already ordered"),
            false,
        ),
        (
            NetError::Platform {
                status: 429,
                code: PlatformCode::RateLimited,
                message: "too many attempts".into(),
                retry_after_s: Some(30),
            }
            .into(),
            |e| {
                matches!(
                    e,
                    CarePassError::Platform { code: PlatformErrorCode::RateLimited, retry_after_s: Some(30), .. }
                )
            },
            false,
        ),
        (
            NetError::Platform { status: 400, code: PlatformCode::Unknown, message: "new".into(), retry_after_s: None }
                .into(),
            |e| matches!(e, CarePassError::Platform { code: PlatformErrorCode::Unknown, .. }),
            false,
        ),
        (
            CoreError::Doorbell(DoorbellError::Forged),
            |e| matches!(e, CarePassError::InvalidPush { kind: PushRefusal::Forged, .. }),
            false,
        ),
        (
            CoreError::Doorbell(DoorbellError::Malformed("s")),
            |e| matches!(e, CarePassError::InvalidPush { kind: PushRefusal::Malformed, .. }),
            false,
        ),
        (
            CoreError::Settlement(SettlementError::UnknownRegion("429901".into())),
            |e| matches!(e, CarePassError::Refused { kind: RefusalKind::UnknownRegion, .. }),
            false,
        ),
        (
            CoreError::Pharmacy(PharmacyError::Settlement(SettlementError::NoItems)),
            |e| matches!(e, CarePassError::Refused { kind: RefusalKind::NoItems, .. }),
            false,
        ),
        (
            CoreError::Pharmacy(PharmacyError::InvalidOptions("limit must be 1 to 200")),
            |e| matches!(e, CarePassError::Refused { kind: RefusalKind::InvalidOptions, .. }),
            false,
        ),
        (
            CoreError::Voucher(VoucherError::NoCertificate),
            |e| matches!(e, CarePassError::NoOfflineCertificate { .. }),
            false,
        ),
        (CoreError::Voucher(VoucherError::TimeOutOfRange), |e| matches!(e, CarePassError::Internal { .. }), true),
        (CoreError::Store(StoreError::Tampered), |e| matches!(e, CarePassError::StoreTampered { .. }), true),
        (CoreError::Store(StoreError::WrongDataKey), |e| matches!(e, CarePassError::WrongDataKey { .. }), true),
        (CoreError::Store(StoreError::MissingDataKey), |e| matches!(e, CarePassError::MissingDataKey { .. }), true),
        (
            CoreError::Store(StoreError::Busy(PathBuf::from("/data/app/carepass/db"))),
            |e| matches!(e, CarePassError::StoreBusy { reason } if reason.contains("/data/app/carepass/db")),
            false,
        ),
        (CoreError::Store(StoreError::Io("disk full".into())), |e| matches!(e, CarePassError::Storage { .. }), true),
    ]
}

#[test]
fn every_core_error_becomes_its_kind_with_its_detail() {
    let rows = table();
    assert!(rows.len() >= 30);
    for (i, (core, check, _)) in rows.into_iter().enumerate() {
        let text = core.to_string();
        let (converted, _) = convert(core);
        assert!(check(&converted), "row {i}: {text} became {converted:?}");
        assert_eq!(
            converted.to_string(),
            if let CarePassError::Platform { reason, .. } = &converted { reason.clone() } else { text.clone() },
            "row {i}: the message is the core's sentence"
        );
    }
}

#[test]
fn exactly_the_serious_kinds_are_logged_once_without_personal_data() {
    for (i, (core, _, serious)) in table().into_iter().enumerate() {
        let (converted, logged) = convert(core);
        assert_eq!(logged.len(), serious as usize, "row {i} ({}): {logged:?}", converted.kind_name());
        if serious {
            assert!(logged[0].starts_with("ERROR"), "{logged:?}");
            assert!(logged[0].contains(converted.kind_name()), "{logged:?}");
        }
    }
    // Messages carry no phone numbers or names: the input refusals say what is wrong, not
    // what was typed.
    let (converted, logged) =
        convert(InvalidInput::new(Field::Phone, "a phone number is 11 digits starting with 1").into());
    assert!(logged.is_empty());
    assert!(!converted.to_string().chars().any(|c| c.is_ascii_digit() && c != '1'), "{converted}");
}
