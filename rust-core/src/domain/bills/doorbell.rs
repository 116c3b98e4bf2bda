//! The doorbell: what travels through FCM, APNs or a vendor push service. It carries no
//! health data and no amount — only who it is for, a sequence number, when it was rung, and
//! the platform's signature — because push payloads pass through third parties.
//!
//! Push data map (all values strings):
//!
//! | key | value |
//! |---|---|
//! | `v` | `1` |
//! | `k` | push key id (decimal) |
//! | `r` | recipient person id |
//! | `s` | sequence number in the recipient's inbox (decimal, ≥ 1) |
//! | `t` | issue time, ms since the Unix epoch (decimal) |
//! | `g` | ECDSA P-256 / SHA-256 signature, fixed r‖s, base64url without padding |
//!
//! Signed bytes: `"carepass-doorbell-v1" 0x00 ‖ key id (2, BE) ‖ len(r) (1) ‖ r ‖ s (8, BE) ‖ t (8, BE)`.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use crate::domain::crypto;

pub const CONTEXT: &[u8] = b"carepass-doorbell-v1\0";
/// Doorbells older than this are stale.
pub const MAX_AGE_MS: i64 = 24 * 3600 * 1000;
/// Doorbells from further in the future than this are refused.
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;

/// A verified doorbell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doorbell {
    pub key_id: u16,
    pub recipient: String,
    pub seq: u64,
    pub issued_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoorbellError {
    #[error("malformed doorbell: {0}")]
    Malformed(&'static str),
    #[error("doorbell signed with an unknown key")]
    UnknownKey,
    #[error("doorbell signature does not verify")]
    Forged,
    #[error("doorbell is for someone else")]
    WrongRecipient,
    #[error("doorbell is stale")]
    Stale,
    #[error("doorbell comes from the future")]
    FromTheFuture,
}

impl DoorbellError {
    /// Stable reason code (vectors, logs).
    pub fn code(&self) -> &'static str {
        match self {
            DoorbellError::Malformed(_) => "malformed",
            DoorbellError::UnknownKey => "unknown_key",
            DoorbellError::Forged => "forged",
            DoorbellError::WrongRecipient => "wrong_recipient",
            DoorbellError::Stale => "stale",
            DoorbellError::FromTheFuture => "from_the_future",
        }
    }
}

/// The bytes the platform signs.
pub fn signed_bytes(key_id: u16, recipient: &str, seq: u64, issued_at_ms: i64) -> Vec<u8> {
    let r = recipient.as_bytes();
    let mut out = Vec::with_capacity(CONTEXT.len() + 2 + 1 + r.len() + 16);
    out.extend_from_slice(CONTEXT);
    out.extend_from_slice(&key_id.to_be_bytes());
    out.push(r.len().min(255) as u8);
    out.extend_from_slice(&r[..r.len().min(255)]);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&issued_at_ms.to_be_bytes());
    out
}

/// The push data map for a doorbell, given its signature.
pub fn to_data(bell: &Doorbell, signature: &[u8]) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("v".to_string(), "1".to_string()),
        ("k".to_string(), bell.key_id.to_string()),
        ("r".to_string(), bell.recipient.clone()),
        ("s".to_string(), bell.seq.to_string()),
        ("t".to_string(), bell.issued_at_ms.to_string()),
        ("g".to_string(), B64.encode(signature)),
    ])
}

