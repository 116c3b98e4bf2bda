//! The shared mixed-payment vectors in `tests/vectors/payments/` (`docs/payments.md` § 12),
//! also read by the Kotlin and Swift tests: consent bytes and fingerprints, the core's quote
//! checks, the saga's state machine, receipt check codes and signatures, refunds by
//! re-settlement, credit terms, and channel wire forms.
//!
//! Every file is made by the code: `build_*` computes the whole document from the domain
//! functions. A normal run reads the committed file, asserts that the code still builds
//! exactly that document, then checks each case the way the other languages' readers do
//! (inputs from the file, through the code, against the stated answer). It never skips: a
//! missing, empty or truncated file fails (`case_count`).
//!
//! `CAREPASS_WRITE_VECTORS=1 cargo test -p carepass-journeys --test payment_vectors` writes
//! the files. ECDSA signatures are randomised, so the keys (test keys, PKCS#8) and every
//! signature already in a file are kept when they still verify over the same bytes:
//! regenerating leaves an unchanged file byte for byte as it was.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::bills::{Bill, BillItem, BillState};
use carepass_core::domain::crypto::{self, DeviceKeyStore, KeyError, SignedBody, SoftwareDeviceKey};
use carepass_core::domain::payment::channel::{luhn, Channel};
use carepass_core::domain::payment::consent::{check_idempotency_key, Consent, ConsentError, ConsentKind, CONTEXT};
use carepass_core::domain::payment::credit::{self, CreditRefusal, CreditTerms};
use carepass_core::domain::payment::quote::{
    check_quote, CashLeg, Expected, InsuranceLeg, Legs, Quote, QuoteRefusal, MAX_QUOTE_TTL_MS, QUOTE_SKEW_MS,
    QUOTE_TTL_MS,
};
use carepass_core::domain::payment::receipt::{
    self, check_code, receipt_date, Receipt, ReceiptError, ReceiptItem, ReceiptKind, ReceiptParty, ReceiptRef,
};
use carepass_core::domain::payment::refund::{coverage_before, refund, remaining_items, RefundError, ReturnedLine};
use carepass_core::domain::payment::state::{self, Resume, Step};
use carepass_core::domain::person::InsuranceType;
use carepass_core::domain::settlement::{
    settle_with_rule, ItemCategory, PatientCoverage, Settlement, SettlementItem, SettlementPolicy, SettlementRule,
    VisitType, YearToDate,
};
use carepass_core::domain::voucher::cert::Issuer;
use carepass_core::wire::PayRequest;
use carepass_core::Fen;
use carepass_journeys::vectors::{cases, with_count};
use serde_json::{json, Value};

// ---- files, the case_count convention -------------------------------------------------

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/payments")
}

fn read_existing(name: &str) -> Value {
    std::fs::read_to_string(dir().join(name)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)
}

