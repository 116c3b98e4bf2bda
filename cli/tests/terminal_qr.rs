//! The live code in the terminal fits the terminal and decodes: for the online and the
//! offline profile, in an 80×24 and a 120×40 terminal, the screen the live view draws is
//! captured, rendered to an image as a dark-background terminal shows it
//! (`tests/qr/render_terminal.py`, 12×24-pixel cells), decoded by zxing-cpp, and the decoded
//! code is accepted by the platform's scanner. A terminal too small for the code is told so.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use carepass_sandbox::{start, SandboxConfig};
use common::{carepass, command, text};

const TOKEN: &str = "terminal-qr-scanner";

/// The last screen the live view drew within `wait`, with COLUMNS×LINES set.
fn live_screen(server: &str, data: &Path, offline: bool, columns: u32, lines: u32) -> String {
    let mut args = vec!["code", "--purpose", "outpatient_settlement"];
    if offline {
        args.push("--offline");
    }
    let mut child = command(server, data, &args)
        .env("COLUMNS", columns.to_string())
        .env("LINES", lines.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("carepass runs");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(chunk);
        }
        let so_far = text(&seen);
        if so_far.contains("next code in") || so_far.contains("this code needs at least") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let all = text(&seen);
    all.rsplit("\x1b[2J\x1b[H").next().unwrap_or_default().to_string()
}

fn decode(screen_code: &str, dir: &Path) -> Vec<String> {
    let txt = dir.join("screen.txt");
    let png = dir.join("screen.png");
    std::fs::write(&txt, screen_code).unwrap();
    let qr = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/qr");
    let out = Command::new("python3").arg(qr.join("render_terminal.py")).arg(&txt).arg(&png).output().unwrap();
    assert!(out.status.success(), "render: {}", text(&out.stderr));
    let out = Command::new("python3").arg(qr.join("decode_qr.py")).arg(&png).output().unwrap();
    assert!(out.status.success(), "zxing-cpp found no QR code in the {} screen", dir.display());
    text(&out.stdout).lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_code_fits_80x24_and_larger_terminals_and_decodes_in_both_profiles() {
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
    let (u, d) = (url.clone(), data.clone());
    tokio::task::spawn_blocking(move || {
        let out = carepass(&u, &d, &["login", "--phone", "13800000001", "--code", "123456"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        for offline in [false, true] {
            for (columns, lines) in [(80u32, 24u32), (120, 40)] {
                let screen = live_screen(&u, &d, offline, columns, lines);
                let code_part: String =
                    screen.lines().take_while(|l| !l.contains("QR version")).collect::<Vec<_>>().join("\n");
                let drawn_lines = code_part.lines().count() as u32;
                let widest = code_part.lines().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
                let what = format!("{} profile, {columns}×{lines}", if offline { "offline" } else { "online" });
                assert!(drawn_lines > 10, "{what}: no code drawn: {screen:?}");
                assert!(drawn_lines + 2 <= lines, "{what}: {drawn_lines} lines of code + caption");
                assert!(widest <= columns, "{what}: {widest} columns");
                let sextants = code_part.chars().any(|c| ('\u{1FB00}'..='\u{1FB3B}').contains(&c));
                // Half blocks (square modules) where they fit; sextants for the offline code at 80×24.
                if lines == 40 {
                    assert!(!sextants, "{what}: half blocks fit");
                }
                if offline && lines == 24 {
                    assert!(sextants, "{what}: only sextants fit");
                }
                let dir = tempfile::tempdir().unwrap();
                let decoded = decode(&code_part, dir.path());
                assert_eq!(decoded.len(), 1, "{what}: {decoded:?}");
                assert!(decoded[0].starts_with("CP1:"), "{what}: {decoded:?}");
                let scan = carepass(
                    &u,
                    &d,
                    &["scan", &decoded[0], "--purpose", "outpatient_settlement", "--scanner-token", TOKEN],
                );
                assert!(text(&scan.stdout).starts_with("accepted"), "{what}: {}", text(&scan.stdout));
                println!("figures: {what}: {drawn_lines} lines × {widest} columns, decoded by zxing-cpp, accepted");
            }
        }
        // Too small for the offline code: said, with the size it needs.
        let screen = live_screen(&u, &d, true, 30, 12);
        assert!(screen.contains("the terminal is 30×12; this code needs at least 31×"), "{screen}");
    })
    .await
    .unwrap();
}
