//! Mixed payment (医保 + 自费) at the platform, over real HTTP on loopback: a phone's session
//! and device key, raw requests to the sandbox (so every status, header and body is seen as
//! sent), the embedded payment channel's ledger, and the admin views of the personal account.
//!
//! Every test checks where the money is afterwards: the personal account moved by exactly
//! the quoted personal-account part (or not at all), the channel captured the cash once (or
//! nothing), and the receipts verify against the platform's receipt keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::crypto::SoftwareDeviceKey;
use carepass_core::domain::payment::receipt::{self, Receipt, ReceiptKind};
use carepass_core::domain::payment::{Consent, ConsentKind};
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::{
    self, Bill, BillState, CashLegState, InboxPage, InsuranceLegState, PayRequest, Payment, PaymentStatus, Quote,
    ReceiptKey, Refund, RefundStatus, Step,
};
use carepass_core::{CarePass, Fen};
use carepass_journeys::*;
use carepass_sandbox::channel::{AuthStatus, Ledger};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CARD_OK: &str = "card:4242424242424242";
const CARD_OK_TOO: &str = "card:5555555555554444";
const CARD_INSUFFICIENT: &str = "card:4000000000009995";
const CARD_CAPTURE_DECLINED: &str = "card:4000000000000341";
const CARD_LATE_OK: &str = "card:4000000000000119";
const CARD_LATE_FAILS: &str = "card:4000000000000127";
const CARD_CONFIRM: &str = "card:4000000000003220";
const OTHER_PATIENT: &str = "13800000004";
/// The personal account balance the tests start from (less than the demo bill's share, so
/// the fund, the account and the card all pay a part).
const BALANCE: i64 = 10_000;

// ---- raw HTTP ----------------------------------------------------------------------------

/// The types answers are read as (the tests crate has serde_json but not serde itself).
trait Wire: Sized {
    fn from_value(v: Value) -> Result<Self, serde_json::Error>;
}

macro_rules! wire_types {
    ($($t:ty),*) => {
        $(impl Wire for $t {
            fn from_value(v: Value) -> Result<Self, serde_json::Error> {
                serde_json::from_value(v)
            }
        })*
    };
}

wire_types!(Payment, Quote, Refund, Ledger, InboxPage, Vec<ReceiptKey>, Value);

/// An answer as it came over the wire.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn value(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{} {}: {e}", self.status, self.text()))
    }

    fn json<T: Wire>(&self) -> T {
        T::from_value(self.value()).unwrap_or_else(|e| panic!("{} {}: {e}", self.status, self.text()))
    }

    /// The error body's code.
    fn code(&self) -> String {
        self.value()["code"].as_str().unwrap_or_default().to_string()
    }

    fn replayed(&self) -> bool {
        self.header(wire::REPLAYED_HEADER) == Some("true")
    }

    fn server_time_ms(&self) -> i64 {
        self.header(wire::SERVER_TIME_HEADER).and_then(|v| v.parse().ok()).expect("server time header")
    }

    /// A 200 whose body is `T`.
    fn ok<T: Wire>(&self) -> T {
        assert_eq!(self.status, 200, "{}", self.text());
        self.json()
    }

    /// An error with `status` and `code`.
    fn refused(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code().as_str()), (status, code), "{}", self.text());
    }
}

/// One HTTP/1.1 request on its own connection (`connection: close`); an error when the
/// connection ends without an answer.
async fn http(
    base: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> std::io::Result<Answer> {
    let host = base.trim_start_matches("http://").trim_end_matches('/').to_string();
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\naccept: application/json\r\n");
    if let Some(token) = bearer {
        head.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if body.is_some() {
        head.push_str("content-type: application/json\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", bytes.len()));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&host).await?;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&bytes).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_answer(&raw)
    };
    match tokio::time::timeout(Duration::from_secs(60), exchange).await {
        Ok(answer) => answer,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 60 s")),
    }
}

fn parse_answer(raw: &[u8]) -> std::io::Result<Answer> {
    let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the connection ended without an answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(eof)?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).ok_or_else(eof)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let end = rest[at..].windows(2).position(|w| w == b"\r\n").ok_or_else(eof)? + at;
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[at..end]).trim(), 16).map_err(|_| eof())?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(end + 2..end + 2 + size).ok_or_else(eof)?);
            at = end + 2 + size + 2;
        }
        out
    } else {
        match headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()) {
            Some(n) => rest.get(..n).ok_or_else(eof)?.to_vec(),
            None => rest.to_vec(),
        }
    };
    Ok(Answer { status, headers, body })
}

// ---- the actors --------------------------------------------------------------------------

/// An enrolled phone: its session token and device key, for raw requests.
struct Patient {
    _app: Arc<CarePass>,
    _dir: tempfile::TempDir,
    person_id: String,
    device_id: String,
    token: String,
    keys: SoftwareDeviceKey,
}

async fn patient(platform: &TestPlatform, phone_number: &str) -> Patient {
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    app.enrol(phone_number, CODE).await.expect("enrols");
    let profile = app.current_profile().unwrap().expect("signed in");
    let token = stored_tokens(&app, &profile.person_id).access_token;
    let keys = carepass_core::io::keys::software_key(&app.store().vault).expect("device key");
    Patient { person_id: profile.person_id, device_id: profile.device_id, token, keys, _app: app, _dir: dir }
}

/// A platform with P1001 enrolled and their personal account at [`BALANCE`].
async fn setup() -> (TestPlatform, Patient) {
    let platform = TestPlatform::start().await;
    let me = patient(&platform, PATIENT).await;
    set_balance(&platform, &me.person_id, BALANCE).await;
    (platform, me)
}

async fn call(
    platform: &TestPlatform,
    who: &Patient,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let headers: Vec<(&str, &str)> = key.map(|k| vec![(wire::IDEMPOTENCY_HEADER, k)]).unwrap_or_default();
    http(&platform.url(), method, path, Some(&who.token), &headers, body.as_ref()).await.expect("an answer")
}

async fn admin(platform: &TestPlatform, method: &str, path: &str, body: Option<Value>) -> Answer {
    http(&platform.url(), method, path, Some(ADMIN_TOKEN), &[], body.as_ref()).await.expect("an answer")
}

async fn set_balance(platform: &TestPlatform, person_id: &str, fen: i64) {
    let view: Value =
        admin(platform, "POST", &format!("/admin/v1/accounts/{person_id}"), Some(json!({ "balance_fen": fen })))
            .await
            .ok();
    assert_eq!(balance(&view), fen);
}

/// A person's personal account and accumulators (`AccountView` as JSON).
async fn account(platform: &TestPlatform, person_id: &str) -> Value {
    admin(platform, "GET", &format!("/admin/v1/accounts/{person_id}"), None).await.ok()
}

fn balance(view: &Value) -> i64 {
    view["account_balance_fen"].as_i64().expect("a balance")
}

fn accumulated(view: &Value, field: &str) -> i64 {
    view["accumulators"].as_object().expect("accumulators").values().map(|y| y[field].as_i64().unwrap_or(0)).sum()
}

/// What the fund has paid this year, over every benefit's accumulator.
fn fund_paid(view: &Value) -> i64 {
    accumulated(view, "fund_paid")
}

fn deductible_paid(view: &Value) -> i64 {
    accumulated(view, "deductible_paid")
}