fn committed(name: &str, built: Value) -> Value {
    carepass_journeys::vectors::committed(&dir(), name, built)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Decodes a JSON value (a macro: this crate does not depend on serde itself).
macro_rules! from {
    ($v:expr) => {{
        let v: &Value = $v;
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
    }};
}

/// Encodes as a JSON value.
macro_rules! to {
    ($v:expr) => {
        serde_json::to_value($v).unwrap()
    };
}

/// A key kept in the existing file (hex PKCS#8), or a new one.
fn kept_key(existing: &Value, field: &str, generate: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    match existing.pointer(field).and_then(Value::as_str) {
        Some(h) => unhex(h),
        None => generate(),
    }
}

/// The signature an existing case called `name` holds in `field`, if it verifies over
/// `message`; else a new one from `sign`.
fn kept_signature(
    existing: &Value,
    name: &str,
    field: &str,
    verifies: impl Fn(&[u8]) -> bool,
    sign: impl FnOnce() -> [u8; 64],
) -> [u8; 64] {
    let old = existing["cases"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .and_then(|c| c.pointer(field))
        .and_then(Value::as_str)
        .and_then(|t| B64.decode(t).ok())
        .filter(|sig| sig.len() == 64 && verifies(sig));
    match old {
        Some(sig) => sig.try_into().unwrap(),
        None => sign(),
    }
}

// ---- consent.json ------------------------------------------------------------------------

fn consent_error_code(e: &ConsentError) -> &'static str {
    match e {
        ConsentError::Invalid(i) if i.field == carepass_core::domain::Field::IdempotencyKey => {
            "invalid_idempotency_key"
        }
        ConsentError::Invalid(_) => "invalid",
        ConsentError::TooLong => "field_too_long",
        ConsentError::Key(KeyError::Invalid) => "signature_invalid",
        ConsentError::Key(_) => "signature_malformed",
    }
}

fn base_consent() -> Consent {
    Consent {
        kind: ConsentKind::Pay,
        idempotency_key: "pay_0123456789abcdef0123456789abcdef".into(),
        bill_id: "bill_00112233aabbccdd".into(),
        reference: "q_0011223344556677".into(),
        subject: "P1001".into(),
        actor: "P1001".into(),
        device_id: "dev_0011223344556677".into(),
        link_id: String::new(),
        total: Fen(41_120),
        fund: Fen(30_000),
        personal_account: Fen(10_000),
        mutual_aid: Fen(0),
        mutual_aid_from: String::new(),
        cash: Fen(1_120),
        channel: "card:4242424242424242".into(),
        expires_at_ms: 1_800_000_300_000,
    }
}

fn consent_inputs() -> Vec<(&'static str, Consent)> {
    let base = base_consent();
    let with = |f: &dyn Fn(&mut Consent)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    vec![
        ("pay by card", base.clone()),
        (
            "insurance pays all (channel none)",
            with(&|c| {
                c.personal_account = Fen(11_120);
                c.cash = Fen(0);
                c.channel = "none".into();
            }),
        ),
        (
            "cash on credit pay-later",
            with(&|c| {
                c.idempotency_key = "pay_ffffffffffffffffffffffffffffffff".into();
                c.channel = "credit".into();
            }),
        ),
        (
            "a proxy pays with family mutual aid",
            with(&|c| {
                c.subject = "P1003".into();
                c.link_id = "lnk_00aa11bb22cc33dd".into();
                c.total = Fen(20_000);
                c.fund = Fen(12_000);
                c.personal_account = Fen(0);
                c.mutual_aid = Fen(6_000);
                c.mutual_aid_from = "P1001".into();
                c.cash = Fen(2_000);
            }),
        ),
        (
            "cash still due, another card (kind 2)",
            with(&|c| {
                c.kind = ConsentKind::CashDue;
                c.idempotency_key = "due_00000000000000000000000000000001".into();
                c.reference = "pay_1122334455667788".into();
                c.total = Fen(1_120);
                c.fund = Fen(0);
                c.personal_account = Fen(0);
                c.cash = Fen(1_120);
                c.channel = "card:5555555555554444".into();
            }),
        ),
        (
            "UTF-8 strings are counted in bytes",
            with(&|c| {
                c.subject = "患者甲".into();
                c.mutual_aid_from = "张伟".into();
            }),
        ),
        (
            "255-byte fields and a 255-character key",
            with(&|c| {
                c.idempotency_key = "k".repeat(255);
                c.bill_id = "b".repeat(255);
            }),
        ),
        ("one-character key of punctuation", with(&|c| c.idempotency_key = "~".into())),
        (
            "i64 is two's complement big-endian",
            with(&|c| {
                c.total = Fen(-1);
                c.fund = Fen(i64::from(i32::MAX) + 1);
                c.expires_at_ms = -2;
            }),
        ),
        ("empty key", with(&|c| c.idempotency_key = String::new())),
        ("key with a space", with(&|c| c.idempotency_key = "pay 1".into())),
        ("key with a control character", with(&|c| c.idempotency_key = "pay\n1".into())),
        ("key not ASCII", with(&|c| c.idempotency_key = "pay_é".into())),
        ("key of 256 characters", with(&|c| c.idempotency_key = "k".repeat(256))),
        ("bill id of 256 bytes", with(&|c| c.bill_id = "b".repeat(256))),
        ("channel of 256 bytes", with(&|c| c.channel = format!("card:{}", "4".repeat(251)))),
        ("86 CJK characters are 258 bytes", with(&|c| c.mutual_aid_from = "张".repeat(86))),
    ]
}

fn build_consent() -> Value {
    let existing = read_existing("consent.json");
    let pkcs8 = kept_key(&existing, "/keys/device_pkcs8_hex", || SoftwareDeviceKey::generate().unwrap().1);
    let device = SoftwareDeviceKey::from_pkcs8(&pkcs8).unwrap();
    let public_key = device.public_key().unwrap();
    let mut cases = Vec::new();
    for (name, consent) in consent_inputs() {
        let mut case = json!({"name": name, "check": "encode", "consent": to!(&consent)});
        match (consent.signed_bytes(), consent.fingerprint()) {
            (Ok(bytes), Ok(fp)) => {
                case["expect"] = json!("ok");
                case["signed_bytes_hex"] = json!(hex(&bytes));
                case["fingerprint_hex"] = json!(hex(&fp));
            }
            (Err(e), _) | (_, Err(e)) => {
                case["expect"] = json!("error");
                case["error"] = json!(consent_error_code(&e));
            }
        }
        cases.push(case);
    }
    // Signatures: produced once and kept; the readers check verification.
    let signed = base_consent();
    let sig = kept_signature(
        &existing,
        "valid signature",
        "/signature",
        |sig| signed.verify(&public_key, sig).is_ok(),
        || signed.sign(&device).unwrap(),
    );
    let mut flipped = sig;
    flipped[10] ^= 0x01;
    let mut changed = signed.clone();
    changed.cash = Fen(1_121);
    let mut other_key = signed.clone();
    other_key.idempotency_key = "pay_0123456789abcdef0123456789abcdee".into();
    let sig_cases = [
        ("valid signature", signed.clone(), B64.encode(sig)),
        ("bit flipped in the signature", signed.clone(), B64.encode(flipped)),
        ("the cash changed after signing", changed, B64.encode(sig)),
        ("the idempotency key changed after signing", other_key, B64.encode(sig)),
        ("signature of 63 bytes", signed.clone(), B64.encode(&sig[..63])),
    ];
    for (name, consent, signature) in sig_cases {
        let raw = B64.decode(&signature).unwrap();
        let expect = match consent.verify(&public_key, &raw) {
            Ok(()) => "valid",
            Err(ConsentError::Key(KeyError::Invalid)) => "invalid",
            Err(_) => "malformed",
        };
        cases.push(json!({"name": name, "check": "verify", "consent": to!(&consent), "signature": signature, "expect": expect}));
    }
    let request = PayRequest::new(&signed, &sig);
    assert_eq!(request.consent(&signed.idempotency_key), signed);
    with_count(json!({
        "description": "Consent to a payment (docs/payments.md § 4): the canonical bytes a device signs and their SHA-256 (the idempotency fingerprint).",
        "format": "\"carepass-consent-v1\" 0x00 || kind (1 byte: 1 pay, 2 cash_due) || str idempotency_key || str bill_id || str reference || str subject || str actor || str device_id || str link_id || i64 total || i64 fund || i64 personal_account || i64 mutual_aid || str mutual_aid_from || i64 cash || str channel || i64 expires_at_ms; str = u16 big-endian byte length then UTF-8 (at most 255 bytes), i64 = 8 bytes big-endian two's complement",
        "how_to_run": "check `encode`: encode `consent`; expect `ok` gives signed_bytes_hex and fingerprint_hex (SHA-256 of the bytes), `error` names why (invalid_idempotency_key: not 1..255 printable ASCII without spaces; field_too_long: a string over 255 bytes; the key is checked first). check `verify`: verify base64url `signature` (64-byte r||s) over the consent's bytes with `public_key_hex`: valid, invalid (does not verify) or malformed (not 64 bytes).",
        "amounts": "integer fen",
        "context_hex": hex(CONTEXT),
        "public_key_hex": hex(&public_key),
        "keys": {"device_pkcs8_hex": hex(&pkcs8)},
        "pay_request_example": {
            "idempotency_key_header": signed.idempotency_key,
            "body": to!(&request),
        },
        "cases": cases,
    }))
}

fn check_consent(doc: &Value) {
    assert_eq!(unhex(s(&doc["context_hex"])), CONTEXT);
    let public_key = unhex(s(&doc["public_key_hex"]));
    let mut seen = (0, 0, 0);
    for case in cases(doc) {
        let name = s(&case["name"]);
        let consent: Consent = from!(&case["consent"]);
        match (s(&case["check"]), s(&case["expect"])) {
            ("encode", "ok") => {
                let bytes = consent.signed_bytes().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(hex(&bytes), s(&case["signed_bytes_hex"]), "{name}");
                assert_eq!(hex(&consent.fingerprint().unwrap()), s(&case["fingerprint_hex"]), "{name}");
                assert!(bytes.starts_with(CONTEXT) && bytes[CONTEXT.len()] == consent.kind as u8, "{name}");
                seen.0 += 1;
            }
            ("encode", "error") => {
                let e = consent.signed_bytes().expect_err(name);
                assert_eq!(consent_error_code(&e), s(&case["error"]), "{name}");
                if s(&case["error"]) == "invalid_idempotency_key" {
                    assert!(check_idempotency_key(&consent.idempotency_key).is_err(), "{name}");
                }
                seen.1 += 1;
            }
            ("verify", expect) => {
                let sig = B64.decode(s(&case["signature"])).unwrap();
                let verdict = consent.verify(&public_key, &sig);
                match expect {
                    "valid" => assert_eq!(verdict, Ok(()), "{name}"),
                    "invalid" => assert_eq!(verdict, Err(ConsentError::Key(KeyError::Invalid)), "{name}"),
                    "malformed" => assert_eq!(verdict, Err(ConsentError::Key(KeyError::BadSignature)), "{name}"),
                    other => panic!("{name}: unknown expectation {other}"),
                }
                seen.2 += 1;
            }
            other => panic!("{name}: unknown check {other:?}"),
        }
    }
    assert!(seen.0 >= 8 && seen.1 >= 6 && seen.2 >= 4, "{seen:?}");
    // The wire form of the pay request claims the same consent under the header's key.
    let example = &doc["pay_request_example"];
    let request: PayRequest = from!(&example["body"]);
    let consent = request.consent(s(&example["idempotency_key_header"]));
    let signature = B64.decode(&request.signature).unwrap();
    assert_eq!(consent.verify(&public_key, &signature), Ok(()));
}

#[test]
fn consent_vectors_encode_and_verify_as_stated() {
    let doc = committed("consent.json", build_consent());
    check_consent(&doc);
}

// ---- quote_checks.json -------------------------------------------------------------------

/// 2026-11-23T12:00:00Z.
const T0: i64 = 1_795_435_200_000;

fn rule(region: &str, insurance: InsuranceType, visit: VisitType) -> SettlementRule {
    SettlementPolicy::demo().rule(region, insurance, visit).unwrap().clone()
}

fn bill_item(code: &str, name: &str, category: ItemCategory, quantity: u32, price: i64) -> BillItem {
    BillItem {
        item_code: code.into(),
        name: name.into(),
        category,
        quantity,
        unit_price_fen: Fen(price),
        amount_fen: Fen(price * i64::from(quantity)),
    }
}

fn demo_bill(person: &str, items: Vec<BillItem>) -> Bill {
    Bill {
        bill_id: "bill_00112233aabbccdd".into(),
        person_id: person.into(),
        visit_id: "v_0000000000000001".into(),
        hospital: "示例市第一人民医院 Demo City No. 1 Hospital".into(),
        department: "内分泌科 Endocrinology".into(),
        doctor: "王医生 Dr Wang".into(),
        total_fen: Fen(items.iter().map(|i| i.amount_fen.0).sum()),
        items,
        created_at_ms: T0 - 3_600_000,
        due_at_ms: T0 + 86_400_000,
        state: BillState::Pending,
        updated_at_ms: T0 - 3_600_000,
        visit_type: VisitType::ChronicOutpatient,
        payment: None,
        counter: None,
    }
}

fn items_of(bill: &Bill) -> Vec<SettlementItem> {
    bill.items
        .iter()
        .map(|i| SettlementItem {
            code: i.item_code.clone(),
            category: i.category,
            unit_price: i.unit_price_fen,
            quantity: i.quantity,
        })
        .collect()
}

/// The quote the platform would give for `bill` (as the sandbox builds it).
fn quote_for(bill: &Bill, balance: i64, use_account: bool, channel: &str) -> Quote {
    let coverage = PatientCoverage {
        insurance_type: InsuranceType::EmployeeActive,
        pooling_region: "419900".into(),
        year_to_date: YearToDate::default(),
        account_balance: Fen(balance),
        use_account,
    };
    let settlement =
        settle_with_rule(&rule("419900", InsuranceType::EmployeeActive, bill.visit_type), &coverage, &items_of(bill))
            .unwrap();
    let channel = if settlement.cash.0 == 0 { Channel::None } else { Channel::parse(channel).unwrap() };
    Quote {
        quote_id: "q_0011223344556677".into(),
        bill_id: bill.bill_id.clone(),
        subject: bill.person_id.clone(),
        actor: bill.person_id.clone(),
        device_id: "dev_0011223344556677".into(),
        link_id: None,
        visit_type: bill.visit_type,
        use_account,
        mutual_aid: false,
        legs: Legs {
            insurance: InsuranceLeg {
                fund: settlement.fund,
                personal_account: settlement.personal_account,
                mutual_aid: settlement.mutual_aid,
                mutual_aid_from: None,
            },
            cash: CashLeg { channel, amount: settlement.cash },
        },
        settlement,
        created_at_ms: T0,
        expires_at_ms: T0 + QUOTE_TTL_MS,
    }
}

struct QuoteCase {
    name: &'static str,
    bill: Bill,
    quote: Quote,
    subject: String,
    actor: String,
    device: String,
    now: i64,
}

fn quote_inputs() -> Vec<QuoteCase> {
    let items = vec![
        bill_item("XA10BAD024A001010104402", "盐酸二甲双胍缓释片 Metformin XR", ItemCategory::A, 2, 2_350),
        bill_item("XC10AAA150A001010100264", "阿托伐他汀钙片 Atorvastatin", ItemCategory::B, 4, 3_290),
        bill_item("ZZ0000000001", "血压计 Blood-pressure monitor", ItemCategory::C, 1, 19_900),
    ];
    let bill = demo_bill("P1001", items.clone());
    let quote = quote_for(&bill, 3_000, true, "card:4242424242424242");
    assert!(quote.settlement.fund.0 > 0 && quote.settlement.personal_account.0 > 0 && quote.settlement.cash.0 > 0);
    let all_a = demo_bill("P1001", vec![items[0].clone()]);
    let no_cash = quote_for(&all_a, 100_000, true, "card:4242424242424242");
    assert_eq!(no_cash.settlement.cash, Fen(0));
    let now = T0 + 60_000;
    let case = |name, bill: &Bill, quote: &Quote| QuoteCase {
        name,
        bill: bill.clone(),
        quote: quote.clone(),
        subject: "P1001".into(),
        actor: "P1001".into(),
        device: "dev_0011223344556677".into(),
        now,
    };
    type Edit = Box<dyn Fn(&mut QuoteCase)>;
    let edits: Vec<(&'static str, Edit)> = vec![
        ("ok: fund, personal account and card", Box::new(|_| {})),
        ("invariant: the split's sources do not sum to its total", Box::new(|c| c.quote.settlement.fund.0 += 1)),
        (
            "invariant: a negative cash part",
            Box::new(|c| {
                c.quote.settlement.cash.0 = -1;
                c.quote.settlement.personal_account.0 += c.quote.legs.cash.amount.0 + 1;
            }),
        ),
        ("bill_mismatch: another bill", Box::new(|c| c.bill.bill_id = "bill_ffffffffffffffff".into())),
        (
            "bill_mismatch: another patient",
            Box::new(|c| {
                c.bill.person_id = "P1002".into();
            }),
        ),
        ("bill_mismatch: the total differs", Box::new(|c| c.bill.total_fen.0 += 1)),
        ("bill_mismatch: another visit type", Box::new(|c| c.bill.visit_type = VisitType::Outpatient)),
        (
            "bill_mismatch: a line fewer on the bill",
            Box::new(|c| {
                let dropped = c.bill.items.pop().unwrap();
                c.bill.items[0].amount_fen.0 += dropped.amount_fen.0;
            }),
        ),
        (
            "bill_mismatch: a line's unit price differs",
            Box::new(|c| {
                c.bill.items[0].unit_price_fen.0 += 1;
                c.bill.items[0].amount_fen.0 += 2;
                c.bill.items[1].amount_fen.0 -= 2;
            }),
        ),
        ("legs_mismatch: the fund leg differs", Box::new(|c| c.quote.legs.insurance.fund.0 += 1)),
        (
            "legs_mismatch: the personal account leg differs",
            Box::new(|c| c.quote.legs.insurance.personal_account.0 -= 1),
        ),
        (
            "legs_mismatch: mutual aid without a split",
            Box::new(|c| {
                c.quote.legs.insurance.mutual_aid = Fen(100);
                c.quote.legs.insurance.mutual_aid_from = Some("P1004".into());
            }),
        ),
        (
            "legs_mismatch: a mutual aid giver with no mutual aid",
            Box::new(|c| {
                c.quote.legs.insurance.mutual_aid_from = Some("P1004".into());
            }),
        ),
        ("legs_mismatch: the cash leg differs", Box::new(|c| c.quote.legs.cash.amount.0 += 1)),
        ("legs_mismatch: cash with channel none", Box::new(|c| c.quote.legs.cash.channel = Channel::None)),
        ("legs_mismatch: the account pays though not asked", Box::new(|c| c.quote.use_account = false)),
        (
            "wrong_party: the quote is for another patient",
            Box::new(|c| {
                c.bill.person_id = "P1002".into();
                c.quote.subject = "P1002".into();
            }),
        ),
        ("wrong_party: another actor", Box::new(|c| c.actor = "P1004".into())),
        ("wrong_party: another device", Box::new(|c| c.device = "dev_ffffffffffffffff".into())),
        (
            "wrong_party: a link when acting for oneself",
            Box::new(|c| c.quote.link_id = Some("lnk_00aa11bb22cc33dd".into())),
        ),
        (
            "wrong_party: acting for someone else without a link",
            Box::new(|c| {
                c.bill.person_id = "P1003".into();
                c.quote.subject = "P1003".into();
                c.subject = "P1003".into();
            }),
        ),
        (
            "ok: a proxy under a link",
            Box::new(|c| {
                c.bill.person_id = "P1003".into();
                c.quote.subject = "P1003".into();
                c.quote.link_id = Some("lnk_00aa11bb22cc33dd".into());
                c.subject = "P1003".into();
            }),
        ),
        ("not_payable: the bill is paid", Box::new(|c| c.bill.state = BillState::Paid)),
        ("not_payable: the bill is being paid", Box::new(|c| c.bill.state = BillState::Paying)),
        ("not_payable: cash is due on the bill", Box::new(|c| c.bill.state = BillState::CashDue)),
        ("not_payable: pending but past its due time (shown expired)", Box::new(|c| c.bill.due_at_ms = c.now)),
        ("ok: a bill whose last payment failed", Box::new(|c| c.bill.state = BillState::Failed)),
        (
            "lifetime: lives longer than 10 minutes",
            Box::new(|c| c.quote.expires_at_ms = c.quote.created_at_ms + MAX_QUOTE_TTL_MS + 1),
        ),
        (
            "ok: lives exactly 10 minutes",
            Box::new(|c| c.quote.expires_at_ms = c.quote.created_at_ms + MAX_QUOTE_TTL_MS),
        ),
        ("lifetime: expires when it is created", Box::new(|c| c.quote.expires_at_ms = c.quote.created_at_ms)),
        (
            "lifetime: created more than 60 s in the phone's future",
            Box::new(|c| {
                c.quote.created_at_ms = c.now + QUOTE_SKEW_MS + 1;
                c.quote.expires_at_ms = c.quote.created_at_ms + QUOTE_TTL_MS;
            }),
        ),
        (
            "ok: created 60 s in the phone's future",
            Box::new(|c| {
                c.quote.created_at_ms = c.now + QUOTE_SKEW_MS;
                c.quote.expires_at_ms = c.quote.created_at_ms + QUOTE_TTL_MS;
            }),
        ),
        ("expired: now is its expiry", Box::new(|c| c.now = c.quote.expires_at_ms)),
        ("ok: one millisecond before expiry", Box::new(|c| c.now = c.quote.expires_at_ms - 1)),
        (
            "order: a split that breaks a rule is reported before an expired quote",
            Box::new(|c| {
                c.quote.settlement.fund.0 += 1;
                c.now = c.quote.expires_at_ms + 1;
            }),
        ),
        (
            "order: another bill is reported before the wrong device",
            Box::new(|c| {
                c.bill.bill_id = "bill_ffffffffffffffff".into();
                c.device = "dev_ffffffffffffffff".into();
            }),
        ),
    ];
    let mut out: Vec<QuoteCase> = edits
        .into_iter()
        .map(|(name, edit)| {
            let mut c = case(name, &bill, &quote);
            edit(&mut c);
            c
        })
        .collect();
    out.push(case("ok: no cash, channel none", &all_a, &no_cash));
    let mut c = case("legs_mismatch: a card channel with no cash", &all_a, &no_cash);
    c.quote.legs.cash.channel = Channel::parse("card:4242424242424242").unwrap();
    out.push(c);
    out
}

fn build_quote_checks() -> Value {
    let cases: Vec<Value> = quote_inputs()
        .into_iter()
        .map(|c| {
            let expected = Expected { subject: &c.subject, actor: &c.actor, device_id: &c.device };
            let mut case = json!({
                "name": c.name,
                "bill": to!(&c.bill),
                "quote": to!(&c.quote),
                "expected": {"subject": c.subject, "actor": c.actor, "device_id": c.device},
                "now_ms": c.now,
            });
            match check_quote(&c.quote, &c.bill, &expected, c.now) {
                Ok(()) => case["expect"] = json!("ok"),
                Err(e) => {
                    case["expect"] = json!(e.code());
                    case["message"] = json!(e.to_string());
                }
            }
            case
        })
        .collect();
    with_count(json!({
        "description": "The core's checks of a quote before it is shown (docs/payments.md § 3.2): check_quote(quote, bill, expected parties, now_ms) in the order stated there.",
        "how_to_run": "Decode `bill` and `quote`, check the quote against the bill for `expected` (subject, actor, device_id) at phone time `now_ms` (platform time as the phone estimates it). `expect` is `ok` or the refusal code (invariant, bill_mismatch, legs_mismatch, wrong_party, not_payable, lifetime, expired); `message` is the Rust core's sentence (informative).",
        "amounts": "integer fen",
        "quote_ttl_ms": QUOTE_TTL_MS,
        "max_quote_ttl_ms": MAX_QUOTE_TTL_MS,
        "quote_skew_ms": QUOTE_SKEW_MS,
        "cases": cases,
    }))
}

#[test]
fn quote_check_vectors_refuse_as_stated() {
    let doc = committed("quote_checks.json", build_quote_checks());
    let mut codes = std::collections::BTreeSet::new();
    for case in cases(&doc) {
        let name = s(&case["name"]);
        let bill: Bill = from!(&case["bill"]);
        let quote: Quote = from!(&case["quote"]);
        let e = &case["expected"];
        let expected = Expected { subject: s(&e["subject"]), actor: s(&e["actor"]), device_id: s(&e["device_id"]) };
        let verdict = check_quote(&quote, &bill, &expected, case["now_ms"].as_i64().unwrap());
        match s(&case["expect"]) {
            "ok" => assert_eq!(verdict, Ok(()), "{name}"),
            code => {
                let refusal: QuoteRefusal = verdict.expect_err(name);
                assert_eq!(refusal.code(), code, "{name}");
                assert_eq!(refusal.to_string(), s(&case["message"]), "{name}");
            }
        }
        codes.insert(s(&case["expect"]).to_string());
    }
    let all =
        ["ok", "invariant", "bill_mismatch", "legs_mismatch", "wrong_party", "not_payable", "lifetime", "expired"];
    assert_eq!(codes, all.iter().map(|c| c.to_string()).collect(), "every refusal has a vector");
}

// ---- state_machine.json ------------------------------------------------------------------

const STEPS: [Step; 11] = [
    Step::Created,
    Step::Unknown,
    Step::RequiresAction,
    Step::Authorised,
    Step::Settled,
    Step::Releasing,
    Step::CashDue,
    Step::Succeeded,
    Step::Failed,
    Step::PartlyRefunded,
    Step::Refunded,
];

fn resume_name(r: Resume) -> &'static str {
    match r {
        Resume::Authorise => "authorise",
        Resume::Query => "query",
        Resume::Settle => "settle",
        Resume::Capture => "capture",
        Resume::Release => "release",
        Resume::WaitForPatient => "wait_for_patient",
        Resume::Nothing => "nothing",
    }
}

