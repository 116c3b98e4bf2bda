//! Sealing: every value the phone stores (vault file, sled value, spool record) is encrypted
//! with ChaCha20-Poly1305 (ring) under the data key the platform's secret store keeps, with
//! the value's place (vault key, tree and key, spool file name) as associated data, so a value
//! moved, altered or read with another key is an error, never garbage.
//!
//! Layout: `version (1) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`; vectors in
//! `tests/vectors/store/sealed-value.json`.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::StoreError;

const SEAL_VERSION: u8 = 1;

/// The data key with its random source.
pub(crate) struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Sealer {
    pub(crate) fn new(key_bytes: &[u8]) -> Result<Sealer, StoreError> {
        Ok(Sealer { key: data_key(key_bytes)?, rng: SystemRandom::new() })
    }

    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| StoreError::Io("the random generator failed".into()))?;
        seal_with_nonce(&self.key, nonce, aad, plain)
    }

    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        open_sealed(&self.key, aad, sealed)
    }
}

/// Builds the AEAD key from the 32-byte data key.
pub fn data_key(bytes: &[u8]) -> Result<LessSafeKey, StoreError> {
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| StoreError::WrongDataKey)?;
    Ok(LessSafeKey::new(unbound))
}

/// Seals `plain`. The nonce must never repeat under one key; the store draws it at random.
/// Public for the test vectors.
pub fn seal_with_nonce(
    key: &LessSafeKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
        .map_err(|_| StoreError::Io("sealing failed".into()))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
    out.push(SEAL_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens a sealed value; any damage, a different `aad` or another key is `Tampered`.
pub fn open_sealed(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
    if sealed.len() < 1 + NONCE_LEN + aead::MAX_TAG_LEN || sealed[0] != SEAL_VERSION {
        return Err(StoreError::Tampered);
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| StoreError::Tampered)?;
    let mut buf = sealed[1 + NONCE_LEN..].to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| StoreError::Tampered)?;
    Ok(plain.to_vec())
}
