//! The spool: sealed records that a process which must not open the database (the iOS
//! Notification Service Extension, far below its memory limit) leaves for the process that
//! does. One file per record in `<data>/spool/`, created by an atomic rename, named so that
//! name order is arrival order; whoever holds the database next applies each record and then
//! deletes it. Applying must be idempotent (a crash between applying and deleting applies the
//! record again), which the inbox is.

use std::path::PathBuf;
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::seal::Sealer;
use super::vault::{sync_dir, write_atomically};
use super::{private_dir, StoreError};

const SUFFIX: &str = ".rec";

/// The spool of one data directory.
#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    sealer: Arc<Sealer>,
}

impl Spool {
    pub(crate) fn new(dir: PathBuf, sealer: Arc<Sealer>) -> Result<Spool, StoreError> {
        private_dir(&dir)?;
        Ok(Spool { dir, sealer })
    }

    fn aad(name: &str) -> Vec<u8> {
        [b"spool\0".as_slice(), name.as_bytes()].concat()
    }

    /// Leaves `record` for the database's holder, durably. `now_ms` orders the records.
    pub fn append<T: Serialize>(&self, record: &T, now_ms: i64) -> Result<(), StoreError> {
        let mut tag = [0u8; 6];
        SystemRandom::new().fill(&mut tag).map_err(|_| StoreError::Io("the random generator failed".into()))?;
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("{:016}-{tag}{SUFFIX}", now_ms.max(0));
        let plain = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = self.sealer.seal(&Self::aad(&name), &plain)?;
        write_atomically(&self.dir, &self.dir.join(&name), &sealed)
    }

    /// The records waiting, in arrival order.
    pub fn pending(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| StoreError::io_at(&self.dir, e))? {
            let name = entry.map_err(|e| StoreError::io_at(&self.dir, e))?.file_name();
            if let Some(name) = name.to_str().filter(|n| n.ends_with(SUFFIX) && !n.starts_with('.')) {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Hands each waiting record to `apply`, in order, deleting it once applied. A record that
    /// does not open (damaged, sealed under another key) is set aside as `.bad` and skipped:
    /// a spooled record only ever saves a pull that the next sync makes anyway. Returns how
    /// many were applied.
    pub fn drain<T, E>(&self, mut apply: impl FnMut(T) -> Result<(), E>) -> Result<usize, E>
    where
        T: DeserializeOwned,
        E: From<StoreError>,
    {
        let mut applied = 0;
        for name in self.pending()? {
            let path = self.dir.join(&name);
            let sealed = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // drained by another process
                Err(e) => return Err(StoreError::io_at(&path, e).into()),
            };
            let record = self
                .sealer
                .open(&Self::aad(&name), &sealed)
                .ok()
                .and_then(|plain| serde_json::from_slice::<T>(&plain).ok());
            match record {
                Some(record) => {
                    apply(record)?;
                    applied += 1;
                    std::fs::remove_file(&path).map_err(|e| StoreError::io_at(&path, e))?;
                }
                None => {
                    log::warn!(target: "carepass::store", "a spooled record does not open; set aside");
                    let aside = path.with_extension("bad");
                    std::fs::rename(&path, &aside).map_err(|e| StoreError::io_at(&path, e))?;
                }
            }
        }
        if applied > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(dir: &std::path::Path, key: u8) -> Spool {
        Spool::new(dir.join("spool"), Arc::new(Sealer::new(&[key; 32]).unwrap())).unwrap()
    }

    #[test]
    fn records_are_drained_in_order_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path(), 1);
        s.append(&"second".to_string(), 20).unwrap();
        s.append(&"first".to_string(), 10).unwrap();
        let mut seen = Vec::new();
        let n = s.drain(|r: String| -> Result<(), StoreError> {
            seen.push(r);
            Ok(())
        });
        assert_eq!(n.unwrap(), 2);
        assert_eq!(seen, vec!["first", "second"]);
        assert_eq!(s.drain(|_: String| -> Result<(), StoreError> { Ok(()) }).unwrap(), 0);
    }

    #[test]
    fn a_failed_apply_keeps_the_record_and_a_bad_one_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path(), 1);
        s.append(&1u32, 1).unwrap();
        let failed = s.drain(|_: u32| Err(StoreError::Io("busy".into())));
        assert!(failed.is_err());
        assert_eq!(s.pending().unwrap().len(), 1, "kept for the next drain");
        spool(dir.path(), 2).append(&2u32, 2).unwrap(); // sealed under another key
        let mut seen = Vec::new();
        s.drain(|r: u32| -> Result<(), StoreError> {
            seen.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![1]);
        assert!(s.pending().unwrap().is_empty());
        assert!(std::fs::read_dir(dir.path().join("spool"))
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".bad") }));
    }
}
