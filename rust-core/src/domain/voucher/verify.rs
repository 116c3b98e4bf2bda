//! The verifier: what a scanner terminal (and the platform) runs on a scanned code. It checks,
//! in this order (`docs/voucher-code.md` § Verification):
//!
//! 1. format (prefix, base45, version, length, flags, purpose byte, period);
//! 2. the signing key: offline profile → issuer in the trust list, certificate signature,
//!    certificate expiry; online profile → the device in the platform's directory;
//! 3. the code signature;
//! 4. revocation (revocation list, or the directory's word);
//! 5. the time window: one period either side of the code's own period, plus the skew allowance;
//! 6. the purpose the scanner expects;
//! 7. single use: the replay cache records the code; a second use is rejected.
//!
//! A code is recorded as used only when every other check passed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::cert::{check_certificate, decompress_point};
use super::format::{self, device_id_to_string, FormatError};
use super::Purpose;
use crate::domain::crypto;

/// Why a code was rejected. [`Rejection::code`] is the stable machine-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed code: {0}")]
    Malformed(FormatError),
    #[error("unsupported code version")]
    UnsupportedVersion,
    #[error("the certificate's issuer is not trusted")]
    UnknownIssuer,
    #[error("the device certificate is not signed by its issuer")]
    BadCertificate,
    #[error("the device certificate has expired")]
    CertificateExpired,
    #[error("the device is not known to the platform")]
    UnknownDevice,
    #[error("the code's signature does not verify")]
    BadSignature,
    #[error("the device has been revoked")]
    Revoked,
    #[error("the code has expired")]
    Expired,
    #[error("the code is not valid yet")]
    NotYetValid,
    #[error("the code was made for {found}, not {expected}")]
    WrongPurpose { expected: &'static str, found: &'static str },
    #[error("the code has already been used")]
    Replayed,
    #[error("the replay cache failed: {0}")]
    ReplayCacheUnavailable(String),
}

impl Rejection {
    /// Stable reason code (used on the wire, in the vectors and by the terminal).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::UnsupportedVersion => "unsupported_version",
            Rejection::UnknownIssuer => "unknown_issuer",
            Rejection::BadCertificate => "bad_certificate",
            Rejection::CertificateExpired => "certificate_expired",
            Rejection::UnknownDevice => "unknown_device",
            Rejection::BadSignature => "bad_signature",
            Rejection::Revoked => "revoked",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::WrongPurpose { .. } => "wrong_purpose",
            Rejection::Replayed => "replayed",
            Rejection::ReplayCacheUnavailable(_) => "replay_cache_unavailable",
        }
    }
}

impl From<FormatError> for Rejection {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::UnsupportedVersion(_) => Rejection::UnsupportedVersion,
            other => Rejection::Malformed(other),
        }
    }
}

/// A code that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCode {
    pub device_id: String,
    pub purpose: Purpose,
    pub proxy: bool,
    pub offline: bool,
    pub valid_from_ms: i64,
    /// Last instant the verifier accepts it (exclusive), skew included.
    pub accepted_until_ms: i64,
}

/// A device as the platform's directory knows it (online profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    /// Uncompressed P-256 public key (65 bytes).
    pub public_key: Vec<u8>,
    pub revoked: bool,
}

/// Looks devices up for online-profile codes. Offline scanners use [`NoDirectory`].
pub trait DeviceDirectory {
    fn device(&self, device_id: &[u8; 8]) -> Option<KnownDevice>;
}

/// A directory that knows no device: only offline-profile codes can pass.
pub struct NoDirectory;

impl DeviceDirectory for NoDirectory {
    fn device(&self, _: &[u8; 8]) -> Option<KnownDevice> {
        None
    }
}

impl DeviceDirectory for HashMap<[u8; 8], KnownDevice> {
    fn device(&self, device_id: &[u8; 8]) -> Option<KnownDevice> {
        self.get(device_id).cloned()
    }
}

/// Remembers used codes until they could no longer pass the time window anyway.
pub trait ReplayCache: Send + Sync {
    /// Records `key`; `Ok(true)` the first time, `Ok(false)` if it was already there.
    fn first_use(&self, key: &[u8; 16], keep_until_ms: i64, now_ms: i64) -> Result<bool, String>;
}

/// An in-memory replay cache (a scanner terminal's; the platform keeps its own in sled).
#[derive(Default)]
pub struct MemoryReplayCache {
    seen: Mutex<HashMap<[u8; 16], i64>>,
}

