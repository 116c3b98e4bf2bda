//! The crash matrix of mixed payment: the platform as its own process, killed (`abort`) at
//! each of the saga's crash points while a pay request (or a refund) is in flight, then
//! started again on the same data dir and port, with the payment channel as another process
//! that lives through it all.
//!
//! The tests crate cannot name the `carepass-sandbox` binary (`CARGO_BIN_EXE_*` exists only
//! for the package that owns it, and a nested `cargo build` would wait on the build lock the
//! running `cargo test` may hold), so the processes are this test binary run again as one
//! ignored test, [`child_process`], which starts exactly what `carepass-sandbox serve
//! --channel URL` and `carepass-sandbox channel` start (`carepass_sandbox::start` and
//! `channel::start_channel`), prints `listening on URL` like they do and serves until
//! killed. The crash points are the sandbox library's (`CAREPASS_SANDBOX_CRASH_AT`, debug
//! builds).
//!
//! After each restart: the payment ends succeeded, the personal account moved exactly once,
//! the channel placed one hold and captured it once, one receipt was issued, and the same
//! request with the same key answers the final state.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use carepass_core::domain::payment::receipt;
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::{self, PayRequest, Payment, PaymentStatus, Quote, ReceiptKey, Refund, RefundStatus};
use carepass_journeys::*;
use carepass_sandbox::channel::{AuthStatus, Ledger};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROLE: &str = "CAREPASS_CRASH_TEST_ROLE";
const DATA: &str = "CAREPASS_CRASH_TEST_DATA";
const LISTEN: &str = "CAREPASS_CRASH_TEST_LISTEN";
const CHANNEL: &str = "CAREPASS_CRASH_TEST_CHANNEL";
const CRASH_AT: &str = "CAREPASS_SANDBOX_CRASH_AT";
const BALANCE: i64 = 10_000;
const CARD: &str = "card:4242424242424242";

// ---- the processes -----------------------------------------------------------------------

/// The platform or channel process (only when started by the crash tests with
/// `CAREPASS_CRASH_TEST_ROLE`; run by hand it returns at once).
#[test]
#[ignore = "the platform / channel process the crash tests start; not a test by itself"]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else { return };
    let data = PathBuf::from(std::env::var(DATA).expect("data dir"));
    let listen: SocketAddr = std::env::var(LISTEN).unwrap_or_else(|_| "127.0.0.1:0".into()).parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let url = match role.as_str() {
            "channel" => {
                let running = carepass_sandbox::channel::start_channel(listen, &data, Duration::from_millis(2_000))
                    .await
                    .expect("channel starts");
                let url = running.url();
                std::mem::forget(running);
                url
            }
            "serve" => {
                let config = carepass_sandbox::SandboxConfig {
                    data_dir: data,
                    demo_seed: true,
                    admin_token: Some(ADMIN_TOKEN.into()),
                    durability: Default::default(),
                    channel: carepass_sandbox::ChannelSetup {
                        url: Some(std::env::var(CHANNEL).expect("channel url")),
                        ..Default::default()
                    },
                };
                let running = carepass_sandbox::start(listen, config).await.expect("platform starts");
                let url = running.url();
                std::mem::forget(running);
                url
            }
            other => panic!("unknown role {other}"),
        };
        println!("listening on {url}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        std::future::pending::<()>().await;
    });
}

