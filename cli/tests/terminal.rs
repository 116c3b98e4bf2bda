//! The `carepass` binary as a separate process: the demo journey, and login / whoami /
//! logout against a sandbox platform over loopback.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use carepass_sandbox::{start, SandboxConfig};
use common::{carepass, text};

const ADMIN: &str = "terminal-test-admin";

#[test]
fn the_demo_runs_the_whole_journey_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_carepass"))
        .env_remove("CAREPASS_SERVER")
        .env_remove("CAREPASS_DATA")
        .arg("demo")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    assert!(stdout.contains("Enrolled this device"), "{stdout}");
    assert!(stdout.contains("Demo finished"), "{stdout}");
    assert!(stdout.contains("accepted: 张伟 Zhang Wei"), "{stdout}");
    assert!(stdout.contains("rejected: replayed"), "{stdout}");

    // The steps are numbered 1, 2, 3, … with none missing or repeated.
    let numbers: Vec<u32> =
        stdout.lines().filter_map(|l| l.split_once(". ")).filter_map(|(n, _)| n.parse().ok()).collect();
    assert_eq!(numbers, (1..=numbers.len() as u32).collect::<Vec<_>>(), "{stdout}");
    let step = |n: u32| {
        stdout.lines().find(|l| l.starts_with(&format!("{n}. "))).unwrap_or_else(|| panic!("no step {n}: {stdout}"))
    };
    // Mixed payment: the split, one payment, the verified receipt, a declined card and the
    // recovery, a refund and its write-off receipt.
    assert!(step(13).contains("personal account (个人账户) to ¥50.00"), "{}", step(13));
    let quote = step(14);
    assert!(quote.contains("of ¥511.20, pooled fund (统筹) ¥"), "{quote}");
    assert!(quote.contains("+ personal account (个账) ¥50.00 + cash (自费) ¥"), "{quote}");
    assert!(quote.contains("by card ····4242"), "{quote}");
    assert!(step(15).contains("is paid; his personal account now holds ¥0.00"), "{}", step(15));
    let receipt = step(16);
    assert!(
        receipt.contains("verifies on the phone") && receipt.contains("number 0000000001 check code "),
        "{receipt}"
    );
    assert!(stdout.contains("total ¥511.20 = pooled fund (统筹) ¥"), "{stdout}");
    let declined = step(17);
    assert!(
        declined.contains("(card ····9995)") && declined.contains("failed — the card has insufficient funds"),
        "{declined}"
    );
    assert!(step(18).contains("(card ····4242)") && step(18).contains("is paid, receipt number"), "{}", step(18));
    // Family: the father's consent, his code shown by his son, his bill paid by his son, the
    // daughter's 14th birthday, the father's verified audit.
    assert!(step(25).contains("his father consents"), "{}", step(25));
    assert!(
        step(26).contains(
            "accepted: 张建国 Zhang Jianguo (P1002), presented by their child 张伟 Zhang Wei (P1001) under link lnk_"
        ),
        "{}",
        step(26)
    );
    assert!(step(27).contains("he pays it for him") && step(27).contains(" paid "), "{}", step(27));
    assert!(step(28).contains("he keeps show_code, pay_bills, order_medicine"), "{}", step(28));
    assert!(step(29).contains("payment_made") && step(29).contains("the phone verified the chain"), "{}", step(29));
    let refund = step(19);
    assert!(
        refund.contains("refunds the first bill in full") && refund.contains("(it holds ¥50.00 again)"),
        "{refund}"
    );
    assert!(refund.contains("to his card ····4242") && refund.contains("payment as refunded"), "{refund}");
    assert!(step(20).contains("write-off receipt (冲红) cancels the original number 0000000001"), "{}", step(20));
    assert!(step(22).contains("He orders home delivery"), "{}", step(22));
}

