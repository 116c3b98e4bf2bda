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

/// What the issuer signs for a revocation list: context, sequence (8, BE), issue time in ms
/// (8, BE), count (4, BE), then the revoked device ids (8 bytes each) in ascending order.
pub fn revocation_message(sequence: u64, issued_at_ms: i64, device_ids: &[[u8; 8]]) -> Vec<u8> {
    let mut sorted = device_ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::with_capacity(REVOCATION_CONTEXT.len() + 20 + sorted.len() * 8);
    out.extend_from_slice(REVOCATION_CONTEXT);
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&issued_at_ms.to_be_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_be_bytes());
    for id in &sorted {
        out.extend_from_slice(id);
    }
    out
}

/// Checks a revocation list from the platform against the trust list and returns the revoked
/// device ids; a list that does not verify is refused whole.
pub fn verified_revocations(
    list: &RevocationList,
    issuers: &std::collections::HashMap<u16, Vec<u8>>,
) -> Result<Vec<[u8; 8]>, KeyError> {
    use base64::Engine;
    let issuer = issuers.get(&list.issuer_key_id).ok_or(KeyError::Invalid)?;
    let ids = list
        .device_ids
        .iter()
        .map(|id| super::format::device_id_to_bytes(id).map_err(|_| KeyError::BadKeyMaterial))
        .collect::<Result<Vec<_>, _>>()?;
    let signature =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&list.signature).map_err(|_| KeyError::BadSignature)?;
    keys::verify_p256(issuer, &revocation_message(list.sequence, list.issued_at_ms, &ids), &signature)?;
    Ok(ids)
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

    #[test]
    fn revocation_message_is_order_independent() {
        let a = revocation_message(3, 1000, &[[2; 8], [1; 8]]);
        let b = revocation_message(3, 1000, &[[1; 8], [2; 8], [1; 8]]);
        assert_eq!(a, b);
    }
}
