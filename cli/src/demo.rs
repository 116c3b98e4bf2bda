//! `carepass demo`: the journey a newcomer runs first. It starts a sandbox platform on a free
//! loopback port with a temporary data dir (unless `--server` is given), then drives the core
//! through every step built so far, saying in plain words what happens and checking each
//! outcome. Exits non-zero at the first step that does not do what it says.

use std::net::SocketAddr;
use std::path::PathBuf;

use carepass_sandbox::{start, SandboxConfig};

use carepass_core::domain::voucher::render::to_terminal;
use carepass_core::domain::voucher::Purpose;

use crate::voucher::{describe_outcome, scan};
use crate::{describe, explain, open_at};

const PATIENT: &str = "13800000001";
const SANDBOX_CODE: &str = "123456";

/// Runs the journey. It never touches the user's phone data, config or server: the phone
/// lives in a temporary directory (its data key too), and the platform is an embedded
/// sandbox unless `server` is given on the demo's own command line (`CAREPASS_*` variables
/// are ignored).
pub async fn run(server: Option<String>, scanner_token: Option<String>) -> Result<(), String> {
    let scratch = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
    let phone_dir = scratch.path().join("phone");
    let config_dir = scratch.path().join("config");

    say("CarePass demo: a patient's insurance app, run for real against a platform on this machine.");
    let (sandbox, url, scanner_token) = match server {
        Some(url) => {
            say(&format!("Using the platform at {url}, with a temporary phone (your own data is not touched)."));
            (None, url, scanner_token)
        }
        None => {
            let listen: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "bad listen address")?;
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            let token = format!("demo-scanner-{}-{nanos}", std::process::id());
            let config = SandboxConfig {
                data_dir: scratch.path().join("platform"),
                demo_seed: true,
                admin_token: Some(token.clone()),
                durability: Default::default(),
                channel: Default::default(),
            };
            let sandbox = start(listen, config).await.map_err(|e| format!("the sandbox did not start: {e}"))?;
            let url = sandbox.url();
            step(1, &format!("Started the sandbox platform at {url} with the demo city seeded (docs/sandbox.md)."));
            (Some(sandbox), url, Some(token))
        }
    };

    let outcome = journey(&url, phone_dir, &config_dir, scanner_token.as_deref()).await;
    if let Some(sandbox) = sandbox {
        sandbox.stop().await;
    }
    outcome?;
    say("Demo finished: every step did what it said.");
    Ok(())
}

