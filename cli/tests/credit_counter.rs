//! The terminal's credit pay-later commands and the cashier's one-code charge (一码付), as
//! processes against a real sandbox: a cashier scans the patient's code and charges items;
//! the bill reaches the patient's phone; the patient pays it on credit after signing the
//! agreement; then repays from a card — once, even when the same repayment is resent.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use carepass_core::io::net::{ClientOptions, PlatformClient};
use carepass_sandbox::{start, RunningSandbox, SandboxConfig};
use common::{carepass, text};

const ADMIN: &str = "credit-counter-admin";
const PATIENT: &str = "13800000001";

async fn sandbox(dir: &Path) -> RunningSandbox {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = SandboxConfig {
        data_dir: dir.into(),
        demo_seed: true,
        admin_token: Some(ADMIN.into()),
        durability: Default::default(),
        channel: Default::default(),
    };
    start(listen, config).await.unwrap()
}

async fn run(url: &str, data: &Path, args: &[&str]) -> std::process::Output {
    let (url, data) = (url.to_string(), data.to_path_buf());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        carepass(&url, &data, &refs)
    })
    .await
    .unwrap()
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "stdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cashier_charges_a_scanned_code_and_the_patient_pays_it_on_credit_then_repays_once() {
    let platform_dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox(platform_dir.path()).await;
    let url = sandbox.url();
    let phone = tempfile::tempdir().unwrap();
    ok(&run(&url, phone.path(), &["login", "--phone", PATIENT, "--code", "123456"]).await);
    // No personal account money: the whole self-pay part goes to the cash channel.
    let admin =
        PlatformClient::new(&url, std::sync::Arc::new(carepass_core::SystemClock), &ClientOptions::default()).unwrap();
    let _: serde_json::Value =
        admin.post("admin/v1/accounts/P1001", &serde_json::json!({ "balance_fen": 0 }), Some(ADMIN)).await.unwrap();

    // The cashier: bad items are refused before anything is sent.
    let code = ok(&run(&url, phone.path(), &["code", "--purpose", "pharmacy_purchase", "--once"]).await);
    let payload = code.lines().next().expect("a payload").to_string();
    let bad =
        run(&url, phone.path(), &["counter", &payload, "--item", "860101:布洛芬:D:2:12.50", "--scanner-token", ADMIN])
            .await;
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("the category \"D\" is A, B or C"), "{}", text(&bad.stderr));
    let charged = ok(&run(
        &url,
        phone.path(),
        &[
            "counter",
            &payload,
            "--merchant",
            "江汉大药房",
            "--item",
            "860101:布洛芬缓释胶囊:A:2:12.50",
            "--item",
            "860202:维生素C片:C:1:8.00",
            "--scanner-token",
            ADMIN,
        ],
    )
    .await);
    assert!(charged.contains("charged: bill "), "{charged}");
    assert!(charged.contains("total ¥33.00"), "{charged}");
    let bill_id = charged.split_whitespace().nth(2).expect("the bill id").to_string();
    // The same code again is a replay: nothing charged twice.
    let replay = run(
        &url,
        phone.path(),
        &["counter", &payload, "--item", "860101:布洛芬缓释胶囊:A:2:12.50", "--scanner-token", ADMIN],
    )
    .await;
    assert!(!replay.status.success());
    assert!(text(&replay.stderr).contains("rejected: replayed"), "{}", text(&replay.stderr));

    // The bill reaches the phone.
    let bills = ok(&run(&url, phone.path(), &["bills", "--json"]).await);
    assert!(bills.contains(&bill_id), "{bills}");

    // Credit: none yet, so paying on credit is refused; then sign and pay.
    let none = ok(&run(&url, phone.path(), &["credit"]).await);
    assert!(none.contains("no credit agreement"), "{none}");
    let refused = run(&url, phone.path(), &["pay", &bill_id, "--channel", "credit", "--yes"]).await;
    assert!(!refused.status.success());
    let too_much = run(&url, phone.path(), &["credit", "sign", "--limit", "5000.01", "--yes"]).await;
    assert!(!too_much.status.success());
    assert!(text(&too_much.stderr).contains("credit limit"), "{}", text(&too_much.stderr));
    let signed = ok(&run(&url, phone.path(), &["credit", "sign", "--limit", "500", "--yes"]).await);
    assert!(signed.contains("credit line ¥500.00 · used ¥0.00 · available ¥500.00"), "{signed}");
    let paid = ok(&run(&url, phone.path(), &["pay", &bill_id, "--channel", "credit", "--yes"]).await);
    assert!(paid.contains("paid"), "{paid}");
    let line = ok(&run(&url, phone.path(), &["credit"]).await);
    let owed_line = line.lines().find(|l| l.contains("still owed")).unwrap_or_else(|| panic!("{line}"));
    assert!(line.contains("used ¥") && !line.contains("used ¥0.00"), "{line}");

    // Repay more than owed: refused, nothing charged. Repay part, then the rest.
    let over = run(&url, phone.path(), &["credit", "repay", "499", "--channel", "card:4242424242424242"]).await;
    assert!(!over.status.success(), "{}", text(&over.stdout));
    let part = ok(&run(&url, phone.path(), &["credit", "repay", "1.00", "--channel", "4242424242424242"]).await);
    assert!(part.contains("repaid ¥1.00"), "{part}");
    let after = ok(&run(&url, phone.path(), &["credit"]).await);
    assert_ne!(after.lines().find(|l| l.contains("still owed")), Some(owed_line), "{after}");
    let line: carepass_core::wire::CreditLine =
        serde_json::from_str(&ok(&run(&url, phone.path(), &["credit", "--json"]).await)).unwrap();
    assert_eq!(line.draws.len(), 1);
    assert_eq!(line.draws[0].repaid_fen.0, 100);
    let owed: i64 = line.draws.iter().map(|d| d.amount_fen.0 - d.repaid_fen.0).sum();
    let rest = format!("{}.{:02}", owed / 100, owed % 100);
    let done = ok(&run(&url, phone.path(), &["credit", "repay", &rest, "--channel", "card:4242424242424242"]).await);
    assert!(done.contains("used ¥0.00"), "{done}");
    let ledger: serde_json::Value = channel_get(&sandbox.channel_url, "/channel/v1/ledger").await;
    let repayments = ledger["authorisations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["key"].as_str().unwrap_or("").starts_with("repay-"))
        .count();
    assert_eq!(repayments, 2, "two repayments, each charged once: {ledger}");
}

/// A GET on the payment channel's own server (raw HTTP/1.1: it speaks no CarePass headers).
async fn channel_get(base: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let authority = base.trim_start_matches("http://").trim_end_matches('/').to_string();
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&authority).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    })
    .await
    .unwrap()
}
