//! Pending-bill journeys over loopback: the clinic issues bills at the sandbox; they reach the
//! phone's inbox by cursor sync, by the live stream, and by doorbells handed over from the
//! push relay; forged, stale and misdirected doorbells are refused; and the reliability cases:
//! 1,000 bills while the stream is cut at random points, duplicated and reordered doorbells,
//! doorbells before the bill is readable, and the app killed between doorbell and pull.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carepass_core::domain::bills::doorbell::DoorbellError;
use carepass_core::domain::bills::{InboxChange, PushOutcome};
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::BillState;
use carepass_core::{CarePass, CoreError, SystemClock};
use carepass_journeys::*;

async fn patient(platform: &TestPlatform, dir: &std::path::Path, secrets: &MemorySecretStore) -> Arc<CarePass> {
    let app = phone(&platform.url(), dir, secrets);
    app.enrol(PATIENT, CODE).await.unwrap();
    app
}

fn data(push: &carepass_core::wire::RelayedPush) -> HashMap<String, String> {
    push.data.clone().into_iter().collect()
}

/// Runs the core's inbox stream in the background, collecting every change it announces;
/// returns once the stream has handed over its first update (the list as it is).
async fn watch(app: Arc<CarePass>) -> (Arc<Mutex<Vec<InboxChange>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let mut updates = app.inbox_stream(None);
    assert!(updates.next().await.expect("a first update").expect("the stream starts").changes.is_empty());
    let task = tokio::spawn(async move {
        while let Some(Ok(update)) = updates.next().await {
            sink.lock().unwrap().extend(update.changes);
        }
    });
    (seen, task)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn an_issued_bill_is_pulled_by_cursor_and_listed_once() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), &MemorySecretStore::new()).await;
    let bill = platform.issue_bill(PATIENT, None).await;
    assert_eq!(bill.total_fen, carepass_core::Fen(2_500 + 6_000 + 1_500 + 2 * 1_680 + 2 * 2_350 + 4 * 3_290 + 19_900));

    let changes = app.sync_inbox().await.unwrap();
    assert_eq!(changes, vec![InboxChange::Added(bill.clone())]);
    assert_eq!(app.sync_inbox().await.unwrap(), vec![], "nothing new the second time");
    let bills = app.bills(None).unwrap();
    assert_eq!(bills.len(), 1);
    assert_eq!(bills[0], bill);
    // Another person's inbox is empty.
    let other = tempfile::tempdir().unwrap();
    let parent = phone(&platform.url(), other.path(), &MemorySecretStore::new());
    parent.enrol(PARENT, CODE).await.unwrap();
    assert!(parent.sync_inbox().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_live_stream_delivers_a_new_bill_and_its_cancellation() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), &MemorySecretStore::new()).await;
    let (seen, task) = watch(app.clone()).await;
    let bill = platform.issue_bill(PATIENT, None).await;
    wait_for("the bill on the stream", || !seen.lock().unwrap().is_empty()).await;
    assert_eq!(seen.lock().unwrap()[0], InboxChange::Added(bill.clone()));

    let _: serde_json::Value = admin_client(&platform.url())
        .post(&format!("admin/v1/bills/{}/cancel", bill.bill_id), &serde_json::json!({}), Some(ADMIN_TOKEN))
        .await
        .unwrap();
    wait_for("the cancellation", || seen.lock().unwrap().len() == 2).await;
    match &seen.lock().unwrap()[1] {
        InboxChange::Updated(b) => assert_eq!(b.state, BillState::Cancelled),
        other => panic!("expected an update, got {other:?}"),
    }
    assert_eq!(app.bills(None).unwrap()[0].state, BillState::Cancelled);
    task.abort();
}

#[tokio::test]
async fn a_relayed_doorbell_pulls_the_bill_and_a_duplicate_is_already_seen() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), &MemorySecretStore::new()).await;
    app.register_push_token("fcm", "fcm-token-of-zhang-wei").await.unwrap();
    let bill = platform.issue_bill(PATIENT, None).await;
    let outbox = platform.outbox(0).await;
    assert_eq!(outbox.pushes.len(), 1);
    let push = &outbox.pushes[0].push;
    assert_eq!((push.service.as_str(), push.token.as_str()), ("fcm", "fcm-token-of-zhang-wei"));
    // The doorbell carries no health data and no amount.
    let keys: HashSet<&str> = push.data.keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["v", "k", "r", "s", "t", "g"]));
    assert!(!push.data.values().any(|v| v.contains(&bill.total_fen.0.to_string()) || v.contains("医")));

    assert_eq!(app.handle_push(&data(push)).await.unwrap(), PushOutcome::Pulled(vec![InboxChange::Added(bill)]));
    assert_eq!(app.handle_push(&data(push)).await.unwrap(), PushOutcome::AlreadySeen);
    assert_eq!(app.bills(None).unwrap().len(), 1);
}

