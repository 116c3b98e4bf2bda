//! The verifier: what a scanner terminal (and the platform) runs on a scanned code. It checks,
//! in this order (`docs/voucher-code.md` § Verification):
//!
//! 1. format (prefix, base45, version, length, flags, purpose byte, period);
//! 2. the signing key: offline profile → issuer in the trust list, certificate signature,
//!    certificate expiry; online profile → the device in the platform's directory;
//! 3. the code signature;
//! 4. revocation (revocation list, or the directory's word; an offline code needs a list
//!    issued at most 24 hours ago);
//! 5. the time window: one period either side of the code's own period, plus the skew allowance;
//! 6. the purpose the scanner expects;
//! 7. single use: the replay cache records the code; a second use is rejected.
//!
//! A code is recorded as used only when every other check passed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::cert::{check_certificate, decompress_point, VerifiedRevocations};
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
    #[error("the scanner's revocation list is more than 24 hours old; fetch a new one")]
    RevocationListStale,
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
            Rejection::RevocationListStale => "revocation_list_stale",
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
    /// The family link a proxy code is shown under (`lnk_…`): the platform resolves whom the
    /// code is for and checks the link still lets the presenter show it.
    pub link_id: Option<String>,
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
/// Expired entries are swept when the map has doubled since the last sweep (at least 4,096
/// entries), so a busy terminal pays O(1) per scan amortized, not a sweep per scan.
#[derive(Default)]
pub struct MemoryReplayCache {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    until: HashMap<[u8; 16], i64>,
    /// The size at which the next sweep runs.
    sweep_at: usize,
}

impl MemoryReplayCache {
    /// How many codes it remembers now (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.until.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayCache for MemoryReplayCache {
    fn first_use(&self, key: &[u8; 16], keep_until_ms: i64, now_ms: i64) -> Result<bool, String> {
        let mut seen = self.seen.lock().map_err(|_| "replay cache lock poisoned".to_string())?;
        if seen.until.len() >= seen.sweep_at.max(4096) {
            seen.until.retain(|_, until| *until > now_ms);
            seen.sweep_at = seen.until.len().saturating_mul(2);
        }
        if seen.until.get(key).is_some_and(|until| *until > now_ms) {
            return Ok(false);
        }
        seen.until.insert(*key, keep_until_ms);
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
    /// Set by [`Verifier::set_revocation_list`]: offline codes are refused after this instant.
    revocations_usable_until_ms: Option<i64>,
    skew_ms: i64,
    replay: Arc<dyn ReplayCache>,
}

impl Verifier {
    /// `issuers`: trusted issuer key ids and uncompressed public keys; `skew_ms`: how far the
    /// scanner's clock may be from the platform's.
    pub fn new(issuers: HashMap<u16, Vec<u8>>, skew_ms: i64, replay: Arc<dyn ReplayCache>) -> Verifier {
        Verifier {
            issuers,
            revoked: HashSet::new(),
            revocations_usable_until_ms: None,
            skew_ms: skew_ms.max(0),
            replay,
        }
    }

    /// Replaces the revocation list (devices whose codes are refused) with a set the caller
    /// keeps current itself (the platform's live directory, tests): it never goes stale.
    pub fn set_revoked<I: IntoIterator<Item = [u8; 8]>>(&mut self, devices: I) {
        self.revoked = devices.into_iter().collect();
        self.revocations_usable_until_ms = None;
    }

    /// Replaces the revocation list with a signed list the scanner fetched and verified
    /// ([`super::cert::verified_revocations`]). Once it is older than
    /// [`super::cert::MAX_REVOCATION_AGE_MS`], offline-profile codes are refused
    /// (`revocation_list_stale`) until a newer list is set.
    pub fn set_revocation_list(&mut self, list: &VerifiedRevocations) {
        self.revoked = list.device_ids.iter().copied().collect();
        self.revocations_usable_until_ms = Some(list.usable_until_ms());
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

        // 4. Revocation: an offline code is only as good as the scanner's list is fresh.
        if body.certificate.is_some() && self.revocations_usable_until_ms.is_some_and(|until| now_ms > until) {
            return Err(Rejection::RevocationListStale);
        }
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
            proxy: body.link.is_some(),
            link_id: body.link.as_ref().map(super::format::link_id_to_string),
            offline: body.certificate.is_some(),
            valid_from_ms,
            accepted_until_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crypto::{DeviceKeyStore, SoftwareDeviceKey};
    use crate::domain::voucher::cert::{
        revocation_message, verified_revocations, Issuer, RevocationList, MAX_REVOCATION_AGE_MS,
    };
    use crate::domain::voucher::rotator::{make_code, CodeSource};

    const NOW: i64 = 1_795_435_200_000;
    const SETTLE: Purpose = Purpose::OutpatientSettlement;

    /// The P-256 group order n, big-endian.
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6,
        0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    ];

    /// The same code with its signature's s replaced by n − s (the other of the pair).
    fn other_s(text: &str) -> String {
        let mut bytes = crate::domain::voucher::base45::decode(&text[4..]).unwrap();
        let at = bytes.len() - 32;
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = N[i] as i16 - bytes[at + i] as i16 - borrow;
            bytes[at + i] = d.rem_euclid(256) as u8;
            borrow = (d < 0) as i16;
        }
        format::to_text(&bytes)
    }

    fn high_s(text: &str) -> bool {
        let bytes = crate::domain::voucher::base45::decode(&text[4..]).unwrap();
        let s = &bytes[bytes.len() - 32..];
        // n / 2, rounded down.
        let mut half = [0u8; 32];
        let mut carry = 0u8;
        for i in 0..32 {
            half[i] = (carry << 7) | (N[i] >> 1);
            carry = N[i] & 1;
        }
        s > &half[..]
    }

