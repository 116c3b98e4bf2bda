//! Credit pay-later (信用就医; `docs/payments.md` § 9): a cash channel whose money comes from a
//! credit line the patient signed for, repaid later from another channel. The agreement is
//! the device's signature over its terms:
//!
//! ```text
//! "carepass-credit-v1" 0x00  str person_id  str device_id  i64 limit  u16 term_days  i64 signed_at_ms
//! ```
//! (`str`: 2-byte big-endian length, UTF-8.) A draw over the available credit is refused.

use serde::{Deserialize, Serialize};

use crate::domain::crypto::{self, DeviceKeyStore, KeyError};
use crate::domain::money::Fen;

pub const CONTEXT: &[u8] = b"carepass-credit-v1\0";
/// The highest credit line the sandbox platform grants (¥5,000).
pub const MAX_LIMIT: Fen = Fen(500_000);
/// Days from a draw to its due date.
pub const TERM_DAYS: u16 = 30;

/// The terms a patient signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreditTerms {
    pub person_id: String,
    pub device_id: String,
    pub limit: Fen,
    pub term_days: u16,
    pub signed_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditRefusal {
    #[error("the credit line has {available} available; {asked} asked")]
    OverLimit { available: Fen, asked: Fen },
    #[error("no credit agreement is signed")]
    NoAgreement,
    #[error("a credit limit is ¥0.01 to {}", MAX_LIMIT)]
    BadLimit,
}

impl CreditTerms {
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = CONTEXT.to_vec();
        for text in [&self.person_id, &self.device_id] {
            let bytes = &text.as_bytes()[..text.len().min(255)];
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        out.extend_from_slice(&self.limit.0.to_be_bytes());
        out.extend_from_slice(&self.term_days.to_be_bytes());
        out.extend_from_slice(&self.signed_at_ms.to_be_bytes());
        out
    }

    pub fn sign(&self, keys: &dyn DeviceKeyStore) -> Result<[u8; crypto::SIGNATURE_LEN], KeyError> {
        crypto::sign_fixed(keys, &self.signed_bytes())
    }

    pub fn verify(&self, public_key: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        crypto::verify_p256(public_key, &self.signed_bytes(), signature)
    }
}

/// Checks a limit a patient asks for.
pub fn check_limit(limit: Fen) -> Result<(), CreditRefusal> {
    if limit.0 <= 0 || limit > MAX_LIMIT {
        return Err(CreditRefusal::BadLimit);
    }
    Ok(())
}

/// Whether `amount` can be drawn on a line of `limit` with `used` outstanding.
pub fn check_draw(limit: Fen, used: Fen, amount: Fen) -> Result<(), CreditRefusal> {
    let available = Fen(limit.0.saturating_sub(used.0).max(0));
    if amount > available {
        return Err(CreditRefusal::OverLimit { available, asked: amount });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_within_the_line_only() {
        assert!(check_draw(Fen(10_000), Fen(9_000), Fen(1_000)).is_ok());
        assert_eq!(
            check_draw(Fen(10_000), Fen(9_000), Fen(1_001)),
            Err(CreditRefusal::OverLimit { available: Fen(1_000), asked: Fen(1_001) })
        );
        assert!(check_limit(Fen(0)).is_err());
        assert!(check_limit(Fen(500_001)).is_err());
        assert!(check_limit(MAX_LIMIT).is_ok());
    }
}
