//! The core's shape, as a phone meets it: two clients on one data directory share one
//! session without spending its refresh token twice; a session is never sent to another
//! platform; the order rules (complete quote, a prescription filled once) hold at the
//! platform; a device the platform forgot is no dead end; the core's streams give the current
//! value first, then each change once, then at most one error; a closed client refuses
//! everything; signing out wipes every section the actor held.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use carepass_core::app::session::SessionState;
use carepass_core::domain::pharmacy::{Fulfilment, GeoPoint, RankQuery};
use carepass_core::domain::voucher::Purpose;
use carepass_core::domain::Field;
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::PlatformCode;
use carepass_core::{CoreError, FixedClock};
use carepass_journeys::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SETTLE: Purpose = Purpose::OutpatientSettlement;
const HOME: GeoPoint = GeoPoint { lat: 30.5952, lon: 114.2999 };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_on_one_data_dir_refresh_one_session_without_ending_it() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let first = phone(&platform.url(), dir.path(), &secrets);
    first.enrol(PATIENT, CODE).await.unwrap();
    // A second client on the same directory, as a second process would open it.
    let second = phone(&platform.url(), dir.path(), &secrets);
    let before = stored_tokens(&first, "P1001");
    platform.advance_clock(16 * 60 * 1000).await; // the access token has expired
    for round in 0..5 {
        let (a, b) = tokio::join!(first.refresh_profile(), second.refresh_profile());
        assert!(a.is_ok() && b.is_ok(), "round {round}: {:?} / {:?}", a.err(), b.err());
        platform.advance_clock(16 * 60 * 1000).await;
    }
    // Each refresh spent its token once: a reuse would have ended the session.
    assert_ne!(stored_tokens(&second, "P1001").refresh_token, before.refresh_token);
    assert!(matches!(first.session_state().unwrap(), SessionState::SignedIn(_)));
    first.refresh_profile().await.unwrap();
}

/// A server that records every byte it is sent and answers `{}` with a server time.
async fn recording_server() -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buf)).await {
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-carepass-server-time: 1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn a_session_is_never_sent_to_another_platform() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    app.enrol(PATIENT, CODE).await.unwrap();
    let tokens = stored_tokens(&app, "P1001");
    drop(app);

    // The same phone pointed at another server (a typo, or an attacker's).
    let (fake, seen) = recording_server().await;
    let elsewhere = phone(&fake, dir.path(), &secrets);
    let err = elsewhere.refresh_profile().await.unwrap_err();
    assert!(matches!(&err, CoreError::OtherPlatform { .. }), "{err:?}");
    assert!(err.to_string().contains(&platform.url()), "the message names where the session lives: {err}");
    assert!(matches!(elsewhere.sync_inbox().await, Err(CoreError::OtherPlatform { .. })));
    elsewhere.logout().await.unwrap(); // wipes locally, sends nothing
    let seen = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    for secret in [&tokens.access_token, &tokens.refresh_token] {
        assert!(!seen.contains(secret.as_str()), "a token reached the other server: {seen}");
    }
    assert!(!seen.to_ascii_lowercase().contains("authorization"), "{seen}");
}

async fn ranked(app: &carepass_core::CarePass) -> (String, String) {
    let (rx_id, ranking) = app.rank_pharmacies(&RankQuery::near(HOME), None).await.unwrap();
    (rx_id, ranking.quotes[0].pharmacy_id.clone())
}

#[tokio::test]
async fn a_prescription_is_filled_once() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    app.enrol(PATIENT, CODE).await.unwrap();
    let (rx_id, pharmacy) = ranked(&app).await;
    let first = app.place_order(&rx_id, &pharmacy, Fulfilment::Pickup, None, None).await.unwrap();
    // Tried as a new user would: order the same prescription again, and again.
    for _ in 0..3 {
        let err = app.place_order(&rx_id, &pharmacy, Fulfilment::Pickup, None, None).await.unwrap_err();
        assert!(
            matches!(&err, CoreError::Net(e) if e.platform_code() == Some(PlatformCode::AlreadyOrdered)),
            "{err:?}"
        );
        assert!(err.to_string().contains(&first.order_id), "the message names the live order: {err}");
    }
    assert_eq!(app.orders(None).await.unwrap().len(), 1, "one order, one charge");
    // Once the first is cancelled, the prescription can be ordered again.
    app.cancel_order(&first.order_id, None).await.unwrap();
    let second = app.place_order(&rx_id, &pharmacy, Fulfilment::Pickup, None, None).await.unwrap();
    assert_ne!(second.order_id, first.order_id);
    let orders = app.orders(None).await.unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0].order_id, second.order_id, "newest first");
}

