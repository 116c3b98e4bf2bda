//! The platform API's JSON bodies (`crate::wire`): every request body the platform decodes
//! (the sandbox's `Body<…>` extractors) and the answers the phone decodes, each through
//! `serde_json` exactly as the server and client do, then the pure checks the platform and
//! the phone run on them.
//!
//! Checked: nothing panics; every body that decodes encodes to JSON that decodes back to the
//! same value; a pay request's consent encodes within its limits, its fingerprint is
//! stable, and the request rebuilt from the consent is the request; a channel round-trips
//! through its wire form; a device key that compresses decompresses to itself; the
//! platform's quote check runs on a bill and quote pair (`tests/vectors/payments/
//! quote_checks.json`'s case form); and a pharmacy quote request's options rank the same with
//! the spatial index as with both full scans (`rank`, `rank_scan`, `rank_box_scan`).
#![no_main]

use std::fmt::Debug;
use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::account::{check_phone, check_verification_code, login_message};
use carepass_core::domain::bills::check_push_token;
use carepass_core::domain::bills::state::effective_state;
use carepass_core::domain::check_id;
use carepass_core::domain::crypto::{check_public_key, normalize_signature, KeyError};
use carepass_core::domain::money::Fen;
use carepass_core::domain::payment::channel::Channel;
use carepass_core::domain::payment::consent::{cash_due, check_idempotency_key, ConsentError, Parties};
use carepass_core::domain::payment::credit::{check_draw, check_limit, CreditTerms};
use carepass_core::domain::payment::quote::{check_quote, payable, Expected};
use carepass_core::domain::payment::refund::remaining_items;
use carepass_core::domain::person::{InsuranceType, PersonRecord};
use carepass_core::domain::pharmacy::generate::{demo_prescription, generate, CatalogueSpec};
use carepass_core::domain::pharmacy::order::check_address;
use carepass_core::domain::pharmacy::rank::rank_box_scan;
use carepass_core::domain::pharmacy::{rank, rank_scan, Catalogue, Prescription, Ranking};
use carepass_core::domain::settlement::{ItemCategory, PatientCoverage, SettlementItem, SettlementPolicy, YearToDate};
use carepass_core::domain::voucher::cert::{compress_point, decompress_point};
use carepass_core::domain::voucher::format::{device_id_to_bytes, parse_text};
use carepass_core::domain::voucher::Purpose;
use carepass_core::domain::Field;
use carepass_core::wire;
use carepass_fuzz::CONSENT_SETUP;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Decodes `data` as a `T`; a value that decodes must survive an encode/decode round trip.
fn decode<T: DeserializeOwned + Serialize + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let name = std::any::type_name::<T>();
    let json = serde_json::to_vec(&value).unwrap_or_else(|e| panic!("{name} does not encode: {e}"));
    let back: T = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!("{name} encodes to JSON it cannot decode ({e}): {}", String::from_utf8_lossy(&json))
    });
    assert_eq!(back, value, "{name} JSON round trip");
    Some(value)
}

fn channel(text: &str) {
    if let Ok(ch) = Channel::parse(text) {
        assert_eq!(ch.wire(), text, "a channel has one wire form");
        assert_eq!(Channel::parse(&ch.wire()), Ok(ch.clone()));
        let _ = ch.masked();
    }
}

fn signature(text: &str) -> Option<Vec<u8>> {
    let bytes = B64.decode(text).ok()?;
    if let Ok(fixed) = normalize_signature(&bytes) {
        assert_eq!(normalize_signature(&fixed), Ok(fixed), "the fixed form is its own normal form");
    }
    Some(bytes)
}

fn device_key(text: &str) {
    let Ok(key) = B64.decode(text) else { return };
    if check_public_key(&key).is_ok() {
        let compressed = compress_point(&key).expect("a valid key compresses");
        assert_eq!(decompress_point(&compressed).map(|k| k.to_vec()), Ok(key), "compression round trip");
    }
}

fn pay(req: &wire::PayRequest) {
    let (public_key, example_key) = &*CONSENT_SETUP;
    channel(&req.channel);
    let sig = signature(&req.signature);
    for key in [example_key.as_str(), req.quote_id.as_str(), ""] {
        let consent = req.consent(key);
        let bytes = consent.signed_bytes();
        let fingerprint = consent.fingerprint();
        match (&bytes, &fingerprint) {
            (Ok(_), Ok(f)) => assert_eq!(consent.fingerprint().as_ref(), Ok(f), "the fingerprint is stable"),
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("signed_bytes and fingerprint disagree: {bytes:?} vs {fingerprint:?}"),
        }
        if check_idempotency_key(key).is_err() {
            assert!(matches!(bytes, Err(ConsentError::Invalid(_))), "a bad idempotency key is refused");
        }
        if let Some(sig) = &sig {
            let _ = consent.verify(public_key, sig);
            // The request rebuilt from what the device signed is the request (empty optional
            // strings are sent as absent, and the signature in its one canonical spelling).
            if req.link_id.as_deref() != Some("")
                && req.mutual_aid_from.as_deref() != Some("")
                && B64.encode(sig) == req.signature
            {
                assert_eq!(&wire::PayRequest::new(&consent, sig), req, "PayRequest ↔ Consent");
            }
        }
    }
}