fn channel_url(platform: &TestPlatform) -> String {
    platform.sandbox.as_ref().expect("running").channel_url.clone()
}

async fn ledger(platform: &TestPlatform) -> Ledger {
    http(&channel_url(platform), "GET", "/channel/v1/ledger", None, &[], None).await.expect("ledger").ok()
}

async fn quote(platform: &TestPlatform, who: &Patient, bill_id: &str, channel: &str) -> Quote {
    let answer = call(
        platform,
        who,
        "POST",
        &format!("/v1/bills/{bill_id}/quotes"),
        None,
        Some(json!({ "use_account": true, "channel": channel })),
    )
    .await;
    let quote: Quote = answer.ok();
    let legs = &quote.legs;
    assert_eq!(
        legs.insurance.fund.0 + legs.insurance.personal_account.0 + legs.insurance.mutual_aid.0 + legs.cash.amount.0,
        quote.settlement.total.0,
        "the legs add up to the total"
    );
    quote
}

/// The signed pay request for a quote under `key`.
fn pay_request(who: &Patient, quote: &Quote, key: &str) -> PayRequest {
    let consent = quote.consent(key);
    let signature = consent.sign(&who.keys).expect("signs");
    PayRequest::new(&consent, &signature)
}

async fn pay(platform: &TestPlatform, who: &Patient, key: &str, request: &PayRequest) -> Answer {
    call(platform, who, "POST", "/v1/payments", Some(key), Some(serde_json::to_value(request).unwrap())).await
}

async fn get_payment(platform: &TestPlatform, who: &Patient, payment_id: &str) -> Payment {
    call(platform, who, "GET", &format!("/v1/payments/{payment_id}"), None, None).await.ok()
}

async fn drive(platform: &TestPlatform) {
    let _: Value = admin(platform, "POST", "/admin/v1/payments/drive", Some(json!({}))).await.ok();
}

/// Drives and polls until the payment leaves `processing` (bounded).
async fn settle_down(platform: &TestPlatform, who: &Patient, payment_id: &str) -> Payment {
    for _ in 0..120 {
        drive(platform).await;
        let payment = get_payment(platform, who, payment_id).await;
        if payment.status != PaymentStatus::Processing {
            return payment;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("payment {payment_id} still processing after 12 s");
}

/// The bill as the patient's inbox last shows it.
async fn inbox_bill(platform: &TestPlatform, who: &Patient, bill_id: &str) -> Bill {
    let page: InboxPage = call(platform, who, "GET", "/v1/inbox?after=0&limit=500", None, None).await.ok();
    page.entries
        .into_iter()
        .rev()
        .find(|e| e.bill.bill_id == bill_id)
        .map(|e| e.bill)
        .expect("the bill is in the inbox")
}

async fn receipt_keys(platform: &TestPlatform) -> HashMap<u16, Vec<u8>> {
    let keys: Vec<ReceiptKey> = http(&platform.url(), "GET", "/v1/receipts/keys", None, &[], None).await.unwrap().ok();
    keys.into_iter().map(|k| (k.key_id, B64.decode(&k.public_key).expect("base64url key"))).collect()
}

/// Every receipt of a payment, verified.
async fn receipts(platform: &TestPlatform, payment: &Payment) -> Vec<Receipt> {
    let keys = receipt_keys(platform).await;
    payment.receipts.iter().map(|s| receipt::verify(s, &keys).expect("the receipt verifies")).collect()
}

/// The cash-due consent and request (kind `cash_due`, the payment id as reference).
fn cash_due_request(who: &Patient, payment: &Payment, key: &str, channel: &str, now_ms: i64) -> Value {
    let consent = Consent {
        kind: ConsentKind::CashDue,
        idempotency_key: key.into(),
        bill_id: payment.bill_id.clone(),
        reference: payment.payment_id.clone(),
        subject: payment.subject.clone(),
        actor: who.person_id.clone(),
        device_id: who.device_id.clone(),
        link_id: String::new(),
        total: payment.cash.due_fen,
        fund: Fen::ZERO,
        personal_account: Fen::ZERO,
        mutual_aid: Fen::ZERO,
        mutual_aid_from: String::new(),
        cash: payment.cash.due_fen,
        channel: channel.into(),
        expires_at_ms: now_ms + 5 * 60 * 1000,
    };
    let signature = consent.sign(&who.keys).unwrap();
    json!({
        "channel": channel,
        "amount_fen": payment.cash.due_fen,
        "expires_at_ms": consent.expires_at_ms,
        "signature": B64.encode(signature),
    })
}

fn assert_amounts(receipt: &Receipt, quote: &Quote) {
    let s = &quote.settlement;
    assert_eq!(
        (receipt.total, receipt.fund, receipt.personal_account, receipt.mutual_aid, receipt.cash),
        (s.total, s.fund, s.personal_account, s.mutual_aid, s.cash)
    );
}

// ---- 1. the happy path ---------------------------------------------------------------------

#[tokio::test]
async fn a_bill_is_paid_from_the_fund_the_personal_account_and_a_card_once_with_a_signed_receipt() {
    let (platform, me) = setup().await;
    let before = account(&platform, &me.person_id).await;
    let bill = platform.issue_bill(PATIENT, None).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_OK).await;
    let ins = &q.legs.insurance;
    assert_eq!(q.settlement.total, bill.total_fen);
    assert!(ins.fund.0 > 0 && ins.personal_account.0 > 0 && q.legs.cash.amount.0 > 0, "three sources: {:?}", q.legs);
    assert_eq!(ins.personal_account, Fen(BALANCE), "the account pays what it has");

    let answer = pay(&platform, &me, "pay-happy-1", &pay_request(&me, &q, "pay-happy-1")).await;
    assert!(!answer.replayed());
    let payment: Payment = answer.ok();
    assert_eq!((payment.status, payment.step), (PaymentStatus::Succeeded, Step::Succeeded));
    assert_eq!((payment.insurance.state, payment.cash.state), (InsuranceLegState::Settled, CashLegState::Captured));
    assert_eq!(
        payment.insurance.fund_fen.0
            + payment.insurance.personal_account_fen.0
            + payment.insurance.mutual_aid_fen.0
            + payment.cash.amount_fen.0,
        payment.total_fen.0
    );
    assert_eq!(payment.total_fen, bill.total_fen);
    assert_eq!(payment.cash.channel, "card ····4242");

    let after = account(&platform, &me.person_id).await;
    assert_eq!(balance(&after), balance(&before) - ins.personal_account.0);
    assert_eq!(fund_paid(&after) - fund_paid(&before), ins.fund.0, "the fund accumulator moved by the fund's part");
    assert_eq!(deductible_paid(&after) - deductible_paid(&before), q.settlement.deductible_applied.0);

    let ledger = ledger(&platform).await;
    assert_eq!(ledger.authorisations.len(), 1);
    let auth = &ledger.authorisations[0];
    assert_eq!(
        (auth.status, auth.captured_fen, auth.reference.as_str()),
        (AuthStatus::Captured, q.legs.cash.amount, payment.payment_id.as_str())
    );
    assert_eq!(ledger.net_captured(), q.legs.cash.amount.0);

    let receipts = receipts(&platform, &payment).await;
    assert_eq!(receipts.len(), 1);
    let r = &receipts[0];
    assert_eq!(r.kind, ReceiptKind::Original);
    assert_amounts(r, &q);
    assert_eq!((r.bill_id.as_str(), r.payment_id.as_str()), (bill.bill_id.as_str(), payment.payment_id.as_str()));
    assert_eq!(r.payer.person_id, me.person_id);
    assert_eq!(r.channel, "card ····4242");
    assert_eq!(r.items.len(), bill.items.len());
    // A receipt with one byte of its body changed does not verify.
    let mut forged = payment.receipts[0].clone();
    let mut body = B64.decode(&forged.body).unwrap();
    let at = body.len() / 2;
    body[at] ^= 1;
    forged.body = B64.encode(body);
    assert!(receipt::verify(&forged, &receipt_keys(&platform).await).is_err());

    let shown = inbox_bill(&platform, &me, &bill.bill_id).await;
    assert_eq!(shown.state, BillState::Paid);
    let summary = shown.payment.expect("the bill carries its payment");
    assert_eq!(summary.payment_id, payment.payment_id);
    assert_eq!(
        (summary.fund_fen, summary.personal_account_fen, summary.cash_fen),
        (ins.fund, ins.personal_account, q.legs.cash.amount)
    );
    assert_eq!(summary.receipts, payment.receipts);
    assert_eq!(get_payment(&platform, &me, &payment.payment_id).await, payment);
    // A paid bill has no new quote.
    let again = call(
        &platform,
        &me,
        "POST",
        &format!("/v1/bills/{}/quotes", bill.bill_id),
        None,
        Some(json!({"channel": CARD_OK})),
    )
    .await;
    again.refused(409, "bill_not_payable");
    println!(
        "figures: happy path total {} = fund {} + account {} + cash {}",
        q.settlement.total.0, ins.fund.0, ins.personal_account.0, q.legs.cash.amount.0
    );
}

// ---- 2. replay -------------------------------------------------------------------------------

#[tokio::test]
async fn the_same_request_with_the_same_key_is_answered_again_and_moves_nothing_more() {
    let (mut platform, me) = setup().await;
    let bill = platform.issue_bill(PATIENT, None).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_OK).await;
    let request = pay_request(&me, &q, "replay-1");
    let first = pay(&platform, &me, "replay-1", &request).await;
    let payment: Payment = first.ok();
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert!(!first.replayed());
    let after_first = account(&platform, &me.person_id).await;

    for round in 0..3 {
        let again = pay(&platform, &me, "replay-1", &request).await;
        assert_eq!(again.status, 200, "{}", again.text());
        assert!(again.replayed(), "round {round}: the replayed header");
        assert_eq!(again.value(), first.value(), "round {round}: the identical body");
    }
    // Across a restart of the platform too.
    platform.restart().await;
    let again = pay(&platform, &me, "replay-1", &request).await;
    assert!(again.replayed());
    assert_eq!(again.value(), first.value());

    let after = account(&platform, &me.person_id).await;
    assert_eq!(balance(&after), balance(&after_first));
    assert_eq!(balance(&after), BALANCE - q.legs.insurance.personal_account.0);
    assert_eq!(fund_paid(&after), q.legs.insurance.fund.0);
    let ledger = ledger(&platform).await;
    assert_eq!(ledger.authorisations.len(), 1, "one hold: {ledger:?}");
    assert_eq!(ledger.authorisations[0].status, AuthStatus::Captured);
    assert_eq!(ledger.net_captured(), q.legs.cash.amount.0);
    assert!(ledger.refunds.is_empty());
    assert_eq!(get_payment(&platform, &me, &payment.payment_id).await.receipts.len(), 1);
}

