//! E-voucher journeys: codes made by the core are scanned by the sandbox platform over
//! loopback (accepted once, replay refused, expiry, wrong purpose, tampering), verified offline
//! with the platform's trust and revocation lists, revoked from another phone, and made on
//! platform time by a phone whose clock is 5 minutes wrong.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::crypto as keys;
use carepass_core::domain::voucher::cert::{verified_revocations, Issuer};
use carepass_core::domain::voucher::format::{self, device_id_to_bytes};
use carepass_core::domain::voucher::rotator::{make_code, CodeSource};
use carepass_core::domain::voucher::verify::{MemoryReplayCache, NoDirectory, Verifier};
use carepass_core::domain::voucher::Purpose;
use carepass_core::io::net::{ClientOptions, PlatformClient};
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::{RevocationList, ScanOutcome, ScanRequest, TrustList};
use carepass_core::{CarePass, CoreError, OffsetClock, SystemClock};
use carepass_journeys::*;

const SETTLE: Purpose = Purpose::OutpatientSettlement;

async fn scan(platform: &TestPlatform, payload: &str, purpose: Purpose) -> ScanOutcome {
    admin_client(&platform.url())
        .post("v1/scans", &ScanRequest { payload: payload.into(), purpose }, Some(ADMIN_TOKEN))
        .await
        .expect("scan answered")
}

async fn signed_in(platform: &TestPlatform, dir: &std::path::Path, secrets: &MemorySecretStore) -> Arc<CarePass> {
    let app = phone(&platform.url(), dir, secrets);
    app.enrol(PATIENT, CODE).await.unwrap();
    app
}

#[tokio::test]
async fn a_code_is_accepted_once_and_its_replay_is_refused() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = signed_in(&platform, dir.path(), &secrets).await;
    let code = app.current_code(SETTLE, false, None).unwrap();
    assert!(code.qr.version <= 7, "online code is QR version {}", code.qr.version);

    let first = scan(&platform, &code.text, SETTLE).await;
    assert!(first.accepted, "{first:?}");
    assert_eq!(first.holder.as_ref().unwrap().person_id, "P1001");
    assert_eq!(first.presenter_person_id.as_deref(), Some("P1001"));
    assert_eq!(first.presenter_device_id, app.current_profile().unwrap().map(|p| p.device_id));
    assert!(!first.offline && !first.proxy);

    let again = scan(&platform, &code.text, SETTLE).await;
    assert!(!again.accepted);
    assert_eq!(again.reason.as_deref(), Some("replayed"));
    assert!(again.holder.is_none(), "a refused scan reveals nobody");
}

#[tokio::test]
async fn a_code_for_another_purpose_is_refused_without_being_used_up() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = signed_in(&platform, dir.path(), &MemorySecretStore::new()).await;
    let code = app.current_code(Purpose::PharmacyPurchase, false, None).unwrap();
    assert_eq!(scan(&platform, &code.text, Purpose::Registration).await.reason.as_deref(), Some("wrong_purpose"));
    assert!(scan(&platform, &code.text, Purpose::PharmacyPurchase).await.accepted);
}

#[tokio::test]
async fn a_code_is_refused_after_its_window() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = signed_in(&platform, dir.path(), &MemorySecretStore::new()).await;
    let code = app.current_code(SETTLE, false, None).unwrap();
    platform.advance_clock(2 * 60 * 1000).await;
    assert_eq!(scan(&platform, &code.text, SETTLE).await.reason.as_deref(), Some("expired"));
}

