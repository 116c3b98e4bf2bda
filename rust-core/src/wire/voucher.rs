//! E-voucher codes on the wire: scans, the issuer trust list, the revocation list
//! (`docs/voucher-code.md`).

use serde::{Deserialize, Serialize};

use crate::domain::person::InsuranceType;
pub use crate::domain::voucher::cert::RevocationList;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A scanner terminal sends what it scanned and what it is scanning for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ScanRequest {
    pub payload: String,
    pub purpose: crate::domain::voucher::Purpose,
}

/// A person as a scanner may show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ScannedPerson {
    pub person_id: String,
    pub name: String,
    pub insurance_type: InsuranceType,
    pub pooling_region: String,
}

/// The platform's verdict on a scanned code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ScanOutcome {
    pub accepted: bool,
    /// The rejection reason code (`docs/voucher-code.md`), when not accepted.
    pub reason: Option<String>,
    /// Whose insurance the code is for.
    pub holder: Option<ScannedPerson>,
    /// Who showed it: the device and its owner (differs from the holder for a proxy).
    pub presenter_device_id: Option<String>,
    pub presenter_person_id: Option<String>,
    pub offline: bool,
    pub proxy: bool,
    /// A proxy code: who presented it, under which link, as the holder's what.
    #[serde(default)]
    pub presenter: Option<ScannedPerson>,
    #[serde(default)]
    pub link_id: Option<String>,
    #[serde(default)]
    pub relationship: Option<crate::domain::family::Relationship>,
}

/// A trusted certificate issuer for offline verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TrustedIssuer {
    pub key_id: u16,
    /// Uncompressed P-256 public key (65 bytes), base64url without padding.
    pub public_key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TrustList {
    pub issuers: Vec<TrustedIssuer>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Revoked {
    pub revoked: bool,
}
