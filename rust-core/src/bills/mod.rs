//! Pending bills (医保支付找人): the bill finds the patient. The push is only a signed
//! doorbell ("something new for you, sequence N"); the truth is pulled by cursor over the
//! authenticated API or arrives on the foreground live stream (server-sent events).
//!
//! - `state`: the bill state machine and expiry (pure);
//! - `doorbell`: the doorbell format, signing and verification (pure);
//! - `inbox`: the phone's inbox in the encrypted store: apply pulled changes once, list;
//! - `sse`: the server-sent-events parser of the live stream.
//!
//! `docs/bills.md` is the normative description.

pub mod doorbell;
pub mod inbox;
pub mod sse;
pub mod state;

use crate::wire::Bill;

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