#[tokio::test]
async fn tampered_and_forged_codes_are_refused() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = signed_in(&platform, dir.path(), &MemorySecretStore::new()).await;
    let code = app.current_code(SETTLE, true, None).unwrap();
    let mut bytes = carepass_core::domain::voucher::base45::decode(&code.text[4..]).unwrap();

    // One bit flipped in the nonce.
    bytes[9] ^= 1;
    let flipped = format::to_text(&bytes);
    assert_eq!(scan(&platform, &flipped, SETTLE).await.reason.as_deref(), Some("bad_signature"));
    bytes[9] ^= 1;

    // The purpose changed after signing (pharmacy code reused for settlement).
    bytes[2] = Purpose::PharmacyPurchase as u8;
    assert_eq!(
        scan(&platform, &format::to_text(&bytes), Purpose::PharmacyPurchase).await.reason.as_deref(),
        Some("bad_signature")
    );

    // A self-made certificate from a key the platform never trusted, for the same device id.
    let rogue = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
    let (attacker, _) = keys::SoftwareDeviceKey::generate().unwrap();
    use carepass_core::domain::crypto::DeviceKeyStore;
    let device_id = device_id_to_bytes(&app.current_profile().unwrap().unwrap().device_id).unwrap();
    let cert = rogue.certify(&device_id, &attacker.public_key().unwrap(), 2_000_000_000).unwrap();
    let source = CodeSource { keys: &attacker, device_id, certificate: Some(&cert), period_s: 30 };
    let now = app.client().server_now_ms();
    let forged = make_code(&source, SETTLE, true, None, now, [9, 9, 9, 9]).unwrap();
    assert_eq!(scan(&platform, &forged.text, SETTLE).await.reason.as_deref(), Some("bad_certificate"));

    // The genuine code still works: none of the above used it up.
    assert!(scan(&platform, &code.text, SETTLE).await.accepted);
}

#[tokio::test]
async fn an_offline_scanner_verifies_with_only_the_trust_and_revocation_lists() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = signed_in(&platform, dir.path(), &MemorySecretStore::new()).await;
    let offline = app.current_code(SETTLE, true, None).unwrap();
    assert!(offline.qr.version <= 10, "offline code is QR version {}", offline.qr.version);

    // The scanner downloads the lists once, then works with no platform.
    let client = admin_client(&platform.url());
    let trust: TrustList = client.get("v1/voucher/issuers", None).await.unwrap();
    let issuers: HashMap<u16, Vec<u8>> =
        trust.issuers.iter().map(|i| (i.key_id, B64.decode(&i.public_key).unwrap())).collect();
    let mut list: RevocationList = client.get("v1/voucher/revocations", None).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let verified = verified_revocations(&list, &issuers, now).unwrap();
    assert!(verified.device_ids.is_empty());
    // A list altered on the way (someone unrevoking a device, or revoking one) is refused.
    list.device_ids.push("dev_00000000000000ff".into());
    assert_eq!(verified_revocations(&list, &issuers, now).unwrap_err().code(), "bad_signature");

    let mut scanner = Verifier::new(issuers, 2_000, Arc::new(MemoryReplayCache::default()));
    scanner.set_revocation_list(&verified);
    let verdict = scanner.verify(&offline.text, SETTLE, now, &NoDirectory).unwrap();
    assert!(verdict.offline);
    assert_eq!(scanner.verify(&offline.text, SETTLE, now, &NoDirectory).unwrap_err().code(), "replayed");
    // An online-profile code needs the platform: an offline scanner cannot vouch for it.
    let online = app.current_code(SETTLE, false, None).unwrap();
    assert_eq!(scanner.verify(&online.text, SETTLE, now, &NoDirectory).unwrap_err().code(), "unknown_device");
}

