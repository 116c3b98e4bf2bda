//! Limits on abuse and hardening, tried as an attacker would over loopback: guessing SMS
//! codes, flooding challenges, enrolments, push tokens and live streams; keys that are not
//! curve points; a revoked device; cursors at the edge of u64; a server answering a time of
//! i64::MIN. Each refusal is `429 rate_limited` with `Retry-After`, or a typed error — never a
//! panic, never a 5xx.

use std::collections::HashSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::crypto::{DeviceKeyStore, SoftwareDeviceKey};
use carepass_core::io::net::NetError;
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::{self, PlatformCode, SessionGrant};
use carepass_core::CoreError;
use carepass_journeys::*;

fn rate_limited(e: &NetError) -> Option<u64> {
    match e {
        NetError::Platform { status: 429, code: PlatformCode::RateLimited, retry_after_s, .. } => *retry_after_s,
        _ => None,
    }
}

fn enrol_request(phone: &str, code: &str, key: &SoftwareDeviceKey) -> wire::EnrolRequest {
    wire::EnrolRequest {
        phone: phone.into(),
        code: code.into(),
        device_public_key: B64.encode(key.public_key().unwrap()),
        device_name: "attacker".into(),
        platform: "terminal".into(),
    }
}

#[tokio::test]
async fn guessing_sms_codes_is_locked_out_and_the_right_code_waits_too() {
    let platform = TestPlatform::start().await;
    let client = admin_client(&platform.url());
    let (key, _) = SoftwareDeviceKey::generate().unwrap();
    for guess in 0..5 {
        let e = client
            .post::<_, SessionGrant>("v1/enrolments", &enrol_request(PATIENT, &format!("{guess:06}"), &key), None)
            .await
            .unwrap_err();
        assert_eq!(e.platform_code(), Some(PlatformCode::WrongVerificationCode), "guess {guess}: {e:?}");
    }
    // Locked out: even the right code is refused, with how long to wait.
    let e =
        client.post::<_, SessionGrant>("v1/enrolments", &enrol_request(PATIENT, CODE, &key), None).await.unwrap_err();
    let wait = rate_limited(&e).unwrap_or_else(|| panic!("expected 429, got {e:?}"));
    assert!((60..=15 * 60).contains(&wait), "retry after {wait} s");
    // The phone's owner, on another device, is locked out as well (the lock is per phone too).
    let owner = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), owner.path(), &MemorySecretStore::new());
    let e = app.sign_in(PATIENT, CODE).await.unwrap_err();
    assert!(matches!(&e, CoreError::Net(n) if rate_limited(n).is_some()), "{e:?}");
    // After the wait, the right code works.
    platform.advance_clock(15 * 60 * 1000).await;
    app.sign_in(PATIENT, CODE).await.unwrap();
}

#[tokio::test]
async fn two_thousand_guesses_get_at_most_the_daily_cap_of_answers() {
    let platform = TestPlatform::start().await;
    let client = admin_client(&platform.url());
    let mut answered_401 = 0;
    let mut limited = 0;
    for guess in 0..2_000u32 {
        // A fresh device key for every guess: the per-phone lock still holds.
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        match client
            .post::<_, SessionGrant>("v1/enrolments", &enrol_request(PARENT, &format!("{guess:06}"), &key), None)
            .await
        {
            Err(e) if e.platform_code() == Some(PlatformCode::WrongVerificationCode) => answered_401 += 1,
            Err(e) if rate_limited(&e).is_some() => limited += 1,
            other => panic!("guess {guess}: {other:?}"),
        }
        if guess % 100 == 99 {
            platform.advance_clock(16 * 60 * 1000).await; // wait out each lockout, as a patient attacker would
        }
    }
    assert!(answered_401 <= 20, "{answered_401} guesses were checked in one day");
    assert_eq!(answered_401 + limited, 2_000);
}

