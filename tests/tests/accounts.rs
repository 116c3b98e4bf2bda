//! Account journeys: the core talks HTTP to the sandbox over loopback; the store is sled on
//! disk. Covers enrolment, login, token refresh and expiry, logout, restarts, and the
//! security cases (replay, forgery, scope escalation).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::account::login_message;
use carepass_core::domain::crypto::{sign_fixed, SoftwareDeviceKey};
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::{self, PlatformCode, SessionGrant, SessionTokens};
use carepass_core::{CoreError, OffsetClock};
use carepass_journeys::*;

#[tokio::test]
async fn enrol_then_profile_is_served_and_stored() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);

    let profile = app.enrol(PATIENT, CODE).await.unwrap();
    assert_eq!(profile.person_id, "P1001");
    assert_eq!(profile.phone_masked, "138****0001");
    assert_eq!(profile.insurance_type, wire::InsuranceType::EmployeeActive);
    assert!(profile.device_id.starts_with("dev_"));
    assert_eq!(app.current_profile().unwrap(), Some(profile.clone()));
    assert_eq!(app.refresh_profile().await.unwrap(), profile);
}

#[tokio::test]
async fn ages_of_the_demo_family_come_from_birth_dates_on_platform_time() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    let parent = app.enrol(PARENT, CODE).await.unwrap();
    let child = app.enrol(CHILD, CODE).await.unwrap();
    let today = chrono::Utc::now().date_naive();
    let expected = |birth: &str| {
        carepass_core::domain::person::age_on(carepass_core::domain::person::parse_birth_date(birth).unwrap(), today)
    };
    assert_eq!(parent.age, expected("1948-03-15"));
    assert_eq!(child.age, expected("2017-06-01"));
    assert!(parent.age >= 78 && child.age <= 10, "parent {} child {}", parent.age, child.age);
    assert_eq!(child.insurance_type, wire::InsuranceType::Resident);
}

#[tokio::test]
async fn wrong_verification_code_and_unknown_phone_get_the_same_answer() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    assert!(matches!(app.enrol(PATIENT, "654321").await, Err(CoreError::WrongVerificationCode)));
    assert!(matches!(app.enrol("13999999999", CODE).await, Err(CoreError::WrongVerificationCode)));
    assert!(matches!(app.enrol("139", CODE).await, Err(CoreError::InvalidInput(_))));
    assert!(matches!(app.enrol(PATIENT, "12ab56").await, Err(CoreError::InvalidInput(_))));
    assert_eq!(app.current_profile().unwrap(), None);
}

#[tokio::test]
async fn login_before_enrolment_is_refused_locally() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    assert!(matches!(app.login(PATIENT, CODE).await, Err(CoreError::NotEnrolled)));
}

#[tokio::test]
async fn logout_wipes_the_profile_and_the_device_signs_in_again() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    let first = app.enrol(PATIENT, CODE).await.unwrap();
    app.logout().await.unwrap();
    assert_eq!(app.current_profile().unwrap(), None);
    assert!(matches!(app.refresh_profile().await, Err(CoreError::NotSignedIn)));
    let again = app.login(PATIENT, CODE).await.unwrap();
    assert_eq!(again.device_id, first.device_id, "the enrolled device is reused");
    assert_eq!(app.refresh_profile().await.unwrap().person_id, "P1001");
}

#[tokio::test]
async fn a_revoked_session_token_is_refused_by_the_platform() {
    let platform = TestPlatform::start().await;
    let client = admin_client(&platform.url());
    let grant = enrol_raw(&client, &SoftwareDeviceKey::generate().unwrap().0).await;
    let _: serde_json::Value = client.delete("v1/sessions/current", Some(&grant.tokens.access_token)).await.unwrap();
    let err = client.get::<wire::PersonRecord>("v1/me", Some(&grant.tokens.access_token)).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(PlatformCode::Unauthorized));
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_transparently() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    app.enrol(PATIENT, CODE).await.unwrap();
    let before = stored_tokens(&app, "P1001");
    platform.advance_clock(16 * 60 * 1000).await;
    assert_eq!(app.refresh_profile().await.unwrap().person_id, "P1001");
    let after = stored_tokens(&app, "P1001");
    assert_ne!(before.access_token, after.access_token);
    assert_ne!(before.refresh_token, after.refresh_token, "refresh tokens rotate");
}

