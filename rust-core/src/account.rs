//! Accounts: pure rules about phones, verification codes, login proofs, ages and token
//! lifetimes. The flows that use them (enrol, login, refresh, logout) live in
//! [`crate::app::CarePass`], which owns the client and the store.

use chrono::{Datelike, NaiveDate};

use crate::error::CoreError;

/// Domain separation prefix of the login proof.
pub const LOGIN_CONTEXT: &str = "carepass-login-v1";
/// An access token is refreshed when it has less than this left (platform time).
pub const REFRESH_MARGIN_MS: i64 = 30_000;

/// A mainland mobile number: 11 digits, starting with 1.
pub fn check_phone(phone: &str) -> Result<(), CoreError> {
    if phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CoreError::InvalidInput("a phone number is 11 digits starting with 1".into()))
    }
}

/// A verification code: 6 digits.
pub fn check_verification_code(code: &str) -> Result<(), CoreError> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CoreError::InvalidInput("a verification code is 6 digits".into()))
    }
}

/// The bytes a device signs to log in: `carepass-login-v1 \n device_id \n nonce`.
pub fn login_message(device_id: &str, nonce: &str) -> Vec<u8> {
    format!("{LOGIN_CONTEXT}\n{device_id}\n{nonce}").into_bytes()
}

/// Parses a `YYYY-MM-DD` birth date.
pub fn parse_birth_date(text: &str) -> Result<NaiveDate, CoreError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| CoreError::InvalidInput("a birth date is YYYY-MM-DD".into()))
}

/// Age in whole years on `day` (0 before the first birthday; a 29 February birthday
/// counts on 1 March in common years).
pub fn age_on(birth: NaiveDate, day: NaiveDate) -> u32 {
    if day < birth {
        return 0;
    }
    let mut years = day.year() - birth.year();
    if (day.month(), day.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// Whether an access token should be refreshed before use, at platform time `now_ms`.
pub fn needs_refresh(access_expires_at_ms: i64, now_ms: i64) -> bool {
    access_expires_at_ms.saturating_sub(now_ms) < REFRESH_MARGIN_MS
}

/// A phone number with the middle four digits hidden, for display and logs.
pub fn mask_phone(phone: &str) -> String {
    if phone.len() == 11 && phone.is_ascii() {
        format!("{}****{}", &phone[..3], &phone[7..])
    } else {
        "***".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_birth_date(s).unwrap()
    }

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
    fn age_counts_whole_years() {
        assert_eq!(age_on(d("1948-03-15"), d("2026-03-14")), 77);
        assert_eq!(age_on(d("1948-03-15"), d("2026-03-15")), 78);
        assert_eq!(age_on(d("2017-06-01"), d("2026-11-23")), 9);
        assert_eq!(age_on(d("2020-02-29"), d("2021-02-28")), 0);
        assert_eq!(age_on(d("2020-02-29"), d("2021-03-01")), 1);
        assert_eq!(age_on(d("2030-01-01"), d("2026-01-01")), 0);
    }

    #[test]
    fn tokens_are_refreshed_shortly_before_expiry() {
        assert!(!needs_refresh(100_000, 0));
        assert!(needs_refresh(100_000, 80_000));
        assert!(needs_refresh(100_000, 200_000));
    }

    #[test]
    fn phones_are_masked() {
        assert_eq!(mask_phone("13800000001"), "138****0001");
        assert_eq!(mask_phone("x"), "***");
    }
}