fn build_state_machine() -> Value {
    let mut cases = Vec::new();
    for step in STEPS {
        cases.push(json!({
            "name": format!("step {}", s(&to!(&step))),
            "check": "step",
            "step": step,
            "final": state::is_final(step),
            "past_pivot": state::past_pivot(step),
            "resume": resume_name(state::resume(step)),
            "status": state::status(step),
            "bill_state": state::bill_state(step),
        }));
    }
    for from in STEPS {
        for to_step in STEPS {
            cases.push(json!({
                "name": format!("{} -> {}", s(&to!(&from)), s(&to!(&to_step))),
                "check": "move",
                "from": from,
                "to": to_step,
                "allowed": state::can_move(from, to_step),
            }));
        }
    }
    for step in STEPS {
        for (has_insurance, has_cash, hold_released) in [
            (true, true, false),
            (true, true, true),
            (true, false, false),
            (false, true, false),
            (false, true, true),
            (false, false, false),
        ] {
            let (insurance, cash) = state::legs(step, has_insurance, has_cash, hold_released);
            cases.push(json!({
                "name": format!("legs at {} (insurance {has_insurance}, cash {has_cash}, hold released {hold_released})", s(&to!(&step))),
                "check": "legs",
                "step": step,
                "has_insurance": has_insurance,
                "has_cash": has_cash,
                "hold_released": hold_released,
                "insurance": insurance,
                "cash": cash,
            }));
        }
    }
    with_count(json!({
        "description": "The payment saga (docs/payments.md § 5): per step whether it is final, past the pivot, what a restart resumes it to, the status the patient sees and the bill's state; every (from, to) move and whether it is allowed; the legs' states.",
        "how_to_run": "check `step`: is_final, past_pivot, resume, status, bill_state of `step`. check `move`: can_move(from, to) == allowed. check `legs`: legs(step, has_insurance, has_cash, hold_released) == (insurance, cash).",
        "steps": STEPS,
        "cases": cases,
    }))
}