// ---- 3. key reuse and concurrency -------------------------------------------------------------

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_concurrent_requests_move_money_once() {
    let (platform, me) = setup().await;
    let first_bill = platform.issue_bill(PATIENT, None).await;
    let other_bill = platform.issue_bill(PATIENT, None).await;
    let q1 = quote(&platform, &me, &first_bill.bill_id, CARD_OK).await;
    let paid: Payment = pay(&platform, &me, "reuse-1", &pay_request(&me, &q1, "reuse-1")).await.ok();
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    let after_first = account(&platform, &me.person_id).await;

    // The same key for another bill's quote.
    let q2 = quote(&platform, &me, &other_bill.bill_id, CARD_OK).await;
    pay(&platform, &me, "reuse-1", &pay_request(&me, &q2, "reuse-1")).await.refused(422, "idempotency_key_reused");
    assert_eq!(inbox_bill(&platform, &me, &other_bill.bill_id).await.state, BillState::Pending);
    assert_eq!(balance(&account(&platform, &me.person_id).await), balance(&after_first));
    assert_eq!(ledger(&platform).await.authorisations.len(), 1);

    // Ten identical requests at once under a fresh key.
    set_balance(&platform, &me.person_id, BALANCE).await;
    let q2 = quote(&platform, &me, &other_bill.bill_id, CARD_OK).await;
    let body = serde_json::to_value(pay_request(&me, &q2, "burst-1")).unwrap();
    let url = platform.url();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (url, token, body) = (url.clone(), me.token.clone(), body.clone());
            tokio::spawn(async move {
                http(&url, "POST", "/v1/payments", Some(&token), &[(wire::IDEMPOTENCY_HEADER, "burst-1")], Some(&body))
                    .await
                    .expect("an answer")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let originals: Vec<&Answer> = answers.iter().filter(|a| a.status == 200 && !a.replayed()).collect();
    assert_eq!(
        originals.len(),
        1,
        "exactly one first answer: {:?}",
        answers.iter().map(|a| (a.status, a.replayed())).collect::<Vec<_>>()
    );
    let original = originals[0].value();
    assert_eq!(original["status"], "succeeded");
    let (mut in_progress, mut replayed) = (0, 0);
    for a in &answers {
        match (a.status, a.replayed()) {
            (200, false) => {}
            (200, true) => {
                assert_eq!(a.value(), original, "a replay is the identical body");
                replayed += 1;
            }
            _ => {
                a.refused(409, "idempotency_in_progress");
                in_progress += 1;
            }
        }
    }
    let after = account(&platform, &me.person_id).await;
    assert_eq!(balance(&after), BALANCE - q2.legs.insurance.personal_account.0, "the account moved once");
    assert_eq!(fund_paid(&after), q1.legs.insurance.fund.0 + q2.legs.insurance.fund.0);
    let burst = ledger(&platform).await;
    let payment_id = original["payment_id"].as_str().unwrap();
    let holds: Vec<_> = burst.authorisations.iter().filter(|a| a.reference == payment_id).collect();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].captured_fen, q2.legs.cash.amount);
    assert_eq!(burst.net_captured(), q1.legs.cash.amount.0 + q2.legs.cash.amount.0);
    println!("figures: 10 concurrent identical requests: 1 original, {in_progress} × 409 idempotency_in_progress, {replayed} replayed; money moved once");

    // Five keys racing for one quote: one payment, the rest quote_used.
    let third = platform.issue_bill(PATIENT, None).await;
    set_balance(&platform, &me.person_id, BALANCE).await;
    let q3 = quote(&platform, &me, &third.bill_id, CARD_OK).await;
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let key = format!("race-{i}");
            let body = serde_json::to_value(pay_request(&me, &q3, &key)).unwrap();
            let (url, token) = (url.clone(), me.token.clone());
            tokio::spawn(async move {
                http(&url, "POST", "/v1/payments", Some(&token), &[(wire::IDEMPOTENCY_HEADER, &key)], Some(&body))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let a = task.await.unwrap();
        if a.status != 200 {
            a.refused(409, "quote_used");
        }
        statuses.push(a.status);
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    assert_eq!(balance(&account(&platform, &me.person_id).await), BALANCE - q3.legs.insurance.personal_account.0);
    assert_eq!(ledger(&platform).await.authorisations.len(), 3);
}

/// A change made to a consent before it is signed.
type Tweak = fn(&mut Consent);

// ---- 4. tampering and scope -------------------------------------------------------------------

#[tokio::test]
async fn changed_amounts_forged_signatures_and_another_patients_quote_are_refused_and_move_nothing() {
    let (platform, me) = setup().await;
    let bill = platform.issue_bill(PATIENT, None).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_OK).await;
    let mut n = 0;
    let mut key = || {
        n += 1;
        format!("tamper-{n}")
    };

    // Any amount changed, even re-signed by the right device: the consent is not the quote's.
    let tweaks: [(&str, Tweak); 6] = [
        ("total", |c| c.total = Fen(c.total.0 + 1)),
        ("fund", |c| {
            c.fund = Fen(c.fund.0 + 100);
            c.cash = Fen(c.cash.0 - 100)
        }),
        ("personal_account", |c| {
            c.personal_account = Fen(c.personal_account.0 - 1);
            c.cash = Fen(c.cash.0 + 1)
        }),
        ("cash", |c| c.cash = Fen(c.cash.0 - 1)),
        ("channel", |c| c.channel = CARD_OK_TOO.into()),
        ("expiry", |c| c.expires_at_ms += 60_000),
    ];
    for (what, tweak) in tweaks {
        let k = key();
        let mut consent = q.consent(&k);
        tweak(&mut consent);
        let signature = consent.sign(&me.keys).unwrap();
        let answer = pay(&platform, &me, &k, &PayRequest::new(&consent, &signature)).await;
        assert_eq!((answer.status, answer.code().as_str()), (422, "consent_mismatch"), "{what}: {}", answer.text());
    }

    // Signed by another key; one byte of the right signature flipped; a short signature.
    let k = key();
    let (stranger, _) = SoftwareDeviceKey::generate().unwrap();
    let consent = q.consent(&k);
    let forged = PayRequest::new(&consent, &consent.sign(&stranger).unwrap());
    pay(&platform, &me, &k, &forged).await.refused(401, "signature_invalid");
    let k = key();
    let consent = q.consent(&k);
    let mut signature = consent.sign(&me.keys).unwrap();
    signature[10] ^= 0x01;
    pay(&platform, &me, &k, &PayRequest::new(&consent, &signature)).await.refused(401, "signature_invalid");
    let k = key();
    let consent = q.consent(&k);
    let good = consent.sign(&me.keys).unwrap();
    pay(&platform, &me, &k, &PayRequest::new(&consent, &good[..63])).await.refused(401, "signature_invalid");
    // The right signature under another key than it was made for.
    let k = key();
    let signed_for_other_key = q.consent("tamper-elsewhere").sign(&me.keys).unwrap();
    pay(&platform, &me, &k, &PayRequest::new(&q.consent(&k), &signed_for_other_key))
        .await
        .refused(401, "signature_invalid");
    // Not base64url at all.
    let k = key();
    let mut request = pay_request(&me, &q, &k);
    request.signature = "!!".into();
    pay(&platform, &me, &k, &request).await.refused(400, "invalid_request");

    // Another patient (李娜, P1004) with P1001's quote, bill and payment.
    let other = patient(&platform, OTHER_PATIENT).await;
    assert_eq!(other.person_id, "P1004");
    let other_before = account(&platform, &other.person_id).await;
    // P1001's consent as it is, signed by P1004's device, sent with P1004's session.
    let k = key();
    let consent = q.consent(&k);
    let as_is = PayRequest::new(&consent, &consent.sign(&other.keys).unwrap());
    pay(&platform, &other, &k, &as_is).await.refused(422, "consent_mismatch");
    // Rewritten to name P1004 as the actor and their device.
    let k = key();
    let mut consent = q.consent(&k);
    consent.actor = other.person_id.clone();
    consent.device_id = other.device_id.clone();
    let rewritten = PayRequest::new(&consent, &consent.sign(&other.keys).unwrap());
    pay(&platform, &other, &k, &rewritten).await.refused(422, "consent_mismatch");
    // Naming P1004 as the patient as well.
    let k = key();
    consent.idempotency_key = k.clone();
    consent.subject = other.person_id.clone();
    let as_subject = PayRequest::new(&consent, &consent.sign(&other.keys).unwrap());
    pay(&platform, &other, &k, &as_subject).await.refused(422, "consent_mismatch");
    // P1001's bill cannot be quoted by P1004.
    call(
        &platform,
        &other,
        "POST",
        &format!("/v1/bills/{}/quotes", bill.bill_id),
        None,
        Some(json!({"channel": CARD_OK})),
    )
    .await
    .refused(404, "not_found");

    // Nothing moved, and P1001's quote is still good.
    assert_eq!(balance(&account(&platform, &me.person_id).await), BALANCE);
    assert_eq!(account(&platform, &other.person_id).await, other_before);
    assert!(ledger(&platform).await.authorisations.is_empty());
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::Pending);
    let k = key();
    let payment: Payment = pay(&platform, &me, &k, &pay_request(&me, &q, &k)).await.ok();
    assert_eq!(payment.status, PaymentStatus::Succeeded);

    // P1004 cannot see it, confirm it, or pay its cash.
    let path = format!("/v1/payments/{}", payment.payment_id);
    call(&platform, &other, "GET", &path, None, None).await.refused(404, "not_found");
    call(&platform, &other, "POST", &format!("{path}/confirmation"), None, Some(json!({"code": "123456"})))
        .await
        .refused(404, "not_found");
    let cash = cash_due_request(&other, &payment, "tamper-cash", CARD_OK, payment.updated_at_ms);
    call(&platform, &other, "POST", &format!("{path}/cash"), Some("tamper-cash"), Some(cash))
        .await
        .refused(404, "not_found");
    // Nor replay P1001's key: keys are per person (a new request for P1004, refused as theirs).
    pay(&platform, &other, &k, &pay_request(&me, &q, &k)).await.refused(422, "consent_mismatch");
    assert_eq!(account(&platform, &other.person_id).await, other_before);
    assert_eq!(ledger(&platform).await.authorisations.len(), 1);
}