async fn journey(
    url: &str,
    phone_dir: PathBuf,
    config_dir: &std::path::Path,
    scanner_token: Option<&str>,
) -> Result<(), String> {
    let app = open_at(url, phone_dir.clone(), config_dir)?;
    let expires = app.request_verification_code(PATIENT).await.map_err(explain)?;
    step(2, &format!("Zhang Wei's phone asked for an SMS code; it is valid for {expires} s (the sandbox code is {SANDBOX_CODE})."));

    let profile = app.enrol(PATIENT, SANDBOX_CODE).await.map_err(explain)?;
    step(3, "Enrolled this device: its P-256 public key is registered with the platform; the private key never leaves the device.");
    say(&format!("     Signed in: {}", describe(&profile)));
    say(&format!(
        "     Phone clock vs platform clock: {:+} ms (codes will be made on platform time).",
        app.clock_offset_ms()
    ));

    drop(app);
    let app = open_at(url, phone_dir.clone(), config_dir)?;
    let again = app.current_profile().map_err(explain)?.ok_or("after reopening, the session was not in the store")?;
    if again.person_id != profile.person_id {
        return Err("after reopening, the store held another person".into());
    }
    step(
        4,
        "Closed the app and opened it again: the session came back from the encrypted store (sled, ChaCha20-Poly1305).",
    );

    let fresh = app.refresh_profile().await.map_err(explain)?;
    step(5, &format!("The platform confirmed the profile over HTTP: {} is {} years old today.", fresh.name, fresh.age));

    app.logout().await.map_err(explain)?;
    if app.current_profile().map_err(explain)?.is_some() {
        return Err("after logout a profile was still stored".into());
    }
    step(6, "Logged out: the platform revoked the session and the profile's local data was wiped.");

    let back = app.login(PATIENT, SANDBOX_CODE).await.map_err(explain)?;
    step(
        7,
        &format!(
            "Signed in again on the same enrolled device ({}): the device key signed a one-time platform challenge.",
            back.device_id
        ),
    );

    let code = app.current_code(Purpose::OutpatientSettlement, false, None).map_err(explain)?;
    step(
        8,
        &format!(
            "Zhang Wei shows his e-voucher code for outpatient settlement, made on the phone with no network \
             (QR version {}, a new one every 30 s):",
            code.qr.version
        ),
    );
    print!("{}", to_terminal(&code.qr));
    say(&format!("     {}", code.text));
    let offline = app.current_code(Purpose::OutpatientSettlement, true, None).map_err(explain)?;
    say(&format!(
        "     Its offline profile carries the platform-signed device certificate (QR version {}), for scanners with no network.",
        offline.qr.version
    ));
    match scanner_token {
        Some(token) => {
            let first = scan(url, token, &code.text, Purpose::OutpatientSettlement).await?;
            if !first.accepted {
                return Err(format!("the scanner refused a fresh code: {}", describe_outcome(&first)));
            }
            step(9, &format!("The clinic's scanner checks it with the platform: {}.", describe_outcome(&first)));
            let again = scan(url, token, &code.text, Purpose::OutpatientSettlement).await?;
            if again.accepted || again.reason.as_deref() != Some("replayed") {
                return Err(format!("a replayed code was not refused: {}", describe_outcome(&again)));
            }
            step(
                10,
                &format!(
                    "Someone scans a screenshot of the same code: {}. Each code works once.",
                    describe_outcome(&again)
                ),
            );
            let bill_id = bill_finds_the_patient(url, token, &app).await?;
            bills_paid(url, token, &app, &bill_id).await?;
            medicine_delivered(url, token, &app).await?;
            family_steps(url, token, &app, &phone_dir, config_dir).await?;
        }
        None => say(concat!(
            "(No scanner credential for this platform: pass --scanner-token with --platform ",
            "to run the scanner, clinic, payment and pharmacy steps.)"
        )),
    }
    Ok(())
}

/// The doctor orders tests and medicine; the bill reaches the patient's phone on the live
/// stream. Returns the bill's id.
async fn bill_finds_the_patient(
    url: &str,
    clinic_token: &str,
    app: &std::sync::Arc<carepass_core::CarePass>,
) -> Result<String, String> {
    use carepass_core::domain::bills::InboxChange;
    let mut stream = app.inbox_stream(None);
    match stream.next().await {
        Some(Ok(_)) => {}
        other => return Err(format!("the inbox stream did not start: {:?}", other.map(|r| r.err()))),
    }
    step(11, "The phone opens its live inbox stream (server-sent events) while the app is in the foreground.");
    let request = carepass_sandbox::seed::demo_bill_request(PATIENT, carepass_sandbox::seed::demo_bill_items());
    let clinic = carepass_core::io::net::PlatformClient::new(
        url,
        std::sync::Arc::new(carepass_core::SystemClock),
        &Default::default(),
    )
    .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let issued: carepass_core::wire::Bill =
        clinic.post("admin/v1/bills", &request, Some(clinic_token)).await.map_err(|e| e.to_string())?;
    let arrived = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await;
    let added = match &arrived {
        Ok(Some(Ok(update))) => update.changes.iter().find_map(|c| match c {
            InboxChange::Added(bill) if bill.bill_id == issued.bill_id => Some(bill.clone()),
            _ => None,
        }),
        _ => None,
    };
    match added {
        Some(bill) => {
            step(
                12,
                &format!(
                    "Dr Wang issues a bill at the clinic; {:.1} ms later it is on Zhang Wei's phone, no queue at the window:",
                    started.elapsed().as_secs_f64() * 1000.0
                ),
            );
            say(&format!("     {}", crate::bills::describe(&bill)));
            for item in &bill.items {
                say(&crate::text::clean(&format!(
                    "       {:?}  {} × {}  {}",
                    item.category, item.name, item.quantity, item.amount_fen
                )));
            }
            say("     (In the background the app would get a push instead: a signed doorbell with no amount and no health data.)");
            Ok(bill.bill_id)
        }
        None => Err(format!("the bill did not arrive on the stream: {:?}", arrived.map(|o| o.map(|r| r.err())))),
    }
}