#[tokio::test]
async fn two_orders_racing_for_one_prescription_give_one_order() {
    let platform = TestPlatform::start().await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let secrets = MemorySecretStore::new();
    let a = phone(&platform.url(), d1.path(), &secrets);
    a.enrol(PATIENT, CODE).await.unwrap();
    let b = phone(&platform.url(), d2.path(), &MemorySecretStore::new());
    b.enrol(PATIENT, CODE).await.unwrap(); // the same patient on a second phone
    let (rx_id, pharmacy) = ranked(&a).await;
    let (ra, rb) = tokio::join!(
        a.place_order(&rx_id, &pharmacy, Fulfilment::Pickup, None, None),
        b.place_order(&rx_id, &pharmacy, Fulfilment::Pickup, None, None)
    );
    assert_eq!(ra.is_ok() as u8 + rb.is_ok() as u8, 1, "exactly one wins: {:?} / {:?}", ra.err(), rb.err());
    assert_eq!(a.orders(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_pickup_order_with_a_delivery_address_is_refused_not_ignored() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    app.enrol(PATIENT, CODE).await.unwrap();
    let (rx_id, pharmacy) = ranked(&app).await;
    let address = carepass_core::wire::DeliveryAddress {
        text: "示例市东湖路 18 号".into(),
        location: HOME,
        contact_phone: PATIENT.into(),
    };
    let err = app.place_order(&rx_id, &pharmacy, Fulfilment::Pickup, Some(address), None).await.unwrap_err();
    assert!(matches!(&err, CoreError::InvalidInput(i) if i.field == Field::DeliveryAddress), "{err:?}");
    assert!(app.orders(None).await.unwrap().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_device_the_platform_forgot_signs_in_again_with_the_sms_code() {
    let mut platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let url = platform.url();
    let app = phone(&url, dir.path(), &secrets);
    app.enrol(PATIENT, CODE).await.unwrap();
    app.logout().await.unwrap();
    // The platform loses every enrolment while the phone keeps its store.
    let addr = platform.stop().await;
    std::fs::remove_dir_all(platform.dir.path().join("platform")).unwrap();
    platform.resume(addr).await;
    assert!(matches!(app.login(PATIENT, CODE).await, Err(CoreError::NotEnrolled)), "login alone cannot");
    let profile = app.sign_in(PATIENT, CODE).await.expect("sign-in is no dead end");
    assert_eq!(profile.person_id, "P1001");
    app.refresh_profile().await.unwrap();
    // And the next sign-in uses the new enrolment's key proof.
    app.logout().await.unwrap();
    app.login(PATIENT, CODE).await.unwrap();
}

#[tokio::test]
async fn the_code_stream_gives_the_current_code_then_each_rotation_once() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The phone's clock stands still unless the test moves it.
    let clock = Arc::new(FixedClock::at_ms(chrono::Utc::now().timestamp_millis()));
    let app =
        phone_with(&platform.url(), dir.path(), &MemorySecretStore::new(), clock.clone(), Default::default()).unwrap();
    app.enrol(PATIENT, CODE).await.unwrap();
    tokio::time::pause(); // from here on, waits are virtual: nothing below sleeps for real
    let mut codes = app.code_stream(SETTLE, false, None);
    let first = codes.next().await.unwrap().unwrap();
    assert!(first.valid_from_ms <= app.platform_now_ms() && app.platform_now_ms() < first.refresh_at_ms);
    // However long the screen stays open within the period, the same code is not sent again.
    assert!(tokio::time::timeout(Duration::from_secs(120), codes.next()).await.is_err());
    // The period ends on platform time: the next code comes, once.
    clock.advance_ms(first.refresh_at_ms - app.platform_now_ms());
    let second = tokio::time::timeout(Duration::from_secs(10), codes.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(second.valid_from_ms, first.refresh_at_ms);
    assert_ne!(second.text, first.text);
    assert!(tokio::time::timeout(Duration::from_secs(20), codes.next()).await.is_err(), "each code once");
    // The client closes: the stream ends with one error, then nothing.
    app.close();
    assert!(matches!(codes.next().await, Some(Err(CoreError::Closed))));
    assert!(codes.next().await.is_none());
}

#[tokio::test]
async fn the_session_stream_tells_every_change_and_a_session_the_platform_ended() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    let mut states = app.session_stream();
    macro_rules! next {
        () => {
            tokio::time::timeout(Duration::from_secs(5), states.next()).await.expect("a state").unwrap().unwrap()
        };
    }
    assert_eq!(next!(), SessionState::SignedOut);
    app.enrol(PATIENT, CODE).await.unwrap();
    assert!(matches!(next!(), SessionState::SignedIn(p) if p.person_id == "P1001"));
    app.logout().await.unwrap();
    assert_eq!(next!(), SessionState::SignedOut);
    app.login(PATIENT, CODE).await.unwrap();
    assert!(matches!(next!(), SessionState::SignedIn(_)));
    // Ended behind the phone's back (signed out elsewhere): the next call finds out, and the
    // stream says so; the shell needs no guess from the error.
    let tokens = stored_tokens(&app, "P1001");
    let _: serde_json::Value =
        admin_client(&platform.url()).delete("v1/sessions/current", Some(&tokens.access_token)).await.unwrap();
    assert!(matches!(app.refresh_profile().await, Err(CoreError::SessionExpired)));
    assert_eq!(next!(), SessionState::Ended);
    assert_eq!(app.session_state().unwrap(), SessionState::Ended);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_reads_as_signed_out_to_every_concurrent_caller_never_as_ended() {
    // Another thread of the app asks for bills while the person signs out: what it
    // publishes to the session stream must be "signed out", never "the platform ended it"
    // (a half-wiped vault). Found by the Kotlin session-stream test, 1 run in ~20.
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(phone(&platform.url(), dir.path(), &MemorySecretStore::new()));
    let mut states = app.session_stream();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let collector = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(Ok(state)) = states.next().await {
                seen.lock().unwrap().push(state);
            }
        })
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let (app, stop) = (app.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = app.bills(None);
            }
        })
    };
    app.enrol(PATIENT, CODE).await.unwrap();
    // Four rounds: the platform allows five sign-in challenges a minute per device.
    for _ in 0..4 {
        app.logout().await.unwrap();
        app.login(PATIENT, CODE).await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hammer.join().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    collector.abort();
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 2, "the stream told the changes: {seen:?}");
    assert!(!seen.contains(&SessionState::Ended), "a sign-out read as a session the platform ended: {seen:?}");
}

