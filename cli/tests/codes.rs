//! `carepass code` and `carepass scan` as processes: the printed payload and QR version, the
//! PNG decoded by an independent reader (zxing-cpp) to exactly that payload, and the scanner's
//! verdicts with their exit status.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use carepass_sandbox::{start, SandboxConfig};
use common::{carepass, text};

const TOKEN: &str = "codes-test-scanner";

/// Decodes a PNG with zxing-cpp (installed by scripts/test-all.sh) and returns the texts.
fn decode_png(png: &Path) -> Vec<String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/qr/decode_qr.py");
    let out = Command::new("python3").arg(script).arg(png).output().expect("python3 runs");
    assert!(out.status.success(), "zxing-cpp found no QR code: {}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn once_prints_the_payload_and_a_png_any_reader_decodes() {
    let platform_dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = SandboxConfig {
        data_dir: platform_dir.path().into(),
        demo_seed: true,
        admin_token: Some(TOKEN.into()),
        durability: Default::default(),
        channel: Default::default(),
    };
    let sandbox = start(listen, config).await.unwrap();
    let url = sandbox.url();
    let phone = tempfile::tempdir().unwrap();
    let data = phone.path().to_path_buf();

    let run = |args: Vec<String>| {
        let (url, data) = (url.clone(), data.clone());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            carepass(&url, &data, &args)
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let out = run(args(&["login", "--phone", "13800000001", "--code", "123456"])).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    for (offline, max_version) in [(false, 7u32), (true, 10u32)] {
        let png = phone.path().join(format!("code-{offline}.png"));
        let mut a = args(&["code", "--purpose", "pharmacy_purchase", "--once", "--png"]);
        a.push(png.to_string_lossy().into_owned());
        if offline {
            a.push("--offline".into());
        }
        let out = run(a).await.unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{stdout}");
        let payload = lines[0];
        assert!(payload.starts_with("CP1:"), "{payload}");
        let version: u32 = lines[1].strip_prefix("qr-version ").unwrap().parse().unwrap();
        assert!(version <= max_version, "offline={offline}: version {version}");
        let png_for_reader = png.clone();
        let decoded = tokio::task::spawn_blocking(move || decode_png(&png_for_reader)).await.unwrap();
        assert_eq!(decoded, vec![payload.to_string()], "the PNG decodes to exactly the printed payload");

        // The scanner accepts it once (exit 0) and refuses the replay (exit 1).
        let scan = args(&["scan", payload, "--purpose", "pharmacy_purchase", "--scanner-token", TOKEN]);
        let out = run(scan.clone()).await.unwrap();
        assert!(out.status.success(), "{} {}", text(&out.stdout), text(&out.stderr));
        assert!(text(&out.stdout).starts_with("accepted: 张伟 Zhang Wei (P1001)"), "{}", text(&out.stdout));
        let out = run(scan).await.unwrap();
        assert!(!out.status.success());
        assert_eq!(text(&out.stdout).trim(), "rejected: replayed");
    }

    let out =
        run(args(&["scan", "CP1:NOT-A-CODE", "--purpose", "registration", "--scanner-token", TOKEN])).await.unwrap();
    assert!(!out.status.success());
    assert_eq!(text(&out.stdout).trim(), "rejected: malformed");

    let out = run(args(&["code", "--purpose", "dentistry", "--once"])).await.unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown purpose"), "{}", text(&out.stderr));
    sandbox.stop().await;
}
