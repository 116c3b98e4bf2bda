//! E-voucher codes across the FFI: the current code to draw, a watch that hands the shell a
//! new code at each rotation (shells wrap it in a Flow / AsyncStream), a QR-to-SVG helper,
//! and the verifier a scanner terminal app runs. The rules are in `carepass_core::domain::voucher`.

use std::collections::HashMap;
use std::sync::Arc;

use carepass_core::domain::voucher::format::device_id_to_bytes;
use carepass_core::domain::voucher::render::{encode_qr, to_svg};
use carepass_core::domain::voucher::rotator::DisplayCode;
use carepass_core::domain::voucher::verify::{KnownDevice, MemoryReplayCache, Verifier};
use carepass_core::domain::voucher::Purpose;

use crate::account::CarePass;
use crate::error::{invalid, CarePassError, InputField};
use crate::tasks::{forward, TaskHandle};

/// What a code is shown for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CodePurpose {
    Registration,
    OutpatientSettlement,
    PharmacyPurchase,
    PrescriptionDownload,
}

impl From<CodePurpose> for Purpose {
    fn from(p: CodePurpose) -> Self {
        match p {
            CodePurpose::Registration => Purpose::Registration,
            CodePurpose::OutpatientSettlement => Purpose::OutpatientSettlement,
            CodePurpose::PharmacyPurchase => Purpose::PharmacyPurchase,
            CodePurpose::PrescriptionDownload => Purpose::PrescriptionDownload,
        }
    }
}

impl From<Purpose> for CodePurpose {
    fn from(p: Purpose) -> Self {
        match p {
            Purpose::Registration => CodePurpose::Registration,
            Purpose::OutpatientSettlement => CodePurpose::OutpatientSettlement,
            Purpose::PharmacyPurchase => CodePurpose::PharmacyPurchase,
            Purpose::PrescriptionDownload => CodePurpose::PrescriptionDownload,
        }
    }
}

/// A code ready to draw. Times are platform time, ms since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VoucherCode {
    /// The QR payload (`CP1:` + base45).
    pub payload: String,
    pub qr_version: u8,
    /// Modules per side (no quiet zone: draw four light modules around).
    pub qr_size: u32,
    /// `qr_size * qr_size` bytes, row-major: 1 = dark, 0 = light.
    pub qr_modules: Vec<u8>,
    pub purpose: CodePurpose,
    pub offline: bool,
    pub valid_from_ms: i64,
    /// When to show the next code.
    pub refresh_at_ms: i64,
    /// After this, verifiers refuse it.
    pub expires_at_ms: i64,
    /// Whole seconds until the next code, when this record was made.
    pub seconds_left: u32,
}

pub(crate) fn to_record(code: DisplayCode, now_ms: i64) -> VoucherCode {
    VoucherCode {
        seconds_left: code.seconds_left(now_ms),
        payload: code.text,
        qr_version: code.qr.version,
        qr_size: code.qr.size,
        qr_modules: code.qr.modules.iter().map(|&dark| dark as u8).collect(),
        purpose: code.purpose.into(),
        offline: code.offline,
        valid_from_ms: code.valid_from_ms,
        refresh_at_ms: code.refresh_at_ms,
        expires_at_ms: code.expires_at_ms,
    }
}

/// Receives each new code (at every rotation), then the error that ended the stream.
#[uniffi::export(with_foreign)]
pub trait CodeListener: Send + Sync {
    fn on_code(&self, code: VoucherCode);
    fn on_error(&self, error: CarePassError);
}

#[uniffi::export(async_runtime = "tokio")]
impl CarePass {
    /// The code to show now (for `subject`; null is the signed-in person), made on this
    /// device with no network. The same code comes back until its period ends.
    #[uniffi::method(default(subject = None))]
    pub fn current_code(
        &self,
        purpose: CodePurpose,
        offline: bool,
        subject: Option<String>,
    ) -> Result<VoucherCode, CarePassError> {
        let code = self.core().current_code(purpose.into(), offline, subject.as_deref())?;
        Ok(to_record(code, self.core().platform_now_ms()))
    }

    /// Learns the platform's time and remembers the offset; returns it in ms.
    pub async fn sync_clock(&self) -> Result<i64, CarePassError> {
        Ok(self.core().sync_clock().await?)
    }

    /// Revokes one of the signed-in person's devices (a lost phone).
    pub async fn revoke_device(&self, device_id: String) -> Result<(), CarePassError> {
        Ok(self.core().revoke_device(&device_id).await?)
    }

