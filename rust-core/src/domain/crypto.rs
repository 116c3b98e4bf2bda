//! ECDSA P-256 with SHA-256, the curve Android Keystore/StrongBox and the iOS Secure Enclave
//! hold in hardware: the device-key interface ([`DeviceKeyStore`], so a private key can stay
//! in hardware), signature normalisation (DER from keystores to fixed r‖s) and verification,
//! pure functions the sandbox uses too, and [`SoftwareDeviceKey`], an in-memory key for tests
//! and the terminal (kept sealed in the store by `crate::io::keys`).

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};

/// A document signed by a platform key, as it travels: the key id, the document's bytes
/// (base64url without padding) and the signature (r‖s, base64url without padding) over a
/// context string, the key id and those bytes (each document type states its context: the
/// e-receipt's is `docs/payments.md` § 7). The verifier checks the bytes it was given and
/// only then decodes them, so no canonical encoding is needed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedBody {
    pub key_id: u16,
    pub body: String,
    pub signature: String,
}

/// Length of an uncompressed SEC1 P-256 public key.
pub const PUBLIC_KEY_LEN: usize = 65;
/// Length of a fixed-size (r||s) P-256 signature.
pub const SIGNATURE_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the platform key store failed: {0}")]
    Platform(String),
    #[error("not a P-256 public key (expected 65 bytes SEC1 uncompressed)")]
    BadPublicKey,
    #[error("not an ECDSA P-256 signature (expected 64 bytes r||s or DER)")]
    BadSignature,
    #[error("signature does not verify")]
    Invalid,
    #[error("stored key material is unusable")]
    BadKeyMaterial,
}

/// Holds the device's private key and signs with it. Implemented by the shells over the
/// hardware keystore; `sign` hashes with SHA-256 itself (Android `SHA256withECDSA`, iOS
/// `ecdsaSignatureMessageX962SHA256`) and may return DER or fixed r||s.
pub trait DeviceKeyStore: Send + Sync {
    /// SEC1 uncompressed public key, 65 bytes.
    fn public_key(&self) -> Result<Vec<u8>, KeyError>;
    /// Signature over `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;
}

/// A P-256 key held in memory, persisted (sealed) by the store as PKCS#8.
pub struct SoftwareDeviceKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl SoftwareDeviceKey {
    /// A new random key and its PKCS#8 encoding, to be kept sealed in the store.
    pub fn generate() -> Result<(Self, Vec<u8>), KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Platform("random generator failed".into()))?;
        let key = Self::from_pkcs8(pkcs8.as_ref())?;
        Ok((key, pkcs8.as_ref().to_vec()))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| KeyError::BadKeyMaterial)?;
        Ok(SoftwareDeviceKey { pair, rng })
    }
}

impl std::fmt::Debug for SoftwareDeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftwareDeviceKey(..)")
    }
}

impl DeviceKeyStore for SoftwareDeviceKey {
    fn public_key(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.pair.public_key().as_ref().to_vec())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| KeyError::Platform("signing failed".into()))
    }
}

/// Signs through any key store and returns the fixed 64-byte form.
pub fn sign_fixed(keys: &dyn DeviceKeyStore, message: &[u8]) -> Result<[u8; SIGNATURE_LEN], KeyError> {
    normalize_signature(&keys.sign(message)?)
}

/// Checks a public key is a 65-byte uncompressed point that lies on P-256 (not the point at
/// infinity, coordinates below the field prime, the curve equation holds).
pub fn check_public_key(public_key: &[u8]) -> Result<(), KeyError> {
    if public_key.len() != PUBLIC_KEY_LEN || public_key[0] != 0x04 {
        return Err(KeyError::BadPublicKey);
    }
    p256::PublicKey::from_sec1_bytes(public_key).map(|_| ()).map_err(|_| KeyError::BadPublicKey)
}

/// Verifies an ECDSA P-256 SHA-256 signature (fixed r||s or DER) over `message`.
pub fn verify_p256(public_key: &[u8], message: &[u8], sig: &[u8]) -> Result<(), KeyError> {
    check_public_key(public_key)?;
    let fixed = normalize_signature(sig)?;
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public_key)
        .verify(message, &fixed)
        .map_err(|_| KeyError::Invalid)
}

/// Accepts a fixed 64-byte r||s signature or an ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }`
/// (what Android Keystore and the Secure Enclave return) and gives the fixed form.
pub fn normalize_signature(sig: &[u8]) -> Result<[u8; SIGNATURE_LEN], KeyError> {
    if sig.len() == SIGNATURE_LEN {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(sig);
        return Ok(out);
    }
    let bad = KeyError::BadSignature;
    let body = der_take(sig, 0x30).ok_or(bad.clone())?;
    if body.1 != sig.len() {
        return Err(bad);
    }
    let seq = body.0;
    let (r, used) = der_take(seq, 0x02).ok_or(bad.clone())?;
    let (s, used_s) = der_take(&seq[used..], 0x02).ok_or(bad.clone())?;
    if used + used_s != seq.len() {
        return Err(bad);
    }
    let mut out = [0u8; SIGNATURE_LEN];
    place_integer(r, &mut out[..32]).ok_or(bad.clone())?;
    place_integer(s, &mut out[32..]).ok_or(bad)?;
    Ok(out)
}

