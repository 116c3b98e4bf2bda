//! The device certificate of the offline profile: the issuer (the platform) signs "device
//! `device_id` holds this P-256 key until `not_after`", so a scanner holding only the issuer's
//! public key can check a code offline. Also the signed revocation list scanners cache.

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use super::format::{DeviceCertificate, SIG_LEN};
use crate::domain::crypto::{self as keys, KeyError};

/// The signed list of revoked devices offline scanners cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RevocationList {
    /// Increases with every revocation.
    pub sequence: u64,
    pub issued_at_ms: i64,
    pub issuer_key_id: u16,
    /// `dev_…` ids, ascending.
    pub device_ids: Vec<String>,
    /// Issuer signature over `voucher::cert::revocation_message`, base64url, 64 bytes r||s.
    pub signature: String,
}

/// SEC1 compressed form (33 bytes) of an uncompressed P-256 point (65 bytes).
pub fn compress_point(uncompressed: &[u8]) -> Result<[u8; 33], KeyError> {
    keys::check_public_key(uncompressed)?;
    let mut out = [0u8; 33];
    out[0] = 0x02 | (uncompressed[64] & 1);
    out[1..].copy_from_slice(&uncompressed[1..33]);
    Ok(out)
}

/// Uncompressed form (65 bytes) of a compressed P-256 point; errors if it is not on the curve.
pub fn decompress_point(compressed: &[u8; 33]) -> Result<[u8; 65], KeyError> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    if !matches!(compressed[0], 0x02 | 0x03) {
        return Err(KeyError::BadPublicKey);
    }
    let key = p256::PublicKey::from_sec1_bytes(compressed).map_err(|_| KeyError::BadPublicKey)?;
    let point = key.to_encoded_point(false);
    point.as_bytes().try_into().map_err(|_| KeyError::BadPublicKey)
}

/// The platform's certificate-signing key.
pub struct Issuer {
    pub key_id: u16,
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Issuer {
    pub fn from_pkcs8(key_id: u16, pkcs8: &[u8]) -> Result<Issuer, KeyError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| KeyError::BadKeyMaterial)?;
        Ok(Issuer { key_id, pair, rng })
    }

    /// A new PKCS#8 issuer key.
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| KeyError::Platform("random generator failed".into()))
    }

    /// Uncompressed public key (65 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        self.pair.public_key().as_ref().to_vec()
    }

    pub fn sign(&self, message: &[u8]) -> Result<[u8; SIG_LEN], KeyError> {
        let sig = self.pair.sign(&self.rng, message).map_err(|_| KeyError::Platform("signing failed".into()))?;
        sig.as_ref().try_into().map_err(|_| KeyError::BadSignature)
    }

    /// Certifies `device_public_key` (uncompressed) for `device_id` until `not_after_s`.
    pub fn certify(
        &self,
        device_id: &[u8; 8],
        device_public_key: &[u8],
        not_after_s: u32,
    ) -> Result<DeviceCertificate, KeyError> {
        let device_key = compress_point(device_public_key)?;
        let message = DeviceCertificate::signed_bytes(self.key_id, device_id, &device_key, not_after_s);
        Ok(DeviceCertificate { issuer_key_id: self.key_id, device_key, not_after_s, signature: self.sign(&message)? })
    }
}

/// Checks a certificate's signature against the issuer's public key.
pub fn check_certificate(
    cert: &DeviceCertificate,
    device_id: &[u8; 8],
    issuer_public_key: &[u8],
) -> Result<(), KeyError> {
    let message = DeviceCertificate::signed_bytes(cert.issuer_key_id, device_id, &cert.device_key, cert.not_after_s);
    keys::verify_p256(issuer_public_key, &message, &cert.signature)
}

/// Domain separation of the revocation list signature.
pub const REVOCATION_CONTEXT: &[u8] = b"carepass-revocations-v1\0";

/// A revocation list older than this (by its `issued_at_ms`) is refused, and a scanner stops
/// accepting offline-profile codes this long after the list it holds was issued.
pub const MAX_REVOCATION_AGE_MS: i64 = 24 * 3600 * 1000;

/// A revocation list issued further in the future than this (scanner clock behind) is refused.
pub const MAX_REVOCATION_FUTURE_MS: i64 = 5 * 60 * 1000;