#[tokio::test]
async fn a_lost_phone_is_revoked_from_another_phone_at_once() {
    let platform = TestPlatform::start().await;
    let (lost_dir, spare_dir, child_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (s1, s2, s3) = (MemorySecretStore::new(), MemorySecretStore::new(), MemorySecretStore::new());
    let lost = signed_in(&platform, lost_dir.path(), &s1).await;
    let spare = signed_in(&platform, spare_dir.path(), &s2).await;
    let lost_device = lost.current_profile().unwrap().unwrap().device_id;
    let lost_offline = lost.current_code(SETTLE, true, None).unwrap();
    let lost_online = lost.current_code(SETTLE, false, None).unwrap();

    // The child's phone cannot revoke the parent's device (scope escalation).
    let child = phone(&platform.url(), child_dir.path(), &s3);
    child.enrol(CHILD, CODE).await.unwrap();
    let err = child.revoke_device(&lost_device).await.unwrap_err();
    assert!(
        matches!(&err, CoreError::Net(n) if n.platform_code() == Some(carepass_core::wire::PlatformCode::UnknownDevice)),
        "{err:?}"
    );
    assert!(
        scan(&platform, &lost.current_code(Purpose::Registration, false, None).unwrap().text, Purpose::Registration)
            .await
            .accepted
    );

    spare.revoke_device(&lost_device).await.unwrap();
    assert_eq!(scan(&platform, &lost_online.text, SETTLE).await.reason.as_deref(), Some("revoked"));
    assert_eq!(scan(&platform, &lost_offline.text, SETTLE).await.reason.as_deref(), Some("revoked"));
    assert!(matches!(lost.refresh_profile().await, Err(CoreError::SessionExpired)), "the lost phone's session ended");

    let list: RevocationList = admin_client(&platform.url()).get("v1/voucher/revocations", None).await.unwrap();
    assert_eq!(list.device_ids, vec![lost_device.clone()]);
    assert_eq!(list.sequence, 1);
    // An offline scanner that refreshed its list refuses the lost phone's offline code too.
    let trust: TrustList = admin_client(&platform.url()).get("v1/voucher/issuers", None).await.unwrap();
    let issuers: HashMap<u16, Vec<u8>> =
        trust.issuers.iter().map(|i| (i.key_id, B64.decode(&i.public_key).unwrap())).collect();
    let mut scanner = Verifier::new(issuers.clone(), 2_000, Arc::new(MemoryReplayCache::default()));
    let now = chrono::Utc::now().timestamp_millis();
    scanner.set_revocation_list(&verified_revocations(&list, &issuers, now).unwrap());
    assert_eq!(scanner.verify(&lost_offline.text, SETTLE, now, &NoDirectory).unwrap_err().code(), "revoked");
    // The spare phone goes on working.
    assert!(scan(&platform, &spare.current_code(SETTLE, false, None).unwrap().text, SETTLE).await.accepted);
}

#[tokio::test]
async fn a_phone_five_minutes_slow_makes_accepted_codes_after_one_round_trip() {
    let mut platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let slow = Arc::new(OffsetClock::new(-5 * 60 * 1000));
    let app = phone_with(&platform.url(), dir.path(), &secrets, slow.clone(), Default::default()).unwrap();
    app.enrol(PATIENT, CODE).await.unwrap(); // the one round trip

    let code = app.current_code(SETTLE, false, None).unwrap();
    assert!(scan(&platform, &code.text, SETTLE).await.accepted);

    // Control: the same phone signing on its own clock would be refused as expired.
    let key = carepass_core::domain::crypto::SoftwareDeviceKey::from_pkcs8(&software_key_pkcs8(&app)).unwrap();
    let device_id = device_id_to_bytes(&app.current_profile().unwrap().unwrap().device_id).unwrap();
    let source = CodeSource { keys: &key, device_id, certificate: None, period_s: 30 };
    use carepass_core::Clock;
    let uncorrected = make_code(&source, SETTLE, false, None, slow.now_ms(), [1, 1, 1, 1]).unwrap();
    assert_eq!(scan(&platform, &uncorrected.text, SETTLE).await.reason.as_deref(), Some("expired"));

    // The offset is remembered: after a restart with no network, codes are still on time.
    drop(app);
    let url = platform.url();
    let addr = platform.stop().await;
    let offline_app = phone_with(&url, dir.path(), &secrets, slow, Default::default()).unwrap();
    let code = offline_app.current_code(SETTLE, false, None).unwrap();
    platform.resume(addr).await;
    assert!(scan(&platform, &code.text, SETTLE).await.accepted);
}

#[tokio::test]
async fn only_a_scanner_credential_may_scan() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = signed_in(&platform, dir.path(), &MemorySecretStore::new()).await;
    let code = app.current_code(SETTLE, false, None).unwrap();
    let tokens = stored_tokens(&app, "P1001");
    let client = PlatformClient::new(&platform.url(), Arc::new(SystemClock), &ClientOptions::default()).unwrap();
    let err = client
        .post::<_, ScanOutcome>(
            "v1/scans",
            &ScanRequest { payload: code.text.clone(), purpose: SETTLE },
            Some(&tokens.access_token),
        )
        .await
        .unwrap_err();
    assert_eq!(err.platform_code(), Some(carepass_core::wire::PlatformCode::Forbidden));
    assert!(scan(&platform, &code.text, SETTLE).await.accepted, "the refused attempt did not use the code");
}

#[tokio::test]
async fn a_signed_out_phone_shows_no_code() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = signed_in(&platform, dir.path(), &MemorySecretStore::new()).await;
    app.logout().await.unwrap();
    assert!(matches!(app.current_code(SETTLE, false, None), Err(CoreError::NotSignedIn)));
}

/// The software device key the core keeps sealed in its store (for the control case only).
fn software_key_pkcs8(app: &CarePass) -> Vec<u8> {
    let encoded: String = app.store().vault.get("device-key").unwrap().unwrap();
    B64.decode(encoded).unwrap()
}
