//! Writes the account and store test vectors (`tests/vectors/`). The sealed-value vectors are
//! deterministic (fixed key and nonces); the login-proof vector draws a new key each run, so
//! it is generated once and committed. `cargo run -p carepass-core --example make_vectors`.

use carepass_core::domain::account::login_message;
use carepass_core::domain::crypto::{sign_fixed, DeviceKeyStore, SoftwareDeviceKey};
use carepass_core::domain::voucher::cert::Issuer;
use carepass_core::domain::voucher::format::{self, device_id_to_bytes};
use carepass_core::domain::voucher::rotator::{make_code, CodeSource};
use carepass_core::domain::voucher::Purpose;
use carepass_core::io::store::{data_key, seal_with_nonce};
use serde_json::{json, Value};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// Keys kept from the existing vector file (so regenerating keeps them), else new ones.
fn key_from(existing: &Value, field: &str) -> Vec<u8> {
    match existing.pointer(field).and_then(Value::as_str) {
        Some(hex) => unhex(hex),
        None => SoftwareDeviceKey::generate().unwrap().1,
    }
}

fn voucher_vectors(path: &std::path::Path) {
    let existing: Value =
        std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
    let issuer_pkcs8 = key_from(&existing, "/keys/issuer_pkcs8_hex");
    let rogue_pkcs8 = key_from(&existing, "/keys/rogue_issuer_pkcs8_hex");
    let device_pkcs8 = key_from(&existing, "/keys/device_pkcs8_hex");
    let revoked_pkcs8 = key_from(&existing, "/keys/revoked_device_pkcs8_hex");
    let forger_pkcs8 = key_from(&existing, "/keys/forger_pkcs8_hex");
    let issuer = Issuer::from_pkcs8(1, &issuer_pkcs8).unwrap();
    let untrusted = Issuer::from_pkcs8(9, &rogue_pkcs8).unwrap();
    let impostor = Issuer::from_pkcs8(1, &rogue_pkcs8).unwrap();
    let device = SoftwareDeviceKey::from_pkcs8(&device_pkcs8).unwrap();
    let revoked = SoftwareDeviceKey::from_pkcs8(&revoked_pkcs8).unwrap();
    let forger = SoftwareDeviceKey::from_pkcs8(&forger_pkcs8).unwrap();
    let device_id = "dev_00112233445566aa";
    let revoked_id = "dev_00112233445566bb";
    let unknown_id = "dev_00112233445566cc";
    let id = device_id_to_bytes(device_id).unwrap();
    let rid = device_id_to_bytes(revoked_id).unwrap();
    let uid = device_id_to_bytes(unknown_id).unwrap();

    // 2026-11-23T12:00:00Z, on a 30 s boundary.
    let t0: i64 = 1_795_435_200_000;
    let cert_not_after = (t0 / 1000 + 180 * 86_400) as u32;
    let cert = issuer.certify(&id, &device.public_key().unwrap(), cert_not_after).unwrap();
    let rcert = issuer.certify(&rid, &revoked.public_key().unwrap(), cert_not_after).unwrap();
    let expired_cert = issuer.certify(&id, &device.public_key().unwrap(), (t0 / 1000 - 60) as u32).unwrap();
    let untrusted_cert = untrusted.certify(&id, &device.public_key().unwrap(), cert_not_after).unwrap();
    let impostor_cert = impostor.certify(&id, &device.public_key().unwrap(), cert_not_after).unwrap();

    let mut nonce_counter = 0u8;
    let mut code = |keys: &SoftwareDeviceKey,
                    device: [u8; 8],
                    cert: Option<&format::DeviceCertificate>,
                    purpose: Purpose,
                    offline: bool| {
        nonce_counter += 1;
        let source = CodeSource { keys, device_id: device, certificate: cert, period_s: 30 };
        make_code(&source, purpose, offline, false, t0, [0xA0, 0, 0, nonce_counter]).unwrap().text
    };
    let settle = Purpose::OutpatientSettlement;
    let online = code(&device, id, None, settle, false);
    let offline = code(&device, id, Some(&cert), settle, true);
    let revoked_code = code(&revoked, rid, Some(&rcert), settle, true);
    let forged = code(&forger, id, None, settle, false);
    let forged_offline = code(&forger, id, Some(&cert), settle, true);
    let untrusted_code = code(&device, id, Some(&untrusted_cert), settle, true);
    let impostor_code = code(&device, id, Some(&impostor_cert), settle, true);
    let expired_cert_code = code(&device, id, Some(&expired_cert), settle, true);
    let unknown_code = code(&forger, uid, None, settle, false);
    let registration = code(&device, id, None, Purpose::Registration, false);
    let replayed = code(&device, id, None, settle, false);

    let bytes_of = |text: &str| carepass_core::domain::voucher::base45::decode(&text[4..]).unwrap();
    let text_of = |bytes: &[u8]| format::to_text(bytes);
    let online_bytes = bytes_of(&online);
    let truncated = text_of(&online_bytes[..online_bytes.len() - 1]);
    let mut flipped = online_bytes.clone();
    flipped[9] ^= 0x04; // inside the nonce: still parses, no longer matches its signature
    let flipped = text_of(&flipped);
    let mut v2 = online_bytes.clone();
    v2[0] = 2;
    let wrong_version = text_of(&v2);

    let period = 30_000;
    let case = |name: &str, payload: &str, now: i64, expect: &str| json!({"name": name, "payload": payload, "purpose": "outpatient_settlement", "now_ms": now, "expect": expect});
    let mut cases = vec![
        case("valid online", &online, t0 + 5_000, "accepted"),
        case("valid offline", &offline, t0 + 5_000, "accepted"),
        case("valid online at the last accepted millisecond", &online, t0 + 2 * period - 1, "accepted"),
        case("valid online one period early (phone clock ahead)", &online, t0 - period, "accepted"),
        case("expired", &online, t0 + 2 * period, "expired"),
        case("not yet valid", &online, t0 - period - 1, "not_yet_valid"),
        case("forged signature (online)", &forged, t0, "bad_signature"),
        case("forged signature (offline, stolen certificate)", &forged_offline, t0, "bad_signature"),
        case("wrong issuer (untrusted key id)", &untrusted_code, t0, "unknown_issuer"),
        case("wrong issuer (trusted key id, other key)", &impostor_code, t0, "bad_certificate"),
        case("certificate expired", &expired_cert_code, t0, "certificate_expired"),
        case("revoked device", &revoked_code, t0, "revoked"),
        case("unknown device (online)", &unknown_code, t0, "unknown_device"),
        case("wrong purpose", &registration, t0, "wrong_purpose"),
        case("truncated", &truncated, t0, "malformed"),
        case("bit-flipped", &flipped, t0, "bad_signature"),
        case("wrong version", &wrong_version, t0, "unsupported_version"),
        case("not a CarePass code", "HC1:NCFOXN%TS3DH", t0, "malformed"),
        case("not base45", &online.to_lowercase().replace("cp1:", "CP1:"), t0, "malformed"),
    ];
    let mut replay = case("replayed", &replayed, t0 + 1_000, "replayed");
    replay["seen_before"] = json!(true);
    cases.insert(6, replay);

    let doc = json!({
        "format": "docs/voucher-code.md",
        "how_to_run": "For each case: a fresh verifier trusting `issuers`, with `revoked_device_ids` as its revocation list and `skew_ms`; the device directory is `directory` (online-profile keys). If `seen_before`, verify the payload once first (it must be accepted), then verify it again. The verdict must equal `expect` (`accepted` or a rejection reason).",
        "issuers": [{"key_id": 1, "public_key_hex": hex(&issuer.public_key())}],
        "revoked_device_ids": [revoked_id],
        "skew_ms": 0,
        "period_s": 30,
        "directory": [
            {"device_id": device_id, "public_key_hex": hex(&device.public_key().unwrap())},
            {"device_id": revoked_id, "public_key_hex": hex(&revoked.public_key().unwrap())}
        ],
        "keys": {
            "issuer_pkcs8_hex": hex(&issuer_pkcs8),
            "rogue_issuer_pkcs8_hex": hex(&rogue_pkcs8),
            "device_pkcs8_hex": hex(&device_pkcs8),
            "revoked_device_pkcs8_hex": hex(&revoked_pkcs8),
            "forger_pkcs8_hex": hex(&forger_pkcs8)
        },
        "cases": cases,
    });
    write_vectors(path, doc);
}

