//! Pending bills across the FFI: the inbox from the store, cursor sync, the shell's push
//! hand-over (`handle_push` with the push service's data map), push-token registration, and
//! the foreground live stream as a watch that calls a foreign listener. Rules and I/O are in
//! `carepass_core::domain::bills` and `carepass_core::app`.

use std::collections::HashMap;
use std::sync::Arc;

use carepass_core::domain::bills::{InboxChange as CoreChange, PushOutcome as CoreOutcome};
use carepass_core::wire;

use crate::account::CarePass;
use crate::error::CarePassError;
use crate::tasks::{forward, TaskHandle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ItemCategory {
    /// 甲类: fully eligible.
    A,
    /// 乙类: eligible after a first self-pay share.
    B,
    /// 丙类: not covered.
    C,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum BillState {
    Pending,
    Paying,
    Paid,
    Failed,
    Expired,
    Cancelled,
    Refunded,
    /// The insurance share is settled; the self-pay share is still to pay.
    CashDue,
    /// Some lines were refunded; the rest stays paid.
    PartlyRefunded,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BillItem {
    pub item_code: String,
    pub name: String,
    pub category: ItemCategory,
    pub quantity: u32,
    pub unit_price_fen: i64,
    pub amount_fen: i64,
}

/// A bill (amounts in fen, times in ms since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Bill {
    pub bill_id: String,
    pub person_id: String,
    pub visit_id: String,
    pub hospital: String,
    pub department: String,
    pub doctor: String,
    pub items: Vec<BillItem>,
    pub total_fen: i64,
    pub created_at_ms: i64,
    pub due_at_ms: i64,
    pub state: BillState,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeKind {
    /// A bill the phone had not seen.
    Added,
    /// A bill whose state or content changed.
    Updated,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InboxChange {
    pub kind: ChangeKind,
    pub bill: Bill,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PushResult {
    /// Pulled; these changes are new.
    Pulled { changes: Vec<InboxChange> },
    /// A duplicate or late doorbell: its change was already in the inbox.
    AlreadySeen,
    /// The platform does not serve the announced change yet; the next sync pulls it.
    NotYetReadable,
}

fn category(c: carepass_core::domain::settlement::ItemCategory) -> ItemCategory {
    match c {
        carepass_core::domain::settlement::ItemCategory::A => ItemCategory::A,
        carepass_core::domain::settlement::ItemCategory::B => ItemCategory::B,
        carepass_core::domain::settlement::ItemCategory::C => ItemCategory::C,
    }
}

fn state(s: wire::BillState) -> BillState {
    match s {
        wire::BillState::Pending => BillState::Pending,
        wire::BillState::Paying => BillState::Paying,
        wire::BillState::Paid => BillState::Paid,
        wire::BillState::Failed => BillState::Failed,
        wire::BillState::Expired => BillState::Expired,
        wire::BillState::Cancelled => BillState::Cancelled,
        wire::BillState::Refunded => BillState::Refunded,
        wire::BillState::CashDue => BillState::CashDue,
        wire::BillState::PartlyRefunded => BillState::PartlyRefunded,
    }
}

impl From<wire::Bill> for Bill {
    fn from(b: wire::Bill) -> Self {
        Bill {
            bill_id: b.bill_id,
            person_id: b.person_id,
            visit_id: b.visit_id,
            hospital: b.hospital,
            department: b.department,
            doctor: b.doctor,
            items: b
                .items
                .into_iter()
                .map(|i| BillItem {
                    item_code: i.item_code,
                    name: i.name,
                    category: category(i.category),
                    quantity: i.quantity,
                    unit_price_fen: i.unit_price_fen.0,
                    amount_fen: i.amount_fen.0,
                })
                .collect(),
            total_fen: b.total_fen.0,
            created_at_ms: b.created_at_ms,
            due_at_ms: b.due_at_ms,
            state: state(b.state),
            updated_at_ms: b.updated_at_ms,
        }
    }
}

impl From<CoreChange> for InboxChange {
    fn from(c: CoreChange) -> Self {
        match c {
            CoreChange::Added(b) => InboxChange { kind: ChangeKind::Added, bill: b.into() },
            CoreChange::Updated(b) => InboxChange { kind: ChangeKind::Updated, bill: b.into() },
        }
    }
}

/// A subject's bills now (newest first, expiry applied), and the changes that led there
/// (empty in the first update of a watch).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InboxUpdate {
    pub subject: String,
    pub bills: Vec<Bill>,
    pub changes: Vec<InboxChange>,
}

impl From<carepass_core::app::InboxUpdate> for InboxUpdate {
    fn from(u: carepass_core::app::InboxUpdate) -> Self {
        InboxUpdate {
            subject: u.subject,
            bills: u.bills.iter().cloned().map(Into::into).collect(),
            changes: u.changes.into_iter().map(Into::into).collect(),
        }
    }
}

/// Receives the inbox now and after every change, then the error that ended the stream.
#[uniffi::export(with_foreign)]
pub trait InboxListener: Send + Sync {
    fn on_update(&self, update: InboxUpdate);
    fn on_error(&self, error: CarePassError);
}

fn outcome(o: CoreOutcome) -> PushResult {
    match o {
        CoreOutcome::Pulled(changes) => PushResult::Pulled { changes: changes.into_iter().map(Into::into).collect() },
        CoreOutcome::AlreadySeen => PushResult::AlreadySeen,
        CoreOutcome::NotYetReadable => PushResult::NotYetReadable,
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl CarePass {
    /// A subject's bills from the phone (null: the signed-in person), newest first, expiry
    /// applied. No network.
    #[uniffi::method(default(subject = None))]
    pub fn bills(&self, subject: Option<String>) -> Result<Vec<Bill>, CarePassError> {
        Ok(self.core().bills(subject.as_deref())?.into_iter().map(Into::into).collect())
    }

    /// Pulls every change after the stored cursor; returns what is new.
    pub async fn sync_inbox(&self) -> Result<Vec<InboxChange>, CarePassError> {
        Ok(self.core().sync_inbox().await?.into_iter().map(Into::into).collect())
    }

    /// Hands over a push (the push service's data map, as received): verifies the doorbell,
    /// then pulls. Forged, stale, misdirected or malformed pushes are `InvalidPush`.
    pub async fn handle_push(&self, data: HashMap<String, String>) -> Result<PushResult, CarePassError> {
        Ok(outcome(self.core().handle_push(&data).await?))
    }

    /// Whether a doorbell announced a change not pulled yet (sync when the app starts).
    pub fn pull_owed(&self) -> Result<bool, CarePassError> {
        Ok(self.core().pull_owed()?)
    }

    /// Registers the push service's token: `fcm`, `apns`, `huawei` or `xiaomi`.
    pub async fn register_push_token(&self, service: String, token: String) -> Result<(), CarePassError> {
        Ok(self.core().register_push_token(&service, &token).await?)
    }

    /// Hands `listener` a subject's inbox now and after every change, while the live
    /// connection (reconnecting and resyncing by itself) keeps it fresh; each change is
    /// committed to the store before the listener hears of it. `on_error` once when the
    /// session ends or the client closes.
    #[uniffi::method(default(subject = None))]
    pub fn watch_inbox(&self, listener: Arc<dyn InboxListener>, subject: Option<String>) -> Arc<TaskHandle> {
        let on_error = listener.clone();
        forward(self.core().inbox_stream(subject), move |u| listener.on_update(u.into()), move |e| on_error.on_error(e))
    }
}

/// Whether a push's data map is a CarePass doorbell (to route it to `handle_push`); it says
/// nothing about authenticity, which `handle_push` checks.
#[uniffi::export]
pub fn is_carepass_push(data: HashMap<String, String>) -> bool {
    carepass_core::domain::bills::doorbell::is_doorbell(|k| data.get(k).map(String::as_str))
}
