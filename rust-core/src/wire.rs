//! Wire types of the platform API (JSON over HTTP), shared by the core's client and the
//! sandbox server so both sides agree by construction. `docs/api.md` describes them and the
//! sandbox serves the generated OpenAPI document.
//!
//! Rules about these types (who may do what, when a token expires) live elsewhere; this
//! file only says what travels.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Every answer of the platform, success or error, carries this header: the server's time
/// in milliseconds since the Unix epoch. The client measures its clock offset from it.
pub const SERVER_TIME_HEADER: &str = "x-carepass-server-time";

/// The body of every non-2xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorBody {
    /// Machine-readable code, one of [`codes`].
    pub code: String,
    /// A sentence for developers; never contains personal data.
    pub message: String,
}

/// The error codes the platform answers with.
pub mod codes {
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const WRONG_VERIFICATION_CODE: &str = "wrong_verification_code";
    pub const UNKNOWN_PHONE: &str = "unknown_phone";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const ACCESS_TOKEN_EXPIRED: &str = "access_token_expired";
    pub const REFRESH_TOKEN_EXPIRED: &str = "refresh_token_expired";
    pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
    pub const UNKNOWN_DEVICE: &str = "unknown_device";
    pub const CHALLENGE_INVALID: &str = "challenge_invalid";
    pub const SIGNATURE_INVALID: &str = "signature_invalid";
    pub const FORBIDDEN: &str = "forbidden";
    pub const NOT_FOUND: &str = "not_found";
    pub const INTERNAL: &str = "internal";
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Health {
    pub status: String,
    pub server_time_ms: i64,
}

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
/// over [`crate::account::login_message`].
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

/// The national insurance schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InsuranceType {
    /// 职工基本医疗保险, in work.
    EmployeeActive,
    /// 职工基本医疗保险, retired.
    EmployeeRetired,
    /// 城乡居民基本医疗保险.
    Resident,
}

/// An insured person as the platform knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PersonRecord {
    pub person_id: String,
    pub name: String,
    pub phone: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub insurance_type: InsuranceType,
    /// Six-digit administrative code of the pooling region (统筹区).
    pub pooling_region: String,
    pub pooling_region_name: String,
    pub household_id: String,
}

/// A scanner terminal sends what it scanned and what it is scanning for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ScanRequest {
    pub payload: String,
    pub purpose: crate::voucher::Purpose,
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

/// The signed list of revoked devices offline scanners cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RevocationList {
    /// Increases with every revocation.
    pub sequence: u64,
    pub issued_at_ms: i64,
    pub issuer_key_id: u16,
    /// `dev_…` ids, ascending.
    pub device_ids: Vec<String>,
    /// Issuer signature over `voucher::cert::revocation_message`, base64url, 64 bytes r||s.
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Revoked {
    pub revoked: bool,
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

// ---- pending bills (docs/bills.md) -----------------------------------------------------

/// Insurance category of a billed item (医保目录 甲/乙/丙).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BillItemCategory {
    /// 甲类: fully eligible.
    A,
    /// 乙类: eligible after a first self-pay share.
    B,
    /// 丙类: not covered.
    C,
}

/// One line of a bill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BillItem {
    /// National medical-insurance item or drug code.
    pub item_code: String,
    pub name: String,
    pub category: BillItemCategory,
    pub quantity: u32,
    pub unit_price_fen: crate::money::Fen,
    /// `quantity × unit_price_fen`.
    pub amount_fen: crate::money::Fen,
}

/// Where a bill is in its life (`docs/bills.md` § States).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BillState {
    Pending,
    Paying,
    Paid,
    Failed,
    Expired,
    Cancelled,
    Refunded,
}

/// A bill waiting for (or past) payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Bill {
    pub bill_id: String,
    /// The patient the bill is for.
    pub person_id: String,
    pub visit_id: String,
    pub hospital: String,
    pub department: String,
    pub doctor: String,
    pub items: Vec<BillItem>,
    pub total_fen: crate::money::Fen,
    pub created_at_ms: i64,
    pub due_at_ms: i64,
    pub state: BillState,
    pub updated_at_ms: i64,
}