/// Reads one DER element with `tag` (short or one-byte long length form) from the start of
/// `input`; returns its contents and the bytes consumed.
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], usize)> {
    if input.len() < 2 || input[0] != tag {
        return None;
    }
    let (len, header): (usize, usize) = match input[1] {
        l if l < 0x80 => (l as usize, 2),
        0x81 if input.len() >= 3 && input[2] >= 0x80 => (input[2] as usize, 3),
        _ => return None,
    };
    let end = header.checked_add(len)?;
    input.get(header..end).map(|c| (c, end))
}

/// Writes a positive DER INTEGER right-aligned into 32 bytes.
fn place_integer(int: &[u8], out: &mut [u8]) -> Option<()> {
    if int.is_empty() || int[0] & 0x80 != 0 {
        return None;
    }
    let trimmed = match int {
        [0, rest @ ..] if !rest.is_empty() => {
            if rest[0] & 0x80 == 0 {
                return None; // non-minimal encoding
            }
            rest
        }
        _ => int,
    };
    if trimmed.len() > out.len() {
        return None;
    }
    let start = out.len() - trimmed.len();
    out[start..].copy_from_slice(trimmed);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der_of(fixed: &[u8; 64]) -> Vec<u8> {
        fn int(b: &[u8]) -> Vec<u8> {
            let mut v: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
            if v.is_empty() || v[0] & 0x80 != 0 {
                v.insert(0, 0);
            }
            let mut out = vec![0x02, v.len() as u8];
            out.extend(v);
            out
        }
        let mut body = int(&fixed[..32]);
        body.extend(int(&fixed[32..]));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn only_points_on_the_curve_are_public_keys() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let pk = key.public_key().unwrap();
        assert_eq!(check_public_key(&pk), Ok(()));
        let mut off_curve = pk.clone();
        off_curve[40] ^= 0x10;
        assert_eq!(check_public_key(&off_curve), Err(KeyError::BadPublicKey));
        // All-zero coordinates, coordinates at or above the field prime, the 0x04 prefix alone.
        let mut zeros = vec![0u8; 65];
        zeros[0] = 4;
        assert_eq!(check_public_key(&zeros), Err(KeyError::BadPublicKey));
        let mut ones = vec![0xffu8; 65];
        ones[0] = 4;
        assert_eq!(check_public_key(&ones), Err(KeyError::BadPublicKey));
        assert_eq!(check_public_key(&[4]), Err(KeyError::BadPublicKey));
    }

    #[test]
    fn software_key_signature_verifies_and_tampering_does_not() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let pk = key.public_key().unwrap();
        let sig = sign_fixed(&key, b"hello").unwrap();
        assert_eq!(verify_p256(&pk, b"hello", &sig), Ok(()));
        assert_eq!(verify_p256(&pk, b"hellO", &sig), Err(KeyError::Invalid));
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert_eq!(verify_p256(&pk, b"hello", &flipped), Err(KeyError::Invalid));
    }

    #[test]
    fn der_signatures_from_hardware_keystores_are_accepted() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let pk = key.public_key().unwrap();
        for _ in 0..20 {
            let fixed = sign_fixed(&key, b"msg").unwrap();
            let der = der_of(&fixed);
            assert_eq!(normalize_signature(&der), Ok(fixed));
            assert_eq!(verify_p256(&pk, b"msg", &der), Ok(()));
        }
    }

    #[test]
    fn malformed_signatures_and_keys_are_typed_errors() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let pk = key.public_key().unwrap();
        for sig in [&[][..], &[0x30], &[0x30, 0x02, 0x02, 0x00], &[1u8; 63], &[0x30, 0x80, 0, 0]] {
            assert_eq!(verify_p256(&pk, b"m", sig), Err(KeyError::BadSignature));
        }
        assert_eq!(verify_p256(&pk[1..], b"m", &[0u8; 64]), Err(KeyError::BadPublicKey));
        let mut off_curve = pk.clone();
        off_curve[64] ^= 1;
        assert_eq!(verify_p256(&off_curve, b"m", &[1u8; 64]), Err(KeyError::BadPublicKey));
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_same_key() {
        let (key, pkcs8) = SoftwareDeviceKey::generate().unwrap();
        let again = SoftwareDeviceKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(key.public_key().unwrap(), again.public_key().unwrap());
        assert_eq!(SoftwareDeviceKey::from_pkcs8(b"junk").unwrap_err(), KeyError::BadKeyMaterial);
    }
}