// ---- 5. expired and used quotes ----------------------------------------------------------------

#[tokio::test]
async fn an_expired_quote_is_gone_and_a_used_quote_is_not_paid_again_under_a_new_key() {
    let (platform, me) = setup().await;
    let bill = platform.issue_bill(PATIENT, None).await;
    let stale = quote(&platform, &me, &bill.bill_id, CARD_OK).await;
    assert_eq!(stale.expires_at_ms - stale.created_at_ms, 5 * 60 * 1000);
    platform.advance_clock(5 * 60 * 1000 + 1_000).await;
    pay(&platform, &me, "expired-1", &pay_request(&me, &stale, "expired-1")).await.refused(410, "quote_expired");
    assert_eq!(balance(&account(&platform, &me.person_id).await), BALANCE);
    assert!(ledger(&platform).await.authorisations.is_empty());
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::Pending);

    let fresh = quote(&platform, &me, &bill.bill_id, CARD_OK).await;
    let paid: Payment = pay(&platform, &me, "used-1", &pay_request(&me, &fresh, "used-1")).await.ok();
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    pay(&platform, &me, "used-2", &pay_request(&me, &fresh, "used-2")).await.refused(409, "quote_used");
    // The expired one stays expired (not "used").
    pay(&platform, &me, "expired-2", &pay_request(&me, &stale, "expired-2")).await.refused(410, "quote_expired");
    assert_eq!(balance(&account(&platform, &me.person_id).await), BALANCE - fresh.legs.insurance.personal_account.0);
    let ledger = ledger(&platform).await;
    assert_eq!(ledger.authorisations.len(), 1);
    assert_eq!(ledger.net_captured(), fresh.legs.cash.amount.0);
}