/// The demo's personal-account balance: less than Zhang Wei's share of the demo bill, so the
/// account pays what it holds and his card pays the rest (a mixed payment).
const DEMO_ACCOUNT_FEN: i64 = 5_000;
const CARD_OK: &str = "card:4242424242424242";
const CARD_NO_FUNDS: &str = "card:4000000000009995";

fn platform_client(url: &str) -> Result<carepass_core::io::net::PlatformClient, String> {
    carepass_core::io::net::PlatformClient::new(
        url,
        std::sync::Arc::new(carepass_core::SystemClock),
        &Default::default(),
    )
    .map_err(|e| e.to_string())
}

/// The personal account (balance and the year's accumulators), as the platform's fund
/// office (admin role) sees it.
async fn account_view(
    office: &carepass_core::io::net::PlatformClient,
    token: &str,
    person_id: &str,
) -> Result<serde_json::Value, String> {
    office.get(&format!("admin/v1/accounts/{person_id}"), Some(token)).await.map_err(|e| e.to_string())
}

/// The personal account's balance.
async fn account_balance(
    office: &carepass_core::io::net::PlatformClient,
    token: &str,
    person_id: &str,
) -> Result<carepass_core::Fen, String> {
    account_view(office, token, person_id).await?["account_balance_fen"]
        .as_i64()
        .map(carepass_core::Fen)
        .ok_or_else(|| "the platform did not say the account's balance".to_string())
}

/// The receipt of a payment, of one kind, from the phone's verified receipts.
async fn receipt_of(
    app: &carepass_core::CarePass,
    payment_id: &str,
    kind: carepass_core::domain::payment::receipt::ReceiptKind,
) -> Result<carepass_core::domain::payment::receipt::Receipt, String> {
    app.receipts(None)
        .await
        .map_err(explain)?
        .into_iter()
        .map(|v| v.receipt)
        .find(|r| r.payment_id == payment_id && r.kind == kind)
        .ok_or_else(|| format!("no verified {kind:?} receipt for payment {payment_id} on the phone"))
}

fn split_text(fund: carepass_core::Fen, account: carepass_core::Fen, cash: carepass_core::Fen) -> String {
    format!("pooled fund (统筹) {fund} + personal account (个账) {account} + cash (自费) {cash}")
}

