//! Rotating e-voucher codes (医保电子凭证): made on the phone with no network from the device
//! key, verified by the platform or by a scanner terminal with only the issuer's key.
//!
//! - `format`: the byte layout and QR text (`docs/voucher-code.md` is normative);
//! - `base45`: the alphanumeric text encoding;
//! - `cert`: issuing and checking the device certificate of the offline profile;
//! - `verify`: the verifier (trust list, revocation list, replay cache, time window);
//! - `rotator`: making the code for a period (`crate::app::codes` keeps the current one);
//! - `render`: QR module matrix, SVG and terminal drawing;
//! - `qr_mask`: the standard's mask choice, scored fast on bit-packed rows and columns.

pub mod base45;
pub mod cert;
pub mod format;
pub mod qr_mask;
pub mod render;
pub mod rotator;
pub mod verify;

use serde::{Deserialize, Serialize};

/// Default rotation period.
pub const DEFAULT_PERIOD_S: u8 = 30;

/// What a code is shown for: the national platform's scan business types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Purpose {
    /// 挂号: registration at a hospital.
    Registration = 1,
    /// 门诊结算: outpatient settlement.
    OutpatientSettlement = 2,
    /// 购药: purchase at a designated pharmacy.
    PharmacyPurchase = 3,
    /// 处方下载: a pharmacy downloads the patient's e-prescription.
    PrescriptionDownload = 4,
}

impl Purpose {
    pub const ALL: [Purpose; 4] = [
        Purpose::Registration,
        Purpose::OutpatientSettlement,
        Purpose::PharmacyPurchase,
        Purpose::PrescriptionDownload,
    ];

    pub fn from_byte(b: u8) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| *p as u8 == b)
    }

    /// The wire and command-line name (`outpatient_settlement`).
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Registration => "registration",
            Purpose::OutpatientSettlement => "outpatient_settlement",
            Purpose::PharmacyPurchase => "pharmacy_purchase",
            Purpose::PrescriptionDownload => "prescription_download",
        }
    }

    pub fn from_name(name: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Why a code could not be made or drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoucherError {
    #[error(transparent)]
    Format(#[from] format::FormatError),
    #[error("the code does not fit a QR code: {0}")]
    Render(String),
    #[error("this device has no certificate for offline codes yet; sign in online once")]
    NoCertificate,
    #[error("platform time is outside the range a code can carry")]
    TimeOutOfRange,
    #[error(transparent)]
    Key(#[from] crate::domain::crypto::KeyError),
}