fn cash_due_request(req: &wire::CashDueRequest) {
    let (public_key, key) = &*CONSENT_SETUP;
    channel(&req.channel);
    let parties = Parties { subject: "P1001", actor: "P1001", device_id: "dev_0011223344556677", link_id: "" };
    let consent = cash_due("bill_1", "pay_1", &parties, key, &req.channel, req.amount_fen, req.expires_at_ms);
    let _ = consent.fingerprint();
    if let Some(sig) = signature(&req.signature) {
        let _ = consent.verify(public_key, &sig);
    }
}

fn credit_agreement(req: &wire::CreditAgreementRequest) {
    let (public_key, _) = &*CONSENT_SETUP;
    let _ = check_limit(req.limit_fen);
    let _ = check_draw(req.limit_fen, Fen(100), Fen(req.limit_fen.0.wrapping_div(2)));
    let terms = CreditTerms {
        person_id: "P1001".into(),
        device_id: "dev_0011223344556677".into(),
        limit: req.limit_fen,
        term_days: req.term_days,
        signed_at_ms: req.signed_at_ms,
    };
    if let Some(sig) = signature(&req.signature) {
        let _ = terms.verify(public_key, &sig);
    }
}

/// The demo pharmacy network at a size a fuzz iteration can rank three ways.
struct Network {
    catalogue: Catalogue,
    policy: SettlementPolicy,
    prescription: Prescription,
}

static NETWORK: LazyLock<Network> = LazyLock::new(|| Network {
    catalogue: Catalogue::new(generate(&CatalogueSpec::demo_city(42, 300))).expect("demo catalogue"),
    policy: SettlementPolicy::demo(),
    prescription: demo_prescription(),
});

fn pharmacy_quote(req: &wire::PharmacyQuoteRequest) {
    let _ = check_id(Field::PrescriptionId, &req.rx_id);
    let valid = req.options.validate();
    let net = &*NETWORK;
    let patient = PatientCoverage {
        insurance_type: InsuranceType::EmployeeRetired,
        pooling_region: "419900".into(),
        year_to_date: YearToDate { deductible_paid: Fen(50_000), fund_paid: Fen(10_000) },
        account_balance: Fen(12_345),
        use_account: req.use_account,
    };
    let indexed = rank(&net.catalogue, &net.policy, &patient, &net.prescription, &req.options);
    if valid.is_err() {
        assert!(indexed.is_err(), "options that fail validate() are ranked: {valid:?}");
        return;
    }
    let scanned = rank_scan(&net.catalogue, &net.policy, &patient, &net.prescription, &req.options);
    let boxed = rank_box_scan(&net.catalogue, &net.policy, &patient, &net.prescription, &req.options);
    assert_eq!(indexed, scanned, "rank and rank_scan disagree");
    assert_eq!(indexed, boxed, "rank and rank_box_scan disagree");
    if let Ok(ranking) = &indexed {
        assert!(ranking.quotes.len() <= req.options.limit as usize, "more quotes than the limit");
        let _: Option<Ranking> = decode(&serde_json::to_vec(ranking).expect("a ranking encodes"));
    }
}

/// A case of `tests/vectors/payments/quote_checks.json`: the phone checks the platform's
/// quote against the bill it asked about before showing it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct QuoteCheck {
    bill: wire::Bill,
    quote: wire::Quote,
    expected: Party,
    now_ms: i64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Party {
    subject: String,
    actor: String,
    device_id: String,
}

fn quote_check(case: &QuoteCheck) {
    let expected =
        Expected { subject: &case.expected.subject, actor: &case.expected.actor, device_id: &case.expected.device_id };
    for now_ms in [case.now_ms, i64::MIN, i64::MAX, case.quote.created_at_ms] {
        let _ = effective_state(&case.bill, now_ms);
        let _ = payable(&case.bill, now_ms);
        if let Err(refusal) = check_quote(&case.quote, &case.bill, &expected, now_ms) {
            let _ = (refusal.code(), refusal.to_string());
        }
    }
    for key in ["pay_0123456789abcdef", ""] {
        let _ = case.quote.consent(key).fingerprint();
    }
}