// ---- 6. declined at the hold -------------------------------------------------------------------

#[tokio::test]
async fn a_card_declined_at_the_hold_fails_the_payment_charges_nothing_and_the_bill_can_be_paid_again() {
    let (platform, me) = setup().await;
    let bill = platform.issue_bill(PATIENT, None).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_INSUFFICIENT).await;
    let failed: Payment = pay(&platform, &me, "declined-1", &pay_request(&me, &q, "declined-1")).await.ok();
    assert_eq!((failed.status, failed.step), (PaymentStatus::Failed, Step::Failed));
    assert_eq!((failed.insurance.state, failed.cash.state), (InsuranceLegState::Void, CashLegState::Declined));
    assert_eq!(failed.failure.as_ref().map(|f| f.code.as_str()), Some("insufficient_funds"));
    assert!(failed.receipts.is_empty());
    let untouched = account(&platform, &me.person_id).await;
    assert_eq!(balance(&untouched), BALANCE);
    assert_eq!(fund_paid(&untouched), 0);
    let l = ledger(&platform).await;
    assert_eq!(l.authorisations.len(), 1);
    assert_eq!((l.authorisations[0].status, l.net_captured()), (AuthStatus::Declined, 0));
    let shown = inbox_bill(&platform, &me, &bill.bill_id).await;
    assert_eq!(shown.state, BillState::Pending);
    assert_eq!(shown.payment.and_then(|p| p.failure).map(|f| f.code), Some("insufficient_funds".to_string()));

    let again = quote(&platform, &me, &bill.bill_id, CARD_OK).await;
    assert_eq!(again.settlement, q.settlement, "the same split: nothing was used");
    let paid: Payment = pay(&platform, &me, "declined-2", &pay_request(&me, &again, "declined-2")).await.ok();
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    let after = account(&platform, &me.person_id).await;
    assert_eq!(balance(&after), BALANCE - again.legs.insurance.personal_account.0);
    assert_eq!(fund_paid(&after), again.legs.insurance.fund.0);
    let l = ledger(&platform).await;
    assert_eq!(l.net_captured(), again.legs.cash.amount.0);
    assert_eq!(receipts(&platform, &paid).await.len(), 1);
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::Paid);
}

// ---- 7. declined at capture: the cash is still due ----------------------------------------------

#[tokio::test]
async fn a_card_declined_at_capture_leaves_the_cash_due_after_the_insurance_and_another_card_pays_it() {
    let (platform, me) = setup().await;
    let bill = platform.issue_bill(PATIENT, None).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_CAPTURE_DECLINED).await;
    let answer = pay(&platform, &me, "capture-1", &pay_request(&me, &q, "capture-1")).await;
    let due: Payment = answer.ok();
    assert_eq!((due.status, due.step), (PaymentStatus::CashDue, Step::CashDue));
    assert_eq!((due.insurance.state, due.cash.state), (InsuranceLegState::Settled, CashLegState::Due));
    assert_eq!(due.cash.due_fen, q.legs.cash.amount);
    assert_eq!(due.failure.as_ref().map(|f| f.code.as_str()), Some("card_declined"));
    let settled = account(&platform, &me.person_id).await;
    assert_eq!(balance(&settled), BALANCE - q.legs.insurance.personal_account.0, "the insurance settled");
    assert_eq!(fund_paid(&settled), q.legs.insurance.fund.0);
    let l = ledger(&platform).await;
    assert_eq!(l.authorisations.len(), 1);
    assert_eq!((l.authorisations[0].status, l.net_captured()), (AuthStatus::Released, 0), "the failed hold is freed");
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::CashDue);
    // The driver leaves it alone (it waits for the patient), and a quote is refused.
    drive(&platform).await;
    assert_eq!(get_payment(&platform, &me, &due.payment_id).await.step, Step::CashDue);
    call(
        &platform,
        &me,
        "POST",
        &format!("/v1/bills/{}/quotes", bill.bill_id),
        None,
        Some(json!({"channel": CARD_OK})),
    )
    .await
    .refused(409, "bill_not_payable");

    let path = format!("/v1/payments/{}/cash", due.payment_id);
    let now = answer.server_time_ms();
    // A wrong amount, then a card the bank also declines at capture (the cash stays due).
    let mut wrong = cash_due_request(&me, &due, "cash-0", CARD_OK, now);
    wrong["amount_fen"] = json!(due.cash.due_fen.0 - 1);
    call(&platform, &me, "POST", &path, Some("cash-0"), Some(wrong)).await.refused(422, "consent_mismatch");
    let still: Payment = call(
        &platform,
        &me,
        "POST",
        &path,
        Some("cash-1"),
        Some(cash_due_request(&me, &due, "cash-1", CARD_CAPTURE_DECLINED, now)),
    )
    .await
    .ok();
    assert_eq!((still.status, still.cash.due_fen), (PaymentStatus::CashDue, q.legs.cash.amount));
    // Another card pays it.
    let body = cash_due_request(&me, &due, "cash-2", CARD_OK, now);
    let paid_answer = call(&platform, &me, "POST", &path, Some("cash-2"), Some(body.clone())).await;
    let paid: Payment = paid_answer.ok();
    assert_eq!((paid.status, paid.step), (PaymentStatus::Succeeded, Step::Succeeded));
    assert_eq!(paid.cash.due_fen, Fen::ZERO);
    let replay = call(&platform, &me, "POST", &path, Some("cash-2"), Some(body)).await;
    assert!(replay.replayed());
    assert_eq!(replay.value(), paid_answer.value());

    let after = account(&platform, &me.person_id).await;
    assert_eq!(after, settled, "the insurance settled exactly once");
    let l = ledger(&platform).await;
    assert_eq!(l.authorisations.len(), 3, "{l:?}");
    assert_eq!(l.authorisations.iter().filter(|a| a.status == AuthStatus::Captured).count(), 1);
    assert_eq!(l.net_captured(), q.legs.cash.amount.0);
    let receipts = receipts(&platform, &paid).await;
    assert_eq!(receipts.len(), 1);
    assert_amounts(&receipts[0], &q);
    assert_eq!(receipts[0].channel, "card ····4242", "the receipt names the card that paid");
    assert_eq!(paid.cash.channel, "card ····4242");
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::Paid);
}

// ---- 8. the hold's answer comes too late ---------------------------------------------------------

