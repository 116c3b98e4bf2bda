//! The phone's store: sled on disk, every value sealed with ChaCha20-Poly1305 (ring) under a
//! data key that the platform's [`SecretStore`] keeps. A value is bound to its tree and key
//! (they are the AEAD's associated data), so a value moved, altered or read with another key
//! is an error, never garbage. Each profile (the patient, a relative) has its own tree.
//!
//! Layout (schema version 1), see `docs/adr/0001-at-rest-encryption.md`:
//! - tree `meta`: `schema_version` (u32, big-endian, plain), `key_check` (sealed constant);
//! - tree `app`: app-wide values (active profile, software device key);
//! - tree `profile/<person_id>`: one profile's values (enrolment, session, person record).

use std::path::Path;
use std::sync::Arc;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::io::secrets::{SecretStore, SecretStoreError};

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
/// Name of the data key in the platform's secret store.
pub const DATA_KEY_NAME: &str = "carepass.store.data-key.v1";
/// Page cache for a phone: small and bounded.
pub const CACHE_BYTES: u64 = 4 * 1024 * 1024;

const SEAL_VERSION: u8 = 1;
const KEY_CHECK: &[u8] = b"carepass key check v1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database could not be opened or written: {0}")]
    Io(String),
    #[error("a stored value failed authentication (tampered, moved, or sealed under another key)")]
    Tampered,
    #[error("the data key does not open this store")]
    WrongDataKey,
    #[error("the store holds data but the platform has no data key for it")]
    MissingDataKey,
    #[error("the store has schema version {found}; this build reads up to {supported}")]
    UnsupportedSchema { found: u32, supported: u32 },
    #[error("a stored value could not be decoded: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Secret(#[from] SecretStoreError),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// Opens sled, waiting up to a second for the file lock: when a previous handle on the same
/// directory has just been dropped (the app closed and reopened the core), sled's background
/// flusher may hold the lock for a few more milliseconds.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let config =
        sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).mode(sled::Mode::LowSpace).flush_every_ms(Some(1000));
    let mut attempts = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// The encrypted store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    sealer: Arc<Sealer>,
}

struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Store {
    /// Opens (or creates) the store in `dir`, with the data key from `secrets` (created there
    /// on first use).
    pub fn open(dir: &Path, secrets: &dyn SecretStore) -> Result<Store, StoreError> {
        let db = open_db(dir)?;
        let meta = db.open_tree("meta")?;
        let has_data = meta.get("key_check")?.is_some();
        let key_bytes = match secrets.load(DATA_KEY_NAME)? {
            Some(k) => k,
            None if has_data => return Err(StoreError::MissingDataKey),
            None => {
                let mut k = vec![0u8; 32];
                SystemRandom::new().fill(&mut k).map_err(|_| StoreError::Io("random generator failed".into()))?;
                secrets.save(DATA_KEY_NAME, &k)?;
                k
            }
        };
        let sealer = Arc::new(Sealer { key: data_key(&key_bytes)?, rng: SystemRandom::new() });
        let store = Store { db, sealer };

        match meta.get("schema_version")? {
            Some(v) => {
                let found = u32::from_be_bytes(
                    v.as_ref().try_into().map_err(|_| StoreError::Corrupt("schema_version".into()))?,
                );
                if found > SCHEMA_VERSION {
                    return Err(StoreError::UnsupportedSchema { found, supported: SCHEMA_VERSION });
                }
            }
            None => {
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            }
        }
        match meta.get("key_check")? {
            Some(sealed) => {
                let plain = store.sealer.open(b"meta\0key_check", &sealed).map_err(|_| StoreError::WrongDataKey)?;
                if plain != KEY_CHECK {
                    return Err(StoreError::WrongDataKey);
                }
            }
            None => {
                let sealed = store.sealer.seal(b"meta\0key_check", KEY_CHECK)?;
                meta.insert("key_check", sealed)?;
            }
        }
        store.db.flush()?;
        Ok(store)
    }

    /// The schema version recorded in the store.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let v =
            self.db.open_tree("meta")?.get("schema_version")?.ok_or(StoreError::Corrupt("schema_version".into()))?;
        Ok(u32::from_be_bytes(v.as_ref().try_into().map_err(|_| StoreError::Corrupt("schema_version".into()))?))
    }

    /// App-wide values.
    pub fn app(&self) -> Result<Section, StoreError> {
        self.section("app".to_string())
    }

    /// One profile's values, apart from every other profile's.
    pub fn profile(&self, person_id: &str) -> Result<Section, StoreError> {
        self.section(format!("profile/{person_id}"))
    }

    /// Removes everything stored for a profile.
    pub fn wipe_profile(&self, person_id: &str) -> Result<(), StoreError> {
        self.db.drop_tree(format!("profile/{person_id}"))?;
        self.flush()
    }

    /// Writes everything to disk now.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the database uses on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// The raw database, for tests that tamper with it.
    #[doc(hidden)]
    pub fn raw_db(&self) -> &sled::Db {
        &self.db
    }

    fn section(&self, name: String) -> Result<Section, StoreError> {
        let tree = self.db.open_tree(&name)?;
        Ok(Section { tree, name, sealer: self.sealer.clone() })
    }
}