/// Verifies a push data map for `recipient` at time `now_ms` against the platform's push
/// keys (key id → uncompressed P-256 key). Checks, in order: format, key, signature,
/// recipient, age.
pub fn verify(
    data: &HashMap<String, String>,
    keys_by_id: &HashMap<u16, Vec<u8>>,
    recipient: &str,
    now_ms: i64,
) -> Result<Doorbell, DoorbellError> {
    let field = |k: &'static str| data.get(k).map(String::as_str).ok_or(DoorbellError::Malformed(k));
    if field("v")? != "1" {
        return Err(DoorbellError::Malformed("v"));
    }
    let key_id: u16 = decimal(field("k")?).ok_or(DoorbellError::Malformed("k"))?;
    let r = field("r")?;
    if r.is_empty() || r.len() > 64 {
        return Err(DoorbellError::Malformed("r"));
    }
    let seq: u64 = decimal(field("s")?).filter(|s| *s >= 1).ok_or(DoorbellError::Malformed("s"))?;
    let issued_at_ms: i64 = decimal(field("t")?).ok_or(DoorbellError::Malformed("t"))?;
    let signature = B64.decode(field("g")?).map_err(|_| DoorbellError::Malformed("g"))?;
    if signature.len() != crypto::SIGNATURE_LEN {
        return Err(DoorbellError::Malformed("g"));
    }
    let public_key = keys_by_id.get(&key_id).ok_or(DoorbellError::UnknownKey)?;
    crypto::verify_p256(public_key, &signed_bytes(key_id, r, seq, issued_at_ms), &signature)
        .map_err(|_| DoorbellError::Forged)?;
    if r != recipient {
        return Err(DoorbellError::WrongRecipient);
    }
    if issued_at_ms < now_ms.saturating_sub(MAX_AGE_MS) {
        return Err(DoorbellError::Stale);
    }
    if issued_at_ms > now_ms.saturating_add(MAX_FUTURE_MS) {
        return Err(DoorbellError::FromTheFuture);
    }
    Ok(Doorbell { key_id, recipient: r.to_string(), seq, issued_at_ms })
}

/// Whether a push data map looks like a CarePass doorbell (version 1 and all six keys), so a
/// shell can route its pushes before verifying; says nothing about authenticity.
pub fn is_doorbell<'a>(keys_and_version: impl Fn(&str) -> Option<&'a str>) -> bool {
    keys_and_version("v") == Some("1") && ["k", "r", "s", "t", "g"].iter().all(|k| keys_and_version(k).is_some())
}

