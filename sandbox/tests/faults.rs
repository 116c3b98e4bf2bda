//! Nothing lost across crashes: the sandbox binary is killed with SIGKILL at random moments
//! while a clinic issues bills, cancels some, and a phone pulls; then it restarts on the same
//! data. After every restart:
//! - every write the platform confirmed (a bill issued, a cancellation) is still there;
//! - the phone that pulled across the crashes holds exactly what a fresh phone pulling the
//!   whole log from scratch holds: no bill missing, duplicated or phantom, each in its state.
//!
//! The counts are printed (`cargo test -p carepass-sandbox --test faults -- --nocapture`).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carepass_core::io::net::{ClientOptions, PlatformClient};
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::{Bill, BillState};
use carepass_core::{CarePass, Config, SystemClock};

const ADMIN: &str = "fault-test-admin";
const PATIENT: &str = "13800000001";
const ROUNDS: u64 = 6;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The sandbox binary serving `data` on `addr`; returns once it listens.
fn serve(data: &Path, addr: SocketAddr) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_carepass-sandbox"))
        .args(["serve", "--listen", &addr.to_string(), "--seed", "demo", "--admin-token", ADMIN, "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the sandbox starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on"), "the sandbox said {line:?}");
    child
}

fn kill9(child: &mut Child) {
    // SIGKILL: no shutdown, no flush, as a power cut would.
    child.kill().unwrap();
    child.wait().unwrap();
}

fn quick() -> ClientOptions {
    ClientOptions { timeout: Duration::from_secs(5), connect_timeout: Duration::from_millis(500), ..Default::default() }
}

fn phone(url: &str, dir: &Path, secrets: &MemorySecretStore) -> Arc<CarePass> {
    let config = Config { client: quick(), ..Config::new(url, dir.to_path_buf(), "terminal") };
    CarePass::open(config, secrets, None, Arc::new(SystemClock)).unwrap()
}