/// One change in a recipient's inbox: a bill as it is after the change numbered `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct InboxEntry {
    pub seq: u64,
    pub bill: Bill,
}

/// A page of inbox changes after a cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct InboxPage {
    pub entries: Vec<InboxEntry>,
    /// The cursor to ask from next (the last entry's seq, or the one asked from).
    pub cursor: u64,
    /// More entries are readable after `cursor`.
    pub more: bool,
}

/// A push token of the app's push service, registered for the signed-in person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PushTokenRegistration {
    /// `fcm`, `apns`, `huawei` or `xiaomi`.
    pub service: String,
    /// Opaque token from the push service.
    pub token: String,
}

/// The platform's doorbell-signing key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PushKey {
    pub key_id: u16,
    /// Uncompressed P-256 public key, base64url without padding.
    pub public_key: String,
}

/// Clinic role: a bill to issue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct IssueBillRequest {
    /// The patient's phone.
    pub phone: String,
    pub hospital: String,
    pub department: String,
    pub doctor: String,
    pub items: Vec<NewBillItem>,
    /// Minutes until the bill expires unpaid (default 1440).
    #[serde(default)]
    pub due_in_minutes: Option<u32>,
    /// Test fixture: the bill becomes readable only this many ms after its doorbell is sent
    /// (replication lag at a real platform).
    #[serde(default)]
    pub readable_after_ms: Option<u32>,
}

/// A line the clinic bills (the platform computes the amount).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NewBillItem {
    pub item_code: String,
    pub name: String,
    pub category: BillItemCategory,
    pub quantity: u32,
    pub unit_price_fen: crate::money::Fen,
}

/// What the platform would have handed a push service (the relay outbox, test stand-in for
/// FCM/APNs delivery).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RelayedPush {
    pub service: String,
    pub token: String,
    /// The push data map, exactly as the app's push service hands it to the app.
    pub data: std::collections::BTreeMap<String, String>,
}

// ---- prescriptions, pharmacy quotes and orders (docs/pharmacy.md) -------------------------

/// A chronic-disease prescription shared to designated pharmacies (门慢处方共享).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PrescriptionRecord {
    pub rx_id: String,
    pub person_id: String,
    pub hospital: String,
    pub doctor: String,
    pub diagnosis: String,
    pub prescription: crate::pharmacy::Prescription,
    pub issued_at_ms: i64,
    pub valid_until_ms: i64,
}

/// "Rank the pharmacies for my prescription": the platform adds the patient's coverage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PharmacyQuoteRequest {
    pub rx_id: String,
    pub options: crate::pharmacy::RankOptions,
    /// Pay what the personal account can (default true).
    #[serde(default = "yes")]
    pub use_account: bool,
}

fn yes() -> bool {
    true
}

/// Where to deliver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DeliveryAddress {
    /// The address as written, 4 to 200 characters.
    pub text: String,
    pub location: crate::pharmacy::GeoPoint,
    /// Contact phone for the courier.
    pub contact_phone: String,
}

/// Place an order for a prescription at one pharmacy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OrderRequest {
    pub rx_id: String,
    pub pharmacy_id: String,
    pub fulfilment: crate::pharmacy::Fulfilment,
    /// Required for delivery.
    #[serde(default)]
    pub address: Option<DeliveryAddress>,
    #[serde(default = "yes")]
    pub use_account: bool,
}

/// Order states: accepted → ready (pickup) or out_for_delivery (delivery) → completed;
/// accepted → cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    Accepted,
    Ready,
    OutForDelivery,
    Completed,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Order {
    pub order_id: String,
    pub rx_id: String,
    pub person_id: String,
    pub pharmacy_id: String,
    pub pharmacy_name: String,
    pub fulfilment: crate::pharmacy::Fulfilment,
    pub address: Option<DeliveryAddress>,
    pub state: OrderState,
    /// The quote the order was placed on (amounts in fen).
    pub quote: crate::pharmacy::PharmacyQuote,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}