/// A child process, killed when dropped.
struct Process {
    child: Child,
    url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn start(role: &str, data: &Path, env: &[(&str, &str)]) -> Process {
        let mut command = Command::new(std::env::current_exe().expect("the test binary"));
        command
            .args(["--exact", "child_process", "--ignored", "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env(DATA, data)
            .env_remove(CRASH_AT)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the child starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    // libtest prints `test child_process ... ` before it on the same line.
                    if let Some((_, url)) = line.split_once("listening on ") {
                        break url.trim().to_string();
                    }
                }
                _ => panic!("the {role} process ended before it listened"),
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Process { child, url }
    }

    /// Waits (bounded) for the process to end by itself (the crash point), and says how.
    fn wait_for_exit(&mut self) -> std::process::ExitStatus {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the platform did not die at its crash point");
    }
}

fn platform(data: &Path, channel: &str, listen: Option<SocketAddr>, crash_at: Option<&str>) -> Process {
    let listen = listen.map(|a| a.to_string()).unwrap_or_else(|| "127.0.0.1:0".into());
    let mut env = vec![(LISTEN, listen.as_str()), (CHANNEL, channel)];
    if let Some(point) = crash_at {
        env.push((CRASH_AT, point));
    }
    Process::start("serve", data, &env)
}

// ---- raw HTTP ------------------------------------------------------------------------------

struct Answer {
    status: u16,
    replayed: bool,
    body: Value,
}

/// One request on its own connection; an error when it ends without an answer.
async fn http(
    base: &str,
    method: &str,
    path: &str,
    bearer: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<Answer> {
    http_as(base, method, path, bearer, None, key, body).await
}

/// [`http`] for a relative: `subject` names them (`x-carepass-subject`).
async fn http_as(
    base: &str,
    method: &str,
    path: &str,
    bearer: &str,
    subject: Option<&str>,
    key: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<Answer> {
    let host = base.trim_start_matches("http://").trim_end_matches('/').to_string();
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\nauthorization: Bearer {bearer}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        bytes.len()
    );
    if let Some(key) = key {
        head.push_str(&format!("{}: {key}\r\n", wire::IDEMPOTENCY_HEADER));
    }
    if let Some(subject) = subject {
        head.push_str(&format!("x-carepass-subject: {subject}\r\n"));
    }
    head.push_str("\r\n");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&host).await?;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&bytes).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
    let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the connection ended without an answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(eof)?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(!head.contains("transfer-encoding: chunked"), "this reader expects a content-length: {head}");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(eof)?;
    let replayed = head.contains(&format!("{}: true", wire::REPLAYED_HEADER));
    let body = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
    Ok(Answer { status, replayed, body })
}

