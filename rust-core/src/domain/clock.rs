//! Time, injected. Rules never read the system clock themselves: they are handed a
//! [`Clock`], which is the system clock in the apps (`crate::io::clock`) and a settable one
//! ([`FixedClock`]) in tests.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeZone, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

/// A clock that stands still until moved; for tests and for the sandbox's test-fixture role.
#[derive(Debug)]
pub struct FixedClock {
    ms: AtomicI64,
}

impl FixedClock {
    pub fn at_ms(ms: i64) -> Self {
        FixedClock { ms: AtomicI64::new(ms) }
    }

    pub fn at(time: DateTime<Utc>) -> Self {
        Self::at_ms(time.timestamp_millis())
    }

    pub fn set_ms(&self, ms: i64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    pub fn advance_ms(&self, delta: i64) {
        self.ms.fetch_add(delta, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        ms_to_time(self.ms.load(Ordering::SeqCst))
    }
}

/// Converts epoch milliseconds to a time, saturating at the representable range.
pub fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let clock = FixedClock::at_ms(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance_ms(500);
        assert_eq!(clock.now_ms(), 1_500);
        clock.set_ms(42);
        assert_eq!(clock.now_ms(), 42);
    }

    #[test]
    fn out_of_range_times_saturate() {
        assert_eq!(ms_to_time(i64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(ms_to_time(i64::MIN), DateTime::<Utc>::MIN_UTC);
    }
}
