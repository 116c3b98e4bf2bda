//! Limits on abuse (`docs/api.md` § Limits): counters kept in sled (so a restart resets
//! nothing) on platform time (so tests move the clock instead of waiting). A refusal is
//! `429 rate_limited` with `Retry-After`.
//!
//! - wrong verification codes, per phone and per device: a few in a row lock that phone or
//!   device out for a while, longer each time; and a daily cap. While locked out, even the
//!   right code is refused (else the lockout would tell the attacker which code was right);
//! - SMS codes sent, per phone: one per 30 s, and a daily cap;
//! - login challenges, per device, and enrolments, per phone: windowed counts;
//! - quotes and new payment requests, per person: windowed counts, checked before anything
//!   is done (a 429 to a payment request means it was not done; a resend of a key that was
//!   done is answered with its stored answer before the limit is looked at);
//! - live streams, per session: a small number open at once (counted in memory, since a
//!   stream does not outlive the process).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// Wrong codes in a row before a lockout.
pub const WRONG_CODES_BEFORE_LOCKOUT: u32 = 5;
/// The first lockout; each further one doubles, up to a day.
pub const FIRST_LOCKOUT_MS: i64 = 15 * MINUTE_MS;
/// Wrong codes a phone may have in a day, however spread.
pub const WRONG_CODES_PER_DAY: u32 = 20;
/// SMS codes: one per this long, per phone, and a daily cap.
pub const SMS_INTERVAL_MS: i64 = 30_000;
pub const SMS_PER_DAY: u32 = 10;
/// Login challenges per device per minute.
pub const CHALLENGES_PER_MINUTE: u32 = 10;
/// Enrolments per phone per day.
pub const ENROLMENTS_PER_DAY: u32 = 10;
/// Payment requests (new idempotency keys; a resend of a key is always answered) per person
/// per hour: card testing and consent spraying stop here.
pub const PAYMENTS_PER_HOUR: u32 = 30;
/// Quotes (pre-settlements) per person per minute.
pub const QUOTES_PER_MINUTE: u32 = 30;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// Live streams a session may hold open at once.
pub const LIVE_STREAMS_PER_SESSION: usize = 2;

/// One counter's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counter {
    /// Events in the current window, and when it started.
    count: u32,
    window_start_ms: i64,
    /// Wrong codes in a row (reset by a right one) and lockouts so far.
    in_a_row: u32,
    lockouts: u32,
    locked_until_ms: i64,
    /// The last event (for spacing rules).
    last_ms: i64,
}

/// The limits of one platform.
pub struct Limits {
    tree: sled::Tree,
    streams: Mutex<HashMap<String, usize>>,
}

/// A refusal: wait this many seconds.
fn refuse(retry_after_ms: i64, what: &str) -> ApiError {
    let seconds = (retry_after_ms.max(0) as u64).div_ceil(1000).max(1);
    ApiError::rate_limited(seconds, format!("{what}; try again in {seconds} s"))
}

impl Limits {
    pub fn new(tree: sled::Tree) -> Limits {
        Limits { tree, streams: Mutex::new(HashMap::new()) }
    }