#[tokio::test]
async fn a_closed_client_refuses_every_call_and_ends_its_streams() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    app.enrol(PATIENT, CODE).await.unwrap();
    let mut inbox = app.inbox_stream(None);
    inbox.next().await.unwrap().unwrap();
    let mut session = app.session_stream();
    session.next().await.unwrap().unwrap();
    app.close();
    app.close(); // idempotent
    assert!(matches!(inbox.next().await, Some(Err(CoreError::Closed))));
    assert!(matches!(session.next().await, Some(Err(CoreError::Closed))));
    assert!(matches!(app.current_code(SETTLE, false, None), Err(CoreError::Closed)));
    assert!(matches!(app.bills(None), Err(CoreError::Closed)));
    assert!(matches!(app.sync_inbox().await, Err(CoreError::Closed)));
    assert!(matches!(app.refresh_profile().await, Err(CoreError::Closed)));
    assert!(matches!(app.current_profile(), Err(CoreError::Closed)));
    assert!(matches!(app.session_state(), Err(CoreError::Closed)));
    // Closed comes first, even for arguments that would be refused.
    assert!(matches!(app.register_push_token("pager", "").await, Err(CoreError::Closed)));
    assert!(matches!(app.revoke_device("not-a-device").await, Err(CoreError::Closed)));
    assert!(matches!(app.order("../x", None).await, Err(CoreError::Closed)));
    assert!(!app.store().bulk.is_open(), "the database is released at once");
    // The same directory opens again at once (the app restarted), still signed in.
    let again = phone(&platform.url(), dir.path(), &secrets);
    assert_eq!(again.current_profile().unwrap().unwrap().person_id, "P1001");
    assert!(again.bills(None).unwrap().is_empty());
}

#[tokio::test]
async fn signing_out_wipes_every_section_the_actor_held() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    app.enrol(PATIENT, CODE).await.unwrap();
    platform.issue_bill(PATIENT, None).await;
    assert_eq!(app.sync_inbox().await.unwrap().len(), 1);
    app.rank_pharmacies(&RankQuery::near(HOME), None).await.unwrap();
    let sections = |app: &carepass_core::CarePass| -> Vec<String> {
        let held = app.store().bulk.hold().unwrap();
        held.raw_db()
            .tree_names()
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .filter(|n| n.starts_with("s/"))
            .collect()
    };
    assert_eq!(sections(&app), vec!["s/P1001/P1001".to_string()]);
    let out = app.logout().await.unwrap();
    assert!(out.revoked_at_platform);
    assert!(sections(&app).is_empty(), "the actor's sections are gone");
    let vault_keys = app.store().vault.keys("").unwrap();
    assert!(!vault_keys.iter().any(|k| k.contains("P1001") && !k.starts_with("enrolments")), "{vault_keys:?}");
    assert_eq!(app.last_rank_location(None).unwrap_err().to_string(), CoreError::NotSignedIn.to_string());
}

#[tokio::test]
async fn signing_out_with_the_platform_down_says_the_platform_session_is_still_live() {
    let mut platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let quick = carepass_core::io::net::ClientOptions {
        timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let app =
        phone_with(&platform.url(), dir.path(), &MemorySecretStore::new(), Arc::new(carepass_core::SystemClock), quick)
            .unwrap();
    app.enrol(PATIENT, CODE).await.unwrap();
    platform.stop().await;
    let out = app.logout().await.unwrap();
    assert!(!out.revoked_at_platform, "not confirmed by the platform");
    assert_eq!(app.current_profile().unwrap(), None, "gone from the phone all the same");
}
