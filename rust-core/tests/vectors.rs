//! The shared test vectors in `tests/vectors/` (also read by the Kotlin and Swift tests): sealed
//! store values, login proofs, voucher codes, revocation lists and doorbells give the verdict
//! the vector states (settlement's are in `domain::settlement`'s unit tests).

use std::path::PathBuf;

use carepass_core::domain::account::login_message;
use carepass_core::domain::crypto::{verify_p256, KeyError};
use carepass_core::io::store::{data_key, open_sealed, seal_with_nonce, StoreError};
use serde_json::Value;

fn vector(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors").join(path);
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

/// The cases of a vector file, which must be as many as the file says (`case_count`) and at
/// least one: an empty or truncated file fails here instead of passing vacuously.
fn cases(doc: &Value) -> &Vec<Value> {
    let cases = doc["cases"].as_array().expect("a vector file has a cases array");
    let stated = doc["case_count"].as_u64().expect("a vector file states its case_count");
    assert!(stated > 0, "a vector file with no cases");
    assert_eq!(cases.len() as u64, stated, "the file holds {} cases but says {stated}", cases.len());
    cases
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn sealed_value_vectors_open_or_are_tampered_as_stated() {
    let doc = vector("store/sealed-value.json");
    let key = data_key(&unhex(doc["key_hex"].as_str().unwrap())).unwrap();
    let cases = cases(&doc);
    assert!(cases.len() >= 7);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let aad = unhex(case["aad_hex"].as_str().unwrap());
        let sealed = unhex(case["sealed_hex"].as_str().unwrap());
        let result = open_sealed(&key, &aad, &sealed);
        match case["expect"].as_str().unwrap() {
            "ok" => {
                let plain = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(plain, unhex(case["plaintext_hex"].as_str().unwrap()), "{name}");
                // Sealing is deterministic given the nonce: the vector is reproducible.
                let nonce: [u8; 12] = sealed[1..13].try_into().unwrap();
                assert_eq!(seal_with_nonce(&key, nonce, &aad, &plain).unwrap(), sealed, "{name}");
            }
            "tampered" => assert!(matches!(result, Err(StoreError::Tampered)), "{name}: {result:?}"),
            other => panic!("unknown expectation {other}"),
        }
    }
}

#[test]
fn login_proof_vectors_verify_as_stated() {
    let doc = vector("account/login-proof.json");
    let public_key = unhex(doc["public_key_hex"].as_str().unwrap());
    let message = login_message(doc["device_id"].as_str().unwrap(), doc["nonce"].as_str().unwrap());
    assert_eq!(message, unhex(doc["message_hex"].as_str().unwrap()));
    for case in cases(&doc) {
        let name = case["name"].as_str().unwrap();
        let signature = unhex(case["signature_hex"].as_str().unwrap());
        let verdict = verify_p256(&public_key, &message, &signature);
        match case["expect"].as_str().unwrap() {
            "valid" => assert_eq!(verdict, Ok(()), "{name}"),
            "invalid" => assert_eq!(verdict, Err(KeyError::Invalid), "{name}"),
            "malformed" => assert_eq!(verdict, Err(KeyError::BadSignature), "{name}"),
            other => panic!("unknown expectation {other}"),
        }
    }
}

#[test]
fn voucher_code_vectors_give_the_stated_verdict() {
    use carepass_core::domain::voucher::format::device_id_to_bytes;
    use carepass_core::domain::voucher::verify::{KnownDevice, MemoryReplayCache, Verifier};
    use carepass_core::domain::voucher::Purpose;
    use std::collections::HashMap;
    use std::sync::Arc;

    let doc = vector("voucher/codes.json");
    let issuers: HashMap<u16, Vec<u8>> = doc["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["key_id"].as_u64().unwrap() as u16, unhex(i["public_key_hex"].as_str().unwrap())))
        .collect();
    let revoked: Vec<[u8; 8]> = doc["revoked_device_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| device_id_to_bytes(d.as_str().unwrap()).unwrap())
        .collect();
    let directory: HashMap<[u8; 8], KnownDevice> = doc["directory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let id = device_id_to_bytes(d["device_id"].as_str().unwrap()).unwrap();
            (id, KnownDevice { public_key: unhex(d["public_key_hex"].as_str().unwrap()), revoked: false })
        })
        .collect();
    let file_skew = doc["skew_ms"].as_i64().unwrap();
    let cases = cases(&doc);
    let mut reasons_seen = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let skew = case["skew_ms"].as_i64().unwrap_or(file_skew);
        let mut verifier = Verifier::new(issuers.clone(), skew, Arc::new(MemoryReplayCache::default()));
        verifier.set_revoked(revoked.clone());
        let payload = case["payload"].as_str().unwrap();
        let now = case["now_ms"].as_i64().unwrap();
        // The scanner's purpose is a name; anything else is refused before verification.
        let Some(purpose) = Purpose::from_name(case["purpose"].as_str().unwrap()) else {
            assert_eq!("invalid_purpose", case["expect"].as_str().unwrap(), "{name}");
            reasons_seen.insert("invalid_purpose");
            continue;
        };
        if case["seen_before"].as_bool() == Some(true) {
            let first = case["first_payload"].as_str().unwrap_or(payload);
            assert!(verifier.verify(first, purpose, now, &directory).is_ok(), "{name}: first use");
        }
        let verdict = match verifier.verify(payload, purpose, now, &directory) {
            Ok(_) => "accepted",
            Err(rejection) => rejection.code(),
        };
        assert_eq!(verdict, case["expect"].as_str().unwrap(), "{name}");
        reasons_seen.insert(verdict);
    }
    for required in [
        "accepted",
        "expired",
        "not_yet_valid",
        "replayed",
        "bad_signature",
        "unknown_issuer",
        "revoked",
        "wrong_purpose",
        "malformed",
        "unsupported_version",
        "invalid_purpose",
    ] {
        assert!(reasons_seen.contains(required), "no vector gives {required}");
    }
    let skews: std::collections::BTreeSet<i64> =
        cases.iter().map(|c| c["skew_ms"].as_i64().unwrap_or(file_skew)).collect();
    assert!(skews.contains(&0) && skews.contains(&5_000), "the window edges with no skew and with the platform's");
}

#[test]
fn revocation_list_vectors_are_accepted_or_refused_as_stated() {
    use carepass_core::domain::voucher::cert::{
        verified_revocations, RevocationList, MAX_REVOCATION_AGE_MS, MAX_REVOCATION_FUTURE_MS,
    };
    use carepass_core::domain::voucher::format::device_id_to_string;
    use std::collections::HashMap;

    let doc = vector("voucher/revocations.json");
    assert_eq!(doc["max_age_ms"].as_i64(), Some(MAX_REVOCATION_AGE_MS));
    assert_eq!(doc["max_future_ms"].as_i64(), Some(MAX_REVOCATION_FUTURE_MS));
    let issuers: HashMap<u16, Vec<u8>> = doc["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["key_id"].as_u64().unwrap() as u16, unhex(i["public_key_hex"].as_str().unwrap())))
        .collect();
    let mut reasons = std::collections::BTreeSet::new();
    for case in cases(&doc) {
        let name = case["name"].as_str().unwrap();
        let list: RevocationList = serde_json::from_value(case["list"].clone()).unwrap();
        let now = case["now_ms"].as_i64().unwrap();
        match (verified_revocations(&list, &issuers, now), case["expect"].as_str().unwrap()) {
            (Ok(verified), "ok") => {
                let ids: Vec<String> = verified.device_ids.iter().map(device_id_to_string).collect();
                assert_eq!(serde_json::json!(ids), case["device_ids"], "{name}");
                assert_eq!(verified.sequence, list.sequence, "{name}");
            }
            (Err(e), expect) => assert_eq!(e.code(), expect, "{name}: {e}"),
            (Ok(_), expect) => panic!("{name}: accepted, expected {expect}"),
        }
        reasons.insert(case["expect"].as_str().unwrap().to_string());
    }
    for required in ["ok", "malformed", "unknown_issuer", "bad_signature", "stale", "from_the_future"] {
        assert!(reasons.contains(required), "no vector gives {required}");
    }
}

#[test]
fn doorbell_vectors_give_the_stated_verdict() {
    use carepass_core::domain::bills::doorbell::verify;
    use std::collections::HashMap;

    let doc = vector("bills/doorbells.json");
    let keys_by_id: HashMap<u16, Vec<u8>> = doc["push_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["key_id"].as_u64().unwrap() as u16, unhex(k["public_key_hex"].as_str().unwrap())))
        .collect();
    let recipient = doc["recipient"].as_str().unwrap();
    let now = doc["now_ms"].as_i64().unwrap();
    let cursor = doc["cursor"].as_u64().unwrap();
    let cases = cases(&doc);
    assert!(cases.len() >= 15);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let data: HashMap<String, String> = serde_json::from_value(case["data"].clone()).unwrap();
        let verdict = match verify(&data, &keys_by_id, recipient, now) {
            Ok(bell) if bell.seq <= cursor => "already_seen",
            Ok(_) => "pull",
            Err(e) => e.code(),
        };
        assert_eq!(verdict, case["expect"].as_str().unwrap(), "{name}");
    }

    // The relay outbox (docs/bills.md § 6): a page of pushes, each the data map a push service
    // would deliver, exactly as the `valid` case.
    use carepass_core::wire::RelayedPush;
    let page = &doc["relay_outbox_example"];
    let valid = &cases.iter().find(|c| c["name"] == "valid").unwrap()["data"];
    let keys = |v: &Value| {
        let mut keys = v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        keys.sort();
        keys
    };
    assert_eq!(keys(page), ["cursor", "pushes"]);
    let pushes = page["pushes"].as_array().unwrap();
    assert!(!pushes.is_empty());
    let mut last_n = 0;
    for item in pushes {
        assert_eq!(keys(item), ["n", "person_id", "push"]);
        let n = item["n"].as_u64().unwrap();
        assert!(n > last_n, "ascending n");
        last_n = n;
        let push: RelayedPush = serde_json::from_value(item["push"].clone()).unwrap();
        assert_eq!(keys(&item["push"]), ["data", "service", "token"]);
        assert_eq!(serde_json::json!(push.data), *valid);
        let data: HashMap<String, String> = push.data.into_iter().collect();
        assert!(verify(&data, &keys_by_id, recipient, now).is_ok());
    }
    assert!(page["cursor"].as_u64().unwrap() >= last_n);
}