    fn load(&self, key: &str) -> ApiResult<Counter> {
        Ok(match self.tree.get(key)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => Counter::default(),
        })
    }

    fn save(&self, key: &str, c: &Counter) -> ApiResult<()> {
        self.tree.insert(key.as_bytes(), serde_json::to_vec(c)?)?;
        Ok(())
    }

    /// Counts one event in a window of `window_ms` holding at most `max`; refuses the event
    /// over the limit (and does not count it).
    pub fn windowed(&self, key: &str, max: u32, window_ms: i64, now: i64, what: &str) -> ApiResult<()> {
        let mut c = self.load(key)?;
        if c.count == 0 || now.saturating_sub(c.window_start_ms) >= window_ms || now < c.window_start_ms {
            c.count = 0;
            c.window_start_ms = now;
        }
        if c.count >= max {
            return Err(refuse(c.window_start_ms.saturating_add(window_ms) - now, what));
        }
        c.count += 1;
        c.last_ms = now;
        self.save(key, &c)
    }

    /// Refuses when the last event is less than `interval_ms` ago; else counts it.
    pub fn spaced(&self, key: &str, interval_ms: i64, now: i64, what: &str) -> ApiResult<()> {
        let mut c = self.load(key)?;
        if c.last_ms != 0 && now >= c.last_ms && now - c.last_ms < interval_ms {
            return Err(refuse(c.last_ms + interval_ms - now, what));
        }
        c.last_ms = now;
        self.save(key, &c)
    }

    /// Before a verification code is checked: refused while any of `keys` is locked out or
    /// over its daily cap of wrong codes.
    pub fn code_allowed(&self, keys: &[String], now: i64) -> ApiResult<()> {
        for key in keys {
            let c = self.load(key)?;
            if c.locked_until_ms > now {
                return Err(refuse(c.locked_until_ms - now, "too many wrong verification codes"));
            }
            if c.count >= WRONG_CODES_PER_DAY && now.saturating_sub(c.window_start_ms) < DAY_MS {
                return Err(refuse(c.window_start_ms + DAY_MS - now, "too many wrong verification codes today"));
            }
        }
        Ok(())
    }

    /// After a wrong code: one more strike for each key; the fifth in a row locks it out.
    pub fn wrong_code(&self, keys: &[String], now: i64) -> ApiResult<()> {
        for key in keys {
            let mut c = self.load(key)?;
            if c.count == 0 || now.saturating_sub(c.window_start_ms) >= DAY_MS || now < c.window_start_ms {
                c.count = 0;
                c.window_start_ms = now;
            }
            c.count += 1;
            c.in_a_row += 1;
            if c.in_a_row >= WRONG_CODES_BEFORE_LOCKOUT {
                let factor = 1i64 << c.lockouts.min(7);
                c.locked_until_ms = now.saturating_add((FIRST_LOCKOUT_MS * factor).min(DAY_MS));
                c.lockouts += 1;
                c.in_a_row = 0;
            }
            c.last_ms = now;
            self.save(key, &c)?;
        }
        Ok(())
    }

    /// After a right code: the run of wrong ones is over (the day's count and the lockout
    /// history stay).
    pub fn right_code(&self, keys: &[String]) -> ApiResult<()> {
        for key in keys {
            let mut c = self.load(key)?;
            if c.in_a_row != 0 {
                c.in_a_row = 0;
                self.save(key, &c)?;
            }
        }
        Ok(())
    }

    /// Opens a live stream for `session`: refused when it already holds the most allowed.
    /// The caller gives the place back with [`Limits::release_stream`] when the stream ends.
    pub fn open_stream(&self, session: &str) -> ApiResult<()> {
        let mut open = self.streams.lock().map_err(|_| ApiError::internal("stream counter poisoned"))?;
        let n = open.entry(session.to_string()).or_insert(0);
        if *n >= LIVE_STREAMS_PER_SESSION {
            return Err(ApiError::rate_limited(
                1,
                format!("at most {LIVE_STREAMS_PER_SESSION} live streams per session; close one first"),
            ));
        }
        *n += 1;
        Ok(())
    }

    /// Drops counters that no rule looks at any more (windows and lockouts over a day ago).
    pub fn prune(&self, now: i64) -> ApiResult<usize> {
        let mut dropped = 0;
        for item in self.tree.iter() {
            let (k, v) = item?;
            let c: Counter = serde_json::from_slice(&v)?;
            let last = c.last_ms.max(c.window_start_ms).max(c.locked_until_ms);
            if now.saturating_sub(last) > DAY_MS {
                self.tree.remove(k)?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Gives back a stream's place in its session's count.
    pub fn release_stream(&self, session: &str) {
        if let Ok(mut open) = self.streams.lock() {
            if let Some(n) = open.get_mut(session) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(session);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> (tempfile::TempDir, Limits) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).temporary(true).open().unwrap();
        (dir, Limits::new(db.open_tree("limits").unwrap()))
    }

    #[test]
    fn five_wrong_codes_lock_out_for_longer_each_time_and_the_right_code_too() {
        let (_d, l) = limits();
        let keys = vec!["code/phone/1".to_string()];
        let mut now = 1_000_000;
        for _ in 0..WRONG_CODES_BEFORE_LOCKOUT {
            l.code_allowed(&keys, now).unwrap();
            l.wrong_code(&keys, now).unwrap();
            now += 1_000;
        }
        let err = l.code_allowed(&keys, now).unwrap_err();
        assert_eq!(err.status.as_u16(), 429);
        assert_eq!(err.retry_after_s, Some(((FIRST_LOCKOUT_MS - 1_000) / 1000) as u64));
        now += FIRST_LOCKOUT_MS;
        l.code_allowed(&keys, now).unwrap();
        for _ in 0..WRONG_CODES_BEFORE_LOCKOUT {
            l.wrong_code(&keys, now).unwrap();
        }
        // The second lockout is twice as long.
        assert_eq!(l.code_allowed(&keys, now + FIRST_LOCKOUT_MS + 1).unwrap_err().status.as_u16(), 429);
        l.code_allowed(&keys, now + 2 * FIRST_LOCKOUT_MS).unwrap();
    }

    #[test]
    fn a_right_code_ends_the_run_but_not_the_daily_cap() {
        let (_d, l) = limits();
        let keys = vec!["code/phone/1".to_string()];
        let mut now = 5_000_000;
        for _ in 0..(WRONG_CODES_PER_DAY / (WRONG_CODES_BEFORE_LOCKOUT - 1)) {
            for _ in 0..WRONG_CODES_BEFORE_LOCKOUT - 1 {
                l.code_allowed(&keys, now).unwrap();
                l.wrong_code(&keys, now).unwrap();
                now += 1_000;
            }
            l.right_code(&keys).unwrap();
        }
        let err = l.code_allowed(&keys, now).unwrap_err();
        assert!(err.message.contains("today"), "{}", err.message);
        l.code_allowed(&keys, now + DAY_MS).unwrap();
    }

    #[test]
    fn windows_and_spacing_refuse_with_the_wait() {
        let (_d, l) = limits();
        for _ in 0..3 {
            l.windowed("w", 3, MINUTE_MS, 10_000, "x").unwrap();
        }
        let err = l.windowed("w", 3, MINUTE_MS, 20_000, "x").unwrap_err();
        assert_eq!(err.retry_after_s, Some(50));
        l.windowed("w", 3, MINUTE_MS, 70_000, "x").unwrap();
        l.spaced("s", SMS_INTERVAL_MS, 100_000, "sms").unwrap();
        assert_eq!(l.spaced("s", SMS_INTERVAL_MS, 110_000, "sms").unwrap_err().retry_after_s, Some(20));
        l.spaced("s", SMS_INTERVAL_MS, 130_000, "sms").unwrap();
    }

    #[test]
    fn live_streams_per_session_are_counted_and_given_back() {
        let (_d, l) = limits();
        l.open_stream("ses").unwrap();
        l.open_stream("ses").unwrap();
        assert_eq!(l.open_stream("ses").err().unwrap().status.as_u16(), 429);
        l.open_stream("other").unwrap();
        l.release_stream("ses");
        l.open_stream("ses").unwrap();
        assert!(l.open_stream("ses").is_err());
    }
}
