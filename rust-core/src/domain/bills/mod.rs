//! Pending bills (医保支付找人): the bill finds the patient. The push is only a signed
//! doorbell ("something new for you, sequence N"); the truth is pulled by cursor over the
//! authenticated API or arrives on the foreground live stream (server-sent events).
//!
//! - `state`: the bill state machine and expiry (pure);
//! - `doorbell`: the doorbell format, signing and verification (pure);
//!
//! The phone's inbox (apply pulled changes once, list) is `crate::app::inbox`; the live
//! stream's parser is `crate::io::sse`.
//!
//! `docs/bills.md` is the normative description.

pub mod doorbell;
pub mod state;

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::domain::money::Fen;
use crate::domain::settlement::{ItemCategory, VisitType};

/// One line of a bill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BillItem {
    /// National medical-insurance item or drug code.
    pub item_code: String,
    pub name: String,
    pub category: ItemCategory,
    pub quantity: u32,
    pub unit_price_fen: Fen,
    /// `quantity × unit_price_fen`.
    pub amount_fen: Fen,
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
    /// The insurance paid its part; the cash could not be taken and is still owed
    /// (`docs/payments.md` § 5).
    CashDue,
    /// Some lines were refunded; the rest stays paid.
    PartlyRefunded,
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
    pub total_fen: Fen,
    pub created_at_ms: i64,
    pub due_at_ms: i64,
    pub state: BillState,
    pub updated_at_ms: i64,
    /// The kind of visit, which picks the settlement rule (`docs/settlement.md`).
    #[serde(default)]
    pub visit_type: VisitType,
    /// The bill's payment as it stands (the last attempt's, when one failed).
    #[serde(default)]
    pub payment: Option<BillPayment>,
    /// For a bill a cashier made by scanning the patient's code (一码付): the scan.
    #[serde(default)]
    pub counter: Option<CounterScan>,
}

/// The scan a counter bill came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CounterScan {
    /// `pharmacy_purchase` or `outpatient_settlement`.
    pub purpose: String,
    /// The device that showed the code.
    pub presenter_device_id: String,
    pub scanned_at_ms: i64,
}

/// What a bill shows of its payment (`docs/payments.md` § 5.3): the split by source, what is
/// still due and refunded, why the last attempt failed, and the signed receipts. It travels
/// with the bill in the inbox, so the outcome reaches the phone with the bill's change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BillPayment {
    pub payment_id: String,
    /// Who confirmed it (the patient, or a family proxy).
    pub actor: String,
    pub fund_fen: Fen,
    pub personal_account_fen: Fen,
    pub mutual_aid_fen: Fen,
    pub cash_fen: Fen,
    /// The cash channel, masked (`card ····4242`).
    pub channel: String,
    /// Cash still owed after the insurance paid (the bill is `cash_due`).
    pub cash_due_fen: Fen,
    /// Refunded so far, all sources.
    pub refunded_fen: Fen,
    /// Why the last attempt failed (the bill is back to pending).
    #[serde(default)]
    pub failure: Option<PaymentFailure>,
    /// The e-receipts, oldest first: the original, then write-offs and re-issues.
    #[serde(default)]
    pub receipts: Vec<crate::domain::crypto::SignedBody>,
}

/// Why a payment failed: a stable code and a sentence for a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PaymentFailure {
    pub code: String,
    pub message: String,
}

/// What changed in the inbox, for listeners: each bill is announced once when it arrives and
/// again only when its state changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxChange {
    Added(Bill),
    Updated(Bill),
}

impl InboxChange {
    pub fn bill(&self) -> &Bill {
        match self {
            InboxChange::Added(b) | InboxChange::Updated(b) => b,
        }
    }
}

/// Receives inbox changes; the shells implement it (Flow / AsyncStream).
pub trait InboxListener: Send + Sync {
    fn on_change(&self, change: InboxChange);
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Pulled; these changes are new.
    Pulled(Vec<InboxChange>),
    /// The doorbell's sequence was already in the inbox (a duplicate or late doorbell).
    AlreadySeen,
    /// The platform did not yet serve the change the doorbell announced; it is remembered and
    /// pulled by the next sync.
    NotYetReadable,
}

/// The push services a doorbell can travel by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PushService {
    /// Firebase Cloud Messaging.
    Fcm,
    /// Apple Push Notification service.
    Apns,
    /// Huawei Push Kit (HMS).
    Huawei,
    /// Xiaomi Mi Push.
    Xiaomi,
}

impl PushService {
    pub const ALL: [PushService; 4] = [PushService::Fcm, PushService::Apns, PushService::Huawei, PushService::Xiaomi];

    /// The wire name (`fcm`).
    pub fn name(self) -> &'static str {
        match self {
            PushService::Fcm => "fcm",
            PushService::Apns => "apns",
            PushService::Huawei => "huawei",
            PushService::Xiaomi => "xiaomi",
        }
    }

    pub fn from_name(name: &str) -> Option<PushService> {
        PushService::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The longest push token accepted (FCM's are ~160 characters, APNs' 64 hex digits).
pub const MAX_PUSH_TOKEN_LEN: usize = 4096;

/// The one check of a push-token registration, used by the phone before sending and by the
/// platform on receipt: a known service and a token of 1 to 4096 printable ASCII characters.
pub fn check_push_token(service: &str, token: &str) -> Result<PushService, crate::domain::InvalidInput> {
    use crate::domain::{Field, InvalidInput};
    let service = PushService::from_name(service)
        .ok_or(InvalidInput::new(Field::PushService, "a push service is fcm, apns, huawei or xiaomi"))?;
    if token.is_empty() || token.len() > MAX_PUSH_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidInput::new(Field::PushToken, "a push token is 1 to 4096 printable ASCII characters"));
    }
    Ok(service)
}
