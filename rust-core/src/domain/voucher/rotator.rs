//! Making the code to show: sign the current period's code with the device key, encode it as
//! a QR matrix, and say when to show the next one. Pure: time (the platform time the client
//! learned) and the nonce are passed in; `crate::app::codes` keeps the current code.

use super::format::{self, CodeBody, DeviceCertificate};
use super::render::{encode_qr, QrMatrix};
use super::{Purpose, VoucherError};
use crate::domain::crypto::{self as keys, DeviceKeyStore};

/// A code ready to display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayCode {
    /// The QR payload (`CP1:` + base45).
    pub text: String,
    pub qr: QrMatrix,
    pub purpose: Purpose,
    pub offline: bool,
    /// Shown by a proxy for a relative: the link it is shown under.
    pub link_id: Option<String>,
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
    link: Option<[u8; format::LINK_LEN]>,
    now_ms: i64,
    nonce: [u8; 4],
) -> Result<DisplayCode, VoucherError> {
    let period_ms = source.period_s.max(1) as i64 * 1000;
    let step = u32::try_from(now_ms.div_euclid(period_ms)).map_err(|_| VoucherError::TimeOutOfRange)?;
    let certificate = match (offline, source.certificate) {
        (true, Some(cert)) => Some(cert.clone()),
        (true, None) => return Err(VoucherError::NoCertificate),
        (false, _) => None,
    };
    let body = CodeBody {
        link,
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
        link_id: link.as_ref().map(format::link_id_to_string),
        valid_from_ms,
        refresh_at_ms: valid_from_ms + period_ms,
        expires_at_ms: valid_from_ms + 2 * period_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crypto::SoftwareDeviceKey;
    use crate::domain::voucher::cert::Issuer;
    use crate::domain::voucher::verify::{KnownDevice, MemoryReplayCache, Verifier};
    use std::collections::HashMap;
    use std::sync::Arc;

    const NOW: i64 = 1_795_440_000_000;

    #[test]
    fn codes_fit_their_qr_budgets_and_verify() {
        let issuer = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let device_id = [7; 8];
        let cert = issuer.certify(&device_id, &key.public_key().unwrap(), 2_000_000_000).unwrap();
        let source = CodeSource { keys: &key, device_id, certificate: Some(&cert), period_s: 30 };
        let online = make_code(&source, Purpose::OutpatientSettlement, false, None, NOW, [1, 2, 3, 4]).unwrap();
        let offline =
            make_code(&source, Purpose::OutpatientSettlement, true, Some([0x22; 8]), NOW, [5, 6, 7, 8]).unwrap();
        assert!(online.qr.version <= 7, "online version {}", online.qr.version);
        assert!(offline.qr.version <= 10, "offline version {}", offline.qr.version);

        let verifier =
            Verifier::new(HashMap::from([(1, issuer.public_key())]), 0, Arc::new(MemoryReplayCache::default()));
        let directory =
            HashMap::from([(device_id, KnownDevice { public_key: key.public_key().unwrap(), revoked: false })]);
        let ok = verifier.verify(&online.text, Purpose::OutpatientSettlement, NOW, &directory).unwrap();
        assert!(!ok.offline && !ok.proxy);
        let ok = verifier
            .verify(&offline.text, Purpose::OutpatientSettlement, NOW, &crate::domain::voucher::verify::NoDirectory)
            .unwrap();
        assert!(ok.offline && ok.proxy);
        assert_eq!(ok.link_id.as_deref(), Some("lnk_2222222222222222"));
    }

    #[test]
    fn offline_codes_need_a_certificate() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let source = CodeSource { keys: &key, device_id: [1; 8], certificate: None, period_s: 30 };
        assert!(matches!(
            make_code(&source, Purpose::Registration, true, None, NOW, [0; 4]),
            Err(VoucherError::NoCertificate)
        ));
    }
}