#[test]
fn state_machine_vectors_hold() {
    let doc = committed("state_machine.json", build_state_machine());
    let mut counts = (0, 0, 0);
    for case in cases(&doc) {
        let name = s(&case["name"]);
        match s(&case["check"]) {
            "step" => {
                let step: Step = from!(&case["step"]);
                assert_eq!(state::is_final(step), case["final"].as_bool().unwrap(), "{name}");
                assert_eq!(state::past_pivot(step), case["past_pivot"].as_bool().unwrap(), "{name}");
                assert_eq!(resume_name(state::resume(step)), s(&case["resume"]), "{name}");
                assert_eq!(to!(&state::status(step)), case["status"], "{name}");
                assert_eq!(to!(&state::bill_state(step)), case["bill_state"], "{name}");
                counts.0 += 1;
            }
            "move" => {
                let (a, b): (Step, Step) = (from!(&case["from"]), from!(&case["to"]));
                assert_eq!(state::can_move(a, b), case["allowed"].as_bool().unwrap(), "{name}");
                // A move the saga allows never moves the bill in a way its own machine forbids.
                let (x, y) = (state::bill_state(a), state::bill_state(b));
                if state::can_move(a, b) && x != y {
                    assert!(carepass_core::domain::bills::state::can_transition(x, y), "{name}: bill {x:?} -> {y:?}");
                }
                counts.1 += 1;
            }
            "legs" => {
                let step: Step = from!(&case["step"]);
                let (i, c) = state::legs(
                    step,
                    case["has_insurance"].as_bool().unwrap(),
                    case["has_cash"].as_bool().unwrap(),
                    case["hold_released"].as_bool().unwrap(),
                );
                assert_eq!((to!(&i), to!(&c)), (case["insurance"].clone(), case["cash"].clone()), "{name}");
                counts.2 += 1;
            }
            other => panic!("{name}: unknown check {other}"),
        }
    }
    assert_eq!(counts, (11, 121, 66));
}

