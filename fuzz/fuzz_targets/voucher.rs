//! A scanner's inputs: the scanned code text (`CP1:` + base45) and bytes, run through the
//! verifier with the vectors' trust set, directory and revocation list; and, for an input
//! that starts with `{`, the signed revocation list a scanner fetches (JSON), verified and
//! then used for an offline code.
//!
//! Checked on every input: nothing panics; a code that parses re-assembles to the same bytes;
//! base45 round-trips; a code accepted once is `replayed` the second time; the verdict does
//! not depend on which verifier instance gives it.
#![no_main]

use std::sync::Arc;

use carepass_core::domain::voucher::base45;
use carepass_core::domain::voucher::cert::{verified_revocations, RevocationList};
use carepass_core::domain::voucher::format::{self, device_id_to_bytes, device_id_to_string};
use carepass_core::domain::voucher::verify::{MemoryReplayCache, NoDirectory, Rejection, Verifier};
use carepass_core::domain::voucher::Purpose;
use carepass_fuzz::{VALID_OFFLINE_CODE, VOUCHER};
use libfuzzer_sys::fuzz_target;

fn scanner() -> Verifier {
    let setup = &*VOUCHER;
    let mut v = Verifier::new(setup.issuers.clone(), setup.skew_ms, Arc::new(MemoryReplayCache::default()));
    v.set_revoked(setup.revoked.iter().copied());
    v
}

fn check_bytes(bytes: &[u8]) {
    if let Ok(code) = format::parse_bytes(bytes) {
        assert_eq!(code.signed_part, code.body.to_bytes(), "signed part is the body's bytes");
        assert_eq!(format::assemble(&code.body, &code.signature), bytes, "a parsed code re-assembles to its bytes");
        let text = format::to_text(bytes);
        assert_eq!(format::parse_text(&text).as_ref(), Ok(&code), "bytes → text → code");
        let id = device_id_to_string(&code.body.device_id);
        assert_eq!(device_id_to_bytes(&id), Ok(code.body.device_id));
    }
    let encoded = base45::encode(bytes);
    assert_eq!(base45::decode(&encoded).as_deref(), Some(bytes), "base45 round trip");
}

fn check_text(text: &str) {
    let setup = &*VOUCHER;
    if let Some(decoded) = base45::decode(text) {
        assert_eq!(base45::encode(&decoded), text, "base45 text has one spelling");
    }
    let parsed = format::parse_text(text);
    // At the vectors' time for settlement, and (for a code that parses) inside its own window
    // for its own purpose, so a validly signed code gets past the time and purpose checks.
    let mut attempts = vec![(Purpose::OutpatientSettlement, setup.now_ms)];
    if let Ok(code) = &parsed {
        attempts.push((code.body.purpose, code.body.valid_from_ms()));
    }
    for (purpose, now_ms) in attempts {
        let first_scanner = scanner();
        let first = first_scanner.verify(text, purpose, now_ms, &setup.directory);
        let again = scanner().verify(text, purpose, now_ms, &setup.directory);
        assert_eq!(first, again, "the verdict is a function of the input");
        match &first {
            Ok(verified) => {
                let code = parsed.as_ref().expect("an accepted code parses");
                assert_eq!(verified.purpose, purpose);
                assert_eq!(device_id_to_bytes(&verified.device_id), Ok(code.body.device_id));
                assert!(verified.accepted_until_ms > now_ms, "accepted after its window");
                assert_eq!(
                    first_scanner.verify(text, purpose, now_ms, &setup.directory),
                    Err(Rejection::Replayed),
                    "a code is single use"
                );
            }
            Err(rejection) => {
                let _ = rejection.code();
                let _ = rejection.to_string();
                if parsed.is_err() {
                    assert!(matches!(rejection, Rejection::Malformed(_) | Rejection::UnsupportedVersion));
                }
            }
        }
        // An offline scanner without a directory.
        let _ = scanner().verify(text, purpose, now_ms, &NoDirectory);
    }
}

fn check_revocation_list(bytes: &[u8]) {
    let Ok(list) = serde_json::from_slice::<RevocationList>(bytes) else { return };
    let setup = &*VOUCHER;
    let (offline_code, code_time) = &*VALID_OFFLINE_CODE;
    for now_ms in [setup.now_ms, list.issued_at_ms, *code_time] {
        let Ok(verified) = verified_revocations(&list, &setup.issuers, now_ms) else { continue };
        assert!(verified.device_ids.windows(2).all(|w| w[0] < w[1]), "revoked ids ascending");
        assert_eq!(verified.device_ids.len(), list.device_ids.len());
        let mut v = Verifier::new(setup.issuers.clone(), setup.skew_ms, Arc::new(MemoryReplayCache::default()));
        v.set_revocation_list(&verified);
        let _ = v.verify(offline_code, Purpose::OutpatientSettlement, *code_time, &NoDirectory);
    }
}

fuzz_target!(|data: &[u8]| {
    check_bytes(data);
    if data.first() == Some(&b'{') {
        check_revocation_list(data);
    }
    match std::str::from_utf8(data) {
        Ok(text) => check_text(text),
        Err(_) => check_text(&String::from_utf8_lossy(data)),
    }
});
