//! `carepass family …` and `--as`, as processes against a real sandbox: the son links his
//! father, the father sees the request and consents on his own "phone" (another data
//! directory), the son lists the father's bills and shows his code with `--as P1002`, a bad
//! `--as` and a bad relationship get clear errors, and the father's audit is listed verified.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use carepass_sandbox::{start, SandboxConfig};
use common::{carepass, text};

#[tokio::test(flavor = "multi_thread")]
async fn a_son_links_his_father_and_acts_for_him_from_the_terminal() {
    let platform_dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = SandboxConfig {
        data_dir: platform_dir.path().into(),
        demo_seed: true,
        admin_token: Some("family-admin".into()),
        durability: Default::default(),
        channel: Default::default(),
    };
    let sandbox = start(listen, config).await.unwrap();
    let url = sandbox.url();
    let phones = tempfile::tempdir().unwrap();
    let son: PathBuf = phones.path().join("son");
    let father: PathBuf = phones.path().join("father");
    let run = |data: &PathBuf, args: Vec<String>| {
        let (u, p) = (url.clone(), data.clone());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            carepass(&u, &p, &args)
        })
    };
    let args = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();

    for (data, phone) in [(&son, "13800000001"), (&father, "13800000002")] {
        let out = run(data, args(&format!("login --phone {phone} --code 123456"))).await.unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = run(&son, args("family link --phone 13800000002 --relationship uncle")).await.unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--relationship: \"uncle\" is not one of spouse, parent"),
        "{}",
        text(&out.stderr)
    );
    let out =
        run(&son, args("family link --phone 13800000002 --relationship parent --per-month 800.00")).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(line.contains("张建国 Zhang Jianguo (P1002) — you act for your parent; waiting for consent"), "{line}");
    let link = line.split_whitespace().next().unwrap().to_string();

    // Before consent, acting for him is refused with the reason.
    let out = run(&son, args("--as P1002 bills --offline")).await.unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("the link waits for the principal's consent"), "{}", text(&out.stderr));

    let out = run(&father, args("family requests")).await.unwrap();
    assert!(text(&out.stdout).contains(&link), "{}", text(&out.stdout));
    let out = run(&father, vec!["family".into(), "approve".into(), link.clone()]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("acts for you"), "{}", text(&out.stdout));

    let out = run(&son, args("family list")).await.unwrap();
    assert!(text(&out.stdout).contains("active: may show_code, view_bills, pay_bills"), "{}", text(&out.stdout));
    let out = run(&son, args("--as P1002 bills --json")).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(), serde_json::json!([]));
    let out = run(&son, args("--as P1002 code --purpose outpatient_settlement --once")).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("CP1:"), "{}", text(&out.stdout));
    let out = run(&son, args("--as P9 bills --offline")).await.unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not one this phone acts for"), "{}", text(&out.stderr));

    let out = run(&father, args("family audit")).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let audit = text(&out.stdout);
    assert!(
        audit.contains("chain verified") && audit.contains("link_requested") && audit.contains("link_activated"),
        "{audit}"
    );
    let out = run(&father, vec!["family".into(), "revoke".into(), link.clone()]).await.unwrap();
    assert!(text(&out.stdout).contains("revoked"), "{}", text(&out.stdout));
    let out = run(&son, args("--as P1002 bills")).await.unwrap();
    assert!(!out.status.success());
    sandbox.stop().await;
}