// ---- receipts.json -----------------------------------------------------------------------

fn receipt_error_code(e: &ReceiptError) -> &'static str {
    e.code()
}

fn sample_receipt() -> Receipt {
    let issued_at_ms = T0 + 120_000;
    let (code, number) = ("41990026".to_string(), "0000000001".to_string());
    Receipt {
        version: 1,
        kind: ReceiptKind::Original,
        check_code: check_code(&code, &number, issued_at_ms, Fen(47_960)),
        receipt_code: code,
        receipt_number: number,
        issued_at_ms,
        payer: ReceiptParty { person_id: "P1001".into(), name: "张伟 Zhang Wei".into() },
        presented_by: None,
        link_id: None,
        payee: "示例市第一人民医院 Demo City No. 1 Hospital".into(),
        bill_id: "bill_00112233aabbccdd".into(),
        payment_id: "pay_1122334455667788".into(),
        items: vec![
            ReceiptItem {
                code: "XA10BAD024A001010104402".into(),
                name: "盐酸二甲双胍缓释片 Metformin XR".into(),
                category: ItemCategory::A,
                quantity: 2,
                amount: Fen(4_700),
            },
            ReceiptItem {
                code: "XC10AAA150A001010100264".into(),
                name: "阿托伐他汀钙片 Atorvastatin".into(),
                category: ItemCategory::B,
                quantity: 4,
                amount: Fen(13_160),
            },
            ReceiptItem {
                code: "ZZ0000000001".into(),
                name: "血压计 Blood-pressure monitor".into(),
                category: ItemCategory::C,
                quantity: 1,
                amount: Fen(30_100),
            },
        ],
        total: Fen(47_960),
        fund: Fen(14_062),
        personal_account: Fen(3_000),
        mutual_aid: Fen(0),
        cash: Fen(30_898),
        own_pay: Fen(3_798),
        self_pay: Fen(30_100),
        channel: "card ····4242".into(),
        writes_off: None,
    }
}

fn build_receipts() -> Value {
    let existing = read_existing("receipts.json");
    let pkcs8 = kept_key(&existing, "/keys/receipt_pkcs8_hex", || Issuer::generate_pkcs8().unwrap());
    let issuer = Issuer::from_pkcs8(1, &pkcs8).unwrap();
    let public_key = issuer.public_key();
    let mut cases = Vec::new();
    // Check codes: the date is China Standard Time (UTC+8).
    let check_inputs: [(&str, &str, &str, i64, i64); 6] = [
        ("the sample receipt", "41990026", "0000000001", T0 + 120_000, 47_960),
        ("15:59:59.999 UTC is still the same day in China", "41990026", "0000000002", 1_796_054_399_999, 100),
        ("16:00 UTC is the next day in China", "41990026", "0000000002", 1_796_054_400_000, 100),
        ("a zero total", "41990226", "0000000003", T0, 0),
        ("another region, a large total", "42990026", "9999999999", T0, 123_456_789),
        ("new year's eve 16:00 UTC is the new year", "41990027", "0000000001", 1_798_732_800_000, 2_500),
    ];
    for (name, code, number, at, total) in check_inputs {
        let date = receipt_date(at);
        let check = check_code(code, number, at, Fen(total));
        cases.push(json!({
            "name": format!("check code: {name}"),
            "check": "check_code",
            "receipt_code": code, "receipt_number": number, "issued_at_ms": at, "total": total,
            "date": date,
            "check_code": check,
            "qr_text": format!("CPR1|{code}|{number}|{check}|{date}|{total}"),
        }));
    }
    // Signed receipts.
    let keys = HashMap::from([(1u16, public_key.clone())]);
    let original = sample_receipt();
    let mut write_off = original.clone();
    write_off.kind = ReceiptKind::WriteOff;
    write_off.receipt_number = "0000000002".into();
    write_off.issued_at_ms += 86_400_000;
    write_off.check_code =
        check_code(&write_off.receipt_code, &write_off.receipt_number, write_off.issued_at_ms, write_off.total);
    write_off.writes_off = Some(ReceiptRef { receipt_code: "41990026".into(), receipt_number: "0000000001".into() });
    let mut proxy = original.clone();
    proxy.receipt_number = "0000000003".into();
    proxy.check_code = check_code(&proxy.receipt_code, &proxy.receipt_number, proxy.issued_at_ms, proxy.total);
    proxy.presented_by = Some(ReceiptParty { person_id: "P1004".into(), name: "李娜 Li Na".into() });
    proxy.link_id = Some("lnk_00aa11bb22cc33dd".into());
    let mut bad_check = original.clone();
    bad_check.check_code = "000000".into();
    let mut bad_sum = original.clone();
    bad_sum.cash.0 += 1;
    let mut bad_own = original.clone();
    bad_own.own_pay.0 += 1;
    let mut bad_version = original.clone();
    bad_version.version = 2;
    let mut orphan_write_off = write_off.clone();
    orphan_write_off.writes_off = None;
    let mut half_proxy = proxy.clone();
    half_proxy.link_id = None;
    let mut bad_code = original.clone();
    bad_code.receipt_code = "4199002".into();

    // (name, body bytes, key id, expect): each body is signed (and the signature kept).
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("signed original", serde_json::to_vec(&original).unwrap()),
        ("signed write-off of the original", serde_json::to_vec(&write_off).unwrap()),
        ("signed proxy receipt", serde_json::to_vec(&proxy).unwrap()),
        ("signed, but the check code is wrong", serde_json::to_vec(&bad_check).unwrap()),
        ("signed, but the sources do not sum to the total", serde_json::to_vec(&bad_sum).unwrap()),
        ("signed, but fund + own pay + self pay is not the total", serde_json::to_vec(&bad_own).unwrap()),
        ("signed, but version 2", serde_json::to_vec(&bad_version).unwrap()),
        ("signed, but a write-off that names nothing", serde_json::to_vec(&orphan_write_off).unwrap()),
        ("signed, but a proxy without the link", serde_json::to_vec(&half_proxy).unwrap()),
        ("signed, but a 7-digit receipt code", serde_json::to_vec(&bad_code).unwrap()),
        ("signed, but not a receipt", br#"{"version":1,"kind":"original"}"#.to_vec()),
    ];
    let mut signed_original: Option<SignedBody> = None;
    for (name, body) in bodies {
        let message = receipt::signed_bytes(1, &body);
        let sig = kept_signature(
            &existing,
            name,
            "/signed/signature",
            |sig| crypto::verify_p256(&public_key, &message, sig).is_ok(),
            || issuer.sign(&message).unwrap(),
        );
        let signed = SignedBody { key_id: 1, body: B64.encode(&body), signature: B64.encode(sig) };
        if signed_original.is_none() {
            signed_original = Some(signed.clone());
        }
        cases.push(signed_case(name, &signed, &keys, Some(&message)));
    }
    let good = signed_original.unwrap();
    let raw_sig = B64.decode(&good.signature).unwrap();
    let mut flipped = raw_sig.clone();
    flipped[33] ^= 0x80;
    let mut forged_body = original.clone();
    forged_body.cash.0 -= 1_000;
    forged_body.fund.0 += 1_000;
    forged_body.own_pay.0 -= 1_000;
    let tampered: Vec<(&str, SignedBody)> = vec![
        (
            "the amounts changed after signing",
            SignedBody { body: B64.encode(serde_json::to_vec(&forged_body).unwrap()), ..good.clone() },
        ),
        ("bit flipped in the signature", SignedBody { signature: B64.encode(&flipped), ..good.clone() }),
        ("an unknown key id", SignedBody { key_id: 2, ..good.clone() }),
        ("the key id changed to one that is known but not the signer's", SignedBody { key_id: 7, ..good.clone() }),
        ("a signature of 63 bytes", SignedBody { signature: B64.encode(&raw_sig[..63]), ..good.clone() }),
        ("a body that is not base64url", SignedBody { body: "not base64url!".into(), ..good.clone() }),
        ("a padded base64 signature", SignedBody { signature: format!("{}=", good.signature), ..good.clone() }),
    ];
    let mut keys_with_7 = keys.clone();
    keys_with_7.insert(7, public_key.clone());
    for (name, signed) in tampered {
        let k = if signed.key_id == 7 { &keys_with_7 } else { &keys };
        let mut case = signed_case(name, &signed, k, None);
        if signed.key_id == 7 {
            case["extra_key_ids"] = json!([7]);
        }
        cases.push(case);
    }
    with_count(json!({
        "description": "E-receipts (docs/payments.md § 7): the check code (校验码) and its verification string; signed receipts that verify and tampered ones with the error code.",
        "how_to_run": "check `check_code`: receipt_date(issued_at_ms) == date (YYYYMMDD, UTC+8) and check_code(receipt_code, receipt_number, issued_at_ms, total) == check_code (first 3 bytes, upper-case hex, of SHA-256(\"carepass-receipt-check-v1\" 0x00 || code || 0x00 || number || 0x00 || date || 0x00 || total as decimal)); qr_text is the card's QR content. check `signed`: verify `signed` ({key_id, body, signature}) against `receipt_keys` (plus, where `extra_key_ids` says so, the same public key under those ids): `ok` gives `receipt`, else the error code (malformed, unknown_key, forged, check_code, amounts). `signed_bytes_hex`, where given, is \"carepass-receipt-v1\" 0x00 || key_id (u16 BE) || body bytes.",
        "amounts": "integer fen",
        "receipt_keys": [{"key_id": 1, "public_key": B64.encode(&public_key), "public_key_hex": hex(&public_key)}],
        "keys": {"receipt_pkcs8_hex": hex(&pkcs8)},
        "cases": cases,
    }))
}

