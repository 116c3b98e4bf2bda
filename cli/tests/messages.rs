//! Messages that say what to do: a server URL without a scheme suggests one, https against the
//! plain-http sandbox says TLS, an unreachable platform names its URL, and a data path that is
//! not a directory is named.

mod common;

use std::net::SocketAddr;

use carepass_sandbox::{start, SandboxConfig};
use common::{carepass, text};

fn login(server: &str, data: &std::path::Path) -> String {
    let out = carepass(server, data, &["login", "--phone", "13800000001", "--code", "123456"]);
    assert!(!out.status.success(), "{server}: {}", text(&out.stdout));
    assert!(!text(&out.stderr).contains("panicked"));
    text(&out.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn url_tls_network_and_path_mistakes_are_named_with_the_fix() {
    let phone = tempfile::tempdir().unwrap();
    let data = phone.path().join("phone");
    for bare in ["127.0.0.1:8787", "localhost:8787"] {
        let (b, d) = (bare.to_string(), data.clone());
        let said = tokio::task::spawn_blocking(move || login(&b, &d)).await.unwrap();
        assert!(said.contains(&format!("\"{bare}\" has no scheme: write https://{bare} (or http://{bare}")), "{said}");
    }

    let platform_dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = SandboxConfig {
        data_dir: platform_dir.path().into(),
        demo_seed: true,
        admin_token: None,
        durability: Default::default(),
        channel: Default::default(),
    };
    let sandbox = start(listen, config).await.unwrap();
    let https = sandbox.url().replace("http://", "https://");
    let (u, d) = (https.clone(), data.clone());
    let said = tokio::task::spawn_blocking(move || login(&u, &d)).await.unwrap();
    assert!(said.contains(&format!("the TLS handshake with {https} failed: is it a plain http server?")), "{said}");

    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (u, d) = (closed.clone(), data.clone());
    let said = tokio::task::spawn_blocking(move || login(&u, &d)).await.unwrap();
    assert!(said.contains(&format!("cannot connect to the platform at {closed}")), "{said}");

    // A data path that is a file.
    let file = phone.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let (u, f) = (sandbox.url(), file.clone());
    let said = tokio::task::spawn_blocking(move || login(&u, &f)).await.unwrap();
    assert!(said.contains(&file.display().to_string()), "{said}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory", "the file is left alone");
}

/// One line for each state: signed out, `bills` says so once with what to do; `logout` with
/// the platform gone says the platform did not confirm; a contradictory order is refused.
#[tokio::test(flavor = "multi_thread")]
async fn signed_out_platform_down_and_contradictory_flags_each_get_one_clear_line() {
    let phone = tempfile::tempdir().unwrap();
    let data = phone.path().join("phone");
    let platform_dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = SandboxConfig {
        data_dir: platform_dir.path().into(),
        demo_seed: true,
        admin_token: None,
        durability: Default::default(),
        channel: Default::default(),
    };
    let sandbox = start(listen, config).await.unwrap();
    let url = sandbox.url();
    let (u, d) = (url.clone(), data.clone());
    tokio::task::spawn_blocking(move || {
        let out = carepass(&u, &d, &["bills"]);
        assert!(!out.status.success());
        assert_eq!(text(&out.stderr).lines().count(), 1, "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("no one is signed in: carepass login"), "{}", text(&out.stderr));
        let out = carepass(&u, &d, &["order", "--pharmacy", "PH0000237", "--pickup", "--address", "x"]);
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("'--pickup' cannot be used with '--address"), "{}", text(&out.stderr));
        let out = carepass(&u, &d, &["login", "--phone", "13800000001", "--code", "123456"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    })
    .await
    .unwrap();
    drop(sandbox);
    let (u, d) = (url.clone(), data.clone());
    tokio::task::spawn_blocking(move || {
        let out = carepass(&u, &d, &["logout"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("the platform did not confirm the session's end"), "{}", text(&out.stdout));
    })
    .await
    .unwrap();
}
