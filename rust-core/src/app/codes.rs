//! The code to show: one [`CodeRotator`] per core keeps the current code of each (purpose,
//! profile, proxy) for its period, so redrawing a screen costs no signature. The code itself
//! is made by the pure `crate::domain::voucher::rotator::make_code`.

use std::collections::HashMap;
use std::sync::Mutex;

use ring::rand::{SecureRandom, SystemRandom};

use crate::app::error::CoreResult;
use crate::domain::voucher::rotator::{make_code, CodeSource, DisplayCode};
use crate::domain::voucher::Purpose;

/// Hands out the current code, making a new one only when the period changes, so redrawing a
/// screen every second costs no signature. One code is kept per (purpose, profile, proxy), so
/// two screens asking for different codes do not replace each other's.
pub struct CodeRotator {
    current: Mutex<HashMap<(Purpose, bool, bool), DisplayCode>>,
    rng: SystemRandom,
}

impl Default for CodeRotator {
    fn default() -> Self {
        CodeRotator { current: Mutex::new(HashMap::new()), rng: SystemRandom::new() }
    }
}

impl CodeRotator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn current(
        &self,
        source: &CodeSource<'_>,
        purpose: Purpose,
        offline: bool,
        proxy: bool,
        now_ms: i64,
    ) -> CoreResult<DisplayCode> {
        let key = (purpose, offline, proxy);
        if let Ok(guard) = self.current.lock() {
            if let Some(code) = guard.get(&key) {
                if code.valid_from_ms <= now_ms && now_ms < code.refresh_at_ms {
                    return Ok(code.clone());
                }
            }
        }
        let mut nonce = [0u8; 4];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| crate::domain::crypto::KeyError::Platform("random generator failed".into()))?;
        let code = make_code(source, purpose, offline, proxy, now_ms, nonce)?;
        if let Ok(mut guard) = self.current.lock() {
            guard.insert(key, code.clone());
        }
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crypto::SoftwareDeviceKey;

    const NOW: i64 = 1_795_440_000_000;

    #[test]
    fn a_code_is_reused_within_its_period_and_replaced_after() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let source = CodeSource { keys: &key, device_id: [1; 8], certificate: None, period_s: 30 };
        let rotator = CodeRotator::new();
        let a = rotator.current(&source, Purpose::Registration, false, false, NOW).unwrap();
        let b = rotator.current(&source, Purpose::Registration, false, false, NOW + 29_000).unwrap();
        assert_eq!(a, b);
        let c = rotator.current(&source, Purpose::Registration, false, false, a.refresh_at_ms).unwrap();
        assert_ne!(a.text, c.text);
        assert_eq!(c.valid_from_ms, a.refresh_at_ms);
        let d = rotator.current(&source, Purpose::PharmacyPurchase, false, false, a.refresh_at_ms).unwrap();
        assert_eq!(d.purpose, Purpose::PharmacyPurchase);
        // Asking for another purpose does not replace the first one's code.
        assert_eq!(rotator.current(&source, Purpose::Registration, false, false, a.refresh_at_ms + 1).unwrap(), c);
        assert_eq!(a.seconds_left(NOW), ((a.refresh_at_ms - NOW + 999) / 1000) as u32);
    }
}
