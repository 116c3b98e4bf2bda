//! Making the code to show: sign the current period's code with the device key, encode it as
//! a QR matrix, and say when to show the next one. Works with no network; time is the
//! platform time the client learned (phone clock corrected by the measured offset).

use std::collections::HashMap;
use std::sync::Mutex;

use ring::rand::{SecureRandom, SystemRandom};

use super::format::{self, CodeBody, DeviceCertificate};
use super::render::{encode_qr, QrMatrix};
use super::{Purpose, VoucherError};
use crate::error::CoreResult;
use crate::keys::{self, DeviceKeyStore};

/// A code ready to display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayCode {
    /// The QR payload (`CP1:` + base45).
    pub text: String,
    pub qr: QrMatrix,
    pub purpose: Purpose,
    pub offline: bool,
    pub proxy: bool,
    /// Platform time (Unix ms) the code's period starts.
    pub valid_from_ms: i64,
    /// Platform time to show the next code (the end of this period).
    pub refresh_at_ms: i64,
    /// Platform time after which verifiers refuse it (without skew allowance).
    pub expires_at_ms: i64,
}

impl DisplayCode {
    /// Whole seconds left until the next code, at platform time `now_ms` (rounded up).
    pub fn seconds_left(&self, now_ms: i64) -> u32 {
        let left = (self.refresh_at_ms - now_ms).max(0);
        ((left + 999) / 1000) as u32
    }
}

/// What a code is made from: the device's key, its id, and its certificate (offline profile).
pub struct CodeSource<'a> {
    pub keys: &'a dyn DeviceKeyStore,
    pub device_id: [u8; 8],
    pub certificate: Option<&'a DeviceCertificate>,
    pub period_s: u8,
}

/// Makes the code for platform time `now_ms`.
pub fn make_code(
    source: &CodeSource<'_>,
    purpose: Purpose,
    offline: bool,
    proxy: bool,
    now_ms: i64,
    nonce: [u8; 4],
) -> CoreResult<DisplayCode> {
    let period_ms = source.period_s.max(1) as i64 * 1000;
    let step = u32::try_from(now_ms.div_euclid(period_ms)).map_err(|_| VoucherError::TimeOutOfRange)?;
    let certificate = match (offline, source.certificate) {
        (true, Some(cert)) => Some(cert.clone()),
        (true, None) => return Err(VoucherError::NoCertificate.into()),
        (false, _) => None,
    };
    let body = CodeBody {
        proxy,
        purpose,
        period_s: source.period_s.max(1),
        step,
        nonce,
        device_id: source.device_id,
        certificate,
    };
    let signature = keys::sign_fixed(source.keys, &body.message())?;
    let text = format::to_text(&format::assemble(&body, &signature));
    let qr = encode_qr(&text)?;
    let valid_from_ms = body.valid_from_ms();
    Ok(DisplayCode {
        text,
        qr,
        purpose,
        offline,
        proxy,
        valid_from_ms,
        refresh_at_ms: valid_from_ms + period_ms,
        expires_at_ms: valid_from_ms + 2 * period_ms,
    })
}

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
        self.rng.fill(&mut nonce).map_err(|_| crate::keys::KeyError::Platform("random generator failed".into()))?;
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
    use crate::keys::SoftwareDeviceKey;
    use crate::voucher::cert::Issuer;
    use crate::voucher::verify::{KnownDevice, MemoryReplayCache, Verifier};
    use std::collections::HashMap;
    use std::sync::Arc;

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

    #[test]
    fn codes_fit_their_qr_budgets_and_verify() {
        let issuer = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let device_id = [7; 8];
        let cert = issuer.certify(&device_id, &key.public_key().unwrap(), 2_000_000_000).unwrap();
        let source = CodeSource { keys: &key, device_id, certificate: Some(&cert), period_s: 30 };
        let online = make_code(&source, Purpose::OutpatientSettlement, false, false, NOW, [1, 2, 3, 4]).unwrap();
        let offline = make_code(&source, Purpose::OutpatientSettlement, true, true, NOW, [5, 6, 7, 8]).unwrap();
        assert!(online.qr.version <= 7, "online version {}", online.qr.version);
        assert!(offline.qr.version <= 10, "offline version {}", offline.qr.version);

        let verifier =
            Verifier::new(HashMap::from([(1, issuer.public_key())]), 0, Arc::new(MemoryReplayCache::default()));
        let directory =
            HashMap::from([(device_id, KnownDevice { public_key: key.public_key().unwrap(), revoked: false })]);
        let ok = verifier.verify(&online.text, Purpose::OutpatientSettlement, NOW, &directory).unwrap();
        assert!(!ok.offline && !ok.proxy);
        let ok = verifier
            .verify(&offline.text, Purpose::OutpatientSettlement, NOW, &crate::voucher::verify::NoDirectory)
            .unwrap();
        assert!(ok.offline && ok.proxy);
    }

    #[test]
    fn offline_codes_need_a_certificate() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let source = CodeSource { keys: &key, device_id: [1; 8], certificate: None, period_s: 30 };
        assert!(matches!(
            make_code(&source, Purpose::Registration, true, false, NOW, [0; 4]),
            Err(crate::CoreError::Voucher(VoucherError::NoCertificate))
        ));
    }
}