    struct Setup {
        issuer: Issuer,
        key: SoftwareDeviceKey,
        device_id: [u8; 8],
    }

    impl Setup {
        fn new() -> Setup {
            let issuer = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
            let (key, _) = SoftwareDeviceKey::generate().unwrap();
            Setup { issuer, key, device_id: [7; 8] }
        }

        fn code(&self, offline: bool, nonce: u8) -> String {
            let cert = self.issuer.certify(&self.device_id, &self.key.public_key().unwrap(), 2_000_000_000).unwrap();
            let source =
                CodeSource { keys: &self.key, device_id: self.device_id, certificate: Some(&cert), period_s: 30 };
            make_code(&source, SETTLE, offline, None, NOW, [0, 0, 0, nonce]).unwrap().text
        }

        fn verifier(&self) -> Verifier {
            Verifier::new(HashMap::from([(1, self.issuer.public_key())]), 0, Arc::new(MemoryReplayCache::default()))
        }

        fn directory(&self) -> HashMap<[u8; 8], KnownDevice> {
            HashMap::from([(
                self.device_id,
                KnownDevice { public_key: self.key.public_key().unwrap(), revoked: false },
            )])
        }
    }

    #[test]
    fn high_and_low_s_both_verify_and_the_twin_of_a_used_code_is_a_replay() {
        let setup = Setup::new();
        let mut seen_high = false;
        for nonce in 0..16 {
            let code = setup.code(false, nonce);
            let twin = other_s(&code);
            assert_ne!(high_s(&code), high_s(&twin));
            seen_high |= high_s(&code);
            for text in [&code, &twin] {
                assert!(
                    setup.verifier().verify(text, SETTLE, NOW, &setup.directory()).is_ok(),
                    "high S {}",
                    high_s(text)
                );
            }
            // The replay key is device, step and nonce, not the text: n − s cannot spend a code twice.
            let scanner = setup.verifier();
            assert!(scanner.verify(&code, SETTLE, NOW, &setup.directory()).is_ok());
            assert_eq!(scanner.verify(&twin, SETTLE, NOW, &setup.directory()), Err(Rejection::Replayed));
        }
        assert!(seen_high, "a signer that never gives high S in 16 codes");
    }

    #[test]
    fn a_scanner_refuses_offline_codes_once_its_signed_list_is_a_day_old() {
        use base64::Engine;
        let setup = Setup::new();
        let issued_at = NOW - 1_000;
        let signature = setup.issuer.sign(&revocation_message(5, issued_at, &[])).unwrap();
        let list = RevocationList {
            sequence: 5,
            issued_at_ms: issued_at,
            issuer_key_id: 1,
            device_ids: vec![],
            signature: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature),
        };
        let trust = HashMap::from([(1, setup.issuer.public_key())]);
        let verified = verified_revocations(&list, &trust, NOW).unwrap();
        let last_ok = issued_at + MAX_REVOCATION_AGE_MS;

        // A code made at the list's last usable instant, and one made just after it.
        let at = |t: i64, offline: bool, nonce: u8| {
            let cert = setup.issuer.certify(&setup.device_id, &setup.key.public_key().unwrap(), 2_000_000_000).unwrap();
            let source =
                CodeSource { keys: &setup.key, device_id: setup.device_id, certificate: Some(&cert), period_s: 30 };
            make_code(&source, SETTLE, offline, None, t, [1, 0, 0, nonce]).unwrap().text
        };
        let mut scanner = setup.verifier();
        scanner.set_revocation_list(&verified);
        assert!(scanner.verify(&at(last_ok, true, 1), SETTLE, last_ok, &NoDirectory).is_ok());
        assert_eq!(
            scanner.verify(&at(last_ok + 1, true, 2), SETTLE, last_ok + 1, &NoDirectory),
            Err(Rejection::RevocationListStale)
        );
        // Online codes ask the directory, which is live: the list's age does not matter.
        assert!(scanner.verify(&at(last_ok + 1, false, 3), SETTLE, last_ok + 1, &setup.directory()).is_ok());
        // A set the caller keeps current itself never goes stale.
        scanner.set_revoked([]);
        assert!(scanner.verify(&at(last_ok + 1, true, 4), SETTLE, last_ok + 1, &NoDirectory).is_ok());
    }

    #[test]
    fn the_memory_replay_cache_sweeps_when_it_doubles_and_still_refuses_every_replay() {
        let cache = MemoryReplayCache::default();
        let key = |i: u32| {
            let mut k = [0u8; 16];
            k[..4].copy_from_slice(&i.to_be_bytes());
            k
        };
        // 10,000 live codes: no sweep can drop any, and each is refused a second time.
        for i in 0..10_000 {
            assert!(cache.first_use(&key(i), NOW + 60_000, NOW).unwrap());
        }
        assert_eq!(cache.len(), 10_000);
        for i in (0..10_000).step_by(97) {
            assert!(!cache.first_use(&key(i), NOW + 60_000, NOW).unwrap(), "code {i} replayed");
        }
        // Once they are past their window they go at the next sweep, and a code seen then
        // long ago passes again (the verifier's time window refuses it before the cache).
        let later = NOW + 60_001;
        for i in 10_000..30_000 {
            assert!(cache.first_use(&key(i), later + 60_000, later).unwrap());
        }
        assert!(cache.len() < 30_000, "the expired codes were swept: {}", cache.len());
        assert!(cache.first_use(&key(0), later + 60_000, later).unwrap());
        assert!(!cache.first_use(&key(29_999), later + 60_000, later).unwrap());
    }
}