fn signed_case(name: &str, signed: &SignedBody, keys: &HashMap<u16, Vec<u8>>, message: Option<&[u8]>) -> Value {
    let mut case = json!({"name": name, "check": "signed", "signed": to!(signed)});
    if let Some(m) = message {
        case["signed_bytes_hex"] = json!(hex(m));
    }
    match receipt::verify(signed, keys) {
        Ok(r) => {
            case["expect"] = json!("ok");
            case["receipt"] = to!(&r);
            case["qr_text"] = json!(format!(
                "CPR1|{}|{}|{}|{}|{}",
                r.receipt_code,
                r.receipt_number,
                r.check_code,
                receipt_date(r.issued_at_ms),
                r.total.0
            ));
        }
        Err(e) => case["expect"] = json!(receipt_error_code(&e)),
    }
    case
}

#[test]
fn receipt_vectors_verify_or_fail_as_stated() {
    let doc = committed("receipts.json", build_receipts());
    let key = &doc["receipt_keys"][0];
    let public_key = B64.decode(s(&key["public_key"])).unwrap();
    assert_eq!(hex(&public_key), s(&key["public_key_hex"]));
    let mut seen = std::collections::BTreeSet::new();
    for case in cases(&doc) {
        let name = s(&case["name"]);
        match s(&case["check"]) {
            "check_code" => {
                let at = case["issued_at_ms"].as_i64().unwrap();
                let total = Fen(case["total"].as_i64().unwrap());
                assert_eq!(receipt_date(at), s(&case["date"]), "{name}");
                let code = check_code(s(&case["receipt_code"]), s(&case["receipt_number"]), at, total);
                assert_eq!(code, s(&case["check_code"]), "{name}");
                assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()));
            }
            "signed" => {
                let mut keys = HashMap::from([(key["key_id"].as_u64().unwrap() as u16, public_key.clone())]);
                for extra in case["extra_key_ids"].as_array().into_iter().flatten() {
                    keys.insert(extra.as_u64().unwrap() as u16, public_key.clone());
                }
                let signed: SignedBody = from!(&case["signed"]);
                if let Some(m) = case["signed_bytes_hex"].as_str() {
                    let body = B64.decode(&signed.body).unwrap();
                    assert_eq!(hex(&receipt::signed_bytes(signed.key_id, &body)), m, "{name}");
                }
                match (receipt::verify(&signed, &keys), s(&case["expect"])) {
                    (Ok(r), "ok") => {
                        assert_eq!(to!(&r), case["receipt"], "{name}");
                        // The SVG card carries the verification string in its QR group.
                        let svg = r.svg();
                        assert!(svg.contains(&format!("data-text=\"{}\"", s(&case["qr_text"]))), "{name}");
                        seen.insert("ok".to_string());
                    }
                    (Err(e), code) => {
                        assert_eq!(e.code(), code, "{name}: {e}");
                        seen.insert(code.to_string());
                    }
                    (Ok(_), code) => panic!("{name}: verified, expected {code}"),
                }
            }
            other => panic!("{name}: unknown check {other}"),
        }
    }
    let all = ["ok", "malformed", "unknown_key", "forged", "check_code", "amounts"];
    assert_eq!(seen, all.iter().map(|c| c.to_string()).collect());
}

// ---- refunds.json ------------------------------------------------------------------------

fn settlement_item(code: &str, category: ItemCategory, price: i64, quantity: u32) -> SettlementItem {
    SettlementItem { code: code.into(), category, unit_price: Fen(price), quantity }
}

struct RefundCase {
    name: &'static str,
    rule: SettlementRule,
    coverage: PatientCoverage,
    items: Vec<SettlementItem>,
    steps: Vec<Vec<ReturnedLine>>,
}

fn lines(pairs: &[(u32, u32)]) -> Vec<ReturnedLine> {
    pairs.iter().map(|&(line, quantity)| ReturnedLine { line, quantity }).collect()
}

