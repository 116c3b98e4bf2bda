//! Cold start, measured in fresh processes (`scripts/bench-coldstart.sh`):
//!
//! - `open_to_first_code`: a new process opens the core on an enrolled data directory with
//!   no network (the platform is stopped) and makes its first displayable code (signature +
//!   QR matrix); time from `CarePass::open` to the code, and the process's resident memory
//!   after open and after the code;
//! - the baseline, in another new process: a bare sled open of the same directory's database
//!   (what the core did at open before ADR 0005), with its time and resident memory;
//! - the extension path: resident memory after opening the core with `extension = true`.
//!
//! Each measurement runs `ROUNDS` times; medians and spreads are printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use carepass_core::domain::voucher::Purpose;
use carepass_core::io::secrets::FileSecretStore;
use carepass_core::{CarePass, Config, SystemClock};

const ROUNDS: usize = 15;

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn config(url: &str, data: &Path, extension: bool) -> Config {
    Config { extension, ..Config::new(url, data.to_path_buf(), "terminal") }
}

/// The child: one measurement, printed as `key value` lines.
fn measure(what: &str, url: &str, data: &Path) {
    let before = rss_kb();
    match what {
        "open" | "extension" => {
            let secrets = FileSecretStore::new(data.join("keys"));
            let t0 = Instant::now();
            let app = CarePass::open(config(url, data, what == "extension"), &secrets, None, Arc::new(SystemClock))
                .expect("the core opens");
            let opened = t0.elapsed();
            let after_open = rss_kb();
            let code = app.current_code(Purpose::OutpatientSettlement, false, None).expect("a code, no network");
            let first_code = t0.elapsed();
            assert!(code.text.starts_with("CP1:"));
            println!("open_us {}", opened.as_micros());
            println!("first_code_us {}", first_code.as_micros());
            println!("rss_before_kb {before}");
            println!("rss_after_open_kb {after_open}");
            println!("rss_after_code_kb {}", rss_kb());
        }
        "sled" => {
            let t0 = Instant::now();
            let db = sled::Config::new()
                .path(data.join("db"))
                .cache_capacity(carepass_core::io::store::bulk::CACHE_BYTES)
                .mode(sled::Mode::LowSpace)
                .open()
                .expect("sled opens");
            let opened = t0.elapsed();
            println!("open_us {}", opened.as_micros());
            println!("rss_before_kb {before}");
            println!("rss_after_open_kb {}", rss_kb());
            drop(db);
        }
        other => panic!("unknown measurement {other}"),
    }
}

fn run_child(what: &str, url: &str, data: &Path) -> Vec<(String, u64)> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--measure", what, url])
        .arg(data)
        .output()
        .expect("the child runs");
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(k, v)| (k.to_string(), v.parse().unwrap_or(0))))
        .collect()
}

fn summary(runs: &[Vec<(String, u64)>], key: &str) -> (u64, u64, u64) {
    let mut values: Vec<u64> = runs.iter().filter_map(|r| r.iter().find(|(k, _)| k == key).map(|(_, v)| *v)).collect();
    values.sort_unstable();
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--measure") {
        measure(&args[2], &args[3], &PathBuf::from(&args[4]));
        return;
    }
    // Set up an enrolled phone with some bills, then stop the platform.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let url = runtime.block_on(async {
        let mut platform = carepass_journeys::TestPlatform::start().await;
        let url = platform.url();
        let secrets = FileSecretStore::new(phone_dir.path().join("keys"));
        let app = CarePass::open(config(&url, phone_dir.path(), false), &secrets, None, Arc::new(SystemClock)).unwrap();
        app.enrol(carepass_journeys::PATIENT, carepass_journeys::CODE).await.unwrap();
        for _ in 0..50 {
            platform.issue_bill(carepass_journeys::PATIENT, None).await;
        }
        app.sync_inbox().await.unwrap();
        app.close();
        drop(app);
        platform.stop().await;
        url
    });
    let open: Vec<_> = (0..ROUNDS).map(|_| run_child("open", &url, phone_dir.path())).collect();
    let sled: Vec<_> = (0..ROUNDS).map(|_| run_child("sled", &url, phone_dir.path())).collect();
    let ext: Vec<_> = (0..ROUNDS).map(|_| run_child("extension", &url, phone_dir.path())).collect();
    let show = |label: &str, runs: &[Vec<(String, u64)>], key: &str, unit: &str| {
        let (median, low, high) = summary(runs, key);
        let scale = |v: u64| if unit == "ms" { v as f64 / 1000.0 } else { v as f64 / 1024.0 };
        println!("{label}: {:.2} {unit} (median of {ROUNDS}; {:.2}–{:.2})", scale(median), scale(low), scale(high));
        median
    };
    println!("# {ROUNDS} fresh processes each, no network, an enrolled phone with 50 bills");
    let first_code = show("open_to_first_code", &open, "first_code_us", "ms");
    show("core_open", &open, "open_us", "ms");
    let core_rss = show("core_rss_after_open", &open, "rss_after_open_kb", "MB");
    show("core_rss_after_first_code", &open, "rss_after_code_kb", "MB");
    let sled_open = show("baseline_bare_sled_open", &sled, "open_us", "ms");
    let sled_rss = show("baseline_bare_sled_rss_after_open", &sled, "rss_after_open_kb", "MB");
    show("extension_rss_after_open", &ext, "rss_after_open_kb", "MB");
    println!(
        "open_to_first_code_vs_bare_sled_open: {:.2}x; rss_core_vs_bare_sled: {:.2}x",
        first_code as f64 / sled_open as f64,
        core_rss as f64 / sled_rss as f64
    );
    println!("goals: open → first code ≤ 10 ms; resident memory after open ≤ 10 MB");
}