/// What the issuer signs for a revocation list: context, sequence (8, BE), issue time in ms
/// (8, BE, two's complement), count (4, BE), then the revoked device ids (8 bytes each) in the
/// order given, which for a valid list is strictly ascending. `issuer_key_id` is not signed: it
/// only names the key that must verify the signature.
pub fn revocation_message(sequence: u64, issued_at_ms: i64, device_ids: &[[u8; 8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(REVOCATION_CONTEXT.len() + 20 + device_ids.len() * 8);
    out.extend_from_slice(REVOCATION_CONTEXT);
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&issued_at_ms.to_be_bytes());
    out.extend_from_slice(&(device_ids.len() as u32).to_be_bytes());
    for id in device_ids {
        out.extend_from_slice(id);
    }
    out
}

/// Why a revocation list was refused (whole: a scanner keeps the list it had).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    #[error("malformed revocation list: {0}")]
    Malformed(&'static str),
    #[error("the revocation list's issuer is not trusted")]
    UnknownIssuer,
    #[error("the revocation list's signature does not verify")]
    BadSignature,
    #[error("the revocation list is older than 24 hours")]
    Stale,
    #[error("the revocation list was issued more than 5 minutes in the future")]
    FromTheFuture,
}

impl RevocationError {
    /// Stable reason code (vectors, logs).
    pub fn code(&self) -> &'static str {
        match self {
            RevocationError::Malformed(_) => "malformed",
            RevocationError::UnknownIssuer => "unknown_issuer",
            RevocationError::BadSignature => "bad_signature",
            RevocationError::Stale => "stale",
            RevocationError::FromTheFuture => "from_the_future",
        }
    }
}

/// A revocation list that passed [`verified_revocations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRevocations {
    pub sequence: u64,
    pub issued_at_ms: i64,
    /// Ascending.
    pub device_ids: Vec<[u8; 8]>,
}

impl VerifiedRevocations {
    /// The last instant (inclusive) a scanner holding this list may accept offline codes.
    pub fn usable_until_ms(&self) -> i64 {
        self.issued_at_ms.saturating_add(MAX_REVOCATION_AGE_MS)
    }
}