fn refund_inputs() -> Vec<RefundCase> {
    let chronic = rule("419900", InsuranceType::EmployeeActive, VisitType::ChronicOutpatient);
    let outpatient = rule("419900", InsuranceType::EmployeeActive, VisitType::Outpatient);
    let resident = rule("419900", InsuranceType::Resident, VisitType::Outpatient);
    let cover = |t, paid: i64, fund_paid: i64, balance: i64, use_account: bool| PatientCoverage {
        insurance_type: t,
        pooling_region: "419900".into(),
        year_to_date: YearToDate { deductible_paid: Fen(paid), fund_paid: Fen(fund_paid) },
        account_balance: Fen(balance),
        use_account,
    };
    let prescription = vec![
        settlement_item("XA10BAD024A001010104402", ItemCategory::A, 2_350, 2),
        settlement_item("XC10AAA150A001010100264", ItemCategory::B, 3_290, 4),
        settlement_item("ZZ0000000001", ItemCategory::C, 19_900, 1),
    ];
    let active = InsuranceType::EmployeeActive;
    vec![
        RefundCase {
            name: "return the class C item: cash only",
            rule: chronic.clone(),
            coverage: cover(active, 0, 0, 3_000, true),
            items: prescription.clone(),
            steps: vec![lines(&[(2, 1)])],
        },
        RefundCase {
            name: "return two of four class B units",
            rule: chronic.clone(),
            coverage: cover(active, 0, 0, 3_000, true),
            items: prescription.clone(),
            steps: vec![lines(&[(1, 2)])],
        },
        RefundCase {
            name: "return everything at once",
            rule: chronic.clone(),
            coverage: cover(active, 0, 0, 3_000, true),
            items: prescription.clone(),
            steps: vec![lines(&[(0, 2), (1, 4), (2, 1)])],
        },
        RefundCase {
            name: "three partial refunds that add up to the payment",
            rule: chronic.clone(),
            coverage: cover(active, 0, 0, 3_000, true),
            items: prescription.clone(),
            steps: vec![lines(&[(1, 1)]), lines(&[(0, 2), (1, 1)]), lines(&[(1, 2), (2, 1)])],
        },
        RefundCase {
            name: "deductible not yet met: the deductible goes back",
            rule: outpatient.clone(),
            coverage: cover(active, 140_000, 0, 50_000, true),
            items: vec![
                settlement_item("250102015", ItemCategory::A, 6_000, 1),
                settlement_item("XC10AAA150A001010100264", ItemCategory::B, 3_290, 8),
            ],
            steps: vec![lines(&[(1, 4)]), lines(&[(0, 1), (1, 4)])],
        },
        RefundCase {
            name: "near the annual cap: the fund gives back only what it paid",
            rule: chronic.clone(),
            coverage: cover(active, 0, 599_000, 0, false),
            items: vec![settlement_item("XA10BAD024A001010104402", ItemCategory::A, 2_350, 10)],
            steps: vec![lines(&[(0, 5)]), lines(&[(0, 5)])],
        },
        RefundCase {
            name: "resident: no personal account",
            rule: resident,
            coverage: cover(InsuranceType::Resident, 20_000, 0, 0, false),
            items: prescription.clone(),
            steps: vec![lines(&[(0, 1), (2, 1)])],
        },
        RefundCase {
            name: "error: no such line",
            rule: chronic.clone(),
            coverage: cover(active, 0, 0, 3_000, true),
            items: prescription.clone(),
            steps: vec![lines(&[(3, 1)])],
        },
        RefundCase {
            name: "error: more units than are left after an earlier refund",
            rule: chronic.clone(),
            coverage: cover(active, 0, 0, 3_000, true),
            items: prescription.clone(),
            steps: vec![lines(&[(1, 3)]), lines(&[(1, 2)])],
        },
        RefundCase {
            name: "error: nothing returned",
            rule: chronic.clone(),
            coverage: cover(active, 0, 0, 3_000, true),
            items: prescription.clone(),
            steps: vec![lines(&[])],
        },
        RefundCase {
            name: "error: zero units returned",
            rule: chronic,
            coverage: cover(active, 0, 0, 3_000, true),
            items: prescription,
            steps: vec![lines(&[(0, 0)])],
        },
    ]
}

/// Runs a refund sequence as the platform does; each step's answer as JSON.
fn run_refunds(
    rule: &SettlementRule,
    coverage: &PatientCoverage,
    items: &[SettlementItem],
    steps: &[Vec<ReturnedLine>],
) -> (Settlement, Vec<Value>) {
    let original = settle_with_rule(rule, coverage, items).unwrap();
    let recovered =
        coverage_before(rule, &original, coverage.insurance_type, &coverage.pooling_region, coverage.use_account)
            .unwrap();
    assert_eq!(settle_with_rule(rule, &recovered, items).unwrap(), original, "the coverage is recovered");
    let mut current = original.clone();
    let mut taken = vec![0u32; items.len()];
    let mut out = Vec::new();
    for returned in steps {
        let answer = remaining_items(items, &taken, returned)
            .and_then(|(remaining, now_taken)| Ok((refund(rule, &recovered, &current, &remaining)?, now_taken)));
        match answer {
            Ok(((split, after), now_taken)) => {
                taken = now_taken;
                out.push(json!({
                    "returned": to!(returned),
                    "expect": "ok",
                    "split": to!(&split),
                    "standing": after.as_ref().map(|a| json!({
                        "total": a.total, "fund": a.fund, "personal_account": a.personal_account,
                        "mutual_aid": a.mutual_aid, "cash": a.cash, "deductible_applied": a.deductible_applied,
                    })),
                    "returned_so_far": taken,
                }));
                if let Some(a) = after {
                    current = a;
                }
            }
            Err(e) => out.push(json!({"returned": to!(returned), "expect": "error", "error": refund_code(&e)})),
        }
    }
    (original, out)
}

fn refund_code(e: &RefundError) -> &'static str {
    e.code()
}

fn split_json(s: &Settlement) -> Value {
    json!({
        "total": s.total, "fund": s.fund, "personal_account": s.personal_account, "mutual_aid": s.mutual_aid,
        "cash": s.cash, "deductible_applied": s.deductible_applied,
    })
}

fn build_refunds() -> Value {
    let cases: Vec<Value> = refund_inputs()
        .into_iter()
        .map(|c| {
            let (original, steps) = run_refunds(&c.rule, &c.coverage, &c.items, &c.steps);
            json!({
                "name": c.name,
                "rule": to!(&c.rule),
                "coverage": to!(&c.coverage),
                "items": to!(&c.items),
                "paid": split_json(&original),
                "steps": steps,
            })
        })
        .collect();
    with_count(json!({
        "description": "Refunds by re-settlement (docs/payments.md § 6): the lines that remain are settled again under the same rule and the coverage the payment was settled with; each source gets back the difference.",
        "how_to_run": "Settle `items` for `coverage` under `rule`: the split must be `paid`. Recover the coverage from it (coverage_before). Then run `steps` in order, each returning `returned` lines (0-based index, units) on top of the earlier steps: `ok` gives the refund `split` per source (and what goes back off the deductible) and the `standing` split (null: nothing left), or `error` with its code (no_such_line, too_many, nothing_to_refund, settlement, negative). A refused step changes nothing.",
        "amounts": "integer fen",
        "cases": cases,
    }))
}

#[test]
fn refund_vectors_split_as_stated() {
    let doc = committed("refunds.json", build_refunds());
    let mut errors = std::collections::BTreeSet::new();
    for case in cases(&doc) {
        let name = s(&case["name"]);
        let rule: SettlementRule = from!(&case["rule"]);
        let coverage: PatientCoverage = from!(&case["coverage"]);
        let items: Vec<SettlementItem> = from!(&case["items"]);
        let steps: Vec<Vec<ReturnedLine>> =
            case["steps"].as_array().unwrap().iter().map(|st| from!(&st["returned"])).collect();
        let (original, answers) = run_refunds(&rule, &coverage, &items, &steps);
        assert_eq!(split_json(&original), case["paid"], "{name}");
        assert_eq!(Value::Array(answers.clone()), case["steps"], "{name}");
        // What a whole sequence gives back never exceeds what each source took.
        let mut back = [0i64; 4];
        for a in answers.iter().filter(|a| a["expect"] == "ok") {
            for (i, k) in ["fund", "personal_account", "mutual_aid", "cash"].iter().enumerate() {
                let part = a["split"][k].as_i64().unwrap();
                assert!(part >= 0, "{name}");
                back[i] += part;
            }
            let sum: i64 = ["fund", "personal_account", "mutual_aid", "cash"]
                .iter()
                .map(|k| a["split"][k].as_i64().unwrap())
                .sum();
            assert_eq!(sum, a["split"]["total"].as_i64().unwrap(), "{name}");
        }
        let paid = [original.fund.0, original.personal_account.0, original.mutual_aid.0, original.cash.0];
        assert!(back.iter().zip(paid).all(|(b, p)| *b <= p), "{name}");
        if answers.iter().any(|a| a["expect"] == "ok" && a["standing"].is_null()) {
            assert_eq!(back, paid, "{name}: everything returned gives everything back");
        }
        for a in answers.iter().filter(|a| a["expect"] == "error") {
            errors.insert(s(&a["error"]).to_string());
        }
    }
    assert_eq!(errors, ["no_such_line", "nothing_to_refund", "too_many"].iter().map(|c| c.to_string()).collect());
}