/// Mixed payment: the bill quoted and paid in one confirmation (fund, personal account and a
/// card), its e-receipt verified; a second bill's card declined and paid again cleanly; the
/// first bill refunded by the clinic, with its write-off receipt.
async fn bills_paid(url: &str, clinic_token: &str, app: &carepass_core::CarePass, bill_id: &str) -> Result<(), String> {
    use carepass_core::domain::payment::receipt::ReceiptKind;
    use carepass_core::domain::payment::{Channel, PaymentStatus};
    use carepass_core::{Fen, QuoteOptions};

    let person_id = app.current_profile().map_err(explain)?.ok_or("no one is signed in")?.person_id;
    let office = platform_client(url)?;
    let seeded = account_balance(&office, clinic_token, &person_id).await?;
    let _: serde_json::Value = office
        .post(
            &format!("admin/v1/accounts/{person_id}"),
            &serde_json::json!({ "balance_fen": DEMO_ACCOUNT_FEN }),
            Some(clinic_token),
        )
        .await
        .map_err(|e| e.to_string())?;
    let balance = account_balance(&office, clinic_token, &person_id).await?;
    if balance != Fen(DEMO_ACCOUNT_FEN) {
        return Err(format!("the personal account holds {balance}, not {}", Fen(DEMO_ACCOUNT_FEN)));
    }
    step(
        13,
        &format!(
            "For the demo the fund office sets Zhang Wei's personal account (个人账户) to {balance}: less than his share of the bill."
        ),
    );

    let card = Channel::parse(CARD_OK).map_err(|e| e.to_string())?;
    let options = QuoteOptions { use_account: true, channel: card.clone(), mutual_aid: false };
    let quote = app.quote(bill_id, &options, None).await.map_err(explain)?;
    let (ins, cash) = (&quote.legs.insurance, &quote.legs.cash);
    let sources = Fen::sum([ins.fund, ins.personal_account, ins.mutual_aid, cash.amount]).map_err(|e| e.to_string())?;
    if sources != quote.settlement.total || ins.personal_account != balance || cash.amount.0 <= 0 || ins.fund.0 <= 0 {
        return Err(format!("the quote is not the mixed payment it should be: {quote:?}"));
    }
    step(
        14,
        &format!(
            "He asks what the bill costs him (预结算); the phone checks the answer against the bill it holds, line by line: of {}, {} by {}.",
            quote.settlement.total,
            split_text(ins.fund, ins.personal_account, cash.amount),
            cash.channel.masked()
        ),
    );

    let paid = app.pay(&quote.quote_id, None).await.map_err(explain)?;
    if paid.status != PaymentStatus::Succeeded
        || paid.insurance.personal_account_fen != ins.personal_account
        || paid.cash.amount_fen != cash.amount
    {
        return Err(format!("the payment did not end as quoted: {paid:?}"));
    }
    let left = account_balance(&office, clinic_token, &person_id).await?;
    if left != Fen(balance.0 - ins.personal_account.0) {
        return Err(format!("the personal account holds {left} after paying {}", ins.personal_account));
    }
    step(
        15,
        &format!(
            "He confirms once: the phone signs his consent to exactly these amounts with the device key, stores the request and only then sends it. Payment {} is paid; his personal account now holds {left}.",
            paid.payment_id
        ),
    );

    let receipt = receipt_of(app, &paid.payment_id, ReceiptKind::Original).await?;
    if receipt.total != quote.settlement.total
        || receipt.fund != ins.fund
        || receipt.personal_account != ins.personal_account
        || receipt.cash != cash.amount
    {
        return Err(format!("the receipt's amounts are not the payment's: {receipt:?}"));
    }
    step(
        16,
        &format!(
            "His e-receipt (医疗收费电子票据) came with the answer and verifies on the phone (the platform's signature, the check code, the amounts): code {} number {} check code {}.",
            receipt.receipt_code, receipt.receipt_number, receipt.check_code
        ),
    );
    say(&crate::text::clean(&format!(
        "     {}: total {} = {}",
        receipt.payee,
        receipt.total,
        split_text(receipt.fund, receipt.personal_account, receipt.cash)
    )));

    // A second visit's bill, and a card with no money on it.
    let request = carepass_sandbox::seed::demo_bill_request(PATIENT, carepass_sandbox::seed::demo_bill_items());
    let second: carepass_core::wire::Bill =
        office.post("admin/v1/bills", &request, Some(clinic_token)).await.map_err(|e| e.to_string())?;
    let empty_card = Channel::parse(CARD_NO_FUNDS).map_err(|e| e.to_string())?;
    let before = account_view(&office, clinic_token, &person_id).await?;
    let quote = app
        .quote(
            &second.bill_id,
            &QuoteOptions { use_account: true, channel: empty_card.clone(), mutual_aid: false },
            None,
        )
        .await
        .map_err(explain)?;
    let failed = app.pay(&quote.quote_id, None).await.map_err(explain)?;
    let reason = match (&failed.status, &failed.failure) {
        (PaymentStatus::Failed, Some(f)) => crate::text::clean(&f.message).into_owned(),
        _ => return Err(format!("a card with insufficient funds did not fail the payment: {failed:?}")),
    };
    if account_view(&office, clinic_token, &person_id).await? != before {
        return Err("the failed payment moved the personal account or the fund's accumulators".into());
    }
    step(
        17,
        &format!(
            "A second visit's bill ({}) he tries to pay with a card that has no money on it ({}): payment {} failed — {reason}. The fund and his account were not touched.",
            quote.settlement.total,
            empty_card.masked(),
            failed.payment_id
        ),
    );

    let quote = app
        .quote(&second.bill_id, &QuoteOptions { use_account: true, channel: card.clone(), mutual_aid: false }, None)
        .await
        .map_err(explain)?;
    let recovered = app.pay(&quote.quote_id, None).await.map_err(explain)?;
    if recovered.status != PaymentStatus::Succeeded {
        return Err(format!("paying again with a good card did not succeed: {recovered:?}"));
    }
    let receipt = receipt_of(app, &recovered.payment_id, ReceiptKind::Original).await?;
    step(
        18,
        &format!(
            "He pays it again with his usual card ({}), a new quote and a new consent: payment {} is paid, receipt number {} check code {} (total {} = {}).",
            card.masked(),
            recovered.payment_id,
            receipt.receipt_number,
            receipt.check_code,
            receipt.total,
            split_text(receipt.fund, receipt.personal_account, receipt.cash)
        ),
    );

    // The clinic refunds the first bill in full.
    let before = account_balance(&office, clinic_token, &person_id).await?;
    let refund_request = carepass_core::wire::RefundRequest {
        refund_id: format!("R-{}", paid.payment_id),
        lines: None,
        reason: "the visit was cancelled at the clinic".into(),
    };
    let refund: carepass_core::wire::Refund = office
        .post(&format!("admin/v1/bills/{bill_id}/refunds"), &refund_request, Some(clinic_token))
        .await
        .map_err(|e| e.to_string())?;
    let s = &refund.split;
    if refund.status != carepass_core::wire::RefundStatus::Succeeded
        || s.fund != ins.fund
        || s.personal_account != ins.personal_account
        || s.cash != cash.amount
    {
        return Err(format!("the refund did not give every source its money back: {refund:?}"));
    }
    let after = account_balance(&office, clinic_token, &person_id).await?;
    if after.0 != before.0 + s.personal_account.0 {
        return Err(format!("the personal account holds {after} after a refund of {}", s.personal_account));
    }
    let now = app.payment(&paid.payment_id, None).await.map_err(explain)?;
    if now.status != PaymentStatus::Refunded {
        return Err(format!("after the refund the payment is {:?}", now.status));
    }
    step(
        19,
        &format!(
            "The clinic refunds the first bill in full, and each source gets its part back: the pooled fund {}, his personal account {} (it holds {after} again), {} to his {}. The phone shows the payment as refunded.",
            s.fund,
            s.personal_account,
            s.cash,
            card.masked()
        ),
    );

    let write_off = receipt_of(app, &paid.payment_id, ReceiptKind::WriteOff).await?;
    let original = receipt_of(app, &paid.payment_id, ReceiptKind::Original).await?;
    let cancels = write_off.writes_off.as_ref().map(|r| r.receipt_number.as_str());
    if cancels != Some(original.receipt_number.as_str()) || write_off.total != original.total {
        return Err(format!("the write-off does not cancel the original receipt: {write_off:?}"));
    }
    step(
        20,
        &format!(
            "A write-off receipt (冲红) cancels the original number {}: code {} number {} check code {}, total {}, verified on the phone like the first.",
            original.receipt_number, write_off.receipt_code, write_off.receipt_number, write_off.check_code, write_off.total
        ),
    );
    let _: serde_json::Value = office
        .post(
            &format!("admin/v1/accounts/{person_id}"),
            &serde_json::json!({ "balance_fen": seeded.0 }),
            Some(clinic_token),
        )
        .await
        .map_err(|e| e.to_string())?;
    say(&format!(
        "     (The fund office puts his personal account back to the {seeded} it held before the demo's payments.)"
    ));
    Ok(())
}

