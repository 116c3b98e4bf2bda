//! Quiet pipes: a command whose output pipe is closed (`carepass bills | head -1`, the reader
//! gone before anything is written) ends quietly with the status of a SIGPIPE death (141) —
//! never the panic "failed printing to stdout: Broken pipe" with exit code 101.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;

use carepass_sandbox::{start, SandboxConfig};
use common::{carepass, command, text};

#[tokio::test(flavor = "multi_thread")]
async fn every_command_ends_quietly_when_its_output_pipe_is_closed() {
    let platform_dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = SandboxConfig {
        data_dir: platform_dir.path().into(),
        demo_seed: true,
        admin_token: Some("pipes-admin".into()),
        durability: Default::default(),
        channel: Default::default(),
    };
    let sandbox = start(listen, config).await.unwrap();
    let url = sandbox.url();
    let phone = tempfile::tempdir().unwrap();
    let (u, p) = (url.clone(), phone.path().to_path_buf());
    let login =
        tokio::task::spawn_blocking(move || carepass(&u, &p, &["login", "--phone", "13800000001", "--code", "123456"]))
            .await
            .unwrap();
    assert!(login.status.success(), "{}", text(&login.stderr));

    let commands: &[&[&str]] = &[
        &["whoami"],
        &["bills", "--json"],
        &["code", "--purpose", "outpatient_settlement", "--once"],
        &["pharmacies", "--lat", "30.5952", "--lon", "114.2999", "--delivery"],
        &["payments", "--offline"],
        &["--help"],
    ];
    for args in commands {
        let (u, p) = (url.clone(), phone.path().to_path_buf());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut child =
                command(&u, &p, &refs).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("carepass runs");
            // The reader goes away before the command writes anything.
            drop(child.stdout.take());
            (refs.join(" "), child.wait_with_output().unwrap())
        })
        .await
        .unwrap();
        let (what, out) = out;
        let stderr = text(&out.stderr);
        assert!(
            out.status.success() || out.status.code() == Some(141),
            "`carepass {what}` with a closed pipe: {:?}, stderr: {stderr}",
            out.status
        );
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "`carepass {what}`: {stderr}");
    }
}
