//! Pending-bill figures, each against its baseline in the same run:
//! - push latency over 2,000 bills: the platform's commit of a bill (the instant its durable
//!   write returns) → the phone's live-stream listener called, p50, p99 and the worst case, as
//!   ratios to one plain HTTP round trip (`GET /healthz`) to the same server over loopback
//!   (`push_p99_vs_round_trip`); every tenth bill also through the clinic's route, POST sent →
//!   listener, for comparison;
//! - an inbox of 10,000 bills: bytes the sealed sled store uses on disk as a ratio to the raw
//!   JSON of those bills (`inbox_disk_vs_json`), and the time to open that store.
//!
//! Run with `cargo bench -p carepass-journeys --bench inbox` (`scripts/bench-inbox.sh`).

use std::time::{Duration, Instant};

use carepass_core::app::inbox::Inbox;
use carepass_core::domain::bills::InboxChange;
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::io::store::{Store, StoreOptions};
use carepass_core::wire::{Bill, BillItem, BillState, InboxEntry};
use carepass_core::Fen;
use carepass_journeys::*;

const ROUNDS: usize = 2_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn push_latency() {
    let platform = TestPlatform::start().await;
    let server = std::sync::Arc::clone(&platform.sandbox.as_ref().expect("running").platform);
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    app.enrol(PATIENT, CODE).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut updates = app.inbox_stream(None);
    updates.next().await.unwrap().unwrap(); // the list as it is
    let task = tokio::spawn(async move {
        while let Some(Ok(update)) = updates.next().await {
            if update.changes.iter().any(|c| matches!(c, InboxChange::Added(_))) {
                let _ = tx.send(Instant::now());
            }
        }
    });
    let client = admin_client(&platform.url());
    let request = carepass_sandbox::seed::demo_bill_request(PATIENT, carepass_sandbox::seed::demo_bill_items());
    // The clinic route's own steps (`POST /admin/v1/bills`: issue, commit, publish), called on
    // the running server so the instant its commit returns can be stamped; the bill then goes
    // out exactly as the route sends it.
    let (server, bill_request) = (&server, &request);
    let issue = || async move {
        let (_, change) = server.issue_bill(bill_request).unwrap();
        server.commit().await.unwrap();
        let committed = Instant::now();
        server.publish(change);
        committed
    };
    // Warm up: connections, the stream, the caches.
    for _ in 0..20 {
        let _: Bill = client.post("admin/v1/bills", &request, Some(ADMIN_TOKEN)).await.unwrap();
        rx.recv().await.unwrap();
        issue().await;
        rx.recv().await.unwrap();
        let _: serde_json::Value = client.get("healthz", None).await.unwrap();
    }
    let mut push = Vec::with_capacity(ROUNDS);
    let mut rtt = Vec::with_capacity(ROUNDS);
    let mut post = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let t0 = Instant::now();
        let _: serde_json::Value = client.get("healthz", None).await.unwrap();
        rtt.push(t0.elapsed());
        if round % 10 == 0 {
            // Every tenth bill also through the clinic's HTTP route, POST sent -> listener.
            let t0 = Instant::now();
            let _: Bill = client.post("admin/v1/bills", &request, Some(ADMIN_TOKEN)).await.unwrap();
            post.push(rx.recv().await.unwrap().duration_since(t0));
        }
        let committed = issue().await;
        let called = rx.recv().await.unwrap();
        push.push(called.duration_since(committed));
    }
    task.abort();
    push.sort();
    rtt.sort();
    post.sort();
    let (p50, p99, worst) = (percentile(&push, 50.0), percentile(&push, 99.0), push[push.len() - 1]);
    let (r50, r99, rworst) = (percentile(&rtt, 50.0), percentile(&rtt, 99.0), rtt[rtt.len() - 1]);
    println!("# push (platform commit -> listener called), {ROUNDS} bills: p50 {p50:?}, p99 {p99:?}, worst {worst:?}");
    println!("# plain round trip (GET /healthz), {ROUNDS} requests: p50 {r50:?}, p99 {r99:?}, worst {rworst:?}");
    println!(
        "# clinic POST sent -> listener called, {} bills: p50 {:?}, p99 {:?}",
        post.len(),
        percentile(&post, 50.0),
        percentile(&post, 99.0)
    );
    println!("push_p50_vs_round_trip: {:.2}x", p50.as_secs_f64() / r50.as_secs_f64());
    println!("push_p99_vs_round_trip: {:.2}x", p99.as_secs_f64() / r99.as_secs_f64());
    println!("push_worst_vs_round_trip_worst: {:.2}x", worst.as_secs_f64() / rworst.as_secs_f64());
}