fn step(n: u32, text: &str) {
    println!("{n}. {text}");
}

fn say(text: &str) {
    println!("{text}");
}

/// The chronic prescription: nearby pharmacies ranked by what Zhang Wei pays, and delivery
/// ordered from the best one.
/// Family proxies (docs/family.md): Zhang Wei acts for his father with the father's consent,
/// shows his code and pays his bill; his daughter's link changes when she turns 14; the
/// father reads who acted for him.
async fn family_steps(
    url: &str,
    token: &str,
    app: &carepass_core::CarePass,
    phone_dir: &std::path::Path,
    config_dir: &std::path::Path,
) -> Result<(), String> {
    use carepass_core::domain::family::{Relationship, Scope};
    use carepass_core::domain::payment::Channel;
    use carepass_core::wire::Limits;
    const FATHER: &str = "13800000002";
    const DAUGHTER: &str = "13800000003";

    let asked = app.link_relative(FATHER, Relationship::Parent, None, Limits::default()).await.map_err(explain)?;
    step(
        24,
        &format!(
            "Zhang Wei asks to act for his father {} (78): the household register shows the relationship, and the link {} waits for his father's consent.",
            asked.principal_name, asked.link.link_id
        ),
    );
    let father_dir = phone_dir.with_file_name("father-phone");
    let father_config = config_dir.with_file_name("father-config");
    let father = crate::open_at(url, father_dir, &father_config)?;
    father.enrol(FATHER, SANDBOX_CODE).await.map_err(explain)?;
    let consented = father.approve_link(&asked.link.link_id).await.map_err(explain)?;
    let until = consented
        .link
        .expires_at_ms
        .map(|t| carepass_core::domain::person::china_date(t).to_string())
        .unwrap_or_default();
    step(
        25,
        &format!(
            "On his own phone his father consents: Zhang Wei may {} for him, until {until} (18 months; only his father can renew).",
            consented.effective_scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ),
    );
    app.refresh_family().await.map_err(explain)?;
    let code = app.current_code(Purpose::OutpatientSettlement, false, Some("P1002")).map_err(explain)?;
    let seen = scan(url, token, &code.text, Purpose::OutpatientSettlement).await?;
    if !seen.accepted || seen.holder.as_ref().map(|h| h.person_id.as_str()) != Some("P1002") {
        return Err(format!("the father's code shown by his son was not his: {}", describe_outcome(&seen)));
    }
    step(
        26,
        &format!(
            "Zhang Wei shows his father's code from his own phone (signed by his device, the link inside); the scanner: {}.",
            describe_outcome(&seen)
        ),
    );
    let clinic = platform_client(url)?;
    let request = carepass_sandbox::seed::demo_bill_request(FATHER, carepass_sandbox::seed::demo_bill_items());
    let bill: carepass_core::wire::Bill =
        clinic.post("admin/v1/bills", &request, Some(token)).await.map_err(|e| e.to_string())?;
    app.sync_inbox().await.map_err(explain)?;
    let options = carepass_core::QuoteOptions {
        use_account: true,
        channel: Channel::parse(CARD_OK).map_err(|e| e.to_string())?,
        mutual_aid: false,
    };
    let quote = app.quote(&bill.bill_id, &options, Some("P1002")).await.map_err(explain)?;
    let paid = app.pay(&quote.quote_id, Some("P1002")).await.map_err(explain)?;
    step(
        27,
        &format!(
            "The clinic bills his father {}; the bill reaches Zhang Wei's phone too, and he pays it for him — the pooled fund {}, his father's own personal account (个人账户) {}{}: {}.",
            bill.total_fen,
            quote.legs.insurance.fund,
            quote.legs.insurance.personal_account,
            if quote.legs.cash.amount.0 > 0 { format!(", Zhang Wei's card {}", quote.legs.cash.amount) } else { String::new() },
            crate::pay::describe(&paid),
        ),
    );
    let child = app.link_relative(DAUGHTER, Relationship::Child, None, Limits::default()).await.map_err(explain)?;
    let now = clinic
        .get::<carepass_core::wire::ClockState>("admin/v1/clock", Some(token))
        .await
        .map_err(|e| e.to_string())?;
    let birthday = chrono::NaiveDate::from_ymd_opt(2031, 6, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis() - 8 * 3_600_000)
        .ok_or("no birthday")?;
    let advance = carepass_core::wire::ClockAdvance { advance_ms: (birthday - now.server_time_ms).max(0) + 3_600_000 };
    let _: carepass_core::wire::ClockState =
        clinic.post("admin/v1/clock", &advance, Some(token)).await.map_err(|e| e.to_string())?;
    app.login(PATIENT, SANDBOX_CODE).await.map_err(explain)?;
    let teen = app
        .refresh_family()
        .await
        .map_err(explain)?
        .acting_for
        .into_iter()
        .find(|v| v.link.link_id == child.link.link_id)
        .ok_or("the daughter's link is gone")?;
    if teen.effective_scopes.contains(&Scope::ViewBills) {
        return Err("at 14 the parent should lose bill details until the teen assents".into());
    }
    step(
        28,
        &format!(
            "He links his daughter {} (9) at once (parental responsibility). The platform's clock moves to her 14th birthday: he keeps {}, and bill details and prescriptions now need her assent on her own phone.",
            child.principal_name,
            teen.effective_scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ),
    );
    father.login(FATHER, SANDBOX_CODE).await.map_err(explain)?;
    let audit = father.family_audit().await.map_err(explain)?;
    let actions: Vec<&str> = audit.records.iter().map(|r| r.action.as_str()).collect();
    step(
        29,
        &format!(
            "His father reads who acted for him: {} records ({}), each chained to the one before; the phone verified the chain.",
            audit.records.len(),
            actions.join(", ")
        ),
    );
    Ok(())
}