async fn ok(answer: std::io::Result<Answer>) -> Value {
    let answer = answer.expect("an answer");
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

fn payment_of(v: &Value) -> Payment {
    serde_json::from_value(v.clone()).expect("a payment")
}

async fn ledger(channel: &str) -> Ledger {
    serde_json::from_value(ok(http(channel, "GET", "/channel/v1/ledger", "", None, None).await).await).unwrap()
}

async fn balance(url: &str, person: &str) -> i64 {
    let view = ok(http(url, "GET", &format!("/admin/v1/accounts/{person}"), ADMIN_TOKEN, None, None).await).await;
    view["account_balance_fen"].as_i64().unwrap()
}

async fn check_receipts(url: &str, payment: &Payment) -> usize {
    let keys: Vec<ReceiptKey> =
        serde_json::from_value(ok(http(url, "GET", "/v1/receipts/keys", "", None, None).await).await).unwrap();
    use base64::Engine;
    let keys = keys
        .into_iter()
        .map(|k| (k.key_id, base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(k.public_key).unwrap()))
        .collect();
    for signed in &payment.receipts {
        receipt::verify(signed, &keys).expect("the receipt verifies");
    }
    payment.receipts.len()
}

// ---- the matrix ------------------------------------------------------------------------------

/// One crash point: pay (or refund) while the platform is set to die at `point`, restart it
/// without, and check where the money is.
async fn crash_at(point: &str) {
    crash_in(point, false).await
}

/// The father's balance when the son gives for him (家庭共济).
const FATHER_BALANCE: i64 = 1_000;

/// [`crash_at`]; with `mutual_aid`, the son (the patient of the other cases) pays his
/// linked father's bill and his own account gives what the father's leaves: the giver's
/// account must move exactly once too, and come back with a refund.
async fn crash_in(point: &str, mutual_aid: bool) {
    let dir = tempfile::tempdir().unwrap();
    let channel = Process::start("channel", &dir.path().join("channel"), &[]);
    let data = dir.path().join("platform");
    let mut server = platform(&data, &channel.url, None, Some(point));
    let url = server.url.clone();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();

    // A patient with a bill and a quote, over the first process.
    let phone_dir = tempfile::tempdir().unwrap();
    let app = phone(&url, phone_dir.path(), &MemorySecretStore::new());
    app.enrol(PATIENT, CODE).await.expect("enrols");
    let profile = app.current_profile().unwrap().unwrap();
    let token = stored_tokens(&app, &profile.person_id).access_token;
    let keys = carepass_core::io::keys::software_key(&app.store().vault).unwrap();
    ok(http(&url, "POST", "/admin/v1/accounts/P1001", ADMIN_TOKEN, None, Some(&json!({"balance_fen": BALANCE}))).await)
        .await;
    // With mutual aid: the father (P1002) linked and consenting on his own phone.
    let father_dir = tempfile::tempdir().unwrap();
    let (holder, subject) = if mutual_aid {
        let father = phone(&url, father_dir.path(), &MemorySecretStore::new());
        father.enrol("13800000002", CODE).await.expect("the father enrols");
        let asked = app
            .link_relative(
                "13800000002",
                carepass_core::domain::family::Relationship::Parent,
                None,
                wire::Limits::default(),
            )
            .await
            .expect("links");
        father.refresh_family().await.unwrap();
        father.approve_link(&asked.link.link_id).await.expect("consents");
        let body = json!({"balance_fen": FATHER_BALANCE});
        ok(http(&url, "POST", "/admin/v1/accounts/P1002", ADMIN_TOKEN, None, Some(&body)).await).await;
        ("13800000002", Some("P1002"))
    } else {
        (PATIENT, None)
    };
    let bill_request = carepass_sandbox::seed::demo_bill_request(holder, carepass_sandbox::seed::demo_bill_items());
    let bill = ok(http(
        &url,
        "POST",
        "/admin/v1/bills",
        ADMIN_TOKEN,
        None,
        Some(&serde_json::to_value(&bill_request).unwrap()),
    )
    .await)
    .await;
    let bill_id = bill["bill_id"].as_str().unwrap().to_string();
    let quote_body = json!({"channel": CARD, "mutual_aid": mutual_aid});
    let quote_path = format!("/v1/bills/{bill_id}/quotes");
    let quote: Quote = serde_json::from_value(
        ok(http_as(&url, "POST", &quote_path, &token, subject, None, Some(&quote_body)).await).await,
    )
    .unwrap();
    let (pa, ma, cash) =
        (quote.legs.insurance.personal_account.0, quote.legs.insurance.mutual_aid.0, quote.legs.cash.amount.0);
    assert!(pa > 0 && cash > 0);
    assert_eq!(ma > 0, mutual_aid, "{quote:?}");
    let payer = subject.unwrap_or("P1001");
    let payer_before = if mutual_aid { FATHER_BALANCE } else { BALANCE };
    let key = format!("crash-{}{}", point.replace(':', "-"), if mutual_aid { "-aid" } else { "" });
    let consent = quote.consent(&key);
    let request = serde_json::to_value(PayRequest::new(&consent, &consent.sign(&keys).unwrap())).unwrap();
    let refund_body = json!({"refund_id": "R-crash", "reason": "crash test"});
    let refund_path = format!("/admin/v1/bills/{bill_id}/refunds");

    // The request the platform dies in.
    let cut = if point.starts_with("refund:") {
        let paid = payment_of(
            &ok(http_as(&url, "POST", "/v1/payments", &token, subject, Some(&key), Some(&request)).await).await,
        );
        assert_eq!(paid.status, PaymentStatus::Succeeded);
        http(&url, "POST", &refund_path, ADMIN_TOKEN, None, Some(&refund_body)).await
    } else {
        http_as(&url, "POST", "/v1/payments", &token, subject, Some(&key), Some(&request)).await
    };
    let error = cut.err().unwrap_or_else(|| panic!("{point}: the request was answered; the platform did not die"));
    let exit = server.wait_for_exit();
    assert!(!exit.success(), "{point}: {exit}");
    drop(server);

    // Again, without the crash point, on the same data dir and port.
    let server = platform(&data, &channel.url, Some(addr), None);
    assert_eq!(server.url, url);
    let replay =
        http_as(&url, "POST", "/v1/payments", &token, subject, Some(&key), Some(&request)).await.expect("an answer");
    assert_eq!(replay.status, 200, "{point}: {}", replay.body);
    assert!(replay.replayed, "{point}: the answer comes from the key's record");
    let mut final_payment = payment_of(&replay.body);
    if point.starts_with("refund:") {
        assert_eq!(final_payment.status, PaymentStatus::Succeeded, "the pay answer was stored before the refund");
        let refund: Refund = serde_json::from_value(
            ok(http(&url, "POST", &refund_path, ADMIN_TOKEN, None, Some(&refund_body)).await).await,
        )
        .unwrap();
        assert_eq!(refund.status, RefundStatus::Succeeded, "{point}");
        assert_eq!(refund.split.cash.0, cash);
        assert_eq!(refund.split.personal_account.0, pa);
        assert_eq!(refund.split.mutual_aid.0, ma, "{point}: the giver gets back what they gave");
        final_payment = payment_of(
            &ok(http_as(
                &url,
                "GET",
                &format!("/v1/payments/{}", final_payment.payment_id),
                &token,
                subject,
                None,
                None,
            )
            .await)
            .await,
        );
        assert_eq!(final_payment.status, PaymentStatus::Refunded);
    } else {
        assert_eq!(final_payment.status, PaymentStatus::Succeeded, "{point}: {}", replay.body);
        let again = http_as(&url, "POST", "/v1/payments", &token, subject, Some(&key), Some(&request)).await.unwrap();
        assert!(again.replayed);
        assert_eq!(again.body, replay.body, "{point}: the final answer is kept");
    }
    // Let the driver run over it: nothing more moves.
    ok(http(&url, "POST", "/admin/v1/payments/drive", ADMIN_TOKEN, None, Some(&json!({}))).await).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let shown = payment_of(
        &ok(http_as(&url, "GET", &format!("/v1/payments/{}", final_payment.payment_id), &token, subject, None, None)
            .await)
        .await,
    );
    assert_eq!(shown, final_payment, "{point}");

    let account = balance(&url, payer).await;
    let giver = balance(&url, "P1001").await;
    let l = ledger(&channel.url).await;
    let holds: Vec<_> = l.authorisations.iter().filter(|a| a.reference == final_payment.payment_id).collect();
    assert_eq!(holds.len(), 1, "{point}: one hold: {l:?}");
    assert_eq!(holds[0].captured_fen.0, cash, "{point}: captured once");
    let receipts = check_receipts(&url, &final_payment).await;
    let account_moves = if point.starts_with("refund:") {
        assert_eq!(account, payer_before, "{point}: the account is back");
        if mutual_aid {
            assert_eq!(giver, BALANCE, "{point}: the giver's account is back");
        }
        assert_eq!(l.refunds.len(), 1, "{point}: one channel refund");
        assert_eq!(l.refunds[0].amount_fen.0, cash);
        assert_eq!(l.net_captured(), 0);
        assert_eq!(receipts, 2, "{point}: the receipt and its write-off");
        "paid 1×, refunded 1×"
    } else {
        assert_eq!(account, payer_before - pa, "{point}: the account moved exactly once");
        if mutual_aid {
            assert_eq!(giver, BALANCE - ma, "{point}: the giver's account moved exactly once");
        }
        assert!(l.refunds.is_empty());
        assert_eq!(l.net_captured(), cash);
        assert_eq!(receipts, 1, "{point}: one receipt");
        "moved 1×"
    };
    assert_eq!(holds[0].status, AuthStatus::Captured);
    println!(
        "crash {point:<18}{} client: {} | after restart: {:?} | account {account_moves} ({pa} fen{}) | channel holds 1, captured {} fen 1×, refunds {} | receipts {receipts} | replay {}",
        if mutual_aid { " (mutual aid)" } else { "" },
        error.kind(),
        final_payment.status,
        if mutual_aid { format!(", giver {ma} fen") } else { String::new() },
        holds[0].captured_fen.0,
        l.refunds.len(),
        if replay.replayed { "replayed final state" } else { "new" },
    );
    drop(server);
    drop(channel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_payment_is_created() {
    crash_at("pay:created").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_when_the_hold_is_answered() {
    crash_at("pay:hold-answered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_insurance_settled() {
    crash_at("pay:settled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_cash_is_captured() {
    crash_at("pay:captured").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_answer_is_stored() {
    crash_at("pay:answered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_refund_of_the_insurance() {
    crash_at("refund:insurance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_insurance_settled_with_mutual_aid() {
    crash_in("pay:settled", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_refund_of_the_insurance_with_mutual_aid() {
    crash_in("refund:insurance", true).await;
}
