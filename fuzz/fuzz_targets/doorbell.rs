//! The doorbell push data map (`domain::bills::doorbell`): what FCM, APNs or a vendor push
//! service hands the app, verified against the vectors' push keys for their recipient.
//!
//! Input: the map as `key 0x01 value` entries separated by `0x00` (an entry without `0x01`
//! is a key with an empty value; bytes that are not UTF-8 are replaced, as a shell's string
//! conversion would). A later duplicate key wins, as in a map built from a list.
//!
//! Checked: nothing panics; an accepted doorbell is canonical (its six fields are exactly
//! what `to_data` writes for it) and for the recipient; `is_doorbell` holds for every map the
//! verifier accepts.
#![no_main]

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::bills::doorbell::{is_doorbell, to_data, verify, MAX_AGE_MS, MAX_FUTURE_MS};
use carepass_fuzz::DOORBELL;
use libfuzzer_sys::fuzz_target;

fn data_map(bytes: &[u8]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for entry in bytes.split(|b| *b == 0) {
        if entry.is_empty() {
            continue;
        }
        let (key, value) = match entry.iter().position(|b| *b == 1) {
            Some(at) => (&entry[..at], &entry[at + 1..]),
            None => (entry, &[][..]),
        };
        map.insert(String::from_utf8_lossy(key).into_owned(), String::from_utf8_lossy(value).into_owned());
    }
    map
}

fuzz_target!(|bytes: &[u8]| {
    let setup = &*DOORBELL;
    let data = data_map(bytes);
    let looks_like_one = is_doorbell(|k| data.get(k).map(String::as_str));
    // At the vectors' time, and at the doorbell's own issue time (when `t` is a number), so a
    // validly signed doorbell of any age gets past the age check.
    let mut times = vec![setup.now_ms, i64::MIN, i64::MAX];
    if let Some(t) = data.get("t").and_then(|t| t.parse::<i64>().ok()) {
        times.push(t);
    }
    for now_ms in times {
        let verdict = verify(&data, &setup.keys, &setup.recipient, now_ms);
        match verdict {
            Ok(bell) => {
                assert!(looks_like_one, "an accepted map is a doorbell");
                assert_eq!(bell.recipient, setup.recipient);
                assert!(bell.seq >= 1);
                assert!(bell.issued_at_ms >= now_ms.saturating_sub(MAX_AGE_MS));
                assert!(bell.issued_at_ms <= now_ms.saturating_add(MAX_FUTURE_MS));
                let signature = B64.decode(&data["g"]).expect("an accepted signature decodes");
                for (key, value) in to_data(&bell, &signature) {
                    assert_eq!(data.get(&key), Some(&value), "accepted doorbell field {key} is canonical");
                }
            }
            Err(e) => {
                let _ = (e.code(), e.to_string());
            }
        }
    }
    // A phone signed in as someone else never accepts it.
    if data.get("r").map(String::as_str) != Some("P9999") {
        assert!(verify(&data, &setup.keys, "P9999", setup.now_ms).is_err());
    }
});
