//! The bulk store: sled on disk for everything that grows (the inbox, orders, payments,
//! receipts), one tree per (actor, subject) section, every value sealed with its tree and key
//! as associated data.
//!
//! sled locks its directory to one process, and its first open in a process costs ~22 MB
//! resident. So the database is not held for the life of the core: it is opened when a unit
//! of work needs it ([`Bulk::hold`]), waiting a bounded time for another process to let go,
//! and closed again once nothing has used it for the *linger* time, so a second process of the
//! app (a watcher beside a command) gets its turn within milliseconds. A [`Section`] borrows
//! the [`Held`] it came from, so no tree handle can outlive the hold and keep the lock.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::seal::Sealer;
use super::StoreError;

/// Page cache for a phone: small and bounded.
pub const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// The bulk store of one data directory.
pub struct Bulk {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    sealer: Arc<Sealer>,
    state: Mutex<State>,
    wake: Condvar,
    linger: Duration,
    wait: Duration,
}

#[derive(Default)]
struct State {
    db: Option<sled::Db>,
    holders: usize,
    released_at: Option<Instant>,
    closer_running: bool,
    stop: bool,
    opens: u64,
}

/// The database, held open for a unit of work. Dropping the last one starts the linger.
pub struct Held {
    db: sled::Db,
    inner: Arc<Inner>,
    /// Opened for this hold (not reused from an earlier one): the moment to apply the spool.
    pub fresh: bool,
}

impl Bulk {
    pub(crate) fn new(dir: PathBuf, sealer: Arc<Sealer>, linger: Duration, wait: Duration) -> Bulk {
        let inner = Inner { dir, sealer, state: Mutex::new(State::default()), wake: Condvar::new(), linger, wait };
        Bulk { inner: Arc::new(inner) }
    }

    /// Opens the database if it is not open (waiting at most the configured time for another
    /// process to release it, then [`StoreError::Busy`]) and holds it until the returned
    /// [`Held`] is dropped.
    pub fn hold(&self) -> Result<Held, StoreError> {
        let mut state = self.inner.lock()?;
        let fresh = state.db.is_none();
        let db = match &state.db {
            Some(db) => db.clone(),
            None => {
                let db = open_db(&self.inner.dir, self.inner.wait)?;
                state.db = Some(db.clone());
                state.opens += 1;
                db
            }
        };
        state.holders += 1;
        if !self.inner.linger.is_zero() && !state.closer_running {
            state.closer_running = true;
            let inner = self.inner.clone();
            std::thread::Builder::new()
                .name("carepass-store".into())
                .spawn(move || inner.close_when_idle())
                .map_err(|e| StoreError::Io(format!("cannot start the store's closer: {e}")))?;
        }
        Ok(Held { db, inner: self.inner.clone(), fresh })
    }

    /// Whether the database is open in this process now.
    pub fn is_open(&self) -> bool {
        self.inner.state.lock().map(|s| s.db.is_some()).unwrap_or(false)
    }

    /// How many times this process opened the database (benchmarks, tests).
    pub fn opens(&self) -> u64 {
        self.inner.state.lock().map(|s| s.opens).unwrap_or(0)
    }

    /// Closes the database now if nothing holds it (tests of the second process).
    pub fn release_now(&self) -> Result<(), StoreError> {
        let mut state = self.inner.lock()?;
        if state.holders == 0 {
            if let Some(db) = state.db.take() {
                db.flush()?;
            }
        }
        Ok(())
    }
}

impl Drop for Bulk {
    fn drop(&mut self) {
        if let Ok(mut state) = self.inner.state.lock() {
            state.stop = true;
            if state.holders == 0 {
                if let Some(db) = state.db.take() {
                    let _ = db.flush();
                }
            }
        }
        self.inner.wake.notify_all();
    }
}

impl Inner {
    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state.lock().map_err(|_| StoreError::Io("the store's state lock is poisoned".into()))
    }

    /// The closer thread: closes the database once it has been idle for the linger time.
    fn close_when_idle(self: Arc<Self>) {
        let Ok(mut state) = self.state.lock() else { return };
        loop {
            if state.stop {
                state.closer_running = false;
                return;
            }
            let idle_for = match (&state.db, state.holders, state.released_at) {
                (Some(_), 0, Some(at)) => Some(at.elapsed()),
                _ => None,
            };
            state = match idle_for {
                Some(idle) if idle >= self.linger => {
                    if let Some(db) = state.db.take() {
                        if let Err(e) = db.flush() {
                            log::warn!(target: "carepass::store", "flush before closing failed: {e}");
                        }
                    }
                    state
                }
                Some(idle) => match self.wake.wait_timeout(state, self.linger - idle) {
                    Ok((s, _)) => s,
                    Err(_) => return,
                },
                None => match self.wake.wait(state) {
                    Ok(s) => s,
                    Err(_) => return,
                },
            };
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut state) = self.inner.state.lock() {
            state.holders = state.holders.saturating_sub(1);
            if state.holders == 0 {
                state.released_at = Some(Instant::now());
                if self.inner.linger.is_zero() || state.stop {
                    if let Some(db) = state.db.take() {
                        let _ = db.flush();
                    }
                }
            }
        }
        self.inner.wake.notify_all();
    }
}