#[tokio::test]
async fn sms_codes_challenges_and_enrolments_are_limited() {
    let platform = TestPlatform::start().await;
    let client = admin_client(&platform.url());
    let request = wire::VerificationCodeRequest { phone: CHILD.into() };
    let send = || client.post::<_, wire::VerificationCodeSent>("v1/verification-codes", &request, None);
    send().await.unwrap();
    let e = send().await.unwrap_err();
    assert!(rate_limited(&e).is_some_and(|s| s <= 30), "{e:?}");
    platform.advance_clock(31_000).await;
    send().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    let device_id = app.enrol(PATIENT, CODE).await.unwrap().device_id;
    let mut refused = None;
    for i in 0..20 {
        match client
            .post::<_, wire::Challenge>(
                "v1/sessions/challenge",
                &wire::ChallengeRequest { device_id: device_id.clone() },
                None,
            )
            .await
        {
            Ok(_) => {}
            Err(e) => {
                assert!(rate_limited(&e).is_some(), "{e:?}");
                refused = Some(i);
                break;
            }
        }
    }
    assert_eq!(refused, Some(10), "ten challenges a minute");

    for i in 0..11 {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let r = client.post::<_, SessionGrant>("v1/enrolments", &enrol_request(PARENT, CODE, &key), None).await;
        match (i, r) {
            (0..=9, Ok(_)) => {}
            (10, Err(e)) => assert!(rate_limited(&e).is_some(), "{e:?}"),
            (i, other) => panic!("enrolment {i}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_device_holds_one_push_token_per_service_and_a_bill_rings_each_once() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    app.enrol(PATIENT, CODE).await.unwrap();
    for i in 0..200 {
        app.register_push_token("fcm", &format!("fcm-token-{i}")).await.unwrap();
    }
    app.register_push_token("huawei", "hms-token").await.unwrap();
    platform.issue_bill(PATIENT, None).await;
    let pushes = platform.outbox(0).await.pushes;
    let tokens: HashSet<(String, String)> =
        pushes.iter().map(|p| (p.push.service.clone(), p.push.token.clone())).collect();
    assert_eq!(
        tokens,
        HashSet::from([
            ("fcm".to_string(), "fcm-token-199".to_string()),
            ("huawei".to_string(), "hms-token".to_string())
        ]),
        "the newest token of each service"
    );
    // Bad tokens are refused by the one check, on the phone and at the platform alike.
    assert!(matches!(app.register_push_token("fcm", "has space").await, Err(CoreError::InvalidInput(_))));
    let tokens = stored_tokens(&app, "P1001");
    let e = admin_client(&platform.url())
        .post::<_, serde_json::Value>(
            "v1/push-tokens",
            &wire::PushTokenRegistration { service: "pager".into(), token: "x".into() },
            Some(&tokens.access_token),
        )
        .await
        .unwrap_err();
    assert_eq!(e.platform_code(), Some(PlatformCode::InvalidRequest));
}

#[tokio::test]
async fn a_session_holds_at_most_two_live_streams() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    app.enrol(PATIENT, CODE).await.unwrap();
    let tokens = stored_tokens(&app, "P1001");
    let client = admin_client(&platform.url());
    let auth = carepass_core::io::net::Auth::bearer(&tokens.access_token);
    let first = client.open_stream("v1/inbox/stream?after=0", auth).await.unwrap();
    let second = client.open_stream("v1/inbox/stream?after=0", auth).await.unwrap();
    let e = client.open_stream("v1/inbox/stream?after=0", auth).await.unwrap_err();
    assert!(rate_limited(&e).is_some(), "{e:?}");
    drop(first);
    // The place is given back once the server notices the closed connection.
    let mut reopened = None;
    for _ in 0..100 {
        match client.open_stream("v1/inbox/stream?after=0", auth).await {
            Ok(s) => {
                reopened = Some(s);
                break;
            }
            Err(e) if rate_limited(&e).is_some() => platform.issue_bill(PATIENT, None).await.bill_id.len(),
            Err(e) => panic!("{e:?}"),
        };
    }
    assert!(reopened.is_some(), "a closed stream gave its place back");
    drop(second);
}

#[tokio::test]
async fn expired_challenges_tokens_and_replay_entries_are_pruned() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    let device_id = app.enrol(PATIENT, CODE).await.unwrap().device_id;
    let client = admin_client(&platform.url());
    for _ in 0..8 {
        let _: wire::Challenge = client
            .post("v1/sessions/challenge", &wire::ChallengeRequest { device_id: device_id.clone() }, None)
            .await
            .unwrap();
    }
    let code = app.current_code(carepass_core::domain::voucher::Purpose::Registration, false, None).unwrap();
    let scanned: wire::ScanOutcome = platform
        .admin()
        .post(
            "v1/scans",
            &wire::ScanRequest { payload: code.text, purpose: carepass_core::domain::voucher::Purpose::Registration },
            Some(ADMIN_TOKEN),
        )
        .await
        .unwrap();
    assert!(scanned.accepted);
    let prune = || async {
        platform
            .admin()
            .post::<_, serde_json::Value>("admin/v1/prune", &serde_json::json!({}), Some(ADMIN_TOKEN))
            .await
            .unwrap()
    };
    let before = prune().await;
    assert_eq!(before["challenges"], 0, "nothing is due yet: {before}");
    platform.advance_clock(31 * 24 * 3600 * 1000).await; // past every lifetime
    let after = prune().await;
    assert_eq!(after["challenges"], 8, "{after}");
    assert!(after["access_tokens"].as_u64().unwrap() >= 1, "{after}");
    assert!(after["refresh_tokens"].as_u64().unwrap() >= 1, "{after}");
    assert_eq!(after["used_codes"], 1, "{after}");
    assert_eq!(prune().await["challenges"], 0, "pruned once");
}

#[tokio::test]
async fn an_enrolment_key_that_is_not_a_curve_point_is_refused() {
    let platform = TestPlatform::start().await;
    let client = admin_client(&platform.url());
    let (key, _) = SoftwareDeviceKey::generate().unwrap();
    let mut request = enrol_request(PATIENT, CODE, &key);
    let mut point = key.public_key().unwrap();
    point[40] ^= 0x01;
    request.device_public_key = B64.encode(&point);
    let e = client.post::<_, SessionGrant>("v1/enrolments", &request, None).await.unwrap_err();
    assert_eq!(e.platform_code(), Some(PlatformCode::InvalidRequest), "{e:?}");
    assert!(e.to_string().contains("P-256 point"), "{e}");
}

#[tokio::test]
async fn a_revoked_device_gets_no_doorbells_and_cannot_refresh() {
    let platform = TestPlatform::start().await;
    let (lost_dir, spare_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let lost = phone(&platform.url(), lost_dir.path(), &MemorySecretStore::new());
    let lost_device = lost.enrol(PATIENT, CODE).await.unwrap().device_id;
    lost.register_push_token("xiaomi", "lost-phone-token").await.unwrap();
    let lost_tokens = stored_tokens(&lost, "P1001");
    let spare = phone(&platform.url(), spare_dir.path(), &MemorySecretStore::new());
    spare.enrol(PATIENT, CODE).await.unwrap();
    spare.register_push_token("fcm", "spare-phone-token").await.unwrap();
    spare.revoke_device(&lost_device).await.unwrap();
    platform.issue_bill(PATIENT, None).await;
    let tokens: Vec<String> = platform.outbox(0).await.pushes.into_iter().map(|p| p.push.token).collect();
    assert_eq!(tokens, vec!["spare-phone-token".to_string()], "the lost phone is not rung");
    let e = admin_client(&platform.url())
        .post::<_, wire::SessionTokens>(
            "v1/sessions/refresh",
            &wire::RefreshRequest { refresh_token: lost_tokens.refresh_token },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.platform_code(), Some(PlatformCode::Unauthorized), "{e:?}");
}

#[tokio::test]
async fn cursors_at_the_edge_of_u64_are_answered_not_panicked_on() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    app.enrol(PATIENT, CODE).await.unwrap();
    let token = stored_tokens(&app, "P1001").access_token;
    let client = admin_client(&platform.url());
    let max = u64::MAX;
    let page: wire::InboxPage = client.get(&format!("v1/inbox?after={max}"), Some(&token)).await.unwrap();
    assert!(page.entries.is_empty() && page.cursor == max);
    let stream =
        client.open_stream(&format!("v1/inbox/stream?after={max}"), carepass_core::io::net::Auth::bearer(&token)).await;
    assert!(stream.is_ok(), "{:?}", stream.err());
    let outbox: serde_json::Value =
        platform.admin().get(&format!("admin/v1/push-outbox?after={max}"), Some(ADMIN_TOKEN)).await.unwrap();
    assert_eq!(outbox["pushes"], serde_json::json!([]));
    for bad in ["v1/inbox?limit=0", "v1/inbox?limit=501", "v1/inbox?after=-1", "v1/inbox?after=99999999999999999999"] {
        let e = client.get::<serde_json::Value>(bad, Some(&token)).await.unwrap_err();
        assert_eq!(e.platform_code(), Some(PlatformCode::InvalidRequest), "{bad}: {e:?}");
    }
    // Still serving.
    let _: wire::Health = client.get("healthz", None).await.unwrap();
}

#[tokio::test]
async fn a_server_time_at_the_edge_of_i64_does_not_panic_the_client() {
    for time in [i64::MIN, i64::MAX, -1, 0] {
        let answer: &'static [u8] = Box::leak(
            format!("HTTP/1.1 200 OK\r\nx-carepass-server-time: {time}\r\ncontent-length: 2\r\n\r\n{{}}")
                .into_bytes()
                .into_boxed_slice(),
        );
        let addr = misbehaving_server(Some(answer)).await;
        let dir = tempfile::tempdir().unwrap();
        let app = phone(&format!("http://{addr}"), dir.path(), &MemorySecretStore::new());
        // The answer is not what the call expects, but the time is taken in without overflow.
        let _ = app.sync_clock().await;
        let _ = app.platform_now_ms();
        let _ = tokio::time::timeout(Duration::from_secs(1), app.request_verification_code(PATIENT)).await;
    }
}
