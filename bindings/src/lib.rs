//! `carepass-ffi`: the uniffi exports of the CarePass core for the Kotlin and Swift shells.
//!
//! A thin file per capability converts types and errors and calls `carepass-core`; no
//! business rule lives here. Errors are converted once, in `error.rs`.

mod account;
mod bills;
mod error;
mod pharmacy;
mod platform;
mod voucher;

pub use account::{CarePass, CarePassConfig, InsuranceType, Profile};
pub use bills::{Bill, BillState, InboxChange, InboxListener, InboxWatch, PushResult};
pub use error::CarePassError;
pub use platform::{DeviceKeyStore, LogLevel, Logger, PlatformError, SecretStore};
pub use voucher::{CodeListener, CodePurpose, CodeWatch, VoucherCode, VoucherVerifier};

uniffi::setup_scaffolding!();

/// The version of the CarePass core inside this library.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