fn doorbell_vectors(path: &std::path::Path) {
    use carepass_core::domain::bills::doorbell::{signed_bytes, to_data, Doorbell};
    let existing: Value =
        std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
    let push_pkcs8 = key_from(&existing, "/keys/push_pkcs8_hex");
    let rogue_pkcs8 = key_from(&existing, "/keys/rogue_pkcs8_hex");
    let push = Issuer::from_pkcs8(1, &push_pkcs8).unwrap();
    let rogue = Issuer::from_pkcs8(1, &rogue_pkcs8).unwrap();
    let now: i64 = 1_795_435_200_000;
    let ring = |issuer: &Issuer, key_id: u16, r: &str, seq: u64, t: i64| -> Value {
        let bell = Doorbell { key_id, recipient: r.into(), seq, issued_at_ms: t };
        let sig = issuer.sign(&signed_bytes(key_id, r, seq, t)).unwrap();
        serde_json::to_value(to_data(&bell, &sig)).unwrap()
    };
    let valid = ring(&push, 1, "P1001", 42, now - 2_000);
    let with = |base: &Value, key: &str, value: Option<&str>| {
        let mut v = base.clone();
        match value {
            Some(x) => v[key] = json!(x),
            None => {
                v.as_object_mut().unwrap().remove(key);
            }
        }
        v
    };
    let case = |name: &str, data: Value, expect: &str| json!({"name": name, "data": data, "expect": expect});
    let cases = vec![
        case("valid", valid.clone(), "pull"),
        case("replayed (sequence already pulled)", ring(&push, 1, "P1001", 40, now - 60_000), "already_seen"),
        case("duplicate of the cursor's own doorbell", ring(&push, 1, "P1001", 41, now - 1_000), "already_seen"),
        case("forged (signed by another key)", ring(&rogue, 1, "P1001", 43, now), "forged"),
        case("forged (sequence altered)", with(&valid, "s", Some("43")), "forged"),
        case("forged (time altered)", with(&valid, "t", Some(&(now - 1_000).to_string())), "forged"),
        case("stale (25 hours old)", ring(&push, 1, "P1001", 43, now - 25 * 3_600_000), "stale"),
        case("from the future (10 minutes)", ring(&push, 1, "P1001", 43, now + 600_000), "from_the_future"),
        case("for another person", ring(&push, 1, "P1002", 43, now), "wrong_recipient"),
        case("unknown key id", ring(&push, 7, "P1001", 43, now), "unknown_key"),
        case("malformed: no signature", with(&valid, "g", None), "malformed"),
        case("malformed: signature not base64url", with(&valid, "g", Some("!!!")), "malformed"),
        case("malformed: short signature", with(&valid, "g", Some("AAAA")), "malformed"),
        case("malformed: sequence not a number", with(&valid, "s", Some("4x")), "malformed"),
        case("malformed: sequence zero", with(&valid, "s", Some("0")), "malformed"),
        case("malformed: unknown version", with(&valid, "v", Some("2")), "malformed"),
        case("malformed: empty", json!({}), "malformed"),
    ];
    let doc = json!({
        "format": "docs/bills.md § Doorbell",
        "how_to_run": "Verify each case's `data` (the push data map) for recipient `recipient` at time `now_ms` with the push keys in `push_keys`. A rejection gives its reason; an accepted doorbell whose `s` is at or below `cursor` is `already_seen`, above it `pull`.",
        "push_keys": [{"key_id": 1, "public_key_hex": hex(&push.public_key())}],
        "recipient": "P1001",
        "now_ms": now,
        "cursor": 41,
        "keys": {"push_pkcs8_hex": hex(&push_pkcs8), "rogue_pkcs8_hex": hex(&rogue_pkcs8)},
        "cases": cases,
    });
    write_vectors(path, doc);
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());

    if which == "all" || which == "store" {
        let key_bytes: Vec<u8> = (0u8..32).collect();
        let key = data_key(&key_bytes).unwrap();
        let aad = b"profile/P1001\0session".to_vec();
        let plain = br#"{"access_token":"a","refresh_token":"r"}"#.to_vec();
        let nonce = [0x11u8; 12];
        let sealed = seal_with_nonce(&key, nonce, &aad, &plain).unwrap();
        let mut flipped = sealed.clone();
        flipped[20] ^= 0x01;
        let mut bad_version = sealed.clone();
        bad_version[0] = 0x02;
        let other_key = data_key(&[0x42u8; 32]).unwrap();
        let under_other_key = seal_with_nonce(&other_key, nonce, &aad, &plain).unwrap();
        let empty = seal_with_nonce(&key, [0x22u8; 12], b"app\0active_profile", b"").unwrap();
        let doc = json!({
            "format": "sealed value v1 = 0x01 || nonce (12 bytes) || ChaCha20-Poly1305 ciphertext || tag (16 bytes); associated data = tree name || 0x00 || key (UTF-8)",
            "key_hex": hex(&key_bytes),
            "cases": [
                {"name": "valid", "aad_hex": hex(&aad), "sealed_hex": hex(&sealed), "expect": "ok", "plaintext_hex": hex(&plain)},
                {"name": "valid empty value", "aad_hex": hex(b"app\0active_profile"), "sealed_hex": hex(&empty), "expect": "ok", "plaintext_hex": ""},
                {"name": "bit flipped in ciphertext", "aad_hex": hex(&aad), "sealed_hex": hex(&flipped), "expect": "tampered"},
                {"name": "moved to another profile (other associated data)", "aad_hex": hex(b"profile/P1002\0session"), "sealed_hex": hex(&sealed), "expect": "tampered"},
                {"name": "sealed under another key", "aad_hex": hex(&aad), "sealed_hex": hex(&under_other_key), "expect": "tampered"},
                {"name": "unknown version byte", "aad_hex": hex(&aad), "sealed_hex": hex(&bad_version), "expect": "tampered"},
                {"name": "truncated", "aad_hex": hex(&aad), "sealed_hex": hex(&sealed[..20]), "expect": "tampered"},
            ]
        });
        write_vectors(root.join("store/sealed-value.json"), doc);
    }

    if which == "all" || which == "bills" {
        doorbell_vectors(&root.join("bills/doorbells.json"));
    }

    if which == "all" || which == "voucher" {
        voucher_vectors(&root.join("voucher/codes.json"));
    }

    if which == "all" || which == "account" {
        let (key, pkcs8) = SoftwareDeviceKey::generate().unwrap();
        let device_id = "dev_0123456789abcdef";
        let nonce = "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6";
        let message = login_message(device_id, nonce);
        let signature = sign_fixed(&key, &message).unwrap();
        let mut forged = signature;
        forged[40] ^= 0x80;
        let other = sign_fixed(&key, &login_message(device_id, "another-nonce")).unwrap();
        let doc = json!({
            "format": "login proof = ECDSA P-256 SHA-256 over UTF-8 'carepass-login-v1\\n' || device_id || '\\n' || nonce; signature fixed 64-byte r||s",
            "private_key_pkcs8_hex": hex(&pkcs8),
            "public_key_hex": hex(&key.public_key().unwrap()),
            "device_id": device_id,
            "nonce": nonce,
            "message_hex": hex(&message),
            "cases": [
                {"name": "valid", "signature_hex": hex(&signature), "expect": "valid"},
                {"name": "bit flipped", "signature_hex": hex(&forged), "expect": "invalid"},
                {"name": "signature over another nonce", "signature_hex": hex(&other), "expect": "invalid"},
                {"name": "truncated", "signature_hex": hex(&signature[..63]), "expect": "malformed"},
            ]
        });
        write_vectors(root.join("account/login-proof.json"), doc);
    }
}

/// Writes a vector file with its `case_count`, which every language's test checks against the
/// cases it read (so an empty or truncated file fails instead of passing vacuously).
fn write_vectors(path: impl AsRef<std::path::Path>, mut doc: Value) {
    let count = doc["cases"].as_array().map(Vec::len).expect("a vector file has cases");
    doc["case_count"] = json!(count);
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
}
