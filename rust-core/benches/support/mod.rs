//! Timing that survives a shared machine: each criterion sample runs its iterations in short
//! batches and reports the fastest batch, scaled to the sample's iteration count. Another
//! process's time slice then lengthens some batches but not the fastest one, so the medians
//! that `scripts/bench-*.sh` compare stay those of the code, not of the machine's load. On an
//! idle machine this is the usual mean within noise; it runs every iteration criterion asks
//! for.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Calls per batch: a batch of the benchmarked routines here takes well under a scheduler
/// time slice.
pub const BATCH: u64 = 8;

/// `iters` calls of `routine`, in batches of `batch`: the fastest batch × `iters / batch`.
pub fn fastest<O>(iters: u64, batch: u64, mut routine: impl FnMut() -> O) -> Duration {
    fastest_with_setup(iters, batch, || (), |()| routine())
}

/// As [`fastest`], with an untimed `setup` before each call (its input made per batch).
pub fn fastest_with_setup<I, O>(
    iters: u64,
    batch: u64,
    mut setup: impl FnMut() -> I,
    mut routine: impl FnMut(I) -> O,
) -> Duration {
    let batch = batch.clamp(1, iters.max(1));
    let mut best = Duration::MAX;
    let mut done = 0;
    while done < iters {
        let n = batch.min(iters - done);
        let inputs: Vec<I> = (0..n).map(|_| setup()).collect();
        let start = Instant::now();
        for input in inputs {
            black_box(routine(black_box(input)));
        }
        let elapsed = start.elapsed();
        if n == batch {
            best = best.min(elapsed);
        }
        done += n;
    }
    if best == Duration::MAX {
        return Duration::ZERO;
    }
    // Fastest batch scaled to the sample: f64 seconds keep the precision of small batches.
    Duration::from_secs_f64(best.as_secs_f64() * iters as f64 / batch as f64)
}
