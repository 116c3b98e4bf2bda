//! Accounts and sessions on the wire: verification codes, enrolment, login challenges,
//! token pairs (`docs/api.md`).

use serde::{Deserialize, Serialize};

pub use crate::domain::person::{InsuranceType, PersonRecord};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VerificationCodeRequest {
    /// Mainland mobile number, 11 digits.
    pub phone: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VerificationCodeSent {
    pub expires_in_s: u32,
}

/// Enrol this device for the insured person who owns `phone`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EnrolRequest {
    pub phone: String,
    pub code: String,
    /// The device's P-256 public key, SEC1 uncompressed (65 bytes), base64url without padding.
    pub device_public_key: String,
    pub device_name: String,
    /// `android`, `ios` or `terminal`.
    pub platform: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChallengeRequest {
    pub device_id: String,
}

/// A single-use nonce the device signs to prove it holds its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Challenge {
    pub nonce: String,
    pub expires_at_ms: i64,
}

/// Sign in again on an enrolled device: verification code plus the device's signature
/// over [`crate::domain::account::login_message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoginRequest {
    pub device_id: String,
    pub phone: String,
    pub code: String,
    pub nonce: String,
    /// ECDSA P-256 SHA-256 signature, fixed 64-byte r||s, base64url without padding.
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Bearer tokens of one session. Refresh tokens are single use: each refresh returns a new
/// pair, and presenting a spent refresh token ends the whole session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_at_ms: i64,
    pub refresh_expires_at_ms: i64,
}

/// What enrolment and login return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionGrant {
    pub person: PersonRecord,
    pub device_id: String,
    pub tokens: SessionTokens,
    /// The issuer-signed device certificate for offline codes (103 bytes, base64url without
    /// padding; layout in `docs/voucher-code.md`).
    #[serde(default)]
    pub device_certificate: Option<String>,
}
