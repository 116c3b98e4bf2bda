//! Pending bills on the wire: inbox pages and entries, push tokens and keys, the clinic's bill
//! request, the relay outbox (`docs/bills.md`).

use serde::{Deserialize, Serialize};

pub use crate::domain::bills::{Bill, BillItem, BillState, CounterScan};
use crate::domain::money::Fen;
use crate::domain::settlement::ItemCategory;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

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
    /// Names the platform's log; another epoch means the log was replaced and the phone
    /// re-syncs from scratch.
    #[serde(default)]
    pub epoch: String,
    /// The highest sequence in the log; below the phone's cursor, the log went back.
    #[serde(default)]
    pub head: u64,
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
    /// The kind of visit (default outpatient); it picks the settlement rule.
    #[serde(default)]
    pub visit_type: crate::domain::settlement::VisitType,
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
    pub category: ItemCategory,
    pub quantity: u32,
    pub unit_price_fen: Fen,
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
