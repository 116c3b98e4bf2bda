//! Consent to a payment (`docs/payments.md` § 4): the device's signature over a canonical byte
//! encoding of exactly what the patient saw and confirmed — the bill, the quote, every amount,
//! the channel, the expiry, the idempotency key, the subject and the actor. The platform
//! verifies it against the device's enrolled key and keeps it as proof of consent to those
//! amounts. The same bytes, hashed, are the request's fingerprint for idempotency.
//!
//! ```text
//! "carepass-consent-v1" 0x00
//! kind (1)                       1 = pay a quote, 2 = pay the cash still due with another channel
//! str idempotency_key  str bill_id  str reference (quote id, or payment id for kind 2)
//! str subject  str actor  str device_id  str link_id ("" when acting for oneself)
//! i64 total  i64 fund  i64 personal_account  i64 mutual_aid  str mutual_aid_from ("" if none)
//! i64 cash  str channel (wire form)  i64 expires_at_ms
//! ```
//! `str` is a 2-byte big-endian length then UTF-8 bytes; `i64` is 8 bytes big-endian two's
//! complement. Every string is at most 255 bytes.

use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};

use crate::domain::crypto::{self, DeviceKeyStore, KeyError};
use crate::domain::money::Fen;
use crate::domain::{Field, InvalidInput};

pub const CONTEXT: &[u8] = b"carepass-consent-v1\0";
/// The longest idempotency key (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;
/// The longest string field of a consent.
pub const MAX_FIELD_LEN: usize = 255;

/// What a consent is to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentKind {
    /// Pay a quote: insurance and cash legs.
    Pay = 1,
    /// Pay the cash still due on a payment whose insurance leg settled, with another channel.
    CashDue = 2,
}

/// The fields a device signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub kind: ConsentKind,
    pub idempotency_key: String,
    pub bill_id: String,
    /// The quote id (kind `pay`) or the payment id (kind `cash_due`).
    pub reference: String,
    pub subject: String,
    pub actor: String,
    pub device_id: String,
    /// The family link the actor acts under; empty when acting for oneself.
    #[serde(default)]
    pub link_id: String,
    pub total: Fen,
    pub fund: Fen,
    pub personal_account: Fen,
    pub mutual_aid: Fen,
    /// Whose personal account the mutual aid comes from; empty when there is none.
    #[serde(default)]
    pub mutual_aid_from: String,
    pub cash: Fen,
    /// The channel's wire form.
    pub channel: String,
    pub expires_at_ms: i64,
}

/// Why a consent cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("a consent field is longer than 255 bytes")]
    TooLong,
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// An idempotency key: 1 to 255 printable ASCII characters (no spaces).
pub fn check_idempotency_key(key: &str) -> Result<(), InvalidInput> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidInput::new(
            Field::IdempotencyKey,
            "an idempotency key is 1 to 255 printable ASCII characters",
        ));
    }
    Ok(())
}

/// Who a consent is between: the patient, the person confirming, their device, and the
/// family link the confirmer acts under (empty when acting for oneself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parties<'a> {
    pub subject: &'a str,
    pub actor: &'a str,
    pub device_id: &'a str,
    pub link_id: &'a str,
}

/// The consent to pay the cash still due on a payment (kind `cash_due`, its reference the
/// payment id): only cash, from `channel`.
pub fn cash_due(
    bill_id: &str,
    payment_id: &str,
    parties: &Parties<'_>,
    idempotency_key: &str,
    channel: &str,
    amount: Fen,
    expires_at_ms: i64,
) -> Consent {
    Consent {
        kind: ConsentKind::CashDue,
        idempotency_key: idempotency_key.into(),
        bill_id: bill_id.into(),
        reference: payment_id.into(),
        subject: parties.subject.into(),
        actor: parties.actor.into(),
        device_id: parties.device_id.into(),
        link_id: parties.link_id.into(),
        total: amount,
        fund: Fen::ZERO,
        personal_account: Fen::ZERO,
        mutual_aid: Fen::ZERO,
        mutual_aid_from: String::new(),
        cash: amount,
        channel: channel.into(),
        expires_at_ms,
    }
}

/// How long a cash-due consent is valid for after it is signed.
pub const CASH_DUE_CONSENT_TTL_MS: i64 = 5 * 60 * 1000;

