//! The phone's store, in one data directory, every value sealed under the data key that the
//! platform's [`SecretStore`] keeps (`seal`):
//!
//! - `vault/` ([`Vault`]): the few small values every process needs at once (who is signed
//!   in, tokens, enrolments, the software device key, the clock offset, push keys) — one
//!   sealed file each, replaced atomically, read without a lock or a database;
//! - `db/` ([`Bulk`]): sled, for everything that grows (inbox, orders, payments), held only
//!   for a unit of work and a short linger, so two processes of the app take turns;
//! - `spool/` ([`Spool`]): sealed records left by a process that must not open the database
//!   (the iOS Notification Service Extension), applied by the next holder.
//!
//! Why this shape, with the figures: `docs/adr/0005-two-processes-one-store.md`. Key names
//! and what they hold: `docs/adr/0001-at-rest-encryption.md`.

pub mod bulk;
pub mod seal;
pub mod spool;
pub mod vault;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

pub use bulk::{Bulk, Held, Section, SectionBatch};
pub use seal::{data_key, open_sealed, seal_with_nonce};
pub use spool::Spool;
pub use vault::{Vault, VaultLock};

use crate::io::secrets::{SecretStore, SecretStoreError};
use seal::Sealer;

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 2;
/// Name of the data key in the platform's secret store.
pub const DATA_KEY_NAME: &str = "carepass.store.data-key.v1";

const KEY_CHECK: &[u8] = b"carepass key check v1";
const VAULT_SCHEMA: &str = "schema";
const VAULT_KEY_CHECK: &str = "key-check";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store could not be read or written: {0}")]
    Io(String),
    #[error("another CarePass process is using {}; try again in a moment", .0.display())]
    Busy(PathBuf),
    #[error("a stored value failed authentication (tampered, moved, or sealed under another key)")]
    Tampered,
    #[error("the data key does not open this store")]
    WrongDataKey,
    #[error("the store holds data but this device's keystore has no data key for it (a copied or restored data directory?): it cannot be opened here; move it aside and sign in again")]
    MissingDataKey,
    #[error("the store has schema version {found}; this build reads up to {supported}")]
    UnsupportedSchema { found: u32, supported: u32 },
    #[error("a stored value could not be decoded: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Secret(#[from] SecretStoreError),
}

impl StoreError {
    /// An I/O failure, naming the path it is about.
    pub fn io_at(path: &Path, e: std::io::Error) -> StoreError {
        StoreError::Io(format!("{}: {e}", path.display()))
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// How long the database stays open after its last use, and how long to wait for another
/// process to release it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    pub linger: Duration,
    pub wait: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { linger: Duration::from_millis(300), wait: Duration::from_secs(5) }
    }
}

/// The phone's store.
pub struct Store {
    pub vault: Vault,
    pub bulk: Bulk,
    pub spool: Spool,
    dir: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in `dir` with the data key from `secrets` (created there
    /// on first use). Reads only the vault: the database opens when first needed.
    pub fn open(dir: &Path, secrets: &dyn SecretStore, options: StoreOptions) -> Result<Store, StoreError> {
        private_dir(dir)?;
        let vault_dir = dir.join("vault");
        let has_data = vault_dir.join(format!("{VAULT_KEY_CHECK}.v")).exists() || dir.join("db").exists();
        let key_bytes = match secrets.load(DATA_KEY_NAME)? {
            Some(k) => k,
            None if has_data => return Err(StoreError::MissingDataKey),
            None => {
                let mut k = vec![0u8; 32];
                SystemRandom::new().fill(&mut k).map_err(|_| StoreError::Io("the random generator failed".into()))?;
                secrets.save(DATA_KEY_NAME, &k)?;
                k
            }
        };
        let sealer = Arc::new(Sealer::new(&key_bytes)?);
        let vault = Vault::new(vault_dir, sealer.clone())?;
        match vault.get::<Vec<u8>>(VAULT_KEY_CHECK) {
            Ok(Some(check)) if check == KEY_CHECK => {}
            Ok(Some(_)) | Err(StoreError::Tampered) => return Err(StoreError::WrongDataKey),
            Ok(None) if has_data => return Err(StoreError::WrongDataKey),
            Ok(None) => vault.put(VAULT_KEY_CHECK, &KEY_CHECK.to_vec())?,
            Err(e) => return Err(e),
        }
        match vault.get::<u32>(VAULT_SCHEMA)? {
            Some(found) if found > SCHEMA_VERSION => {
                return Err(StoreError::UnsupportedSchema { found, supported: SCHEMA_VERSION })
            }
            Some(_) => {}
            None => vault.put(VAULT_SCHEMA, &SCHEMA_VERSION)?,
        }
        let spool = Spool::new(dir.join("spool"), sealer.clone())?;
        let bulk = Bulk::new(dir.join("db"), sealer, options.linger, options.wait);
        Ok(Store { vault, bulk, spool, dir: dir.to_path_buf() })
    }

    /// The schema version recorded in the store.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.vault.get(VAULT_SCHEMA)?.ok_or(StoreError::Corrupt("no schema version".into()))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Creates `dir` (and its parents) if missing; the store's own folders are 0700 on Unix.
pub(crate) fn private_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io_at(dir, e))?;
    if !dir.is_dir() {
        return Err(StoreError::Io(format!("{} is not a directory", dir.display())));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| StoreError::io_at(dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::secrets::MemorySecretStore;

    #[test]
    fn values_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = MemorySecretStore::new();
        {
            let store = Store::open(dir.path(), &secrets, StoreOptions::default()).unwrap();
            store.vault.put("k", &"v1".to_string()).unwrap();
            let held = store.bulk.hold().unwrap();
            held.section("s/p1/p1").unwrap().put("k", &"v2".to_string()).unwrap();
            held.flush().unwrap();
        }
        let store = Store::open(dir.path(), &secrets, StoreOptions::default()).unwrap();
        assert_eq!(store.vault.get::<String>("k").unwrap().as_deref(), Some("v1"));
        let held = store.bulk.hold().unwrap();
        assert_eq!(held.section("s/p1/p1").unwrap().get::<String>("k").unwrap().as_deref(), Some("v2"));
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn opening_reads_no_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &MemorySecretStore::new(), StoreOptions::default()).unwrap();
        assert!(!store.bulk.is_open());
        assert!(!dir.path().join("db").exists());
    }

    #[test]
    fn a_newer_schema_is_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = MemorySecretStore::new();
        Store::open(dir.path(), &secrets, StoreOptions::default()).unwrap().vault.put(VAULT_SCHEMA, &99u32).unwrap();
        let result = Store::open(dir.path(), &secrets, StoreOptions::default());
        assert!(
            matches!(result, Err(StoreError::UnsupportedSchema { found: 99, supported: SCHEMA_VERSION })),
            "{:?}",
            result.err()
        );
    }

    #[test]
    fn a_lost_data_key_is_reported_not_replaced_and_a_wrong_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), &MemorySecretStore::new(), StoreOptions::default()).unwrap());
        assert!(matches!(
            Store::open(dir.path(), &MemorySecretStore::new(), StoreOptions::default()),
            Err(StoreError::MissingDataKey)
        ));
        let other = MemorySecretStore::new();
        other.save(DATA_KEY_NAME, &[9u8; 32]).unwrap();
        assert!(matches!(Store::open(dir.path(), &other, StoreOptions::default()), Err(StoreError::WrongDataKey)));
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = Store::open(&file, &MemorySecretStore::new(), StoreOptions::default()).err().unwrap();
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}
