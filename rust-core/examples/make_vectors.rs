//! Writes the test vectors in `tests/vectors/` (store, bills, voucher, account; settlement's
//! are written by hand). The sealed-value vectors are deterministic (fixed key and nonces).
//! Voucher codes, revocation lists and doorbells keep their keys, and every case signed once
//! keeps its signed payload (ECDSA signatures are randomised), so regenerating leaves the
//! existing cases byte for byte and only signs the new ones. The login-proof vector draws a
//! new key each run: generate it only on purpose (`account`).
//! `cargo run -p carepass-core --example make_vectors [store|bills|voucher|account|all]`.

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

/// The existing vector file at `path`, or `Null`.
fn read_existing(path: &std::path::Path) -> Value {
    std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)
}

/// `field` of the existing file's case called `name`: signatures are randomised, so what was
/// signed once is kept, and regenerating leaves every existing case byte for byte as it was.
fn kept(existing: &Value, name: &str, field: &str) -> Option<Value> {
    existing["cases"].as_array()?.iter().find(|c| c["name"] == name).map(|c| c[field].clone())
}

/// The P-256 group order n, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa,
    0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Replaces the 32-byte `s` at the end of `sig` with `n − s`: the other signature of the
/// pair that verifies for the same message and key (one is "low S", one "high S").
fn other_s(sig: &mut [u8]) {
    let at = sig.len() - 32;
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = P256_N[i] as i16 - sig[at + i] as i16 - borrow;
        sig[at + i] = d.rem_euclid(256) as u8;
        borrow = (d < 0) as i16;
    }
}

