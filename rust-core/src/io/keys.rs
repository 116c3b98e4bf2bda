//! The software device key's home: created on first use and kept sealed in the vault as
//! PKCS#8, for tests and the terminal shell (the apps pass a hardware-backed key store).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use crate::domain::crypto::{KeyError, SoftwareDeviceKey};
use crate::io::store::{StoreError, Vault};

/// Vault key of the software device key.
pub const KEY_DEVICE_KEY: &str = "device-key";

/// Why the software key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SoftwareKeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The software device key of this data directory, created (and stored) when there is none.
/// Two processes creating it at once agree on one: the first to write wins and the other
/// reads it back.
pub fn software_key(vault: &Vault) -> Result<SoftwareDeviceKey, SoftwareKeyError> {
    if let Some(key) = stored(vault)? {
        return Ok(key);
    }
    let _lock = vault.lock(std::time::Duration::from_secs(5))?;
    if let Some(key) = stored(vault)? {
        return Ok(key);
    }
    let (key, pkcs8) = SoftwareDeviceKey::generate()?;
    vault.put(KEY_DEVICE_KEY, &B64.encode(pkcs8))?;
    Ok(key)
}

fn stored(vault: &Vault) -> Result<Option<SoftwareDeviceKey>, SoftwareKeyError> {
    let Some(encoded) = vault.get::<String>(KEY_DEVICE_KEY)? else { return Ok(None) };
    let pkcs8 = B64.decode(encoded).map_err(|_| KeyError::BadKeyMaterial)?;
    Ok(Some(SoftwareDeviceKey::from_pkcs8(&pkcs8)?))
}