#[tokio::test]
async fn a_hold_whose_answer_comes_too_late_is_processing_first_then_resolved_by_the_driver() {
    let (platform, me) = setup().await;
    // …0119: the hold did succeed.
    let bill = platform.issue_bill(PATIENT, None).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_LATE_OK).await;
    let request = pay_request(&me, &q, "late-1");
    let first: Payment = pay(&platform, &me, "late-1", &request).await.ok();
    assert_eq!(
        (first.status, first.step, first.cash.state),
        (PaymentStatus::Processing, Step::Unknown, CashLegState::Unknown)
    );
    assert_eq!(first.insurance.state, InsuranceLegState::Pending);
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::Paying);
    let done = settle_down(&platform, &me, &first.payment_id).await;
    assert_eq!(done.status, PaymentStatus::Succeeded);
    let after = account(&platform, &me.person_id).await;
    assert_eq!(balance(&after), BALANCE - q.legs.insurance.personal_account.0);
    assert_eq!(fund_paid(&after), q.legs.insurance.fund.0);
    let l = ledger(&platform).await;
    assert_eq!(l.authorisations.len(), 1);
    assert_eq!(l.net_captured(), q.legs.cash.amount.0);
    assert_eq!(receipts(&platform, &done).await.len(), 1);
    // The key's answer is the first one (processing), replayed; the payment itself says the outcome.
    let replay = pay(&platform, &me, "late-1", &request).await;
    assert!(replay.replayed());
    assert_eq!(replay.json::<Payment>(), first);
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::Paid);

    // …0127: the hold failed.
    set_balance(&platform, &me.person_id, BALANCE).await;
    let before = account(&platform, &me.person_id).await;
    let bill = platform.issue_bill(PATIENT, None).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_LATE_FAILS).await;
    let first: Payment = pay(&platform, &me, "late-2", &pay_request(&me, &q, "late-2")).await.ok();
    assert_eq!((first.status, first.step), (PaymentStatus::Processing, Step::Unknown));
    let done = settle_down(&platform, &me, &first.payment_id).await;
    assert_eq!(done.status, PaymentStatus::Failed);
    assert_eq!(done.failure.as_ref().map(|f| f.code.as_str()), Some("processing_error"));
    assert_eq!(done.insurance.state, InsuranceLegState::Void);
    assert_eq!(account(&platform, &me.person_id).await, before, "nothing settled");
    let l = ledger(&platform).await;
    assert_eq!(l.authorisations.len(), 2);
    assert_eq!(l.net_captured(), ledger_cash_of_first(&l, &done.payment_id), "nothing more captured");
    assert!(done.receipts.is_empty());
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::Pending);
}

/// What the ledger captured for payments other than `failed_payment` (and 0 for it).
fn ledger_cash_of_first(l: &Ledger, failed_payment: &str) -> i64 {
    let failed: Vec<_> = l.authorisations.iter().filter(|a| a.reference == failed_payment).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].status, failed[0].captured_fen), (AuthStatus::Declined, Fen::ZERO));
    l.authorisations.iter().filter(|a| a.reference != failed_payment).map(|a| a.captured_fen.0 - a.refunded_fen.0).sum()
}

// ---- 9. the bank's second confirmation -----------------------------------------------------------

#[tokio::test]
async fn a_card_that_needs_a_code_waits_for_it_fails_after_three_wrong_ones_and_succeeds_with_the_right_one() {
    let (platform, me) = setup().await;
    let bill = platform.issue_bill(PATIENT, None).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_CONFIRM).await;
    let waiting: Payment = pay(&platform, &me, "confirm-1", &pay_request(&me, &q, "confirm-1")).await.ok();
    assert_eq!((waiting.status, waiting.cash.state), (PaymentStatus::RequiresAction, CashLegState::RequiresAction));
    assert_eq!(waiting.action.as_ref().map(|a| a.kind.as_str()), Some("confirm_code"));
    let confirm_path = format!("/v1/payments/{}/confirmation", waiting.payment_id);
    call(&platform, &me, "POST", &confirm_path, None, Some(json!({"code": "12x456"})))
        .await
        .refused(400, "invalid_request");
    for attempt in 1..=3 {
        let p: Payment = call(&platform, &me, "POST", &confirm_path, None, Some(json!({"code": "000000"}))).await.ok();
        let expected = if attempt < 3 { PaymentStatus::RequiresAction } else { PaymentStatus::Failed };
        assert_eq!(p.status, expected, "after wrong code {attempt}");
    }
    let failed = get_payment(&platform, &me, &waiting.payment_id).await;
    assert_eq!(failed.failure.as_ref().map(|f| f.code.as_str()), Some("authentication_failed"));
    // The right code after that changes nothing.
    let p: Payment = call(&platform, &me, "POST", &confirm_path, None, Some(json!({"code": "123456"}))).await.ok();
    assert_eq!(p.status, PaymentStatus::Failed);
    assert_eq!(balance(&account(&platform, &me.person_id).await), BALANCE);
    assert_eq!(ledger(&platform).await.net_captured(), 0);
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::Pending);

    // Again, with the right code.
    let q = quote(&platform, &me, &bill.bill_id, CARD_CONFIRM).await;
    let waiting: Payment = pay(&platform, &me, "confirm-2", &pay_request(&me, &q, "confirm-2")).await.ok();
    assert_eq!(waiting.status, PaymentStatus::RequiresAction);
    assert_eq!(balance(&account(&platform, &me.person_id).await), BALANCE, "nothing settled while waiting");
    let confirm_path = format!("/v1/payments/{}/confirmation", waiting.payment_id);
    let wrong: Payment = call(&platform, &me, "POST", &confirm_path, None, Some(json!({"code": "654321"}))).await.ok();
    assert_eq!(wrong.status, PaymentStatus::RequiresAction);
    let paid: Payment = call(&platform, &me, "POST", &confirm_path, None, Some(json!({"code": "123456"}))).await.ok();
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    let again: Payment = call(&platform, &me, "POST", &confirm_path, None, Some(json!({"code": "123456"}))).await.ok();
    assert_eq!(again, paid, "confirming a paid payment changes nothing");
    assert_eq!(balance(&account(&platform, &me.person_id).await), BALANCE - q.legs.insurance.personal_account.0);
    let l = ledger(&platform).await;
    assert_eq!(l.authorisations.len(), 2);
    assert_eq!(l.net_captured(), q.legs.cash.amount.0);
    let receipts = receipts(&platform, &paid).await;
    assert_eq!(receipts.len(), 1);
    assert_amounts(&receipts[0], &q);

    // A code never given in time: the driver fails it after ten minutes, nothing charged.
    let bill = platform.issue_bill(PATIENT, None).await;
    let before = account(&platform, &me.person_id).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_CONFIRM).await;
    let waiting: Payment = pay(&platform, &me, "confirm-3", &pay_request(&me, &q, "confirm-3")).await.ok();
    assert_eq!(waiting.status, PaymentStatus::RequiresAction);
    platform.advance_clock(10 * 60 * 1000 + 1_000).await;
    drive(&platform).await;
    let timed_out = get_payment(&platform, &me, &waiting.payment_id).await;
    assert_eq!(timed_out.status, PaymentStatus::Failed);
    assert_eq!(timed_out.failure.as_ref().map(|f| f.code.as_str()), Some("action_timeout"));
    assert_eq!(account(&platform, &me.person_id).await, before);
    let l = ledger(&platform).await;
    assert_eq!(l.net_captured(), receipts[0].cash.0, "only the confirmed payment's cash");
    assert!(l.open_holds().is_empty());
}