/// Whether the `s` at the end of `sig` is above n / 2.
fn is_high_s(sig: &[u8]) -> bool {
    let mut half = [0u8; 32];
    let mut carry = 0u8;
    for (h, n) in half.iter_mut().zip(P256_N) {
        *h = (carry << 7) | (n >> 1);
        carry = n & 1;
    }
    sig[sig.len() - 32..] > half[..]
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` of a fixed r‖s signature.
fn der_of(fixed: &[u8]) -> Vec<u8> {
    let integer = |half: &[u8]| {
        let start = half.iter().position(|&b| b != 0).unwrap_or(half.len() - 1);
        let mut v = half[start..].to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let mut body = integer(&fixed[..32]);
    body.extend(integer(&fixed[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

fn voucher_vectors(path: &std::path::Path) {
    let existing = read_existing(path);
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

    // Each signed code: the payload of the existing case that carries it, else a new one.
    let mut nonce_counter = 0u8;
    let mut code = |case_name: &str,
                    keys: &SoftwareDeviceKey,
                    device: [u8; 8],
                    cert: Option<&format::DeviceCertificate>,
                    purpose: Purpose,
                    offline: bool| {
        nonce_counter += 1;
        if let Some(Value::String(payload)) = kept(&existing, case_name, "payload") {
            return payload;
        }
        let source = CodeSource { keys, device_id: device, certificate: cert, period_s: 30 };
        make_code(&source, purpose, offline, None, t0, [0xA0, 0, 0, nonce_counter]).unwrap().text
    };
    let settle = Purpose::OutpatientSettlement;
    let online = code("valid online", &device, id, None, settle, false);
    let offline = code("valid offline", &device, id, Some(&cert), settle, true);
    let revoked_code = code("revoked device", &revoked, rid, Some(&rcert), settle, true);
    let forged = code("forged signature (online)", &forger, id, None, settle, false);
    let forged_offline = code("forged signature (offline, stolen certificate)", &forger, id, Some(&cert), settle, true);
    let untrusted_code = code("wrong issuer (untrusted key id)", &device, id, Some(&untrusted_cert), settle, true);
    let impostor_code =
        code("wrong issuer (trusted key id, other key)", &device, id, Some(&impostor_cert), settle, true);
    let expired_cert_code = code("certificate expired", &device, id, Some(&expired_cert), settle, true);
    let unknown_code = code("unknown device (online)", &forger, uid, None, settle, false);
    let registration = code("wrong purpose", &device, id, None, Purpose::Registration, false);
    let replayed = code("replayed", &device, id, None, settle, false);
    let pharmacy =
        code("purpose by name: pharmacy_purchase (byte 3)", &device, id, None, Purpose::PharmacyPurchase, false);
    let download = code(
        "purpose by name: prescription_download (byte 4)",
        &device,
        id,
        None,
        Purpose::PrescriptionDownload,
        false,
    );

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
    // The same code with n − s: one of the pair is high S, the other low S.
    let mut twin_bytes = online_bytes.clone();
    other_s(&mut twin_bytes);
    let twin = text_of(&twin_bytes);
    let (high, low) = if is_high_s(&online_bytes) { (&online, &twin) } else { (&twin, &online) };
    let mut zero_s = online_bytes.clone();
    let len = zero_s.len();
    zero_s[len - 32..].fill(0);
    let zero_s = text_of(&zero_s);
    let mut s_is_n = online_bytes.clone();
    s_is_n[len - 32..].copy_from_slice(&P256_N);
    let s_is_n = text_of(&s_is_n);

    let period = 30_000;
    let case = |name: &str, payload: &str, now: i64, expect: &str| json!({"name": name, "payload": payload, "purpose": "outpatient_settlement", "now_ms": now, "expect": expect});
    let for_purpose = |name: &str, payload: &str, purpose: &str, expect: &str| json!({"name": name, "payload": payload, "purpose": purpose, "now_ms": t0, "expect": expect});
    let with_skew = |mut case: Value, skew_ms: i64| {
        case["skew_ms"] = json!(skew_ms);
        case
    };
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

    // Added with docs/voucher-code.md's gaps closed; the cases above are unchanged.
    // Purposes by name (§2): the name the scanner works for, the byte the code carries.
    cases.push(for_purpose("purpose by name: registration (byte 1)", &registration, "registration", "accepted"));
    cases.push(for_purpose("purpose by name: pharmacy_purchase (byte 3)", &pharmacy, "pharmacy_purchase", "accepted"));
    cases.push(for_purpose(
        "purpose by name: prescription_download (byte 4)",
        &download,
        "prescription_download",
        "accepted",
    ));
    // A purpose that is not one of the four names is refused before any verification (§5).
    for (name, purpose) in [
        ("unknown purpose name", "outpatient"),
        ("purpose name in another case", "Outpatient_Settlement"),
        ("purpose given as its byte value", "2"),
        ("empty purpose", ""),
    ] {
        cases.push(for_purpose(name, &online, purpose, "invalid_purpose"));
    }
    // Signatures (§2): high and low S both verify; n − s of a used code is the same code.
    cases.push(case("high-S signature", high, t0, "accepted"));
    cases.push(case("low-S signature", low, t0, "accepted"));
    let mut twin_replay = case("the other S (n − s) of a code already used", &twin, t0 + 1_000, "replayed");
    twin_replay["seen_before"] = json!(true);
    twin_replay["first_payload"] = json!(online);
    cases.push(twin_replay);
    cases.push(case("signature with s = 0", &zero_s, t0, "bad_signature"));
    cases.push(case("signature with s = n (not reduced)", &s_is_n, t0, "bad_signature"));
    // Text (§1): one line end a keyboard-wedge scanner adds is trimmed, nothing else.
    cases.push(case("trailing CR LF (keyboard-wedge scanner)", &format!("{online}\r\n"), t0, "accepted"));
    cases.push(case("trailing LF", &format!("{online}\n"), t0, "accepted"));
    cases.push(case("trailing CR", &format!("{online}\r"), t0, "accepted"));
    cases.push(case("two line ends", &format!("{online}\r\n\r\n"), t0, "malformed"));
    cases.push(case("trailing space", &format!("{online} "), t0, "malformed"));
    cases.push(case("leading line end", &format!("\n{online}"), t0, "malformed"));
    cases.push(case("empty payload", "", t0, "malformed"));
    cases.push(case("the prefix alone", "CP1:", t0, "malformed"));
    cases.push(case("lower-case prefix", &online.replacen("CP1:", "cp1:", 1), t0, "malformed"));
    // The platform's skew allowance (§5): 5000 ms either side of the window.
    cases.push(with_skew(
        case("platform skew: last accepted millisecond", &online, t0 + 2 * period + 4_999, "accepted"),
        5_000,
    ));
    cases.push(with_skew(case("platform skew: expired", &online, t0 + 2 * period + 5_000, "expired"), 5_000));
    cases.push(with_skew(
        case("platform skew: first accepted millisecond", &online, t0 - period - 5_000, "accepted"),
        5_000,
    ));
    cases.push(with_skew(case("platform skew: not yet valid", &online, t0 - period - 5_001, "not_yet_valid"), 5_000));

    let doc = json!({
        "format": "docs/voucher-code.md",
        "how_to_run": "For each case: a fresh verifier trusting `issuers`, with `revoked_device_ids` as its revocation list and the case's `skew_ms` (else the file's `skew_ms`); the device directory is `directory` (online-profile keys). The case's `purpose` is a purpose name: if it is not exactly one of the four names, the verdict is `invalid_purpose` and nothing is verified. If `seen_before`, verify `first_payload` (else the payload) once first (it must be accepted), then verify the payload. The verdict must equal `expect` (`accepted`, `invalid_purpose` or a rejection reason).",
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

/// `tests/vectors/voucher/revocations.json`: signed revocation lists (docs/voucher-code.md §6)
/// under the issuer key of `codes.json`.
fn revocation_vectors(path: &std::path::Path, codes: &std::path::Path) {
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    use carepass_core::domain::voucher::cert::{revocation_message, MAX_REVOCATION_AGE_MS, MAX_REVOCATION_FUTURE_MS};

    let existing = read_existing(path);
    let code_keys = read_existing(codes);
    let issuer = Issuer::from_pkcs8(1, &key_from(&code_keys, "/keys/issuer_pkcs8_hex")).unwrap();
    let rogue = Issuer::from_pkcs8(1, &key_from(&code_keys, "/keys/rogue_issuer_pkcs8_hex")).unwrap();
    let t0: i64 = 1_795_435_200_000;
    let a = "dev_00112233445566aa";
    let b = "dev_00112233445566bb";
    let c = "dev_0011223344556600";

    // A signed list (kept from the existing case of that name), signing the ids in the order given.
    let list = |case_name: &str, signer: &Issuer, sequence: u64, issued_at_ms: i64, ids: &[&str]| -> Value {
        if let Some(list) = kept(&existing, case_name, "list").filter(Value::is_object) {
            return list;
        }
        let bytes: Vec<[u8; 8]> = ids.iter().map(|id| device_id_to_bytes(&id.to_lowercase()).unwrap()).collect();
        let signature = signer.sign(&revocation_message(sequence, issued_at_ms, &bytes)).unwrap();
        json!({"sequence": sequence, "issued_at_ms": issued_at_ms, "issuer_key_id": 1, "device_ids": ids,
               "signature": URL_SAFE_NO_PAD.encode(signature)})
    };
    let valid = list("valid, two devices", &issuer, 7, t0 - 60_000, &[c, a]);
    let with = |base: &Value, key: &str, value: Value| {
        let mut v = base.clone();
        v[key] = value;
        v
    };
    let raw = URL_SAFE_NO_PAD.decode(valid["signature"].as_str().unwrap()).unwrap();
    let mut twin = raw.clone();
    other_s(&mut twin);
    let (high, low) = if is_high_s(&raw) { (raw.clone(), twin) } else { (twin, raw.clone()) };
    let sig = |bytes: &[u8]| json!(URL_SAFE_NO_PAD.encode(bytes));
    let issued = valid["issued_at_ms"].as_i64().unwrap();

    let case = |name: &str, list: Value, now_ms: i64, expect: &str| {
        let mut case = json!({"name": name, "list": list, "now_ms": now_ms, "expect": expect});
        if expect == "ok" {
            case["device_ids"] = case["list"]["device_ids"].clone();
        }
        case
    };
    let mut cases = vec![
        case("valid, two devices", valid.clone(), t0, "ok"),
        case("valid, no device revoked", list("valid, no device revoked", &issuer, 0, t0, &[]), t0, "ok"),
        case("high-S signature", with(&valid, "signature", sig(&high)), t0, "ok"),
        case("low-S signature", with(&valid, "signature", sig(&low)), t0, "ok"),
        case(
            "issued before 1970 (issued_at_ms signed as two's complement)",
            list("issued before 1970 (issued_at_ms signed as two's complement)", &issuer, 1, -1_000, &[a]),
            -1_000,
            "ok",
        ),
        case("largest sequence (2^64 − 1)", list("largest sequence (2^64 − 1)", &issuer, u64::MAX, t0, &[a]), t0, "ok"),
        case("exactly 24 hours old", valid.clone(), issued + MAX_REVOCATION_AGE_MS, "ok"),
        case("24 hours and 1 ms old", valid.clone(), issued + MAX_REVOCATION_AGE_MS + 1, "stale"),
        case("issued 5 minutes ahead of the scanner's clock", valid.clone(), issued - MAX_REVOCATION_FUTURE_MS, "ok"),
        case(
            "issued 5 minutes and 1 ms ahead",
            valid.clone(),
            issued - MAX_REVOCATION_FUTURE_MS - 1,
            "from_the_future",
        ),
        case(
            "device ids out of order (signed in that order)",
            list("device ids out of order (signed in that order)", &issuer, 7, t0, &[a, c]),
            t0,
            "malformed",
        ),
        case(
            "a device id twice (signed so)",
            list("a device id twice (signed so)", &issuer, 7, t0, &[a, a]),
            t0,
            "malformed",
        ),
        case(
            "upper-case device id (signed as its bytes)",
            list("upper-case device id (signed as its bytes)", &issuer, 7, t0, &["dev_00112233445566AA"]),
            t0,
            "malformed",
        ),
        case("signature in DER", with(&valid, "signature", sig(&der_of(&raw))), t0, "malformed"),
        case("padded signature", with(&valid, "signature", json!(URL_SAFE.encode(&raw))), t0, "malformed"),
        case("unknown issuer key id", with(&valid, "issuer_key_id", json!(2)), t0, "unknown_issuer"),
        case("signed by another key", list("signed by another key", &rogue, 7, t0, &[c, a]), t0, "bad_signature"),
        case("sequence altered", with(&valid, "sequence", json!(8)), t0, "bad_signature"),
        case("issue time altered", with(&valid, "issued_at_ms", json!(issued + 1)), t0, "bad_signature"),
        case("a device removed", with(&valid, "device_ids", json!([c])), t0, "bad_signature"),
        case("a device added", with(&valid, "device_ids", json!([c, a, b])), t0, "bad_signature"),
    ];
    let standard = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&raw);
    if standard != URL_SAFE_NO_PAD.encode(&raw) {
        let at = cases.len() - 6;
        cases.insert(
            at,
            case("signature in standard base64 (+ and /)", with(&valid, "signature", json!(standard)), t0, "malformed"),
        );
    }
    let doc = json!({
        "format": "docs/voucher-code.md § 6",
        "how_to_run": "Check each case's `list` (as GET /v1/voucher/revocations serves it) at the scanner's time `now_ms` against `issuers`. `ok`: the list is accepted and its revoked devices are `device_ids`; otherwise it is refused whole with the reason `expect` (malformed, unknown_issuer, bad_signature, stale, from_the_future).",
        "issuers": [{"key_id": 1, "public_key_hex": hex(&issuer.public_key())}],
        "max_age_ms": MAX_REVOCATION_AGE_MS,
        "max_future_ms": MAX_REVOCATION_FUTURE_MS,
        "keys": "the issuer and rogue keys of codes.json",
        "cases": cases,
    });
    write_vectors(path, doc);
}

fn doorbell_vectors(path: &std::path::Path) {
    use carepass_core::domain::bills::doorbell::{signed_bytes, to_data, Doorbell};
    let existing = read_existing(path);
    let push_pkcs8 = key_from(&existing, "/keys/push_pkcs8_hex");
    let rogue_pkcs8 = key_from(&existing, "/keys/rogue_pkcs8_hex");
    let push = Issuer::from_pkcs8(1, &push_pkcs8).unwrap();
    let rogue = Issuer::from_pkcs8(1, &rogue_pkcs8).unwrap();
    let now: i64 = 1_795_435_200_000;
    // A signed data map: that of the existing case of this name, else a new one.
    let ring = |case_name: &str, issuer: &Issuer, key_id: u16, r: &str, seq: u64, t: i64| -> Value {
        if let Some(data) = kept(&existing, case_name, "data").filter(Value::is_object) {
            return data;
        }
        let bell = Doorbell { key_id, recipient: r.into(), seq, issued_at_ms: t };
        let sig = issuer.sign(&signed_bytes(key_id, r, seq, t)).unwrap();
        serde_json::to_value(to_data(&bell, &sig)).unwrap()
    };
    let valid = ring("valid", &push, 1, "P1001", 42, now - 2_000);
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
    let g = valid["g"].as_str().unwrap().to_string();
    let sig_bytes = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&g).unwrap()
    };
    let encode = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let mut twin = sig_bytes.clone();
    other_s(&mut twin);
    let twin_label = if is_high_s(&twin) { "high" } else { "low" };
    // The last character of 64 bytes in base64 carries 2 bits and 4 zero bits: set one.
    let trailing_bit = {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = ALPHABET.iter().position(|&c| c == g.as_bytes()[85]).unwrap();
        format!("{}{}", &g[..85], ALPHABET[index ^ 1] as char)
    };
    let standard = g.replace('-', "+").replace('_', "/");
    assert_ne!(standard, g, "the valid signature has a - or _ to show the alphabet");
    let mut from_fcm = valid.clone();
    for (k, v) in [
        ("from", "264831917842"),
        ("collapse_key", "app.carepass"),
        ("google.message_id", "0:1795435198000000%31bd1c9631bd1c96"),
        ("google.sent_time", "1795435198000"),
        ("google.ttl", "2419200"),
    ] {
        from_fcm[k] = json!(v);
    }
    let mut capital_v = with(&valid, "v", None);
    capital_v["V"] = json!("1");
    let t = valid["t"].as_str().unwrap().to_string();

    let case = |name: &str, data: Value, expect: &str| json!({"name": name, "data": data, "expect": expect});
    let cases = vec![
        case("valid", valid.clone(), "pull"),
        case(
            "replayed (sequence already pulled)",
            ring("replayed (sequence already pulled)", &push, 1, "P1001", 40, now - 60_000),
            "already_seen",
        ),
        case(
            "duplicate of the cursor's own doorbell",
            ring("duplicate of the cursor's own doorbell", &push, 1, "P1001", 41, now - 1_000),
            "already_seen",
        ),
        case(
            "forged (signed by another key)",
            ring("forged (signed by another key)", &rogue, 1, "P1001", 43, now),
            "forged",
        ),
        case("forged (sequence altered)", with(&valid, "s", Some("43")), "forged"),
        case("forged (time altered)", with(&valid, "t", Some(&(now - 1_000).to_string())), "forged"),
        case(
            "stale (25 hours old)",
            ring("stale (25 hours old)", &push, 1, "P1001", 43, now - 25 * 3_600_000),
            "stale",
        ),
        case(
            "from the future (10 minutes)",
            ring("from the future (10 minutes)", &push, 1, "P1001", 43, now + 600_000),
            "from_the_future",
        ),
        case("for another person", ring("for another person", &push, 1, "P1002", 43, now), "wrong_recipient"),
        case("unknown key id", ring("unknown key id", &push, 7, "P1001", 43, now), "unknown_key"),
        case("malformed: no signature", with(&valid, "g", None), "malformed"),
        case("malformed: signature not base64url", with(&valid, "g", Some("!!!")), "malformed"),
        case("malformed: short signature", with(&valid, "g", Some("AAAA")), "malformed"),
        case("malformed: sequence not a number", with(&valid, "s", Some("4x")), "malformed"),
        case("malformed: sequence zero", with(&valid, "s", Some("0")), "malformed"),
        case("malformed: unknown version", with(&valid, "v", Some("2")), "malformed"),
        case("malformed: empty", json!({}), "malformed"),
        // Added with docs/bills.md's gaps closed; the cases above are unchanged.
        case("valid with the keys FCM adds to the data map", from_fcm, "pull"),
        case(
            &format!("valid with the other S (n − s, {twin_label} S)"),
            with(&valid, "g", Some(&encode(&twin))),
            "pull",
        ),
        case(
            "largest sequence (2^64 − 1)",
            ring("largest sequence (2^64 − 1)", &push, 1, "P1001", u64::MAX, now),
            "pull",
        ),
        case(
            "malformed: sequence above 2^64 − 1 (20 digits)",
            with(&valid, "s", Some("18446744073709551616")),
            "malformed",
        ),
        case("malformed: sequence with a leading zero (042 signs as 42)", with(&valid, "s", Some("042")), "malformed"),
        case("malformed: key id with a leading zero", with(&valid, "k", Some("01")), "malformed"),
        case("malformed: key id above 16 bits", with(&valid, "k", Some("65537")), "malformed"),
        case("malformed: time with a leading zero", with(&valid, "t", Some(&format!("0{t}"))), "malformed"),
        case("malformed: time above 2^63 − 1", with(&valid, "t", Some("9223372036854775808")), "malformed"),
        case("malformed: padded signature", with(&valid, "g", Some(&format!("{g}=="))), "malformed"),
        case("malformed: signature in standard base64 (+ and /)", with(&valid, "g", Some(&standard)), "malformed"),
        case("malformed: signature with a non-zero trailing bit", with(&valid, "g", Some(&trailing_bit)), "malformed"),
        case("malformed: key names are case-sensitive (V for v)", capital_v, "malformed"),
    ];
    let relay_outbox_example = json!({
        "pushes": [
            {"n": 17, "person_id": "P1001", "push": {"service": "fcm", "token": "fcm-token-of-phone-1", "data": valid.clone()}},
            {"n": 18, "person_id": "P1001", "push": {"service": "huawei", "token": "huawei-token-of-phone-2", "data": valid.clone()}}
        ],
        "cursor": 19
    });
    let doc = json!({
        "format": "docs/bills.md § Doorbell",
        "how_to_run": "Verify each case's `data` (the push data map) for recipient `recipient` at time `now_ms` with the push keys in `push_keys`. A rejection gives its reason; an accepted doorbell whose `s` is at or below `cursor` is `already_seen`, above it `pull`. `relay_outbox_example` is a page of GET /admin/v1/push-outbox (docs/bills.md § 6): its shape is the sandbox's, and each push's `data` verifies as the `valid` case.",
        "push_keys": [{"key_id": 1, "public_key_hex": hex(&push.public_key())}],
        "recipient": "P1001",
        "now_ms": now,
        "cursor": 41,
        "keys": {"push_pkcs8_hex": hex(&push_pkcs8), "rogue_pkcs8_hex": hex(&rogue_pkcs8)},
        "relay_outbox_example": relay_outbox_example,
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
        revocation_vectors(&root.join("voucher/revocations.json"), &root.join("voucher/codes.json"));
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
