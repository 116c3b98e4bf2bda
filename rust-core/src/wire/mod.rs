//! Wire types of the platform API (JSON over HTTP), shared by the core's client and the
//! sandbox server so both sides agree by construction: one file per capability, each
//! depending on `crate::domain` only. Domain entities that travel as they are (a bill, an
//! order, a person record) are defined in their domain room and re-exported here.
//! `docs/api.md` describes them and the sandbox serves the generated OpenAPI document.
//!
//! Rules about these types (who may do what, when a token expires) live in `crate::domain`;
//! this module only says what travels.

pub mod account;
pub mod bills;
pub mod family;
pub mod payment;
pub mod pharmacy;
pub mod voucher;

pub use account::*;
pub use bills::*;
pub use family::*;
pub use payment::*;
pub use pharmacy::*;
pub use voucher::*;

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Every answer of the platform, success or error, carries this header: the server's time
/// in milliseconds since the Unix epoch. The client measures its clock offset from it.
pub const SERVER_TIME_HEADER: &str = "x-carepass-server-time";

/// An authenticated request about someone other than the token's own person names them in
/// this header (the subject; the token names the actor). Absent: the actor is the subject.
pub const SUBJECT_HEADER: &str = "x-carepass-subject";

/// The body of every non-2xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: PlatformCode,
    /// A sentence for developers; never contains personal data.
    pub message: String,
}

/// The error codes the platform answers with (`docs/api.md` § Errors). A code this build
/// does not know reads as [`PlatformCode::Unknown`]; the HTTP status is kept beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PlatformCode {
    /// The request is malformed or a field is out of range (400).
    InvalidRequest,
    /// The SMS verification code is wrong or expired, or the phone is unknown (401).
    WrongVerificationCode,
    /// No valid session token (401).
    Unauthorized,
    /// The access token expired: refresh it (401).
    AccessTokenExpired,
    /// The refresh token expired: sign in again (401).
    RefreshTokenExpired,
    /// A spent refresh token was presented again: the session is ended (401).
    RefreshTokenReused,
    /// The device is not enrolled, or was revoked (404).
    UnknownDevice,
    /// The login challenge is unknown, used or expired (401).
    ChallengeInvalid,
    /// A device signature does not verify (401).
    SignatureInvalid,
    /// The caller may not do this (403).
    Forbidden,
    /// No such resource, or not the caller's (404).
    NotFound,
    /// The resource is not in a state that allows this move (409).
    Conflict,
    /// The resource's validity has ended (410).
    Expired,
    /// The prescription already has a live order (409).
    AlreadyOrdered,
    /// The pharmacy cannot fill the whole prescription (409).
    IncompleteQuote,
    /// Too many attempts; retry after the `Retry-After` seconds (429).
    RateLimited,
    /// The quote's time is over: ask for a new one (410).
    QuoteExpired,
    /// The quote was already used by another payment request (409).
    QuoteUsed,
    /// What was signed differs from the quote (an amount, the channel, a party) (422).
    ConsentMismatch,
    /// The idempotency key was used with another request (422).
    IdempotencyKeyReused,
    /// A request with this idempotency key is still being processed: retry shortly (409).
    IdempotencyInProgress,
    /// The bill cannot take a payment now (paid, expired, or being paid from elsewhere) (409).
    BillNotPayable,
    /// The credit line does not have that much available (409).
    CreditLimitExceeded,
    /// A family rule refused the act or the link move; the message begins with the
    /// refusal's code (`scope_missing: …`, `docs/family.md` § 6).
    FamilyRefused,
    /// The platform failed (500).
    Internal,
    /// A code this build does not know.
    #[serde(other)]
    Unknown,
}

impl PlatformCode {
    /// The code as it travels (`invalid_request`).
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformCode::InvalidRequest => "invalid_request",
            PlatformCode::WrongVerificationCode => "wrong_verification_code",
            PlatformCode::Unauthorized => "unauthorized",
            PlatformCode::AccessTokenExpired => "access_token_expired",
            PlatformCode::RefreshTokenExpired => "refresh_token_expired",
            PlatformCode::RefreshTokenReused => "refresh_token_reused",
            PlatformCode::UnknownDevice => "unknown_device",
            PlatformCode::ChallengeInvalid => "challenge_invalid",
            PlatformCode::SignatureInvalid => "signature_invalid",
            PlatformCode::Forbidden => "forbidden",
            PlatformCode::NotFound => "not_found",
            PlatformCode::Conflict => "conflict",
            PlatformCode::Expired => "expired",
            PlatformCode::AlreadyOrdered => "already_ordered",
            PlatformCode::IncompleteQuote => "incomplete_quote",
            PlatformCode::RateLimited => "rate_limited",
            PlatformCode::QuoteExpired => "quote_expired",
            PlatformCode::QuoteUsed => "quote_used",
            PlatformCode::ConsentMismatch => "consent_mismatch",
            PlatformCode::IdempotencyKeyReused => "idempotency_key_reused",
            PlatformCode::IdempotencyInProgress => "idempotency_in_progress",
            PlatformCode::BillNotPayable => "bill_not_payable",
            PlatformCode::CreditLimitExceeded => "credit_limit_exceeded",
            PlatformCode::FamilyRefused => "family_refused",
            PlatformCode::Internal => "internal",
            PlatformCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for PlatformCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Health {
    pub status: String,
    pub server_time_ms: i64,
}

/// Test-fixture role: move the platform's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ClockAdvance {
    pub advance_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ClockState {
    pub server_time_ms: i64,
    pub offset_ms: i64,
}