// ---- credit.json -------------------------------------------------------------------------

fn credit_code(e: &CreditRefusal) -> &'static str {
    match e {
        CreditRefusal::OverLimit { .. } => "over_limit",
        CreditRefusal::NoAgreement => "no_agreement",
        CreditRefusal::BadLimit => "bad_limit",
    }
}

fn build_credit() -> Value {
    let existing = read_existing("credit.json");
    let pkcs8 = kept_key(&existing, "/keys/device_pkcs8_hex", || SoftwareDeviceKey::generate().unwrap().1);
    let device = SoftwareDeviceKey::from_pkcs8(&pkcs8).unwrap();
    let public_key = device.public_key().unwrap();
    let terms = CreditTerms {
        person_id: "P1001".into(),
        device_id: "dev_0011223344556677".into(),
        limit: Fen(200_000),
        term_days: credit::TERM_DAYS,
        signed_at_ms: T0,
    };
    let mut cases = Vec::new();
    let mut max = terms.clone();
    max.limit = credit::MAX_LIMIT;
    for (name, t) in [("a ¥2,000 line", terms.clone()), ("the ¥5,000 maximum", max)] {
        cases.push(json!({"name": format!("terms: {name}"), "check": "terms", "terms": to!(&t), "signed_bytes_hex": hex(&t.signed_bytes())}));
    }
    let message = terms.signed_bytes();
    let sig = kept_signature(
        &existing,
        "agreement signature",
        "/signature",
        |sig| crypto::verify_p256(&public_key, &message, sig).is_ok(),
        || terms.sign(&device).unwrap(),
    );
    let mut raised = terms.clone();
    raised.limit = Fen(300_000);
    for (name, t) in [("agreement signature", terms.clone()), ("the limit raised after signing", raised)] {
        let expect = if t.verify(&public_key, &sig).is_ok() { "valid" } else { "invalid" };
        cases.push(
            json!({"name": name, "check": "verify", "terms": to!(&t), "signature": B64.encode(sig), "expect": expect}),
        );
    }
    for limit in [0, 1, 200_000, 500_000, 500_001, -100] {
        let verdict = credit::check_limit(Fen(limit));
        cases.push(json!({
            "name": format!("limit {limit}"), "check": "limit", "limit": limit,
            "expect": verdict.as_ref().map(|_| "ok").unwrap_or_else(credit_code),
        }));
    }
    for (limit, used, amount) in [
        (200_000, 0, 200_000),
        (200_000, 0, 200_001),
        (200_000, 150_000, 50_000),
        (200_000, 150_000, 50_001),
        (100_000, 120_000, 1),
        (100_000, 120_000, 0),
    ] {
        let verdict = credit::check_draw(Fen(limit), Fen(used), Fen(amount));
        let mut case = json!({
            "name": format!("draw {amount} on {limit} with {used} used"), "check": "draw",
            "limit": limit, "used": used, "amount": amount,
            "expect": verdict.as_ref().map(|_| "ok").unwrap_or_else(credit_code),
        });
        if let Err(CreditRefusal::OverLimit { available, .. }) = verdict {
            case["available"] = json!(available);
        }
        cases.push(case);
    }
    with_count(json!({
        "description": "Credit pay-later (信用就医, docs/payments.md § 9): the signed terms, limits and draws.",
        "format": "\"carepass-credit-v1\" 0x00 || str person_id || str device_id || i64 limit || u16 term_days || i64 signed_at_ms (str = u16 BE length, UTF-8; integers big-endian)",
        "how_to_run": "check `terms`: the terms' bytes. check `verify`: base64url r||s `signature` over the terms with `public_key_hex`: valid or invalid. check `limit`: check_limit (1 fen ..= 500000 fen). check `draw`: check_draw(limit, used, amount): ok or over_limit with `available` = max(limit - used, 0).",
        "amounts": "integer fen",
        "max_limit": credit::MAX_LIMIT,
        "term_days": credit::TERM_DAYS,
        "public_key_hex": hex(&public_key),
        "keys": {"device_pkcs8_hex": hex(&pkcs8)},
        "cases": cases,
    }))
}

#[test]
fn credit_vectors_hold() {
    let doc = committed("credit.json", build_credit());
    let public_key = unhex(s(&doc["public_key_hex"]));
    for case in cases(&doc) {
        let name = s(&case["name"]);
        let int = |k: &str| Fen(case[k].as_i64().unwrap());
        match s(&case["check"]) {
            "terms" => {
                let terms: CreditTerms = from!(&case["terms"]);
                assert_eq!(hex(&terms.signed_bytes()), s(&case["signed_bytes_hex"]), "{name}");
            }
            "verify" => {
                let terms: CreditTerms = from!(&case["terms"]);
                let sig = B64.decode(s(&case["signature"])).unwrap();
                assert_eq!(terms.verify(&public_key, &sig).is_ok(), case["expect"] == "valid", "{name}");
            }
            "limit" => {
                let v = credit::check_limit(int("limit"));
                assert_eq!(v.as_ref().map(|_| "ok").unwrap_or_else(credit_code), s(&case["expect"]), "{name}");
            }
            "draw" => {
                let v = credit::check_draw(int("limit"), int("used"), int("amount"));
                assert_eq!(v.as_ref().map(|_| "ok").unwrap_or_else(credit_code), s(&case["expect"]), "{name}");
                if let Err(CreditRefusal::OverLimit { available, asked }) = v {
                    assert_eq!((available, asked), (int("available"), int("amount")), "{name}");
                }
            }
            other => panic!("{name}: unknown check {other}"),
        }
    }
}

// ---- channels.json -----------------------------------------------------------------------

fn build_channels() -> Value {
    let wires = [
        "none",
        "credit",
        "card:4242424242424242",
        "card:4000000000009995",
        "card:4000000000000341",
        "card:4000000000000119",
        "card:4000000000000127",
        "card:4000000000003220",
        "card:5555555555554444",
        "card:000000000000",
        "card:4242424242424242424",
        "",
        "card:",
        "card:4242424242424241",
        "card:42424242",
        "card:4242 4242 4242 4242",
        "CARD:4242424242424242",
        "cash",
        "card:42424242424242424242",
        "card:+4242424242424242",
    ];
    let cases: Vec<Value> = wires
        .iter()
        .map(|w| match Channel::parse(w) {
            Ok(c) => json!({"name": format!("wire {w:?}"), "wire": w, "expect": "ok", "masked": c.masked(), "is_none": c.is_none()}),
            Err(e) => json!({"name": format!("wire {w:?}"), "wire": w, "expect": "error", "field": e.field.name()}),
        })
        .collect();
    with_count(json!({
        "description": "The cash leg's channel on the wire (docs/payments.md § 2): none, credit, or card:<12..19 digits passing the Luhn check>.",
        "how_to_run": "Parse `wire`: `ok` gives the `masked` form a receipt or screen shows (a card by its last four digits), or `error` naming the field.",
        "cases": cases,
    }))
}

#[test]
fn channel_vectors_parse_as_stated() {
    let doc = committed("channels.json", build_channels());
    for case in cases(&doc) {
        let name = s(&case["name"]);
        let wire = s(&case["wire"]);
        match (Channel::parse(wire), s(&case["expect"])) {
            (Ok(c), "ok") => {
                assert_eq!(c.masked(), s(&case["masked"]), "{name}");
                assert_eq!(c.wire(), wire, "{name}: round trip");
                if let Channel::Card(n) = &c {
                    assert!(luhn(n), "{name}");
                }
            }
            (Err(e), "error") => assert_eq!(e.field.name(), s(&case["field"]), "{name}"),
            (v, expect) => panic!("{name}: {v:?}, expected {expect}"),
        }
    }
}