/// Canonical decimal, the form `to_string` writes: ASCII digits only (no sign, no spaces), no
/// leading zero unless the number is 0 itself, and a value that fits `T` (`k`: 16 bits, `s`:
/// 64 bits, `t`: a signed 64-bit time with no sign, so 0 to 2^63 − 1).
fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    let digits = !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::voucher::cert::Issuer;

    fn ring(issuer: &Issuer, recipient: &str, seq: u64, t: i64) -> HashMap<String, String> {
        let bell = Doorbell { key_id: issuer.key_id, recipient: recipient.into(), seq, issued_at_ms: t };
        let sig = issuer.sign(&signed_bytes(issuer.key_id, recipient, seq, t)).unwrap();
        to_data(&bell, &sig).into_iter().collect()
    }

    #[test]
    fn decimals_are_canonical_so_one_doorbell_has_one_data_map() {
        let push = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let keys = HashMap::from([(1u16, push.public_key())]);
        let now = 1_800_000_000_000;
        let data = ring(&push, "P1001", 42, now);
        // "042" and "42" sign the same bytes; only the form the platform writes is accepted.
        for (key, bad) in [("s", "042"), ("k", "01"), ("t", &format!("0{now}")), ("s", "00")] {
            let mut d = data.clone();
            d.insert(key.into(), bad.to_string());
            assert_eq!(verify(&d, &keys, "P1001", now), Err(DoorbellError::Malformed(key)), "{key}={bad}");
        }
        // The extremes of each width are accepted when signed.
        let top = ring(&push, "P1001", u64::MAX, now);
        assert_eq!(verify(&top, &keys, "P1001", now).map(|b| b.seq), Ok(u64::MAX));
        let zero_key = Issuer::from_pkcs8(0, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let bell = ring(&zero_key, "P1001", 1, now);
        assert_eq!(bell["k"], "0");
        let zero_keys = HashMap::from([(0u16, zero_key.public_key())]);
        assert_eq!(verify(&bell, &zero_keys, "P1001", now).map(|b| b.key_id), Ok(0));
    }

    #[test]
    fn keys_a_push_service_adds_are_ignored_and_key_names_are_exact() {
        let push = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let keys = HashMap::from([(1u16, push.public_key())]);
        let now = 1_800_000_000_000;
        let mut data = ring(&push, "P1001", 7, now);
        for (k, v) in [("from", "1234567890"), ("collapse_key", "app.carepass"), ("google.message_id", "0:1")] {
            data.insert(k.into(), v.into());
        }
        assert_eq!(verify(&data, &keys, "P1001", now).map(|b| b.seq), Ok(7));
        let v = data.remove("v").unwrap();
        data.insert("V".into(), v);
        assert_eq!(verify(&data, &keys, "P1001", now), Err(DoorbellError::Malformed("v")));
    }

    #[test]
    fn the_signature_is_unpadded_base64url_with_zero_trailing_bits() {
        let push = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let keys = HashMap::from([(1u16, push.public_key())]);
        let now = 1_800_000_000_000;
        let data = ring(&push, "P1001", 7, now);
        let g = data["g"].clone();
        assert_eq!(g.len(), 86);
        let last = g.as_bytes()[85];
        let set_trailing_bit = {
            const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let index = ALPHABET.iter().position(|&c| c == last).unwrap();
            format!("{}{}", &g[..85], ALPHABET[index ^ 1] as char)
        };
        let standard = g.replace('-', "+").replace('_', "/");
        for bad in [format!("{g}=="), set_trailing_bit, format!("{g} ")] {
            let mut d = data.clone();
            d.insert("g".into(), bad.clone());
            assert_eq!(verify(&d, &keys, "P1001", now), Err(DoorbellError::Malformed("g")), "{bad}");
        }
        if standard != g {
            let mut d = data.clone();
            d.insert("g".into(), standard);
            assert_eq!(verify(&d, &keys, "P1001", now), Err(DoorbellError::Malformed("g")));
        }
    }

    #[test]
    fn a_signed_doorbell_verifies_and_any_change_does_not() {
        let push = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let keys = HashMap::from([(1u16, push.public_key())]);
        let now = 1_800_000_000_000;
        let data = ring(&push, "P1001", 7, now);
        assert!(is_doorbell(|k| data.get(k).map(String::as_str)));
        let chat = HashMap::from([("v".to_string(), "1".to_string()), ("msg".to_string(), "hi".to_string())]);
        assert!(!is_doorbell(|k| chat.get(k).map(String::as_str)));
        assert_eq!(verify(&data, &keys, "P1001", now).unwrap().seq, 7);
        let mut other_seq = data.clone();
        other_seq.insert("s".into(), "8".into());
        assert_eq!(verify(&other_seq, &keys, "P1001", now), Err(DoorbellError::Forged));
        assert_eq!(verify(&data, &keys, "P1002", now), Err(DoorbellError::WrongRecipient));
        assert_eq!(verify(&data, &keys, "P1001", now + MAX_AGE_MS + 1), Err(DoorbellError::Stale));
        assert_eq!(verify(&data, &keys, "P1001", now - MAX_FUTURE_MS - 1), Err(DoorbellError::FromTheFuture));
        let mut no_seq = data.clone();
        no_seq.remove("s");
        assert_eq!(verify(&no_seq, &keys, "P1001", now), Err(DoorbellError::Malformed("s")));
        for bad in ["-1", "+7", " 7", "0", "1e3", "99999999999999999999999"] {
            let mut d = data.clone();
            d.insert("s".into(), bad.into());
            assert_eq!(verify(&d, &keys, "P1001", now), Err(DoorbellError::Malformed("s")), "{bad}");
        }
        // Field widths: k is 16 bits, s 64 bits unsigned, t 63 bits (a signed 64-bit time
        // with no sign); 20 digits may exceed 2^64 − 1.
        for (key, bad) in
            [("k", "65536"), ("s", "18446744073709551616"), ("s", "99999999999999999999"), ("t", "9223372036854775808")]
        {
            let mut d = data.clone();
            d.insert(key.into(), bad.into());
            assert_eq!(verify(&d, &keys, "P1001", now), Err(DoorbellError::Malformed(key)), "{key}={bad}");
        }
        let mut other_key = data.clone();
        other_key.insert("k".into(), "2".into());
        assert_eq!(verify(&other_key, &keys, "P1001", now), Err(DoorbellError::UnknownKey));
    }
}
