//! Receipt verification (`domain::payment::receipt::verify`): a `SignedReceipt` as the
//! platform sends it (`{"key_id", "body", "signature"}`, JSON), verified against the receipt
//! keys of `tests/vectors/payments/receipts.json`.
//!
//! The fuzzer cannot forge the platform's signature, so what `verify` does after it (decode
//! the body, check it, and what the app then does with a verified receipt: the SVG card) is
//! also run directly on receipt bodies: the input itself as a receipt's JSON, and the
//! decoded `body` of a signed receipt whatever its signature. A receipt body is only ever
//! shown after its checks pass, so the card is drawn only for one that passes `check`.
//!
//! Checked: nothing panics; a verified receipt passes its checks; a receipt's JSON round-trips.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::payment::receipt::{check_code, receipt_date, verify, Receipt, ReceiptError};
use carepass_core::domain::payment::SignedReceipt;
use carepass_fuzz::RECEIPT_KEYS;
use libfuzzer_sys::fuzz_target;

/// What the core does with a receipt body once its signature verified.
fn body(bytes: &[u8]) {
    let Ok(receipt) = serde_json::from_slice::<Receipt>(bytes) else { return };
    let json = serde_json::to_vec(&receipt).expect("a receipt encodes");
    assert_eq!(serde_json::from_slice::<Receipt>(&json).ok().as_ref(), Some(&receipt), "receipt JSON round trip");
    let _ = receipt_date(receipt.issued_at_ms);
    let _ = check_code(&receipt.receipt_code, &receipt.receipt_number, receipt.issued_at_ms, receipt.total);
    match receipt.check() {
        Ok(()) => {
            let svg = receipt.svg();
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
            let _ = receipt.reference();
        }
        Err(e) => {
            let _ = (e.code(), e.to_string());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    body(data);
    let Ok(signed) = serde_json::from_slice::<SignedReceipt>(data) else { return };
    match verify(&signed, &RECEIPT_KEYS) {
        Ok(receipt) => {
            assert_eq!(receipt.check(), Ok(()), "a verified receipt passes its checks");
            let _ = receipt.svg();
        }
        Err(e) => {
            let _ = (e.code(), e.to_string());
            if !RECEIPT_KEYS.contains_key(&signed.key_id) {
                assert!(matches!(e, ReceiptError::UnknownKey | ReceiptError::Malformed(_)));
            }
        }
    }
    if let Ok(decoded) = B64.decode(&signed.body) {
        body(&decoded);
    }
});
