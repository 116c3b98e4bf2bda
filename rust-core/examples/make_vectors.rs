//! Writes the account and store test vectors (`tests/vectors/`). The sealed-value vectors are
//! deterministic (fixed key and nonces); the login-proof vector draws a new key each run, so
//! it is generated once and committed. `cargo run -p carepass-core --example make_vectors`.

use carepass_core::account::login_message;
use carepass_core::keys::{sign_fixed, DeviceKeyStore, SoftwareDeviceKey};
use carepass_core::store::{data_key, seal_with_nonce};
use serde_json::json;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        std::fs::write(root.join("store/sealed-value.json"), serde_json::to_string_pretty(&doc).unwrap() + "\n")
            .unwrap();
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
        std::fs::write(root.join("account/login-proof.json"), serde_json::to_string_pretty(&doc).unwrap() + "\n")
            .unwrap();
    }
}
