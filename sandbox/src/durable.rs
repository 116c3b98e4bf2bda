//! Durable answers: an answer that confirms a write is sent only once the write is on disk.
//!
//! Three modes, chosen at start (`serve --durability`):
//! - `group` (the default): group commit. A handler that wrote waits for the next flush; one
//!   flusher thread makes every write that finished before it started durable with a single
//!   fsync, then releases all its waiters. Concurrent writers share the cost of the flush.
//! - `per-write`: every write flushes on its own before answering (the simple baseline).
//! - `relaxed`: nothing waits; sled writes out within 200 ms. For measuring what durability
//!   costs only — a crash loses confirmed writes (`docs/sandbox.md`).
//!
//! `scripts/bench-platform.sh` measures the three in one run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};

/// How the platform makes writes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DurabilityMode {
    #[default]
    Group,
    PerWrite,
    Relaxed,
}

/// What the flusher has done: the last ticket a completed flush covered, and its outcome.
type Flushed = (u64, Option<String>);

pub struct Durability {
    mode: DurabilityMode,
    db: sled::Db,
    /// Tickets handed to writers (each taken after its write).
    requested: Arc<AtomicU64>,
    /// Wakes the flusher thread; `true` asks it to stop.
    wake: Arc<(Mutex<bool>, Condvar)>,
    flushed: watch::Receiver<Flushed>,
    /// The flusher thread, joined on drop so it lets go of the database before the next open.
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl Durability {
    pub fn new(db: sled::Db, mode: DurabilityMode) -> Result<Durability, std::io::Error> {
        let requested = Arc::new(AtomicU64::new(0));
        let wake = Arc::new((Mutex::new(false), Condvar::new()));
        let (tx, flushed) = watch::channel((0, None));
        let flusher = if mode == DurabilityMode::Group {
            let (db, requested, wake) = (db.clone(), requested.clone(), wake.clone());
            Some(
                std::thread::Builder::new()
                    .name("platform-flusher".into())
                    .spawn(move || flusher(db, requested, wake, tx))?,
            )
        } else {
            None
        };
        Ok(Durability { mode, db, requested, wake, flushed, flusher })
    }

    pub fn mode(&self) -> DurabilityMode {
        self.mode
    }

    /// Returns once everything written before the call is on disk (per the mode).
    pub async fn commit(&self) -> ApiResult<()> {
        match self.mode {
            DurabilityMode::Relaxed => Ok(()),
            DurabilityMode::PerWrite => {
                let db = self.db.clone();
                tokio::task::spawn_blocking(move || db.flush())
                    .await
                    .map_err(|e| ApiError::internal(format!("flush task: {e}")))??;
                Ok(())
            }
            DurabilityMode::Group => {
                let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
                {
                    // Taking the lock orders this wake-up after the flusher's check or
                    // after it began to wait, so it is never lost.
                    let (lock, cv) = &*self.wake;
                    let _held = lock.lock().map_err(|_| ApiError::internal("flush state poisoned"))?;
                    cv.notify_one();
                }
                let mut flushed = self.flushed.clone();
                let outcome = flushed
                    .wait_for(|(covered, _)| *covered >= ticket)
                    .await
                    .map(|r| r.1.clone())
                    .map_err(|_| ApiError::internal("the platform is shutting down"))?;
                match outcome {
                    Some(e) => Err(ApiError::internal(format!("storage: {e}"))),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Drop for Durability {
    fn drop(&mut self) {
        let (stop, cv) = &*self.wake;
        if let Ok(mut stop) = stop.lock() {
            *stop = true;
        }
        cv.notify_all();
        if let Some(thread) = self.flusher.take() {
            let _ = thread.join();
        }
    }
}

/// The flusher: whenever writers wait, one flush for all of them.
fn flusher(db: sled::Db, requested: Arc<AtomicU64>, wake: Arc<(Mutex<bool>, Condvar)>, tx: watch::Sender<Flushed>) {
    let (stop, cv) = &*wake;
    let mut covered = 0;
    loop {
        {
            let Ok(mut stopping) = stop.lock() else { return };
            while requested.load(Ordering::SeqCst) == covered && !*stopping {
                stopping = match cv.wait(stopping) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
            if *stopping {
                return;
            }
        }
        // Every ticket up to here was taken after its write: one flush covers them all.
        let upto = requested.load(Ordering::SeqCst);
        let outcome = db.flush().err().map(|e| e.to_string());
        covered = upto;
        if tx.send((covered, outcome)).is_err() {
            return;
        }
    }
}