#[tokio::test]
async fn forged_misdirected_stale_and_malformed_doorbells_are_refused() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), &MemorySecretStore::new()).await;
    app.register_push_token("huawei", "hw-1").await.unwrap();
    platform.issue_bill(PATIENT, None).await;
    let genuine = data(&platform.outbox(0).await.pushes[0].push);

    let mut forged = genuine.clone();
    forged.insert("s".into(), "999".into());
    assert!(matches!(app.handle_push(&forged).await, Err(CoreError::Doorbell(DoorbellError::Forged))));
    let mut malformed = genuine.clone();
    malformed.remove("g");
    assert!(matches!(app.handle_push(&malformed).await, Err(CoreError::Doorbell(DoorbellError::Malformed(_)))));
    assert!(matches!(app.handle_push(&HashMap::new()).await, Err(CoreError::Doorbell(DoorbellError::Malformed(_)))));

    // The parent's phone is handed the patient's doorbell.
    let other = tempfile::tempdir().unwrap();
    let parent = phone(&platform.url(), other.path(), &MemorySecretStore::new());
    parent.enrol(PARENT, CODE).await.unwrap();
    assert!(matches!(parent.handle_push(&genuine).await, Err(CoreError::Doorbell(DoorbellError::WrongRecipient))));

    // A day later, the same genuine doorbell is stale.
    platform.advance_clock(25 * 3600 * 1000).await;
    app.sync_clock().await.unwrap();
    assert!(matches!(app.handle_push(&genuine).await, Err(CoreError::Doorbell(DoorbellError::Stale))));
    assert!(app.bills(None).unwrap().is_empty(), "refused doorbells pulled nothing");
}

#[tokio::test]
async fn bills_past_due_show_as_expired_on_platform_time() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), &MemorySecretStore::new()).await;
    platform.issue_bill(PATIENT, None).await;
    app.sync_inbox().await.unwrap();
    assert_eq!(app.bills(None).unwrap()[0].state, BillState::Pending);
    platform.advance_clock(25 * 3600 * 1000).await;
    app.sync_clock().await.unwrap();
    assert_eq!(app.bills(None).unwrap()[0].state, BillState::Expired);
}

#[tokio::test]
async fn a_thousand_bills_arrive_exactly_once_while_the_stream_is_cut_at_random() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), &MemorySecretStore::new()).await;
    let (seen, task) = watch(app.clone()).await;
    let mut rng = TestRng(0x5eed_1234_abcd_0001);
    let mut issued = HashSet::new();
    let mut next_cut = 1 + rng.below(60);
    let started = std::time::Instant::now();
    for i in 0..1_000u64 {
        issued.insert(platform.issue_bill(PATIENT, None).await.bill_id);
        if i == next_cut {
            platform.cut_streams().await;
            next_cut = i + 1 + rng.below(60);
        }
    }
    eprintln!("issued 1,000 bills in {:?}", started.elapsed());
    wait_for("all 1,000 bills", || seen.lock().unwrap().len() >= 1_000).await;
    eprintln!("all announced after {:?}", started.elapsed());
    // A last bill: changes arrive in order, so once it is here nothing earlier is still due.
    let sentinel = platform.issue_bill(PATIENT, None).await.bill_id;
    wait_for("the sentinel bill", || seen.lock().unwrap().iter().any(|c| c.bill().bill_id == sentinel)).await;
    task.abort();
    let mut seen = seen.lock().unwrap().clone();
    seen.retain(|c| c.bill().bill_id != sentinel);
    let ids: Vec<&str> = seen.iter().map(|c| c.bill().bill_id.as_str()).collect();
    assert_eq!(ids.len(), 1_000, "every bill announced exactly once");
    assert!(seen.iter().all(|c| matches!(c, InboxChange::Added(_))));
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), issued.iter().map(String::as_str).collect());
    assert_eq!(app.bills(None).unwrap().len(), 1_001);
}