// ---- 10. refunds ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_partial_refund_then_the_rest_restore_every_source_exactly_with_write_off_receipts() {
    let (platform, me) = setup().await;
    let before = account(&platform, &me.person_id).await;
    let bill = platform.issue_bill(PATIENT, None).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_OK).await;
    let paid: Payment = pay(&platform, &me, "refund-1", &pay_request(&me, &q, "refund-1")).await.ok();
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    let refunds = format!("/admin/v1/bills/{}/refunds", bill.bill_id);
    // Lines 5 (4 units) and 0 (1 unit): return two of line 5 and line 0.
    assert_eq!((bill.items[5].quantity, bill.items[0].quantity), (4, 1));
    let partial_body = json!({
        "refund_id": "R-1",
        "lines": [{"line": 5, "quantity": 2}, {"line": 0, "quantity": 1}],
        "reason": "two boxes returned, consultation cancelled",
    });
    let partial: Refund = admin(&platform, "POST", &refunds, Some(partial_body.clone())).await.ok();
    assert_eq!(partial.status, RefundStatus::Succeeded);
    assert_eq!(partial.split.total, Fen(bill.items[5].unit_price_fen.0 * 2 + bill.items[0].unit_price_fen.0));
    assert_eq!(
        partial.split.fund.0 + partial.split.personal_account.0 + partial.split.mutual_aid.0 + partial.split.cash.0,
        partial.split.total.0
    );
    assert_eq!(partial.receipts.len(), 2, "the write-off and the new receipt");
    let mid = get_payment(&platform, &me, &paid.payment_id).await;
    assert_eq!(mid.status, PaymentStatus::PartlyRefunded);
    assert_eq!(mid.refunded_fen, partial.split.total);
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::PartlyRefunded);
    let mid_account = account(&platform, &me.person_id).await;
    assert_eq!(balance(&mid_account), BALANCE - q.legs.insurance.personal_account.0 + partial.split.personal_account.0);

    // The same refund id again: the same refund, nothing moves; with another body: refused.
    let replay: Refund = admin(&platform, "POST", &refunds, Some(partial_body.clone())).await.ok();
    assert_eq!(replay, partial);
    let mut other_body = partial_body.clone();
    other_body["lines"] = json!([{"line": 1, "quantity": 1}]);
    admin(&platform, "POST", &refunds, Some(other_body)).await.refused(422, "idempotency_key_reused");
    assert_eq!(account(&platform, &me.person_id).await, mid_account);
    assert_eq!(ledger(&platform).await.refunds.len(), 1);
    // More than is left of a line: refused.
    admin(
        &platform,
        "POST",
        &refunds,
        Some(json!({"refund_id": "R-x", "lines": [{"line": 5, "quantity": 3}], "reason": "too many"})),
    )
    .await
    .refused(409, "conflict");

    // The rest.
    let rest: Refund =
        admin(&platform, "POST", &refunds, Some(json!({"refund_id": "R-2", "reason": "visit cancelled"}))).await.ok();
    assert_eq!(rest.status, RefundStatus::Succeeded);
    assert_eq!(rest.receipts.len(), 1, "only the write-off");
    let s = &q.settlement;
    for (what, a, b, whole) in [
        ("total", partial.split.total, rest.split.total, s.total),
        ("fund", partial.split.fund, rest.split.fund, s.fund),
        ("personal_account", partial.split.personal_account, rest.split.personal_account, s.personal_account),
        ("mutual_aid", partial.split.mutual_aid, rest.split.mutual_aid, s.mutual_aid),
        ("cash", partial.split.cash, rest.split.cash, s.cash),
        ("deductible", partial.split.deductible, rest.split.deductible, s.deductible_applied),
    ] {
        assert_eq!(a.0 + b.0, whole.0, "the two refunds give back the whole {what}");
    }
    let after = account(&platform, &me.person_id).await;
    assert_eq!(balance(&after), balance(&before), "the account is back");
    assert_eq!(
        (fund_paid(&after), deductible_paid(&after)),
        (fund_paid(&before), deductible_paid(&before)),
        "the accumulators are back"
    );
    let l = ledger(&platform).await;
    assert_eq!(l.refunds.len(), 2);
    assert_eq!(l.refunds.iter().map(|r| r.amount_fen.0).sum::<i64>(), s.cash.0);
    assert_eq!(l.net_captured(), 0);

    let done = get_payment(&platform, &me, &paid.payment_id).await;
    assert_eq!((done.status, done.refunded_fen), (PaymentStatus::Refunded, s.total));
    assert_eq!(inbox_bill(&platform, &me, &bill.bill_id).await.state, BillState::Refunded);
    let all = receipts(&platform, &done).await;
    let kinds: Vec<ReceiptKind> = all.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, vec![ReceiptKind::Original, ReceiptKind::WriteOff, ReceiptKind::Original, ReceiptKind::WriteOff]);
    assert_eq!(all[1].writes_off, Some(all[0].reference()), "the first write-off cancels the first receipt");
    assert_eq!(all[3].writes_off, Some(all[2].reference()), "the second cancels the re-issued one");
    assert_eq!(all[2].total.0, s.total.0 - partial.split.total.0);
    assert_eq!((all[1].total, all[3].total), (all[0].total, all[2].total));
    let numbers: std::collections::HashSet<_> = all.iter().map(|r| r.receipt_number.clone()).collect();
    assert_eq!(numbers.len(), 4, "every receipt has its own number");
    // Replaying either refund now changes nothing; a third refund finds nothing to give back.
    assert_eq!(admin(&platform, "POST", &refunds, Some(partial_body)).await.ok::<Refund>(), partial);
    let again: Refund =
        admin(&platform, "POST", &refunds, Some(json!({"refund_id": "R-2", "reason": "visit cancelled"}))).await.ok();
    assert_eq!(again, rest);
    admin(&platform, "POST", &refunds, Some(json!({"refund_id": "R-3", "reason": "again"})))
        .await
        .refused(409, "conflict");
    assert_eq!(account(&platform, &me.person_id).await, after);
    assert_eq!(ledger(&platform).await, l);
    println!(
        "figures: refund {} fen in two parts: fund {} + account {} + cash {} back; 4 receipts (2 write-offs)",
        s.total.0, s.fund.0, s.personal_account.0, s.cash.0
    );
}

// ---- 11. abuse ----------------------------------------------------------------------------------

// ---- limits on abuse ----------------------------------------------------------------------------