/// One tree of sealed values.
#[derive(Clone)]
pub struct Section {
    tree: sled::Tree,
    name: String,
    sealer: Arc<Sealer>,
}

impl Section {
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let Some(sealed) = self.tree.get(key)? else { return Ok(None) };
        let plain = self.sealer.open(&self.aad(key), &sealed)?;
        serde_json::from_slice(&plain).map(Some).map_err(|e| StoreError::Corrupt(format!("{}: {e}", key)))
    }

    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let plain = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = self.sealer.seal(&self.aad(key), &plain)?;
        self.tree.insert(key, sealed)?;
        Ok(())
    }

    /// Every value whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(prefix) {
            let (k, sealed) = entry?;
            let key = String::from_utf8(k.to_vec()).map_err(|_| StoreError::Corrupt("key is not UTF-8".into()))?;
            let plain = self.sealer.open(&self.aad(&key), &sealed)?;
            let value = serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// Starts a set of writes that land together or not at all.
    pub fn batch(&self) -> SectionBatch<'_> {
        SectionBatch { section: self, batch: sled::Batch::default() }
    }

    pub fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.tree.remove(key)?;
        Ok(())
    }

    fn aad(&self, key: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.name.len() + 1 + key.len());
        aad.extend_from_slice(self.name.as_bytes());
        aad.push(0);
        aad.extend_from_slice(key.as_bytes());
        aad
    }
}

/// Writes to one section applied atomically by [`SectionBatch::commit`].
pub struct SectionBatch<'a> {
    section: &'a Section,
    batch: sled::Batch,
}

impl SectionBatch<'_> {
    pub fn put<T: Serialize>(&mut self, key: &str, value: &T) -> Result<(), StoreError> {
        let plain = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = self.section.sealer.seal(&self.section.aad(key), &plain)?;
        self.batch.insert(key.as_bytes(), sealed);
        Ok(())
    }

    /// Applies every write at once (sled guarantees all or none, also across a crash).
    pub fn commit(self) -> Result<(), StoreError> {
        self.section.tree.apply_batch(self.batch)?;
        Ok(())
    }
}

impl Sealer {
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| StoreError::Io("random generator failed".into()))?;
        seal_with_nonce(&self.key, nonce, aad, plain)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        open_sealed(&self.key, aad, sealed)
    }
}

/// Builds the AEAD key from the 32-byte data key.
pub fn data_key(bytes: &[u8]) -> Result<LessSafeKey, StoreError> {
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| StoreError::WrongDataKey)?;
    Ok(LessSafeKey::new(unbound))
}

/// Seals `plain` as `version (1) || nonce (12) || ciphertext || tag (16)`. The nonce must
/// never repeat under one key; the store draws it at random. Public for the test vectors.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::secrets::MemorySecretStore;

    #[test]
    fn values_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = MemorySecretStore::new();
        {
            let store = Store::open(dir.path(), &secrets).unwrap();
            store.profile("p1").unwrap().put("k", &"v1".to_string()).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path(), &secrets).unwrap();
        assert_eq!(store.profile("p1").unwrap().get::<String>("k").unwrap(), Some("v1".into()));
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn profiles_are_kept_apart_and_wiped_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &MemorySecretStore::new()).unwrap();
        store.profile("a").unwrap().put("k", &1).unwrap();
        store.profile("b").unwrap().put("k", &2).unwrap();
        assert_eq!(store.profile("a").unwrap().get::<i32>("k").unwrap(), Some(1));
        store.wipe_profile("a").unwrap();
        assert_eq!(store.profile("a").unwrap().get::<i32>("k").unwrap(), None);
        assert_eq!(store.profile("b").unwrap().get::<i32>("k").unwrap(), Some(2));
    }

    #[test]
    fn a_value_moved_to_another_profile_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &MemorySecretStore::new()).unwrap();
        store.profile("a").unwrap().put("session", &"a-token").unwrap();
        let raw = store.raw_db().open_tree("profile/a").unwrap().get("session").unwrap().unwrap();
        store.raw_db().open_tree("profile/b").unwrap().insert("session", raw).unwrap();
        assert!(matches!(store.profile("b").unwrap().get::<String>("session"), Err(StoreError::Tampered)));
    }

    #[test]
    fn a_newer_schema_is_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = MemorySecretStore::new();
        {
            let store = Store::open(dir.path(), &secrets).unwrap();
            store.raw_db().open_tree("meta").unwrap().insert("schema_version", &99u32.to_be_bytes()).unwrap();
            store.flush().unwrap();
        }
        let result = Store::open(dir.path(), &secrets);
        assert!(
            matches!(result, Err(StoreError::UnsupportedSchema { found: 99, supported: SCHEMA_VERSION })),
            "{:?}",
            result.err()
        );
    }

    #[test]
    fn a_lost_data_key_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), &MemorySecretStore::new()).unwrap());
        assert!(matches!(Store::open(dir.path(), &MemorySecretStore::new()), Err(StoreError::MissingDataKey)));
    }
}
