//! Where the store's data key lives: a [`SecretStore`] the platform implements over its
//! keystore (Android Keystore-wrapped preferences, iOS Keychain). The core never writes the
//! key anywhere else. [`FileSecretStore`] is for the terminal shell only; [`MemorySecretStore`]
//! for tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the platform secret store failed: {0}")]
pub struct SecretStoreError(pub String);

/// A small key-value vault for secrets, provided by the platform.
pub trait SecretStore: Send + Sync {
    fn load(&self, name: &str) -> Result<Option<Vec<u8>>, SecretStoreError>;
    fn save(&self, name: &str, value: &[u8]) -> Result<(), SecretStoreError>;
}

/// Secrets kept in memory; gone when the process ends.
#[derive(Debug, Default)]
pub struct MemorySecretStore {
    values: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemorySecretStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl SecretStore for MemorySecretStore {
    fn load(&self, name: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        let values = self.values.lock().map_err(|_| SecretStoreError("lock poisoned".into()))?;
        Ok(values.get(name).cloned())
    }

    fn save(&self, name: &str, value: &[u8]) -> Result<(), SecretStoreError> {
        let mut values = self.values.lock().map_err(|_| SecretStoreError("lock poisoned".into()))?;
        values.insert(name.to_string(), value.to_vec());
        Ok(())
    }
}

/// Secrets in files readable by the owner only (mode 0600 on Unix). The terminal shell's
/// stand-in for a keystore: it protects against other users, not against the owner.
#[derive(Debug, Clone)]
pub struct FileSecretStore {
    dir: PathBuf,
}

impl FileSecretStore {
    pub fn new(dir: impl AsRef<Path>) -> Self {
        FileSecretStore { dir: dir.as_ref().to_path_buf() }
    }

    fn path(&self, name: &str) -> Result<PathBuf, SecretStoreError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err(SecretStoreError(format!("bad secret name {name:?}")));
        }
        Ok(self.dir.join(format!("{name}.secret")))
    }
}

impl SecretStore for FileSecretStore {
    fn load(&self, name: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        match std::fs::read(self.path(name)?) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SecretStoreError(e.to_string())),
        }
    }

    fn save(&self, name: &str, value: &[u8]) -> Result<(), SecretStoreError> {
        use std::io::Write;
        let path = self.path(name)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| SecretStoreError(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(|e| SecretStoreError(e.to_string()))?;
        file.write_all(value).map_err(|e| SecretStoreError(e.to_string()))?;
        file.sync_all().map_err(|e| SecretStoreError(e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| SecretStoreError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secrets_survive_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecretStore::new(dir.path());
        assert_eq!(store.load("k").unwrap(), None);
        store.save("k", b"secret").unwrap();
        assert_eq!(FileSecretStore::new(dir.path()).load("k").unwrap(), Some(b"secret".to_vec()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("k.secret")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(store.save("../escape", b"x").is_err());
    }
}
