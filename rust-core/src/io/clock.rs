//! The clocks that read the system's time: the device's own clock, and the same shifted by a
//! settable offset (a phone whose clock is wrong; the sandbox when a test moves platform time).
//! The [`Clock`] trait and the settable [`crate::domain::clock::FixedClock`] are pure.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

use crate::domain::clock::{ms_to_time, Clock};

/// The device's own clock (which may be wrong; the platform client measures by how much).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock shifted by a settable offset: a phone whose clock is wrong, or the
/// sandbox when a test moves platform time forward.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    pub fn new(offset_ms: i64) -> Self {
        OffsetClock { offset_ms: AtomicI64::new(offset_ms) }
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    pub fn set_offset_ms(&self, offset: i64) {
        self.offset_ms.store(offset, Ordering::SeqCst);
    }

    pub fn advance_ms(&self, delta: i64) {
        self.offset_ms.fetch_add(delta, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        ms_to_time(Utc::now().timestamp_millis().saturating_add(self.offset_ms()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_clock_is_shifted_from_system_time() {
        let clock = OffsetClock::new(300_000);
        let diff = clock.now_ms() - Utc::now().timestamp_millis();
        assert!((299_000..=301_000).contains(&diff), "diff {diff}");
    }
}
