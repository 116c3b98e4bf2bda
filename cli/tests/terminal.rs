//! The `carepass` binary as a separate process: the demo journey, and login / whoami /
//! logout against a sandbox platform over loopback.

use std::net::SocketAddr;
use std::process::{Command, Output};

use carepass_sandbox::{start, SandboxConfig};

fn carepass(server: &str, data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carepass"))
        .env_remove("CAREPASS_SERVER")
        .env_remove("CAREPASS_DATA")
        .arg("--server")
        .arg(server)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("carepass runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

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
}

#[tokio::test(flavor = "multi_thread")]
async fn login_whoami_logout_from_the_terminal() {
    let platform_dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let sandbox =
        start(listen, SandboxConfig { data_dir: platform_dir.path().into(), demo_seed: true, admin_token: None })
            .await
            .unwrap();
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
    sandbox.stop().await;
}

#[test]
fn an_insecure_server_url_is_refused_with_a_clear_message() {
    let phone = tempfile::tempdir().unwrap();
    let out = carepass("http://example.com", phone.path(), &["whoami"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("refusing plain http"), "{}", text(&out.stderr));
}
