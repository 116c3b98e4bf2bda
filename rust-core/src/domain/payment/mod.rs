//! Mixed payment (医保 + 自费; `docs/payments.md`): one confirmation pays a bill from the pooled
//! fund, the personal account, family mutual aid and cash — exactly once, across any crash.
//!
//! - `channel`: the cash leg's channel (none, a card, credit pay-later);
//! - `quote`: the pre-settlement the platform answers, and the core's checks of it;
//! - `consent`: the device-signed confirmation and its canonical bytes (the idempotency
//!   fingerprint too);
//! - `state`: the payment saga (the pivot is the insurance settlement), its legs, the bill
//!   state each step shows, and what each step resumes to after a crash;
//! - `receipt`: the signed electronic receipt, its check code, and its SVG card;
//! - `refund`: refunds by re-settlement, split per source;
//! - `credit`: credit pay-later terms and draws.
//!
//! The flow (storing the key before sending, resuming) is `crate::app::payments`; the
//! platform's side is the sandbox's `payments` module.

pub mod channel;
pub mod consent;
pub mod credit;
pub mod quote;
pub mod receipt;
pub mod refund;
pub mod state;

pub use channel::Channel;
pub use consent::{Consent, ConsentKind};
pub use quote::{check_quote, CashLeg, InsuranceLeg, Legs, Quote, QuoteRefusal};
pub use receipt::{Receipt, SignedReceipt};
pub use state::{CashLegState, InsuranceLegState, PaymentStatus, Step};