/// Checks a revocation list from the platform at the scanner's time `now_ms`, in this order:
/// format (every id `dev_` and 16 lowercase hex digits, strictly ascending; the signature
/// unpadded base64url of exactly 64 bytes `r‖s`) → `malformed`; issuer in the trust list →
/// `unknown_issuer`; signature → `bad_signature`; `issued_at_ms ≥ now − 24 h` → `stale`;
/// `issued_at_ms ≤ now + 5 min` → `from_the_future`. A list that fails is refused whole.
pub fn verified_revocations(
    list: &RevocationList,
    issuers: &std::collections::HashMap<u16, Vec<u8>>,
    now_ms: i64,
) -> Result<VerifiedRevocations, RevocationError> {
    use base64::Engine;
    let ids = list
        .device_ids
        .iter()
        .map(|id| super::format::device_id_to_bytes(id).map_err(|_| RevocationError::Malformed("device_ids")))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(RevocationError::Malformed("device_ids not strictly ascending"));
    }
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&list.signature)
        .map_err(|_| RevocationError::Malformed("signature"))?;
    if signature.len() != SIG_LEN {
        return Err(RevocationError::Malformed("signature is not 64 bytes r||s"));
    }
    let issuer = issuers.get(&list.issuer_key_id).ok_or(RevocationError::UnknownIssuer)?;
    keys::verify_p256(issuer, &revocation_message(list.sequence, list.issued_at_ms, &ids), &signature)
        .map_err(|_| RevocationError::BadSignature)?;
    if list.issued_at_ms < now_ms.saturating_sub(MAX_REVOCATION_AGE_MS) {
        return Err(RevocationError::Stale);
    }
    if list.issued_at_ms > now_ms.saturating_add(MAX_REVOCATION_FUTURE_MS) {
        return Err(RevocationError::FromTheFuture);
    }
    Ok(VerifiedRevocations { sequence: list.sequence, issued_at_ms: list.issued_at_ms, device_ids: ids })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crypto::{DeviceKeyStore, SoftwareDeviceKey};

    #[test]
    fn compression_round_trips_on_many_keys() {
        for _ in 0..32 {
            let (key, _) = SoftwareDeviceKey::generate().unwrap();
            let pk = key.public_key().unwrap();
            let c = compress_point(&pk).unwrap();
            assert_eq!(decompress_point(&c).unwrap().to_vec(), pk);
        }
        let mut off_curve = [0u8; 33];
        off_curve[0] = 0x02;
        off_curve[32] = 5;
        assert!(decompress_point(&[0x05; 33]).is_err());
        let _ = decompress_point(&off_curve); // either on the curve or an error; never a panic
    }

    #[test]
    fn certificates_verify_only_for_their_device_and_issuer() {
        let issuer = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let other = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let (device, _) = SoftwareDeviceKey::generate().unwrap();
        let id = [1, 2, 3, 4, 5, 6, 7, 8];
        let cert = issuer.certify(&id, &device.public_key().unwrap(), 2_000_000_000).unwrap();
        assert_eq!(check_certificate(&cert, &id, &issuer.public_key()), Ok(()));
        assert_eq!(check_certificate(&cert, &[9; 8], &issuer.public_key()), Err(KeyError::Invalid));
        assert_eq!(check_certificate(&cert, &id, &other.public_key()), Err(KeyError::Invalid));
        let mut later = cert.clone();
        later.not_after_s += 1;
        assert_eq!(check_certificate(&later, &id, &issuer.public_key()), Err(KeyError::Invalid));
    }

    fn signed_list(issuer: &Issuer, sequence: u64, issued_at_ms: i64, ids: &[[u8; 8]]) -> RevocationList {
        use base64::Engine;
        let signature = issuer.sign(&revocation_message(sequence, issued_at_ms, ids)).unwrap();
        RevocationList {
            sequence,
            issued_at_ms,
            issuer_key_id: issuer.key_id,
            device_ids: ids.iter().map(super::super::format::device_id_to_string).collect(),
            signature: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature),
        }
    }

    #[test]
    fn revocation_lists_are_checked_for_order_encoding_issuer_signature_and_age() {
        use base64::Engine;
        let issuer = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let trust = std::collections::HashMap::from([(1u16, issuer.public_key())]);
        let now = 1_800_000_000_000;
        let code = |list: &RevocationList, now: i64| verified_revocations(list, &trust, now).map_err(|e| e.code());

        let good = signed_list(&issuer, 3, now - 1_000, &[[1; 8], [2; 8]]);
        let verified = verified_revocations(&good, &trust, now).unwrap();
        assert_eq!((verified.sequence, verified.device_ids.clone()), (3, vec![[1; 8], [2; 8]]));
        assert_eq!(verified.usable_until_ms(), now - 1_000 + MAX_REVOCATION_AGE_MS);

        // Ascending, no duplicates: the signed bytes are the ids in the order given.
        let unsorted = signed_list(&issuer, 3, now, &[[2; 8], [1; 8]]);
        assert_eq!(code(&unsorted, now), Err("malformed"));
        let duplicated = signed_list(&issuer, 3, now, &[[1; 8], [1; 8]]);
        assert_eq!(code(&duplicated, now), Err("malformed"));

        // The signature is 64 bytes r||s, unpadded base64url; DER (what keystores return) is not.
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&good.signature).unwrap();
        let der = der_of(&raw);
        let as_der =
            RevocationList { signature: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der), ..good.clone() };
        assert!(keys::verify_p256(&issuer.public_key(), &revocation_message(3, now - 1_000, &[[1; 8], [2; 8]]), &der)
            .is_ok());
        assert_eq!(code(&as_der, now), Err("malformed"));
        let padded =
            RevocationList { signature: base64::engine::general_purpose::URL_SAFE.encode(&raw), ..good.clone() };
        assert_eq!(code(&padded, now), Err("malformed"));

        let other_key_id = RevocationList { issuer_key_id: 2, ..good.clone() };
        assert_eq!(code(&other_key_id, now), Err("unknown_issuer"));
        let resequenced = RevocationList { sequence: 4, ..good.clone() };
        assert_eq!(code(&resequenced, now), Err("bad_signature"));

        // Age: accepted up to 24 h after issue (inclusive), and up to 5 minutes early.
        assert_eq!(code(&good, now - 1_000 + MAX_REVOCATION_AGE_MS).map(|v| v.sequence), Ok(3));
        assert_eq!(code(&good, now - 1_000 + MAX_REVOCATION_AGE_MS + 1), Err("stale"));
        assert_eq!(code(&good, now - 1_000 - MAX_REVOCATION_FUTURE_MS).map(|v| v.sequence), Ok(3));
        assert_eq!(code(&good, now - 1_000 - MAX_REVOCATION_FUTURE_MS - 1), Err("from_the_future"));
        assert_eq!(code(&good, i64::MIN), Err("from_the_future"), "no overflow at the extremes");
        assert_eq!(code(&good, i64::MAX), Err("stale"));
    }

    /// DER `SEQUENCE { INTEGER r, INTEGER s }` of a fixed r||s signature.
    fn der_of(fixed: &[u8]) -> Vec<u8> {
        let integer = |half: &[u8]| {
            let start = half.iter().position(|&b| b != 0).unwrap_or(half.len() - 1);
            let mut v = half[start..].to_vec();
            if v[0] & 0x80 != 0 {
                v.insert(0, 0);
            }
            let mut out = vec![0x02, v.len() as u8];
            out.extend(v);
            out
        };
        let mut body = integer(&fixed[..32]);
        body.extend(integer(&fixed[32..]));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }
}
