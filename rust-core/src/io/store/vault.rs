//! The vault: the few small values every process of the app needs at once and cheaply — who
//! is signed in, session tokens, enrolments, the software device key, the clock offset, the
//! push keys. One sealed file per value in `<data>/vault/`, written atomically (temporary
//! file, fsync, rename, fsync of the folder), so a reader in another process sees the old
//! value or the new one, never half of one; reading takes no lock and no database, which is
//! what keeps the core's cold start and the iOS Notification Service Extension small
//! (`docs/adr/0005-two-processes-one-store.md`).
//!
//! A read-modify-write that must not interleave with another process (spending a single-use
//! refresh token, updating the enrolment list) holds [`VaultLock`], an advisory lock on
//! `vault/.lock`, for a bounded time.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::seal::Sealer;
use super::{private_dir, StoreError};

const LOCK_FILE: &str = ".lock";
const SUFFIX: &str = ".v";

/// The vault of one data directory.
#[derive(Clone)]
pub struct Vault {
    dir: PathBuf,
    sealer: Arc<Sealer>,
}

/// Holds the vault's cross-process lock until dropped.
pub struct VaultLock {
    _file: File,
}

impl Vault {
    pub(crate) fn new(dir: PathBuf, sealer: Arc<Sealer>) -> Result<Vault, StoreError> {
        private_dir(&dir)?;
        Ok(Vault { dir, sealer })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err(StoreError::Io(format!("not a vault key: {key:?}")));
        }
        Ok(self.dir.join(format!("{key}{SUFFIX}")))
    }

    fn aad(key: &str) -> Vec<u8> {
        [b"vault\0".as_slice(), key.as_bytes()].concat()
    }

    /// The value under `key`, if any.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let path = self.path(key)?;
        let sealed = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io_at(&path, e)),
        };
        let plain = self.sealer.open(&Self::aad(key), &sealed)?;
        serde_json::from_slice(&plain).map(Some).map_err(|e| StoreError::Corrupt(format!("vault {key}: {e}")))
    }

    /// Writes `value` under `key`, durably, replacing what was there in one step.
    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let plain = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = self.sealer.seal(&Self::aad(key), &plain)?;
        write_atomically(&self.dir, &path, &sealed)
    }

    /// Removes `key` (nothing if absent), durably.
    pub fn remove(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io_at(&path, e)),
        }
    }

    /// The keys that start with `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| StoreError::io_at(&self.dir, e))? {
            let name = entry.map_err(|e| StoreError::io_at(&self.dir, e))?.file_name();
            let Some(key) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else { continue };
            if key.starts_with(prefix) && !key.starts_with('.') {
                out.push(key.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Takes the cross-process lock, waiting at most `wait` for another process to release
    /// it (then [`StoreError::Busy`]).
    pub fn lock(&self, wait: Duration) -> Result<VaultLock, StoreError> {
        let file = self.lock_file()?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(VaultLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Busy(self.dir.clone())),
                Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::io_at(&self.dir.join(LOCK_FILE), e)),
            }
        }
    }

    /// [`Vault::lock`] for async code: waits without blocking the runtime's thread.
    pub async fn lock_async(&self, wait: Duration) -> Result<VaultLock, StoreError> {
        let file = self.lock_file()?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(VaultLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Busy(self.dir.clone())),
                Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::io_at(&self.dir.join(LOCK_FILE), e)),
            }
        }
    }

    fn lock_file(&self) -> Result<File, StoreError> {
        let path = self.dir.join(LOCK_FILE);
        private_file_options()
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io_at(&path, e))
    }
}

/// Options for a new file readable and writable by the owner only (0600 on Unix).
pub(crate) fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Writes `bytes` to `path` so that readers see the old content or the new, never a mix,
/// and the new content survives a crash once this returns.
pub(crate) fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("value")
    ));
    let mut file =
        private_file_options().write(true).truncate(true).open(&tmp).map_err(|e| StoreError::io_at(&tmp, e))?;
    file.write_all(bytes).map_err(|e| StoreError::io_at(&tmp, e))?;
    file.sync_all().map_err(|e| StoreError::io_at(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io_at(path, e))?;
    sync_dir(dir)
}

/// Makes a rename or removal in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io_at(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(dir: &Path) -> Vault {
        Vault::new(dir.join("vault"), Arc::new(Sealer::new(&[7u8; 32]).unwrap())).unwrap()
    }

    #[test]
    fn values_round_trip_are_replaced_whole_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        assert_eq!(v.get::<String>("session.P1").unwrap(), None);
        v.put("session.P1", &"a".to_string()).unwrap();
        v.put("session.P1", &"b".to_string()).unwrap();
        v.put("person.P1", &1u32).unwrap();
        assert_eq!(v.get::<String>("session.P1").unwrap().as_deref(), Some("b"));
        assert_eq!(v.keys("session.").unwrap(), vec!["session.P1".to_string()]);
        v.remove("session.P1").unwrap();
        v.remove("session.P1").unwrap();
        assert_eq!(v.get::<String>("session.P1").unwrap(), None);
        assert!(v.put("../escape", &1).is_err());
    }

    #[test]
    fn a_value_moved_to_another_key_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        v.put("session.A", &"token-a".to_string()).unwrap();
        std::fs::copy(dir.path().join("vault/session.A.v"), dir.path().join("vault/session.B.v")).unwrap();
        assert!(matches!(v.get::<String>("session.B"), Err(StoreError::Tampered)));
    }

    #[test]
    fn the_lock_is_exclusive_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        let held = v.lock(Duration::from_millis(10)).unwrap();
        let started = Instant::now();
        assert!(matches!(v.lock(Duration::from_millis(50)), Err(StoreError::Busy(_))));
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(held);
        v.lock(Duration::from_millis(10)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        v.put("k", &1).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("vault")), 0o700);
        assert_eq!(mode(&dir.path().join("vault/k.v")), 0o600);
    }
}