#[tokio::test]
async fn an_expired_refresh_token_ends_the_session() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    app.enrol(PATIENT, CODE).await.unwrap();
    platform.advance_clock(31 * 24 * 3600 * 1000).await;
    assert!(matches!(app.refresh_profile().await, Err(CoreError::SessionExpired)));
    assert_eq!(app.current_profile().unwrap(), None, "the dead session is not shown as signed in");
    // The device is still enrolled: signing in again works.
    assert_eq!(app.login(PATIENT, CODE).await.unwrap().person_id, "P1001");
}

#[tokio::test]
async fn a_replayed_refresh_token_ends_the_whole_session() {
    let platform = TestPlatform::start().await;
    let client = admin_client(&platform.url());
    let grant = enrol_raw(&client, &SoftwareDeviceKey::generate().unwrap().0).await;
    let spent = wire::RefreshRequest { refresh_token: grant.tokens.refresh_token.clone() };
    let fresh: SessionTokens = client.post("v1/sessions/refresh", &spent, None).await.unwrap();
    // The copied (spent) token is presented again: the platform ends the session...
    let err = client.post::<_, SessionTokens>("v1/sessions/refresh", &spent, None).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(PlatformCode::RefreshTokenReused));
    // ...so even the legitimate holder's newest tokens stop working.
    let err = client.get::<wire::PersonRecord>("v1/me", Some(&fresh.access_token)).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(PlatformCode::Unauthorized));
    let again = wire::RefreshRequest { refresh_token: fresh.refresh_token };
    let err = client.post::<_, SessionTokens>("v1/sessions/refresh", &again, None).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(PlatformCode::Unauthorized));
}

#[tokio::test]
async fn a_login_challenge_cannot_be_replayed() {
    let platform = TestPlatform::start().await;
    let client = admin_client(&platform.url());
    let key = SoftwareDeviceKey::generate().unwrap().0;
    let grant = enrol_raw(&client, &key).await;
    let login = signed_login(&client, &key, &grant.device_id).await;
    let ok: SessionGrant = client.post("v1/sessions", &login, None).await.unwrap();
    assert_eq!(ok.person.person_id, "P1001");
    let err = client.post::<_, SessionGrant>("v1/sessions", &login, None).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(PlatformCode::ChallengeInvalid));
}

#[tokio::test]
async fn a_login_signed_by_another_key_is_refused() {
    let platform = TestPlatform::start().await;
    let client = admin_client(&platform.url());
    let key = SoftwareDeviceKey::generate().unwrap().0;
    let grant = enrol_raw(&client, &key).await;
    let forger = SoftwareDeviceKey::generate().unwrap().0;
    let forged = signed_login(&client, &forger, &grant.device_id).await;
    let err = client.post::<_, SessionGrant>("v1/sessions", &forged, None).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(PlatformCode::SignatureInvalid));
    // A nonce altered after signing matches no challenge.
    let mut tampered = signed_login(&client, &key, &grant.device_id).await;
    tampered.nonce.push('x');
    let err = client.post::<_, SessionGrant>("v1/sessions", &tampered, None).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(PlatformCode::ChallengeInvalid));
}

#[tokio::test]
async fn another_persons_device_cannot_log_in_as_the_patient() {
    let platform = TestPlatform::start().await;
    let client = admin_client(&platform.url());
    let child_key = SoftwareDeviceKey::generate().unwrap().0;
    let child = enrol_raw_as(&client, &child_key, CHILD).await;
    // The child's device tries to sign in as the parent with the parent's SMS code.
    let mut login = signed_login(&client, &child_key, &child.device_id).await;
    login.phone = PATIENT.into();
    let err = client.post::<_, SessionGrant>("v1/sessions", &login, None).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(PlatformCode::UnknownDevice));
}