/// What the clinic was told: bills issued and cancellations confirmed.
#[derive(Default)]
struct Confirmed {
    issued: HashSet<String>,
    /// In the order the clinic was told.
    order: Vec<String>,
    cancelled: HashSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_moments_loses_no_confirmed_write_and_the_phone_matches_the_platform() {
    let platform_dir = tempfile::tempdir().unwrap();
    let data = platform_dir.path().join("platform");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let mut server = serve(&data, addr);
    let phone_dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&url, phone_dir.path(), &secrets);
    app.enrol(PATIENT, "123456").await.unwrap();
    let confirmed = Arc::new(Mutex::new(Confirmed::default()));
    let mut rng = 0x0dd_f00d_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };

    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        // The clinic issues bills and cancels some of those it was told about.
        let clinic = {
            let (url, confirmed, stop) = (url.clone(), confirmed.clone(), stop.clone());
            tokio::spawn(async move {
                let client = PlatformClient::new(&url, Arc::new(SystemClock), &quick()).unwrap();
                let request =
                    carepass_sandbox::seed::demo_bill_request(PATIENT, carepass_sandbox::seed::demo_bill_items());
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    if n.is_multiple_of(3) {
                        // One of the latest bills not cancelled yet.
                        let victim = {
                            let c = confirmed.lock().unwrap();
                            c.order.iter().rev().take(5).find(|id| !c.cancelled.contains(*id)).cloned()
                        };
                        if let Some(bill_id) = victim {
                            let path = format!("admin/v1/bills/{bill_id}/cancel");
                            if let Ok(b) = client.post::<_, Bill>(&path, &serde_json::json!({}), Some(ADMIN)).await {
                                assert_eq!(b.state, BillState::Cancelled);
                                confirmed.lock().unwrap().cancelled.insert(bill_id);
                            }
                        }
                        continue;
                    }
                    if let Ok(bill) = client.post::<_, Bill>("admin/v1/bills", &request, Some(ADMIN)).await {
                        let mut c = confirmed.lock().unwrap();
                        c.issued.insert(bill.bill_id.clone());
                        c.order.push(bill.bill_id);
                    }
                }
            })
        };
        // The phone pulls all the while.
        let puller = {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let _ = app.sync_inbox().await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(150 + next(900))).await;
        kill9(&mut server);
        stop.store(true, Ordering::SeqCst);
        clinic.await.unwrap();
        puller.await.unwrap();
        server = serve(&data, addr);
        eprintln!("round {round}: killed and restarted");
    }

    // After the last restart: the phone syncs; a fresh phone pulls the whole log.
    app.sync_inbox().await.unwrap();
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = phone(&url, fresh_dir.path(), &MemorySecretStore::new());
    fresh.enrol(PATIENT, "123456").await.unwrap();
    fresh.sync_inbox().await.unwrap();
    let on_phone: Vec<Bill> = app.bills(None).unwrap();
    let at_platform: Vec<Bill> = fresh.bills(None).unwrap();
    let phone_states: HashMap<&str, BillState> = on_phone.iter().map(|b| (b.bill_id.as_str(), b.state)).collect();
    let platform_states: HashMap<&str, BillState> = at_platform.iter().map(|b| (b.bill_id.as_str(), b.state)).collect();
    assert_eq!(phone_states.len(), on_phone.len(), "a bill listed twice on the phone");

    let confirmed = confirmed.lock().unwrap();
    let lost: Vec<&String> = confirmed.issued.iter().filter(|id| !platform_states.contains_key(id.as_str())).collect();
    let uncancelled: Vec<&String> = confirmed
        .cancelled
        .iter()
        .filter(|id| platform_states.get(id.as_str()) != Some(&BillState::Cancelled))
        .collect();
    let missing: Vec<&&str> = platform_states.keys().filter(|id| !phone_states.contains_key(*id)).collect();
    let phantom: Vec<&&str> = phone_states.keys().filter(|id| !platform_states.contains_key(*id)).collect();
    let wrong_state: Vec<&&str> =
        phone_states.iter().filter(|(id, s)| platform_states.get(*id) != Some(s)).map(|(id, _)| id).collect();
    eprintln!(
        "{ROUNDS} kills: {} bills and {} cancellations confirmed; platform holds {} bills; \
         lost {}, cancellations lost {}, on the phone missing {}, phantom {}, in the wrong state {}",
        confirmed.issued.len(),
        confirmed.cancelled.len(),
        platform_states.len(),
        lost.len(),
        uncancelled.len(),
        missing.len(),
        phantom.len(),
        wrong_state.len()
    );
    assert!(confirmed.issued.len() >= 20, "the test issued too few bills to mean anything");
    assert!(confirmed.cancelled.len() >= 5, "the test cancelled too few bills to mean anything");
    assert!(lost.is_empty(), "confirmed bills lost: {lost:?}");
    assert!(uncancelled.is_empty(), "confirmed cancellations lost: {uncancelled:?}");
    assert!(missing.is_empty(), "bills the phone never got: {missing:?}");
    assert!(phantom.is_empty(), "bills on the phone the platform does not have: {phantom:?}");
    assert!(wrong_state.is_empty(), "bills in another state on the phone: {wrong_state:?}");
    kill9(&mut server);
}

#[tokio::test]
async fn sigterm_ends_live_streams_and_the_sandbox_exits_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut server = serve(&dir.path().join("platform"), addr);
    let url = format!("http://{addr}");
    let secrets = MemorySecretStore::new();
    let phone_dir = tempfile::tempdir().unwrap();
    let app = phone(&url, phone_dir.path(), &secrets);
    app.enrol(PATIENT, "123456").await.unwrap();
    // A live stream, open (its headers are in) when the signal comes.
    let stored: serde_json::Value = app.store().vault.get("session.P1001").unwrap().unwrap();
    let token = stored["tokens"]["access_token"].as_str().unwrap().to_string();
    let client = PlatformClient::new(&url, Arc::new(SystemClock), &quick()).unwrap();
    let mut live =
        client.open_stream("v1/inbox/stream?after=0", carepass_core::io::net::Auth::bearer(&token)).await.unwrap();
    let started = std::time::Instant::now();
    Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if let Some(status) = server.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = server.kill();
        None
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let status = status.unwrap_or_else(|| panic!("the sandbox still ran 5 s after SIGTERM"));
    // The stream was ended, not left hanging.
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match live.chunk().await {
                Ok(Some(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the live stream still hung after the sandbox exited");
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
}