/// Card testing: many payment requests under new keys. After 30 in an hour the platform
/// answers 429 with Retry-After before doing anything; a key it has done is still answered;
/// an hour later the patient pays.
#[tokio::test]
async fn payment_requests_are_limited_per_hour_before_anything_is_done_and_a_done_key_is_still_answered() {
    let (platform, me) = setup().await;
    let bill = platform.issue_bill(PATIENT, None).await;
    let q = quote(&platform, &me, &bill.bill_id, CARD_OK).await;
    let first_request = pay_request(&me, &q, "limit-first");
    let first: Payment = pay(&platform, &me, "limit-first", &first_request).await.ok();
    assert_eq!(first.status, PaymentStatus::Succeeded);

    let other = platform.issue_bill(PATIENT, None).await;
    let q2 = quote(&platform, &me, &other.bill_id, CARD_INSUFFICIENT).await;
    // 29 more requests (30 in all), each under a new key, for quotes that do not exist.
    for i in 0..29 {
        let key = format!("limit-probe-{i}");
        let mut probe = pay_request(&me, &q2, &key);
        probe.quote_id = format!("quote_probe_{i}");
        pay(&platform, &me, &key, &probe).await.refused(404, "not_found");
    }
    let limited = pay(&platform, &me, "limit-over", &pay_request(&me, &q2, "limit-over")).await;
    limited.refused(429, "rate_limited");
    let retry_after: i64 = limited.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    // Nothing was done: the bill is pending, nothing held or charged for it.
    assert_eq!(inbox_bill(&platform, &me, &other.bill_id).await.state, BillState::Pending);
    assert_eq!(ledger(&platform).await.authorisations.len(), 1, "only the first payment's hold");
    assert_eq!(balance(&account(&platform, &me.person_id).await), BALANCE - q.legs.insurance.personal_account.0);

    // The phone hears a refusal, not an unknown outcome: nothing waits to be re-sent.
    let options = carepass_core::QuoteOptions {
        use_account: true,
        channel: carepass_core::domain::payment::Channel::parse(CARD_OK).expect("a channel"),
        mutual_aid: false,
    };
    let phone_quote = me._app.quote(&other.bill_id, &options, None).await.expect("quotes");
    match me._app.pay(&phone_quote.quote_id, None).await {
        Err(carepass_core::CoreError::Net(carepass_core::io::net::NetError::Platform { status: 429, .. })) => {}
        other => panic!("expected 429, got {other:?}"),
    }
    assert_eq!(me._app.payments_unresolved().unwrap(), 0);

    // The done key is answered from its record, never limited.
    let again = pay(&platform, &me, "limit-first", &first_request).await;
    assert!(again.replayed());
    assert_eq!(again.ok::<Payment>().payment_id, first.payment_id);

    // An hour later (the phone refreshes its session by itself) the patient pays.
    platform.advance_clock(60 * 60 * 1000).await;
    let fresh = me._app.quote(&other.bill_id, &options, None).await.expect("quotes");
    let paid = me._app.pay(&fresh.quote_id, None).await.expect("pays");
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    println!(
        "figures: 30 payment requests an hour, the 31st answered 429 (Retry-After {retry_after} s), 0 fen moved by it"
    );
}

/// Quotes run the settlement against live balances: 30 a minute per person, then 429.
#[tokio::test]
async fn quotes_are_limited_per_minute() {
    let (platform, me) = setup().await;
    let bill = platform.issue_bill(PATIENT, None).await;
    for _ in 0..30 {
        quote(&platform, &me, &bill.bill_id, CARD_OK).await;
    }
    let body = json!({ "use_account": true, "channel": CARD_OK });
    let path = format!("/v1/bills/{}/quotes", bill.bill_id);
    let limited = call(&platform, &me, "POST", &path, None, Some(body.clone())).await;
    limited.refused(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    platform.advance_clock(60 * 1000).await;
    call(&platform, &me, "POST", &path, None, Some(body)).await.ok::<Quote>();
}

// ---- credit pay-later -----------------------------------------------------------------------------

/// The agreement is signed by the device; a bill paid on credit becomes a draw due in 30
/// days; more than the line is refused; a repayment charges the card once, and its resend —
/// even once nothing is owed any more — is answered, never charged again; the key with another
/// amount is refused.
#[tokio::test]
async fn credit_is_signed_drawn_within_its_limit_and_repaid_exactly_once() {
    let (platform, me) = setup().await;
    set_balance(&platform, &me.person_id, 0).await;
    let app = &me._app;
    let none = app.credit_line().await.expect("a line");
    assert!(!none.signed);
    // A signing time at the ends of the integer range is not now: refused, nothing signed.
    for signed_at_ms in [i64::MIN, i64::MAX] {
        let agreement =
            json!({ "limit_fen": 100_000, "term_days": 30, "signed_at_ms": signed_at_ms, "signature": "AAAA" });
        call(&platform, &me, "POST", "/v1/credit/agreement", None, Some(agreement))
            .await
            .refused(400, "invalid_request");
    }
    assert!(!app.credit_line().await.expect("a line").signed);
    let bill = platform.issue_bill(PATIENT, None).await;
    // No agreement: a credit quote is refused.
    let path = format!("/v1/bills/{}/quotes", bill.bill_id);
    let body = json!({ "use_account": true, "channel": "credit" });
    call(&platform, &me, "POST", &path, None, Some(body.clone())).await.refused(409, "credit_limit_exceeded");
    // A line too small for the bill's cash part: refused too.
    let cash = quote(&platform, &me, &bill.bill_id, CARD_OK).await.legs.cash.amount;
    app.sign_credit_agreement(Fen(cash.0 - 1)).await.expect("signs");
    call(&platform, &me, "POST", &path, None, Some(body.clone())).await.refused(409, "credit_limit_exceeded");
    let line = app.sign_credit_agreement(Fen(100_000)).await.expect("signs again, higher");
    assert_eq!((line.signed, line.limit_fen, line.used_fen), (true, Fen(100_000), Fen(0)));

    let options = carepass_core::QuoteOptions {
        use_account: true,
        channel: carepass_core::domain::payment::Channel::parse("credit").unwrap(),
        mutual_aid: false,
    };
    let q = app.quote(&bill.bill_id, &options, None).await.expect("quotes on credit");
    let paid = app.pay(&q.quote_id, None).await.expect("pays");
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    let line = app.credit_line().await.unwrap();
    assert_eq!(line.used_fen, cash);
    assert_eq!(line.available_fen, Fen(100_000 - cash.0));
    assert_eq!(line.draws.len(), 1);
    assert_eq!(line.draws[0].due_at_ms - line.draws[0].drawn_at_ms, 30 * 24 * 60 * 60 * 1000);
    assert!(ledger(&platform).await.authorisations.is_empty(), "credit charges no card");

    // Repay all of it under one key, then resend that key: answered, charged once.
    let repay = json!({ "channel": CARD_OK, "amount_fen": cash.0 });
    let first = call(&platform, &me, "POST", "/v1/credit/repayments", Some("repay-all-1"), Some(repay.clone())).await;
    assert_eq!(first.value()["used_fen"], 0, "{}", first.text());
    let again = call(&platform, &me, "POST", "/v1/credit/repayments", Some("repay-all-1"), Some(repay)).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.value()["used_fen"], 0);
    let other = json!({ "channel": CARD_OK, "amount_fen": 1 });
    call(&platform, &me, "POST", "/v1/credit/repayments", Some("repay-all-1"), Some(other.clone()))
        .await
        .refused(422, "idempotency_key_reused");
    // Nothing is owed: a new repayment is refused, and nothing more is charged.
    call(&platform, &me, "POST", "/v1/credit/repayments", Some("repay-more"), Some(other))
        .await
        .refused(409, "conflict");
    let l = ledger(&platform).await;
    assert_eq!((l.authorisations.len(), l.net_captured()), (1, cash.0));
    // The phone's own repayment path refuses what is not a card before sending anything.
    let credit = carepass_core::domain::payment::Channel::parse("credit").unwrap();
    assert!(matches!(app.repay_credit(&credit, Fen(1)).await, Err(carepass_core::CoreError::InvalidInput(_))));
}