#[tokio::test(flavor = "multi_thread")]
async fn login_whoami_logout_from_the_terminal() {
    let platform_dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = SandboxConfig {
        data_dir: platform_dir.path().into(),
        demo_seed: true,
        admin_token: Some(ADMIN.into()),
        durability: Default::default(),
        channel: Default::default(),
    };
    let sandbox = start(listen, config).await.unwrap();
    let url = sandbox.url();
    let phone = tempfile::tempdir().unwrap();
    let data = phone.path().to_path_buf();

    let run = |args: &'static [&'static str]| {
        let url = url.clone();
        let data = data.clone();
        tokio::task::spawn_blocking(move || carepass(&url, &data, args))
    };

    let out = run(&["whoami"]).await.unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no one is signed in"), "{}", text(&out.stderr));

    let out = run(&["login", "--phone", "13800000001", "--code", "000000"]).await.unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("verification code is wrong"), "{}", text(&out.stderr));

    let out = run(&["login", "--phone", "13800000001", "--code", "123456"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("signed in as 张伟 Zhang Wei (138****0001)"), "{}", text(&out.stdout));

    for args in [&["whoami"][..], &["whoami", "--offline"][..]] {
        let out = tokio::task::spawn_blocking({
            let (url, data) = (url.clone(), data.clone());
            move || carepass(&url, &data, args)
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Zhang Wei"));
    }

    let out = run(&["logout"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["whoami", "--offline"]).await.unwrap();
    assert!(!out.status.success());

    // Signing in again reuses the enrolled device (login by challenge).
    let out = run(&["login", "--phone", "13800000001", "--code", "123456"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Bills: two issued by the clinic, listed once each as JSON.
    let out = run(&["bills", "--json"]).await.unwrap();
    assert_eq!(text(&out.stdout).trim(), "[]");
    let clinic = carepass_core::io::net::PlatformClient::new(
        &url,
        std::sync::Arc::new(carepass_core::SystemClock),
        &Default::default(),
    )
    .unwrap();
    let mut issued = Vec::new();
    for _ in 0..2 {
        let request =
            carepass_sandbox::seed::demo_bill_request("13800000001", carepass_sandbox::seed::demo_bill_items());
        let bill: carepass_core::wire::Bill = clinic.post("admin/v1/bills", &request, Some(ADMIN)).await.unwrap();
        issued.push(bill);
    }
    for _ in 0..2 {
        let out = run(&["bills", "--json"]).await.unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 2, "each bill once, however often it is synced");
        for bill in &issued {
            let found = listed.iter().find(|b| b["id"] == bill.bill_id.as_str()).expect("listed");
            assert_eq!(found["state"], "pending");
            assert_eq!(found["total_fen"], bill.total_fen.0);
        }
    }
    let out = run(&["bills"]).await.unwrap();
    assert!(text(&out.stdout).contains("pending"), "{}", text(&out.stdout));

    // Pharmacies: ranked JSON, complete ones first by net cost; then a delivery order.
    let out = run(&["pharmacies", "--lat", "30.5952", "--lon", "114.2999", "--delivery", "--json"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ranked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ranked = ranked.as_array().unwrap();
    assert!(!ranked.is_empty());
    for q in ranked {
        for field in ["pharmacy_id", "complete", "net_cost_fen", "list_cost_fen", "delivery_fee_fen", "distance_m"] {
            assert!(q.get(field).is_some(), "{field} missing in {q}");
        }
        assert!(q["distance_m"].as_u64().unwrap() <= 5_000);
    }
    let complete: Vec<i64> =
        ranked.iter().take_while(|q| q["complete"] == true).map(|q| q["net_cost_fen"].as_i64().unwrap()).collect();
    assert!(complete.windows(2).all(|w| w[0] <= w[1]), "{complete:?}");
    let best = ranked[0]["pharmacy_id"].as_str().unwrap().to_string();
    let out = run(&["pharmacies", "--lat", "30.5952", "--lon", "114.2999", "--max-km", "2"]).await.unwrap();
    assert!(text(&out.stdout).starts_with("prescription rx_p1001_chronic"), "{}", text(&out.stdout));
    let order_args = vec![
        "order".to_string(),
        "--pharmacy".into(),
        best,
        "--rx".into(),
        "rx_p1001_chronic".into(),
        "--delivery".into(),
        "--address".into(),
        "示例市东湖路 18 号 3 栋 502 室".into(),
        "--phone".into(),
        "13800000001".into(),
    ];
    let out = tokio::task::spawn_blocking({
        let (url, data) = (url.clone(), data.clone());
        move || {
            let args: Vec<&str> = order_args.iter().map(String::as_str).collect();
            carepass(&url, &data, &args)
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first_line = text(&out.stdout).lines().next().unwrap_or_default().to_string();
    assert!(first_line.starts_with("ord_") && first_line.ends_with(" accepted"), "{first_line}");
    let out = run(&[
        "order",
        "--pharmacy",
        "PH0000001",
        "--rx",
        "rx_p1001_chronic",
        "--delivery",
        "--address",
        "x",
        "--phone",
        "1",
    ])
    .await
    .unwrap();
    assert!(!out.status.success(), "a bad address is refused");
    sandbox.stop().await;
}

#[test]
fn an_insecure_server_url_is_refused_with_a_clear_message() {
    let phone = tempfile::tempdir().unwrap();
    let out = carepass("http://example.com", phone.path(), &["whoami"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("refusing plain http"), "{}", text(&out.stderr));
}

#[test]
fn the_demo_ignores_the_users_settings_and_touches_nothing_of_theirs() {
    let home = tempfile::tempdir().unwrap();
    let their_data = home.path().join("my-phone");
    let their_config = home.path().join("my-config");
    let out = common::bare()
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env("CAREPASS_SERVER", "https://platform.invalid")
        .env("CAREPASS_DATA", &their_data)
        .env("CAREPASS_CONFIG", &their_config)
        .env("CAREPASS_SCANNER_TOKEN", "not-the-sandbox-token")
        .arg("demo")
        .output()
        .unwrap();
    assert!(out.status.success(), "stdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("Demo finished"));
    let left: Vec<_> = std::fs::read_dir(home.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "the demo wrote into the user's home: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_of_the_data_directory_opens_nothing_and_platform_text_cannot_drive_the_terminal() {
    let platform_dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        data_dir: platform_dir.path().into(),
        demo_seed: true,
        admin_token: Some(ADMIN.into()),
        durability: Default::default(),
        channel: Default::default(),
    };
    let sandbox = start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let url = sandbox.url();
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("phone");
    let run = |data: std::path::PathBuf, args: &'static [&'static str]| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || carepass(&url, &data, args))
    };
    let out = run(data.clone(), &["login", "--phone", "13800000001", "--code", "123456"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key_dir = common::config_for(&data).join("keys");
    assert!(key_dir.is_dir(), "the data key lives in the config directory");
    assert!(!data.join("keys").exists(), "no key inside the data directory");

    // A bill whose text carries terminal escapes (clear screen, a fake prompt, a bidi flip).
    let mut request =
        carepass_sandbox::seed::demo_bill_request("13800000001", carepass_sandbox::seed::demo_bill_items());
    request.hospital = "示例医院\u{1b}[2J\u{1b}]0;owned\u{7}\rcarepass$ \u{202e}gnp.exe".into();
    let clinic = carepass_core::io::net::PlatformClient::new(
        &url,
        std::sync::Arc::new(carepass_core::SystemClock),
        &Default::default(),
    )
    .unwrap();
    let _: carepass_core::wire::Bill = clinic.post("admin/v1/bills", &request, Some(ADMIN)).await.unwrap();
    let out = run(data.clone(), &["bills"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("示例医院"), "{shown}");
    for bad in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
        assert!(!shown.contains(bad), "{bad:?} reached the terminal: {shown:?}");
    }

    // The same data directory copied elsewhere, without its config directory: no session.
    let copy = scratch.path().join("copy");
    copy_dir(&data, &copy);
    let out = run(copy.clone(), &["whoami", "--offline"]).await.unwrap();
    assert!(!out.status.success(), "a copied data directory opened: {}", text(&out.stdout));
    let said = text(&out.stderr);
    assert!(said.contains("key"), "the refusal names the missing key: {said}");
    let out = run(copy, &["code", "--once"]).await.unwrap();
    assert!(!out.status.success(), "a copied data directory showed a code");
    // The original still opens.
    let out = run(data, &["whoami", "--offline"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    sandbox.stop().await;
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