impl Held {
    /// A section: one tree of sealed values.
    pub fn section(&self, name: &str) -> Result<Section<'_>, StoreError> {
        let tree = self.db.open_tree(name)?;
        Ok(Section { tree, name: name.to_string(), sealer: &self.inner.sealer, _held: self })
    }

    /// The names of the sections that start with `prefix`.
    pub fn section_names(&self, prefix: &str) -> Vec<String> {
        self.db
            .tree_names()
            .into_iter()
            .filter(|n| n.starts_with(prefix.as_bytes()))
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect()
    }

    /// Removes every section whose name starts with `prefix`; returns how many.
    pub fn drop_sections(&self, prefix: &str) -> Result<usize, StoreError> {
        let mut dropped = 0;
        for name in self.db.tree_names() {
            if name.starts_with(prefix.as_bytes()) {
                self.db.drop_tree(&name)?;
                dropped += 1;
            }
        }
        Ok(dropped)
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
}

/// Opens sled at `dir`, waiting up to `wait` for another process to release its lock.
fn open_db(dir: &Path, wait: Duration) -> Result<sled::Db, StoreError> {
    let config =
        sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).mode(sled::Mode::LowSpace).flush_every_ms(None);
    let deadline = Instant::now() + wait;
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if Instant::now() >= deadline {
                    return Err(StoreError::Busy(dir.to_path_buf()));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(StoreError::Io(format!("{}: {e}", dir.display()))),
            Ok(db) => return Ok(db),
        }
    }
}

/// One tree of sealed values, valid while its [`Held`] is.
pub struct Section<'a> {
    tree: sled::Tree,
    name: String,
    sealer: &'a Sealer,
    _held: &'a Held,
}

impl Section<'_> {
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let Some(sealed) = self.tree.get(key)? else { return Ok(None) };
        let plain = self.sealer.open(&self.aad(key), &sealed)?;
        serde_json::from_slice(&plain).map(Some).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))
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
    section: &'a Section<'a>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(dir: &Path, linger_ms: u64) -> Bulk {
        Bulk::new(
            dir.join("db"),
            Arc::new(Sealer::new(&[3u8; 32]).unwrap()),
            Duration::from_millis(linger_ms),
            Duration::from_millis(200),
        )
    }

    #[test]
    fn sections_are_kept_apart_and_dropped_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let b = bulk(dir.path(), 0);
        let held = b.hold().unwrap();
        held.section("s/A/A").unwrap().put("k", &1).unwrap();
        held.section("s/A/B").unwrap().put("k", &2).unwrap();
        held.section("s/C/C").unwrap().put("k", &3).unwrap();
        assert_eq!(held.drop_sections("s/A/").unwrap(), 2);
        assert_eq!(held.section("s/A/A").unwrap().get::<i32>("k").unwrap(), None);
        assert_eq!(held.section("s/C/C").unwrap().get::<i32>("k").unwrap(), Some(3));
    }

    #[test]
    fn a_value_moved_to_another_section_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let b = bulk(dir.path(), 0);
        let held = b.hold().unwrap();
        held.section("s/a/a").unwrap().put("session", &"a-token").unwrap();
        let raw = held.raw_db().open_tree("s/a/a").unwrap().get("session").unwrap().unwrap();
        held.raw_db().open_tree("s/b/b").unwrap().insert("session", raw).unwrap();
        assert!(matches!(held.section("s/b/b").unwrap().get::<String>("session"), Err(StoreError::Tampered)));
    }

    #[test]
    fn without_linger_the_database_closes_when_released_and_a_second_holder_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (bulk(dir.path(), 0), bulk(dir.path(), 0));
        let held = first.hold().unwrap();
        held.section("s/x/x").unwrap().put("k", &"written by the first").unwrap();
        held.flush().unwrap();
        // While the first holds it, the second waits its bounded time and is told so.
        assert!(matches!(second.hold(), Err(StoreError::Busy(_))));
        drop(held);
        assert!(!first.is_open());
        let held = second.hold().unwrap();
        assert_eq!(held.section("s/x/x").unwrap().get::<String>("k").unwrap().as_deref(), Some("written by the first"));
    }

    #[test]
    fn with_linger_the_database_stays_open_then_closes_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let b = bulk(dir.path(), 100);
        for _ in 0..5 {
            let held = b.hold().unwrap();
            held.section("s/x/x").unwrap().put("k", &1).unwrap();
        }
        assert_eq!(b.opens(), 1, "reused within the linger");
        let deadline = Instant::now() + Duration::from_secs(5);
        while b.is_open() {
            assert!(Instant::now() < deadline, "the closer never closed the database");
            std::thread::sleep(Duration::from_millis(10));
        }
        let other = bulk(dir.path(), 0);
        assert_eq!(other.hold().unwrap().section("s/x/x").unwrap().get::<i32>("k").unwrap(), Some(1));
    }
}
