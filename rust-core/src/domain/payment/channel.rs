//! The cash leg's payment channel (`docs/payments.md` § 2): how the part the insurance does
//! not pay is paid. On the wire a channel is one string:
//!
//! | Wire | Channel |
//! |---|---|
//! | `none` | no cash leg (the insurance pays everything) |
//! | `card:<12–19 digits>` | a bank card; the number passes the Luhn check |
//! | `credit` | credit pay-later (信用就医): the cash goes onto the patient's credit line |

use serde::{Deserialize, Serialize};

use crate::domain::{Field, InvalidInput};

/// A payment channel for the cash leg.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Channel {
    /// No cash leg.
    None,
    /// A bank card, by its number (the sandbox's test cards are numbers, as a payment
    /// sandbox's are; a production channel would hand the app a token in the same place).
    Card(String),
    /// Credit pay-later: the cash is drawn on the patient's credit line and repaid later.
    Credit,
}

impl Channel {
    /// Parses the wire form.
    pub fn parse(text: &str) -> Result<Channel, InvalidInput> {
        match text {
            "none" => Ok(Channel::None),
            "credit" => Ok(Channel::Credit),
            _ => {
                let bad = InvalidInput::new(
                    Field::PaymentChannel,
                    "a channel is none, credit or card:<12 to 19 digits that pass the Luhn check>",
                );
                let digits = text.strip_prefix("card:").ok_or(bad.clone())?;
                if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) || !luhn(digits) {
                    return Err(bad);
                }
                Ok(Channel::Card(digits.to_string()))
            }
        }
    }

    /// The wire form.
    pub fn wire(&self) -> String {
        match self {
            Channel::None => "none".into(),
            Channel::Card(number) => format!("card:{number}"),
            Channel::Credit => "credit".into(),
        }
    }

    /// What a receipt or a screen shows: the card's last four digits only.
    pub fn masked(&self) -> String {
        match self {
            Channel::None => "none".into(),
            Channel::Card(number) => format!("card ····{}", &number[number.len().saturating_sub(4)..]),
            Channel::Credit => "credit (pay later)".into(),
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Channel::None)
    }
}

impl TryFrom<String> for Channel {
    type Error = InvalidInput;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Channel::parse(&text)
    }
}

impl From<Channel> for String {
    fn from(channel: Channel) -> String {
        channel.wire()
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

/// The Luhn (mod 10) check digit test of a card number.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_and_bad_ones_name_the_field() {
        for wire in ["none", "credit", "card:4242424242424242", "card:4000000000009995"] {
            assert_eq!(Channel::parse(wire).unwrap().wire(), wire);
        }
        for bad in [
            "",
            "card:",
            "card:4242424242424241",
            "card:42424242",
            "card:4242 4242 4242 4242",
            "CARD:4242424242424242",
            "cash",
            "card:42424242424242424242",
        ] {
            let e = Channel::parse(bad).unwrap_err();
            assert_eq!(e.field, Field::PaymentChannel, "{bad}");
        }
        assert_eq!(Channel::parse("card:4242424242424242").unwrap().masked(), "card ····4242");
        let json = serde_json::to_string(&Channel::Credit).unwrap();
        assert_eq!(json, "\"credit\"");
        assert!(serde_json::from_str::<Channel>("\"card:1\"").is_err());
    }
}