#[tokio::test]
async fn a_patient_token_does_not_open_admin_routes() {
    let platform = TestPlatform::start().await;
    let client = admin_client(&platform.url());
    let grant = enrol_raw(&client, &SoftwareDeviceKey::generate().unwrap().0).await;
    let err = client.get::<serde_json::Value>("admin/v1/persons", Some(&grant.tokens.access_token)).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(PlatformCode::Forbidden));
    // No token at all is no credentials: 401, as on session routes.
    let err = client.get::<serde_json::Value>("admin/v1/persons", None).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(PlatformCode::Unauthorized));
    let persons: Vec<wire::PersonRecord> = client.get("admin/v1/persons", Some(ADMIN_TOKEN)).await.unwrap();
    assert!(persons.len() >= 3);
}

#[tokio::test]
async fn a_sandbox_restart_on_the_same_data_dir_loses_nothing() {
    let mut platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    let profile = app.enrol(PATIENT, CODE).await.unwrap();
    platform.advance_clock(60_000).await;
    platform.restart().await;
    assert_eq!(app.refresh_profile().await.unwrap(), profile, "the session survived the restart");
    let clock: wire::ClockState = admin_client(&platform.url()).get("admin/v1/clock", Some(ADMIN_TOKEN)).await.unwrap();
    assert_eq!(clock.offset_ms, 60_000, "the test clock survived the restart");
    app.logout().await.unwrap();
    assert_eq!(app.login(PATIENT, CODE).await.unwrap().device_id, profile.device_id, "the device survived");
}

#[tokio::test]
async fn the_phone_learns_its_clock_error_from_every_answer() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let slow_phone = Arc::new(OffsetClock::new(-5 * 60 * 1000));
    let app =
        phone_with(&platform.url(), dir.path(), &MemorySecretStore::new(), slow_phone, Default::default()).unwrap();
    assert!(!app.client().clock_offset_known());
    // Even an error answer carries the server time.
    let _ = app.enrol(PATIENT, "000000").await;
    let offset = app.clock_offset_ms();
    assert!((299_000..=301_000).contains(&offset), "offset {offset}");
    let corrected = app.client().server_now_ms() - chrono::Utc::now().timestamp_millis();
    assert!(corrected.abs() < 1_000, "corrected time is off by {corrected} ms");
}

// ---- raw protocol helpers (what an attacker or a test can send) ----------------------------

async fn enrol_raw(client: &carepass_core::io::net::PlatformClient, key: &SoftwareDeviceKey) -> SessionGrant {
    enrol_raw_as(client, key, PATIENT).await
}

async fn enrol_raw_as(
    client: &carepass_core::io::net::PlatformClient,
    key: &SoftwareDeviceKey,
    phone: &str,
) -> SessionGrant {
    use carepass_core::domain::crypto::DeviceKeyStore;
    let request = wire::EnrolRequest {
        phone: phone.into(),
        code: CODE.into(),
        device_public_key: B64.encode(key.public_key().unwrap()),
        device_name: "raw".into(),
        platform: "terminal".into(),
    };
    client.post("v1/enrolments", &request, None).await.unwrap()
}

async fn signed_login(
    client: &carepass_core::io::net::PlatformClient,
    key: &SoftwareDeviceKey,
    device_id: &str,
) -> wire::LoginRequest {
    let challenge: wire::Challenge = client
        .post("v1/sessions/challenge", &wire::ChallengeRequest { device_id: device_id.into() }, None)
        .await
        .unwrap();
    let signature = sign_fixed(key, &login_message(device_id, &challenge.nonce)).unwrap();
    wire::LoginRequest {
        device_id: device_id.into(),
        phone: PATIENT.into(),
        code: CODE.into(),
        nonce: challenge.nonce,
        signature: B64.encode(signature),
    }
}

#[tokio::test]
async fn a_session_ended_elsewhere_is_dropped_from_the_phone() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    app.enrol(PATIENT, CODE).await.unwrap();
    // The session's access token is revoked on the platform behind the phone's back.
    let tokens = stored_tokens(&app, "P1001");
    let _: serde_json::Value =
        admin_client(&platform.url()).delete("v1/sessions/current", Some(&tokens.access_token)).await.unwrap();
    assert!(matches!(app.refresh_profile().await, Err(CoreError::SessionExpired)));
    assert_eq!(app.current_profile().unwrap(), None, "not shown as signed in any more");
}
