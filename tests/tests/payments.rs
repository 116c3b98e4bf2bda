//! Mixed-payment journeys through the core, over loopback against the sandbox and its card
//! channel: a bill paid from the pooled fund, the personal account and a card in one
//! confirmation with a receipt the phone verifies; a declined card and a card declined at
//! capture (the cash still due paid with another card); the bank's second confirmation; and
//! the phone losing the answer (its request times out while the platform works on): the
//! outcome is unknown, the same request is sent again, and the bill is paid exactly once.

use std::sync::Arc;
use std::time::Duration;

use carepass_core::domain::payment::{Channel, PaymentStatus, Step};
use carepass_core::io::net::ClientOptions;
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::{BillState, Payment, PlatformCode};
use carepass_core::{CarePass, CoreError, Fen, QuoteOptions, SystemClock};
use carepass_journeys::*;

const CARD_OK: &str = "4242424242424242";
const CARD_INSUFFICIENT: &str = "4000000000009995";
const CARD_DECLINED_AT_CAPTURE: &str = "4000000000000341";
const CARD_LATE_SUCCEEDS: &str = "4000000000000119";
const CARD_NEEDS_CODE: &str = "4000000000003220";

async fn balance(platform: &TestPlatform, person: &str) -> Fen {
    let a: serde_json::Value =
        platform.admin().get(&format!("admin/v1/accounts/{person}"), Some(ADMIN_TOKEN)).await.expect("account");
    Fen(a["account_balance_fen"].as_i64().expect("a balance"))
}

async fn set_balance(platform: &TestPlatform, person: &str, fen: Fen) {
    let _: serde_json::Value = platform
        .admin()
        .post(&format!("admin/v1/accounts/{person}"), &serde_json::json!({ "balance_fen": fen.0 }), Some(ADMIN_TOKEN))
        .await
        .expect("balance set");
}

async fn patient(platform: &TestPlatform, dir: &std::path::Path, client: ClientOptions) -> Arc<CarePass> {
    let app = phone_with(&platform.url(), dir, &MemorySecretStore::new(), Arc::new(SystemClock), client).unwrap();
    app.enrol(PATIENT, CODE).await.unwrap();
    app
}

fn card(number: &str) -> QuoteOptions {
    QuoteOptions { use_account: true, channel: Channel::parse(&format!("card:{number}")).unwrap(), mutual_aid: false }
}

