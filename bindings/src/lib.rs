//! `carepass-ffi`: the uniffi exports of the CarePass core for the Kotlin and Swift shells.
//!
//! A thin file per capability converts types and errors and calls `carepass-core`; no
//! business rule lives here. Errors are converted once, in `error.rs`.

mod account;
mod bills;
mod error;
mod family;
mod payments;
mod pharmacy;
mod platform;
mod tasks;
mod voucher;

pub use account::{CarePass, CarePassConfig, InsuranceType, Profile, SessionListener, SessionState, SignOutResult};
pub use bills::{Bill, BillState, InboxChange, InboxListener, InboxUpdate, PushResult};
pub use error::{CarePassError, FamilyProblem, InputField, PlatformErrorCode, PushRefusal, RefusalKind};
pub use family::{
    FamilyAction, FamilyAudit, FamilyAuditAction, FamilyAuditRecord, FamilyBand, FamilyConsentPath, FamilyLegalBasis,
    FamilyLinkStatus, FamilyLinkView, FamilyOverview, FamilyRelationship, FamilyScope, FamilyStatusReason,
};
pub use payments::{
    CreditDraw, CreditLine, Payment, PaymentListener, PaymentQuote, PaymentStatus, QuoteLine, ReceiptLine,
    VerifiedReceipt,
};
pub use platform::{DeviceKeyStore, LogLevel, Logger, PlatformError, SecretStore};
pub use tasks::TaskHandle;
pub use voucher::{CodeListener, CodePurpose, VoucherCode, VoucherVerifier};

uniffi::setup_scaffolding!();

/// The version of the CarePass core inside this library.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