impl ReplayCache for MemoryReplayCache {
    fn first_use(&self, key: &[u8; 16], keep_until_ms: i64, now_ms: i64) -> Result<bool, String> {
        let mut seen = self.seen.lock().map_err(|_| "replay cache lock poisoned".to_string())?;
        if seen.len() >= 4096 {
            seen.retain(|_, until| *until > now_ms);
        }
        if seen.get(key).is_some_and(|until| *until > now_ms) {
            return Ok(false);
        }
        seen.insert(*key, keep_until_ms);
        Ok(true)
    }
}

/// The key under which a code is remembered: device id, step, nonce.
pub fn replay_key(code: &format::VoucherCode) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&code.body.device_id);
    key[8..12].copy_from_slice(&code.body.step.to_be_bytes());
    key[12..].copy_from_slice(&code.body.nonce);
    key
}

/// A scanner's verifier.
pub struct Verifier {
    issuers: HashMap<u16, Vec<u8>>,
    revoked: HashSet<[u8; 8]>,
    skew_ms: i64,
    replay: Arc<dyn ReplayCache>,
}

impl Verifier {
    /// `issuers`: trusted issuer key ids and uncompressed public keys; `skew_ms`: how far the
    /// scanner's clock may be from the platform's.
    pub fn new(issuers: HashMap<u16, Vec<u8>>, skew_ms: i64, replay: Arc<dyn ReplayCache>) -> Verifier {
        Verifier { issuers, revoked: HashSet::new(), skew_ms: skew_ms.max(0), replay }
    }

    /// Replaces the revocation list (devices whose codes are refused).
    pub fn set_revoked<I: IntoIterator<Item = [u8; 8]>>(&mut self, devices: I) {
        self.revoked = devices.into_iter().collect();
    }

    pub fn revoke(&mut self, device_id: [u8; 8]) {
        self.revoked.insert(device_id);
    }

    /// Verifies the scanned `text` for `expected` purpose at the scanner's time `now_ms`.
    pub fn verify(
        &self,
        text: &str,
        expected: Purpose,
        now_ms: i64,
        directory: &dyn DeviceDirectory,
    ) -> Result<VerifiedCode, Rejection> {
        let code = format::parse_text(text)?;
        let body = &code.body;

        // 2. The key that must have signed the code.
        let (public_key, directory_says_revoked) = match &body.certificate {
            Some(cert) => {
                let issuer = self.issuers.get(&cert.issuer_key_id).ok_or(Rejection::UnknownIssuer)?;
                check_certificate(cert, &body.device_id, issuer).map_err(|_| Rejection::BadCertificate)?;
                if (cert.not_after_s as i64) * 1000 <= now_ms {
                    return Err(Rejection::CertificateExpired);
                }
                let key = decompress_point(&cert.device_key).map_err(|_| Rejection::BadCertificate)?;
                (key.to_vec(), false)
            }
            None => {
                let known = directory.device(&body.device_id).ok_or(Rejection::UnknownDevice)?;
                (known.public_key, known.revoked)
            }
        };

        // 3. The code's own signature.
        crypto::verify_p256(&public_key, &format::signing_message(&code.signed_part), &code.signature)
            .map_err(|_| Rejection::BadSignature)?;

        // 4. Revocation.
        if directory_says_revoked
            || self.revoked.contains(&body.device_id)
            || directory.device(&body.device_id).is_some_and(|d| d.revoked)
        {
            return Err(Rejection::Revoked);
        }

        // 5. Time window.
        let period_ms = body.period_s as i64 * 1000;
        let valid_from_ms = body.valid_from_ms();
        let accepted_from = valid_from_ms - period_ms - self.skew_ms;
        let accepted_until_ms = valid_from_ms + 2 * period_ms + self.skew_ms;
        if now_ms < accepted_from {
            return Err(Rejection::NotYetValid);
        }
        if now_ms >= accepted_until_ms {
            return Err(Rejection::Expired);
        }

        // 6. Purpose.
        if body.purpose != expected {
            return Err(Rejection::WrongPurpose { expected: expected.name(), found: body.purpose.name() });
        }

        // 7. Single use.
        match self.replay.first_use(&replay_key(&code), accepted_until_ms, now_ms) {
            Ok(true) => {}
            Ok(false) => return Err(Rejection::Replayed),
            Err(e) => return Err(Rejection::ReplayCacheUnavailable(e)),
        }

        Ok(VerifiedCode {
            device_id: device_id_to_string(&body.device_id),
            purpose: body.purpose,
            proxy: body.proxy,
            offline: body.certificate.is_some(),
            valid_from_ms,
            accepted_until_ms,
        })
    }
}