async fn medicine_delivered(url: &str, pharmacy_token: &str, app: &carepass_core::CarePass) -> Result<(), String> {
    use carepass_core::domain::pharmacy::{Fulfilment, GeoPoint, RankQuery};
    let home = GeoPoint::new(30.5952, 114.2999);
    let mut query = RankQuery::near(home);
    query.delivery = true;
    let (rx_id, ranking) = app.rank_pharmacies(&query, None).await.map_err(explain)?;
    step(
        21,
        &format!(
            "His chronic prescription {rx_id} (8 drugs) is shared to pharmacies: {} deliver to his home within 5 km, {} have everything. Ranked by what he pays after insurance:",
            ranking.candidates, ranking.complete
        ),
    );
    for (i, quote) in ranking.quotes.iter().take(3).enumerate() {
        say(&format!("   {}", crate::pharmacy::describe_quote(i + 1, quote)));
    }
    let cheapest_list = ranking.quotes.iter().min_by_key(|q| (q.list_price, q.pharmacy_id.clone()));
    if let (Some(best), Some(list)) = (ranking.quotes.first(), cheapest_list) {
        if best.pharmacy_id != list.pharmacy_id {
            say(&format!(
                "     (By list price alone {} looks cheapest, but after insurance he pays {} there, not {}.)",
                list.pharmacy_id, list.net_cost, best.net_cost
            ));
        }
    }
    let best = ranking.quotes.first().ok_or("no pharmacy can deliver the prescription")?;
    let address = carepass_core::wire::DeliveryAddress {
        text: "示例市东湖路 18 号 3 栋 502 室".into(),
        location: home,
        contact_phone: PATIENT.into(),
    };
    let order =
        app.place_order(&rx_id, &best.pharmacy_id, Fulfilment::Delivery, Some(address), None).await.map_err(explain)?;
    step(22, &format!("He orders home delivery from the best one: {}.", crate::pharmacy::describe_order(&order)));
    let pharmacy = carepass_core::io::net::PlatformClient::new(
        url,
        std::sync::Arc::new(carepass_core::SystemClock),
        &Default::default(),
    )
    .map_err(|e| e.to_string())?;
    let _: carepass_core::wire::Order = pharmacy
        .post(&format!("admin/v1/orders/{}/advance", order.order_id), &serde_json::json!({}), Some(pharmacy_token))
        .await
        .map_err(|e| e.to_string())?;
    let now = app.order(&order.order_id, None).await.map_err(explain)?;
    step(
        23,
        &format!(
            "The pharmacy packs it and hands it to the courier: the order is {}.",
            crate::pharmacy::state_name(now.state)
        ),
    );
    Ok(())
}