    /// Hands `listener` the current code now and each new one at its rotation, each once,
    /// until cancelled or the stream ends (session over, client closed), reported once
    /// through `on_error`.
    #[uniffi::method(default(subject = None))]
    pub fn watch_codes(
        &self,
        purpose: CodePurpose,
        offline: bool,
        listener: Arc<dyn CodeListener>,
        subject: Option<String>,
    ) -> Arc<TaskHandle> {
        // Weakly: a stream nobody cancels must not keep the core alive.
        let core = Arc::downgrade(self.core());
        let on_error = listener.clone();
        forward(
            self.core().code_stream(purpose.into(), offline, subject),
            move |code| {
                let now = core.upgrade().map(|c| c.platform_now_ms()).unwrap_or(code.valid_from_ms);
                listener.on_code(to_record(code, now))
            },
            move |e| on_error.on_error(e),
        )
    }
}

/// An SVG of the QR code for `payload` (error correction M, quiet zone included).
#[uniffi::export]
pub fn qr_svg(payload: String, module_px: u32) -> Result<String, CarePassError> {
    let qr = encode_qr(&payload).map_err(|e| invalid(InputField::Payload, e.to_string()))?;
    Ok(to_svg(&qr, module_px.clamp(1, 64)))
}

/// A trusted issuer key (from the platform's trust list).
#[derive(Debug, Clone, uniffi::Record)]
pub struct IssuerKey {
    pub key_id: u16,
    /// Uncompressed P-256 public key, 65 bytes.
    pub public_key: Vec<u8>,
}

/// A device the scanner's platform directory knows (online-profile codes).
#[derive(Debug, Clone, uniffi::Record)]
pub struct DirectoryDevice {
    pub device_id: String,
    pub public_key: Vec<u8>,
    pub revoked: bool,
}

/// A scanner's verdict.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ScanVerdict {
    pub accepted: bool,
    /// The rejection reason code (`docs/voucher-code.md`), when refused.
    pub reason: Option<String>,
    pub device_id: Option<String>,
    pub purpose: Option<CodePurpose>,
    pub offline: bool,
    pub proxy: bool,
}

/// The verifier a scanner terminal app runs: issuer trust list, revocation list, skew
/// allowance, and its own replay cache (each code accepted once per verifier).
#[derive(uniffi::Object)]
pub struct VoucherVerifier {
    inner: std::sync::RwLock<Verifier>,
}

#[uniffi::export]
impl VoucherVerifier {
    #[uniffi::constructor]
    pub fn new(
        issuers: Vec<IssuerKey>,
        revoked_device_ids: Vec<String>,
        skew_ms: i64,
    ) -> Result<Arc<Self>, CarePassError> {
        let trust: HashMap<u16, Vec<u8>> = issuers.into_iter().map(|i| (i.key_id, i.public_key)).collect();
        let mut verifier = Verifier::new(trust, skew_ms, Arc::new(MemoryReplayCache::default()));
        verifier.set_revoked(parse_ids(&revoked_device_ids)?);
        Ok(Arc::new(VoucherVerifier { inner: std::sync::RwLock::new(verifier) }))
    }

    /// Replaces the revocation list.
    pub fn set_revoked(&self, device_ids: Vec<String>) -> Result<(), CarePassError> {
        let ids = parse_ids(&device_ids)?;
        let mut inner =
            self.inner.write().map_err(|_| CarePassError::Internal { reason: "verifier lock poisoned".into() })?;
        inner.set_revoked(ids);
        Ok(())
    }

    /// Verifies a scanned payload for `purpose` at the scanner's time `now_ms`.
    pub fn verify(
        &self,
        payload: String,
        purpose: CodePurpose,
        now_ms: i64,
        directory: Vec<DirectoryDevice>,
    ) -> Result<ScanVerdict, CarePassError> {
        let mut known = HashMap::new();
        for d in directory {
            let id = device_id_to_bytes(&d.device_id).map_err(|e| invalid(InputField::DeviceId, e.to_string()))?;
            known.insert(id, KnownDevice { public_key: d.public_key, revoked: d.revoked });
        }
        let inner =
            self.inner.read().map_err(|_| CarePassError::Internal { reason: "verifier lock poisoned".into() })?;
        Ok(match inner.verify(&payload, purpose.into(), now_ms, &known) {
            Ok(code) => ScanVerdict {
                accepted: true,
                reason: None,
                device_id: Some(code.device_id),
                purpose: Some(code.purpose.into()),
                offline: code.offline,
                proxy: code.proxy,
            },
            Err(rejection) => ScanVerdict {
                accepted: false,
                reason: Some(rejection.code().to_string()),
                device_id: None,
                purpose: None,
                offline: false,
                proxy: false,
            },
        })
    }
}

fn parse_ids(ids: &[String]) -> Result<Vec<[u8; 8]>, CarePassError> {
    ids.iter().map(|id| device_id_to_bytes(id).map_err(|e| invalid(InputField::DeviceId, e.to_string()))).collect()
}