impl Consent {
    /// The canonical bytes the device signs.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, ConsentError> {
        check_idempotency_key(&self.idempotency_key)?;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(CONTEXT);
        out.push(self.kind as u8);
        for text in [
            &self.idempotency_key,
            &self.bill_id,
            &self.reference,
            &self.subject,
            &self.actor,
            &self.device_id,
            &self.link_id,
        ] {
            put_str(&mut out, text)?;
        }
        for fen in [self.total, self.fund, self.personal_account, self.mutual_aid] {
            out.extend_from_slice(&fen.0.to_be_bytes());
        }
        put_str(&mut out, &self.mutual_aid_from)?;
        out.extend_from_slice(&self.cash.0.to_be_bytes());
        put_str(&mut out, &self.channel)?;
        out.extend_from_slice(&self.expires_at_ms.to_be_bytes());
        Ok(out)
    }

    /// SHA-256 of the signed bytes: the request's fingerprint (the same key with another
    /// fingerprint is another request).
    pub fn fingerprint(&self) -> Result<[u8; 32], ConsentError> {
        let bytes = self.signed_bytes()?;
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, &bytes).as_ref());
        Ok(out)
    }

    /// Signs through the device's key store (hardware keys work): fixed 64-byte r‖s.
    pub fn sign(&self, keys: &dyn DeviceKeyStore) -> Result<[u8; crypto::SIGNATURE_LEN], ConsentError> {
        Ok(crypto::sign_fixed(keys, &self.signed_bytes()?)?)
    }

    /// Verifies a signature against a device's public key.
    pub fn verify(&self, public_key: &[u8], signature: &[u8]) -> Result<(), ConsentError> {
        if signature.len() != crypto::SIGNATURE_LEN {
            return Err(KeyError::BadSignature.into());
        }
        Ok(crypto::verify_p256(public_key, &self.signed_bytes()?, signature)?)
    }
}

fn put_str(out: &mut Vec<u8>, text: &str) -> Result<(), ConsentError> {
    if text.len() > MAX_FIELD_LEN {
        return Err(ConsentError::TooLong);
    }
    out.extend_from_slice(&(text.len() as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crypto::SoftwareDeviceKey;

    pub(crate) fn sample() -> Consent {
        Consent {
            kind: ConsentKind::Pay,
            idempotency_key: "pay_0123456789abcdef0123456789abcdef".into(),
            bill_id: "bill_00112233aabbccdd".into(),
            reference: "q_0011223344556677".into(),
            subject: "P1001".into(),
            actor: "P1001".into(),
            device_id: "dev_0011223344556677".into(),
            link_id: String::new(),
            total: Fen(41_120),
            fund: Fen(30_000),
            personal_account: Fen(10_000),
            mutual_aid: Fen(0),
            mutual_aid_from: String::new(),
            cash: Fen(1_120),
            channel: "card:4242424242424242".into(),
            expires_at_ms: 1_800_000_300_000,
        }
    }

    #[test]
    fn every_field_is_in_the_signed_bytes() {
        let base = sample();
        let bytes = base.signed_bytes().unwrap();
        type Change = Box<dyn Fn(&mut Consent)>;
        let changes: Vec<Change> = vec![
            Box::new(|c| c.kind = ConsentKind::CashDue),
            Box::new(|c| c.idempotency_key.push('x')),
            Box::new(|c| c.bill_id.push('x')),
            Box::new(|c| c.reference.push('x')),
            Box::new(|c| c.subject = "P1002".into()),
            Box::new(|c| c.actor = "P1002".into()),
            Box::new(|c| c.device_id.push('x')),
            Box::new(|c| c.link_id = "lnk_1".into()),
            Box::new(|c| c.total = Fen(41_121)),
            Box::new(|c| c.fund = Fen(29_999)),
            Box::new(|c| c.personal_account = Fen(10_001)),
            Box::new(|c| c.mutual_aid = Fen(1)),
            Box::new(|c| c.mutual_aid_from = "P1004".into()),
            Box::new(|c| c.cash = Fen(1_121)),
            Box::new(|c| c.channel = "credit".into()),
            Box::new(|c| c.expires_at_ms += 1),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut c = base.clone();
            change(&mut c);
            assert_ne!(c.signed_bytes().unwrap(), bytes, "change {i} not covered");
        }
        // Length prefixes keep field boundaries: moving a character between fields changes the bytes.
        let mut a = base.clone();
        a.bill_id = "ab".into();
        a.reference = "c".into();
        let mut b = base.clone();
        b.bill_id = "a".into();
        b.reference = "bc".into();
        assert_ne!(a.signed_bytes().unwrap(), b.signed_bytes().unwrap());
    }

    #[test]
    fn a_signature_verifies_for_its_device_only() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let (other, _) = SoftwareDeviceKey::generate().unwrap();
        let consent = sample();
        let sig = consent.sign(&key).unwrap();
        consent.verify(&key.public_key().unwrap(), &sig).unwrap();
        assert!(consent.verify(&other.public_key().unwrap(), &sig).is_err());
        let mut changed = consent.clone();
        changed.cash = Fen(0);
        assert!(changed.verify(&key.public_key().unwrap(), &sig).is_err());
    }

    #[test]
    fn keys_are_checked() {
        for bad in ["", "has space", &"k".repeat(256), "é"] {
            assert_eq!(check_idempotency_key(bad).unwrap_err().field, Field::IdempotencyKey, "{bad}");
        }
        check_idempotency_key(&"k".repeat(255)).unwrap();
        let mut c = sample();
        c.bill_id = "b".repeat(256);
        assert_eq!(c.signed_bytes(), Err(ConsentError::TooLong));
    }
}