/// Polls the payment until it leaves `processing`.
async fn settled(app: &CarePass, payment_id: &str) -> Payment {
    for _ in 0..200 {
        let p = app.payment(payment_id, None).await.unwrap();
        if p.status != PaymentStatus::Processing {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("payment {payment_id} stayed processing");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_confirmation_pays_from_fund_account_and_card_with_a_receipt_the_phone_verifies() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), ClientOptions::default()).await;
    let bill = platform.issue_bill(PATIENT, None).await;
    // A small personal account, so all three sources pay.
    set_balance(&platform, "P1001", Fen(5_000)).await;
    let before = balance(&platform, "P1001").await;

    let quote = app.quote(&bill.bill_id, &card(CARD_OK), None).await.unwrap();
    let legs = &quote.legs;
    assert!(legs.insurance.fund.0 > 0 && legs.insurance.personal_account.0 > 0 && legs.cash.amount.0 > 0, "{legs:?}");
    assert_eq!(
        legs.insurance.fund.0 + legs.insurance.personal_account.0 + legs.insurance.mutual_aid.0 + legs.cash.amount.0,
        bill.total_fen.0
    );

    let payment = app.pay(&quote.quote_id, None).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Succeeded, "{payment:?}");
    assert_eq!(payment.step, Step::Succeeded);
    assert_eq!(payment.total_fen, bill.total_fen);
    assert_eq!(balance(&platform, "P1001").await.0, before.0 - legs.insurance.personal_account.0);

    // The receipt verifies on the phone, and its amounts are the quote's.
    let receipts = app.receipts(None).await.unwrap();
    assert_eq!(receipts.len(), 1);
    let r = &receipts[0].receipt;
    assert_eq!(
        (r.total, r.fund, r.personal_account, r.cash),
        (bill.total_fen, legs.insurance.fund, legs.insurance.personal_account, legs.cash.amount)
    );
    // A tampered receipt does not.
    let mut forged = receipts[0].signed.clone();
    let mut body = base64_decode(&forged.body);
    let text = String::from_utf8(body.clone()).unwrap().replacen(
        &format!("\"total\":{}", r.total.0),
        &format!("\"total\":{}", r.total.0 - 100),
        1,
    );
    assert_ne!(text.as_bytes(), body.as_slice(), "the total was found in the body");
    body = text.into_bytes();
    forged.body = base64_encode(&body);
    assert!(matches!(app.verify_receipt(&forged).await, Err(CoreError::Receipt(_))));

    // The bill is paid on the phone once the inbox syncs; the quote cannot be paid again.
    app.sync_inbox().await.unwrap();
    assert_eq!(app.bills(None).unwrap()[0].state, BillState::Paid);
    let again = app.pay(&quote.quote_id, None).await.unwrap_err();
    assert!(matches!(&again, CoreError::Net(e) if e.platform_code() == Some(PlatformCode::QuoteUsed)), "{again:?}");
    assert_eq!(balance(&platform, "P1001").await.0, before.0 - legs.insurance.personal_account.0, "charged once");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_card_charges_nothing_and_the_bill_can_be_paid_with_another() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), ClientOptions::default()).await;
    let bill = platform.issue_bill(PATIENT, None).await;
    set_balance(&platform, "P1001", Fen(5_000)).await;
    let before = balance(&platform, "P1001").await;

    let quote = app.quote(&bill.bill_id, &card(CARD_INSUFFICIENT), None).await.unwrap();
    let failed = app.pay(&quote.quote_id, None).await.unwrap();
    assert_eq!(failed.status, PaymentStatus::Failed, "{failed:?}");
    assert_eq!(failed.failure.as_ref().map(|f| f.code.as_str()), Some("insufficient_funds"));
    assert!(failed.receipts.is_empty());
    assert_eq!(balance(&platform, "P1001").await, before, "nothing settled");

    let quote = app.quote(&bill.bill_id, &card(CARD_OK), None).await.unwrap();
    let paid = app.pay(&quote.quote_id, None).await.unwrap();
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    assert_eq!(balance(&platform, "P1001").await.0, before.0 - quote.legs.insurance.personal_account.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_card_declined_at_capture_leaves_the_cash_due_and_another_card_pays_it() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), ClientOptions::default()).await;
    let bill = platform.issue_bill(PATIENT, None).await;
    set_balance(&platform, "P1001", Fen(5_000)).await;
    let before = balance(&platform, "P1001").await;

    let quote = app.quote(&bill.bill_id, &card(CARD_DECLINED_AT_CAPTURE), None).await.unwrap();
    let due = app.pay(&quote.quote_id, None).await.unwrap();
    assert_eq!(due.status, PaymentStatus::CashDue, "{due:?}");
    assert_eq!(due.cash.due_fen, quote.legs.cash.amount);
    let account_after_pivot = balance(&platform, "P1001").await;
    assert_eq!(account_after_pivot.0, before.0 - quote.legs.insurance.personal_account.0, "the insurance settled");

    // A new quote for the bill is refused while cash is due; the due cash is paid with a card.
    assert!(app.quote(&bill.bill_id, &card(CARD_OK), None).await.is_err());
    let bad = app.pay_cash_due(&due.payment_id, &Channel::Credit, None).await.unwrap_err();
    assert!(matches!(bad, CoreError::InvalidInput(_)), "{bad:?}");
    let paid =
        app.pay_cash_due(&due.payment_id, &Channel::parse(&format!("card:{CARD_OK}")).unwrap(), None).await.unwrap();
    assert_eq!(paid.status, PaymentStatus::Succeeded, "{paid:?}");
    assert_eq!(balance(&platform, "P1001").await, account_after_pivot, "the insurance settled once");
    let receipts = app.receipts(None).await.unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].receipt.total, bill.total_fen);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_banks_second_confirmation_completes_the_payment() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), ClientOptions::default()).await;
    let bill = platform.issue_bill(PATIENT, None).await;
    set_balance(&platform, "P1001", Fen(5_000)).await;

    let quote = app.quote(&bill.bill_id, &card(CARD_NEEDS_CODE), None).await.unwrap();
    let waiting = app.pay(&quote.quote_id, None).await.unwrap();
    assert_eq!(waiting.status, PaymentStatus::RequiresAction, "{waiting:?}");
    assert!(waiting.action.is_some());
    let bad = app.confirm_payment(&waiting.payment_id, "12ab", None).await.unwrap_err();
    assert!(matches!(bad, CoreError::InvalidInput(_)));
    let still = app.confirm_payment(&waiting.payment_id, "000000", None).await.unwrap();
    assert_eq!(still.status, PaymentStatus::RequiresAction, "one wrong code leaves tries");
    let paid = app.confirm_payment(&waiting.payment_id, "123456", None).await.unwrap();
    assert_eq!(paid.status, PaymentStatus::Succeeded, "{paid:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_answer_is_resolved_by_sending_the_same_request_and_the_bill_is_paid_once() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The phone gives up long before the platform hears back from the slow card.
    let impatient = ClientOptions { timeout: Duration::from_millis(300), ..ClientOptions::default() };
    let app = patient(&platform, dir.path(), impatient).await;
    let bill = platform.issue_bill(PATIENT, None).await;
    set_balance(&platform, "P1001", Fen(5_000)).await;
    let before = balance(&platform, "P1001").await;

    let quote = app.quote(&bill.bill_id, &card(CARD_LATE_SUCCEEDS), None).await.unwrap();
    let lost = app.pay(&quote.quote_id, None).await.unwrap_err();
    assert!(matches!(&lost, CoreError::PaymentOutcomeUnknown { bill_id } if *bill_id == bill.bill_id), "{lost:?}");
    assert_eq!(app.payments_unresolved().unwrap(), 1);

    // No second payment of the bill starts: the platform shows it paying (no quote), or the
    // phone refuses while the first one's outcome is unknown.
    let second = async {
        let q = app.quote(&bill.bill_id, &card(CARD_OK), None).await?;
        app.pay(&q.quote_id, None).await
    }
    .await;
    assert!(second.is_err(), "{second:?}");

    // The same request, sent again until answered, resolves it (the second attempt above
    // may already have: a quote sends an unanswered request of its bill again first).
    for _ in 0..100 {
        if app.payments_unresolved().unwrap() == 0 {
            break;
        }
        app.resume_payments().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.payments_unresolved().unwrap(), 0);
    let kept = app.payments(None).unwrap();
    assert_eq!(kept.len(), 1, "one payment for the bill: {kept:?}");
    let first = kept.into_iter().next().expect("an answer");
    let done = settled(&app, &first.payment_id).await;
    assert_eq!(done.status, PaymentStatus::Succeeded, "{done:?}");
    assert_eq!(balance(&platform, "P1001").await.0, before.0 - quote.legs.insurance.personal_account.0, "once");
    app.sync_inbox().await.unwrap();
    assert_eq!(app.bills(None).unwrap()[0].state, BillState::Paid);
}
