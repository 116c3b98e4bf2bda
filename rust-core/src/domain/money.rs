//! Money as integer fen (1 yuan = 100 fen). No floating point ever touches an amount.
//!
//! Arithmetic is checked: an overflow or a negative result where none is allowed is an
//! error, never a wrapped value. Display is in yuan with two decimals (`¥12.34`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount in fen. Signed so that refunds and differences can be represented; use
/// [`Fen::non_negative`] where a negative amount is invalid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fen(pub i64);

/// Why an amount computation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount overflow")]
    Overflow,
    #[error("amount must not be negative, got {0} fen")]
    Negative(i64),
    #[error("not an amount in yuan: {0:?}")]
    Unparsable(String),
}

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub fn from_fen(fen: i64) -> Self {
        Fen(fen)
    }

    pub fn as_fen(self) -> i64 {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Fen) -> Result<Fen, MoneyError> {
        self.0.checked_add(other.0).map(Fen).ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Fen) -> Result<Fen, MoneyError> {
        self.0.checked_sub(other.0).map(Fen).ok_or(MoneyError::Overflow)
    }

    pub fn checked_mul(self, factor: i64) -> Result<Fen, MoneyError> {
        self.0.checked_mul(factor).map(Fen).ok_or(MoneyError::Overflow)
    }

    /// Sum of amounts; an overflow anywhere is an error.
    pub fn sum<I: IntoIterator<Item = Fen>>(items: I) -> Result<Fen, MoneyError> {
        items.into_iter().try_fold(Fen::ZERO, Fen::checked_add)
    }

    /// The amount itself when it is zero or positive.
    pub fn non_negative(self) -> Result<Fen, MoneyError> {
        if self.0 < 0 {
            Err(MoneyError::Negative(self.0))
        } else {
            Ok(self)
        }
    }

    /// Parses `12`, `12.3` or `12.34` yuan (an optional leading `-`, no more than two
    /// decimals) without going through floating point.
    pub fn parse_yuan(text: &str) -> Result<Fen, MoneyError> {
        let bad = || MoneyError::Unparsable(text.to_string());
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, frac) = match body.split_once('.') {
            Some((w, f)) => (w, f),
            None => (body, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (!frac.is_empty() && !digits(frac)) || frac.len() > 2 {
            return Err(bad());
        }
        if body.ends_with('.') {
            return Err(bad());
        }
        let yuan: i64 = whole.parse().map_err(|_| bad())?;
        let mut cents: i64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad())? };
        if frac.len() == 1 {
            cents *= 10;
        }
        let fen = yuan.checked_mul(100).and_then(|v| v.checked_add(cents)).ok_or(MoneyError::Overflow)?;
        Ok(Fen(if negative { -fen } else { fen }))
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}¥{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_yuan_with_two_decimals() {
        assert_eq!(Fen(0).to_string(), "¥0.00");
        assert_eq!(Fen(5).to_string(), "¥0.05");
        assert_eq!(Fen(123_456).to_string(), "¥1234.56");
        assert_eq!(Fen(-250).to_string(), "-¥2.50");
        assert_eq!(Fen(i64::MIN).to_string(), "-¥92233720368547758.08");
    }

    #[test]
    fn arithmetic_overflow_is_an_error() {
        assert_eq!(Fen(i64::MAX).checked_add(Fen(1)), Err(MoneyError::Overflow));
        assert_eq!(Fen(i64::MIN).checked_sub(Fen(1)), Err(MoneyError::Overflow));
        assert_eq!(Fen(i64::MAX / 2 + 1).checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(Fen::sum([Fen(1), Fen(i64::MAX)]), Err(MoneyError::Overflow));
        assert_eq!(Fen::sum([Fen(1), Fen(2), Fen(3)]), Ok(Fen(6)));
    }

    #[test]
    fn negative_amounts_are_refused_where_invalid() {
        assert_eq!(Fen(-1).non_negative(), Err(MoneyError::Negative(-1)));
        assert_eq!(Fen(0).non_negative(), Ok(Fen(0)));
    }

    #[test]
    fn parses_yuan_without_floats() {
        assert_eq!(Fen::parse_yuan("12"), Ok(Fen(1200)));
        assert_eq!(Fen::parse_yuan("12.3"), Ok(Fen(1230)));
        assert_eq!(Fen::parse_yuan("0.07"), Ok(Fen(7)));
        assert_eq!(Fen::parse_yuan("-3.10"), Ok(Fen(-310)));
        for bad in ["", "1.234", "1.", ".5", "abc", "1e3", "--1", "99999999999999999999"] {
            assert!(Fen::parse_yuan(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
