//! The core's error, gathering each module's typed errors. The FFI converts it, in one
//! place, into the public enum the shells see.

use crate::bills::doorbell::DoorbellError;
use crate::keys::KeyError;
use crate::money::MoneyError;
use crate::net::NetError;
use crate::pharmacy::PharmacyError;
use crate::secrets::SecretStoreError;
use crate::settlement::SettlementError;
use crate::store::StoreError;
use crate::voucher::VoucherError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("the verification code is wrong or has expired")]
    WrongVerificationCode,
    #[error("this device is not enrolled for that person; enrol first")]
    NotEnrolled,
    #[error("no one is signed in")]
    NotSignedIn,
    #[error("the session has ended; sign in again")]
    SessionExpired,
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Voucher(#[from] VoucherError),
    #[error(transparent)]
    Doorbell(#[from] DoorbellError),
    #[error(transparent)]
    Pharmacy(#[from] PharmacyError),
    #[error(transparent)]
    Settlement(#[from] SettlementError),
}

impl From<SecretStoreError> for CoreError {
    fn from(e: SecretStoreError) -> Self {
        CoreError::Store(StoreError::Secret(e))
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
