//! Accounts: pure rules about phones, verification codes, login proofs and token lifetimes.
//! The flows that use them (enrol, login, refresh, logout) live in `crate::app`, which owns
//! the client and the store.

use crate::domain::{Field, InvalidInput};

/// Domain separation prefix of the login proof.
pub const LOGIN_CONTEXT: &str = "carepass-login-v1";
/// An access token is refreshed when it has less than this left (platform time).
pub const REFRESH_MARGIN_MS: i64 = 30_000;

/// A mainland mobile number: 11 digits, starting with 1.
pub fn check_phone(phone: &str) -> Result<(), InvalidInput> {
    if phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(InvalidInput::new(Field::Phone, "a phone number is 11 digits starting with 1"))
    }
}

/// A verification code: 6 digits.
pub fn check_verification_code(code: &str) -> Result<(), InvalidInput> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(InvalidInput::new(Field::VerificationCode, "a verification code is 6 digits"))
    }
}

/// The bytes a device signs to log in: `carepass-login-v1 \n device_id \n nonce`.
pub fn login_message(device_id: &str, nonce: &str) -> Vec<u8> {
    format!("{LOGIN_CONTEXT}\n{device_id}\n{nonce}").into_bytes()
}

/// Whether an access token should be refreshed before use, at platform time `now_ms`.
pub fn needs_refresh(access_expires_at_ms: i64, now_ms: i64) -> bool {
    access_expires_at_ms.saturating_sub(now_ms) < REFRESH_MARGIN_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_codes_are_checked() {
        assert!(check_phone("13800000001").is_ok());
        for bad in ["", "1380000000", "138000000011", "23800000001", "1380000000a", "１3800000001"] {
            assert!(check_phone(bad).is_err(), "{bad}");
        }
        assert!(check_verification_code("123456").is_ok());
        for bad in ["12345", "1234567", "12345a", ""] {
            assert!(check_verification_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_refreshed_shortly_before_expiry() {
        assert!(!needs_refresh(100_000, 0));
        assert!(needs_refresh(100_000, 80_000));
        assert!(needs_refresh(100_000, 200_000));
    }
}