fn demo_bill(i: usize) -> Bill {
    let items: Vec<BillItem> = carepass_sandbox::seed::demo_bill_items()
        .into_iter()
        .map(|n| BillItem {
            amount_fen: Fen(n.unit_price_fen.0 * n.quantity as i64),
            item_code: n.item_code,
            name: n.name,
            category: n.category,
            quantity: n.quantity,
            unit_price_fen: n.unit_price_fen,
        })
        .collect();
    Bill {
        bill_id: format!("bill_{i:016x}"),
        person_id: "P1001".into(),
        visit_id: format!("visit_{i:012x}"),
        hospital: "示例市第一人民医院 Demo City First People's Hospital".into(),
        department: "心血管内科 Cardiology".into(),
        doctor: "王医生 Dr Wang".into(),
        total_fen: Fen(items.iter().map(|i| i.amount_fen.0).sum()),
        items,
        created_at_ms: 1_795_435_200_000 + i as i64 * 1000,
        due_at_ms: 1_795_521_600_000 + i as i64 * 1000,
        state: BillState::Pending,
        updated_at_ms: 1_795_435_200_000 + i as i64 * 1000,
        visit_type: Default::default(),
        payment: None,
        counter: None,
    }
}

fn inbox_disk() {
    const BILLS: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let bills: Vec<Bill> = (0..BILLS).map(demo_bill).collect();
    let json_bytes: usize = bills.iter().map(|b| serde_json::to_vec(b).unwrap().len()).sum();
    {
        let store = Store::open(dir.path(), &secrets, StoreOptions::default()).unwrap();
        let held = store.bulk.hold().unwrap();
        let inbox = Inbox::new(&held, "P1001");
        for (page_no, page) in bills.chunks(200).enumerate() {
            let entries: Vec<InboxEntry> = page
                .iter()
                .enumerate()
                .map(|(i, b)| InboxEntry { seq: (page_no * 200 + i + 1) as u64, bill: b.clone() })
                .collect();
            let cursor = entries.last().unwrap().seq;
            inbox.apply_page(&entries, cursor).unwrap();
        }
        held.flush().unwrap();
    }
    let disk: u64 = walk(dir.path());
    let t0 = Instant::now();
    let store = Store::open(dir.path(), &secrets, StoreOptions::default()).unwrap();
    let held = store.bulk.hold().unwrap();
    let opened = t0.elapsed();
    let t0 = Instant::now();
    let listed = Inbox::new(&held, "P1001").bills("P1001", 0).unwrap().len();
    let list_time = t0.elapsed();
    assert_eq!(listed, BILLS);
    println!("# inbox of {BILLS} bills: raw JSON {json_bytes} bytes, store on disk {disk} bytes");
    println!("# open the store: {opened:?}; list all {BILLS} bills (decrypt + decode): {list_time:?}");
    println!("inbox_disk_vs_json: {:.2}x", disk as f64 / json_bytes as f64);
    println!("inbox_open_ms: {:.1}", opened.as_secs_f64() * 1000.0);
}

/// Bytes of every file under `dir`.
fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                walk(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing useful here.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(push_latency());
    inbox_disk();
}