fn refund_request(req: &wire::RefundRequest) {
    let items = [
        ("A10BA02", ItemCategory::A, 2_390, 2),
        ("C08CA01", ItemCategory::B, 1_855, 3),
        ("A12AX", ItemCategory::C, 3_000, 1),
    ]
    .map(|(code, category, price, quantity)| SettlementItem {
        code: code.into(),
        category,
        unit_price: Fen(price),
        quantity,
    });
    if let Some(lines) = &req.lines {
        for already in [&[][..], &[1, 0, 1][..], &[u32::MAX, u32::MAX, u32::MAX][..]] {
            let _ = remaining_items(&items, already, lines);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // A device signature as the shells hand it over (fixed r‖s or DER).
    if let Ok(fixed) = normalize_signature(data) {
        assert_eq!(normalize_signature(&fixed), Ok(fixed));
    } else {
        assert!(matches!(normalize_signature(data), Err(KeyError::BadSignature)));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        channel(text);
        let _ = Fen::parse_yuan(text);
        let _ = check_phone(text);
        let _ = device_id_to_bytes(text);
    }

    // Requests the platform decodes.
    if let Some(r) = decode::<wire::VerificationCodeRequest>(data) {
        let _ = check_phone(&r.phone);
    }
    if let Some(r) = decode::<wire::EnrolRequest>(data) {
        let _ = (check_phone(&r.phone), check_verification_code(&r.code));
        device_key(&r.device_public_key);
    }
    if let Some(r) = decode::<wire::ChallengeRequest>(data) {
        let _ = device_id_to_bytes(&r.device_id);
    }
    if let Some(r) = decode::<wire::LoginRequest>(data) {
        let _ = (check_phone(&r.phone), check_verification_code(&r.code));
        let _ = login_message(&r.device_id, &r.nonce);
        let _ = signature(&r.signature);
    }
    decode::<wire::RefreshRequest>(data);
    if let Some(r) = decode::<wire::PushTokenRegistration>(data) {
        let _ = check_push_token(&r.service, &r.token);
    }
    decode::<wire::IssueBillRequest>(data);
    if let Some(r) = decode::<wire::QuoteRequest>(data) {
        channel(&r.channel.wire());
    }
    if let Some(r) = decode::<wire::PayRequest>(data) {
        pay(&r);
    }
    decode::<wire::ConfirmRequest>(data);
    if let Some(r) = decode::<wire::CashDueRequest>(data) {
        cash_due_request(&r);
    }
    if let Some(r) = decode::<wire::RefundRequest>(data) {
        refund_request(&r);
    }
    if let Some(r) = decode::<wire::CounterChargeRequest>(data) {
        let _ = Purpose::from_name(&r.purpose);
        let _ = parse_text(&r.payload);
    }
    if let Some(r) = decode::<wire::CreditAgreementRequest>(data) {
        credit_agreement(&r);
    }
    if let Some(r) = decode::<wire::CreditRepayRequest>(data) {
        channel(&r.channel);
    }
    if let Some(r) = decode::<wire::ScanRequest>(data) {
        let _ = parse_text(&r.payload);
    }
    if let Some(r) = decode::<wire::PharmacyQuoteRequest>(data) {
        pharmacy_quote(&r);
    }
    if let Some(r) = decode::<wire::OrderRequest>(data) {
        let _ = check_id(Field::PharmacyId, &r.pharmacy_id);
        if let Some(address) = &r.address {
            let _ = check_address(address);
        }
    }
    decode::<wire::ClockAdvance>(data);

    // Answers the phone decodes.
    decode::<wire::ErrorBody>(data);
    decode::<wire::Health>(data);
    decode::<wire::ClockState>(data);
    decode::<wire::VerificationCodeSent>(data);
    decode::<wire::Challenge>(data);
    decode::<wire::SessionTokens>(data);
    decode::<wire::SessionGrant>(data);
    decode::<PersonRecord>(data);
    decode::<wire::InboxPage>(data);
    decode::<wire::InboxEntry>(data);
    decode::<wire::Bill>(data);
    decode::<wire::PushKey>(data);
    decode::<wire::RelayedPush>(data);
    decode::<wire::Quote>(data);
    decode::<wire::Payment>(data);
    decode::<wire::ReceiptKey>(data);
    decode::<wire::Refund>(data);
    decode::<wire::CounterCharge>(data);
    decode::<wire::CreditLine>(data);
    decode::<wire::ScanOutcome>(data);
    decode::<wire::TrustList>(data);
    decode::<wire::Revoked>(data);
    decode::<wire::RevocationList>(data);
    decode::<wire::Order>(data);
    decode::<wire::PrescriptionRecord>(data);
    decode::<Ranking>(data);
    if let Some(case) = decode::<QuoteCheck>(data) {
        quote_check(&case);
    }
});