#[tokio::test]
async fn duplicated_reordered_and_early_doorbells_give_each_bill_once() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), &MemorySecretStore::new()).await;
    app.register_push_token("apns", "apns-1").await.unwrap();
    let mut issued = HashSet::new();
    for i in 0..6 {
        // Every other bill is readable only 400 ms after its doorbell rings.
        let lag = if i % 2 == 0 { Some(400) } else { None };
        issued.insert(platform.issue_bill(PATIENT, lag).await.bill_id);
    }
    let pushes: Vec<HashMap<String, String>> = platform.outbox(0).await.pushes.iter().map(|p| data(&p.push)).collect();
    assert_eq!(pushes.len(), 6);
    // Reordered and duplicated: 5, 0, 3, 3, 1, 5, 4, 2, 0.
    let mut announced = Vec::new();
    for i in [5usize, 0, 3, 3, 1, 5, 4, 2, 0] {
        if let PushOutcome::Pulled(changes) = app.handle_push(&pushes[i]).await.unwrap() {
            announced.extend(changes.into_iter().map(|c| c.bill().bill_id.clone()));
        }
    }
    announced.extend(app.sync_inbox().await.unwrap().into_iter().map(|c| c.bill().bill_id.clone()));
    assert_eq!(announced.len(), 6, "{announced:?}");
    assert_eq!(announced.into_iter().collect::<HashSet<_>>(), issued);
    assert_eq!(app.bills(None).unwrap().len(), 6);
    assert!(!app.pull_owed().unwrap());
}

#[tokio::test]
async fn an_app_killed_between_doorbell_and_pull_loses_nothing() {
    let mut platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let quick = carepass_core::io::net::ClientOptions {
        timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let url = platform.url();
    {
        let app = patient(&platform, dir.path(), &secrets).await;
        app.register_push_token("xiaomi", "mi-1").await.unwrap();
        platform.issue_bill(PATIENT, None).await;
        let first = data(&platform.outbox(0).await.pushes[0].push);
        assert!(matches!(app.handle_push(&first).await.unwrap(), PushOutcome::Pulled(_)));
    }
    let bill = platform.issue_bill(PATIENT, None).await;
    let doorbell = data(&platform.outbox(1).await.pushes[0].push);
    let addr = platform.stop().await;
    {
        // The doorbell arrives, then the platform is out of reach before the pull; the app dies.
        let app = phone_with(&url, dir.path(), &secrets, Arc::new(SystemClock), quick.clone()).unwrap();
        assert!(matches!(app.handle_push(&doorbell).await, Err(CoreError::Net(_))));
        assert!(app.pull_owed().unwrap(), "the owed pull is on disk");
    }
    platform.resume(addr).await;
    let app = phone(&url, dir.path(), &secrets);
    assert!(app.pull_owed().unwrap());
    assert_eq!(app.sync_inbox().await.unwrap(), vec![InboxChange::Added(bill)]);
    assert!(!app.pull_owed().unwrap());
    assert_eq!(app.bills(None).unwrap().len(), 2);
}

#[tokio::test]
async fn the_inbox_survives_a_restart_and_is_never_listed_twice() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    {
        let app = patient(&platform, dir.path(), &secrets).await;
        platform.issue_bill(PATIENT, None).await;
        platform.issue_bill(PATIENT, None).await;
        assert_eq!(app.sync_inbox().await.unwrap().len(), 2);
    }
    let app = phone(&platform.url(), dir.path(), &secrets);
    assert_eq!(app.bills(None).unwrap().len(), 2);
    assert!(app.sync_inbox().await.unwrap().is_empty());
    platform.issue_bill(PATIENT, None).await;
    assert_eq!(app.sync_inbox().await.unwrap().len(), 1);
    assert_eq!(app.bills(None).unwrap().len(), 3);
}

#[tokio::test]
async fn logging_out_closes_the_live_stream_at_once() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path(), &MemorySecretStore::new()).await;
    let mut updates = app.inbox_stream(None);
    updates.next().await.unwrap().unwrap();
    app.logout().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(2), updates.next()).await.expect("the stream ended");
    assert!(matches!(ended, Some(Err(CoreError::NotSignedIn))), "{ended:?}");
    assert!(updates.next().await.is_none(), "nothing after the error");
    assert!(matches!(app.bills(None), Err(CoreError::NotSignedIn)));
}
