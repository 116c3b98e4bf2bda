//! The core's error, gathering each module's typed errors. The FFI converts it, in one
//! place, into the public enum the shells see.

use crate::domain::bills::doorbell::DoorbellError;
use crate::domain::crypto::KeyError;
use crate::domain::money::MoneyError;
use crate::domain::payment::receipt::ReceiptError;
use crate::domain::payment::QuoteRefusal;
use crate::domain::pharmacy::PharmacyError;
use crate::domain::settlement::SettlementError;
use crate::domain::voucher::VoucherError;
use crate::domain::InvalidInput;
use crate::io::net::NetError;
use crate::io::secrets::SecretStoreError;
use crate::io::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    #[error("the verification code is wrong or has expired")]
    WrongVerificationCode,
    #[error("this device is not enrolled for that person; enrol first")]
    NotEnrolled,
    #[error("no one is signed in")]
    NotSignedIn,
    #[error("the session has ended; sign in again")]
    SessionExpired,
    #[error("there is no prescription to fill; ask the hospital to share one")]
    NoPrescription,
    #[error("that person is not one this phone acts for")]
    NotLinked,
    #[error("family: {0}")]
    Family(crate::domain::family::Refusal),
    #[error("the audit trail does not verify: {0}")]
    AuditChain(#[from] crate::domain::family::audit::ChainError),
    #[error("signed in at {signed_in_at}, not at {asked}: sign in at {asked} first (the session is never sent to another platform)")]
    OtherPlatform { signed_in_at: String, asked: String },
    #[error("this CarePass client is closed")]
    Closed,
    #[error("an app extension does not open the database; the app applies its work")]
    NotInExtension,
    #[error("the quote was refused before it was shown: {0}")]
    QuoteRefused(QuoteRefusal),
    #[error("the payment of bill {bill_id} was sent but its outcome is not known yet; the phone sends the same request again until the platform answers, so nothing is paid twice")]
    PaymentOutcomeUnknown { bill_id: String },
    #[error("the receipt is not valid: {0}")]
    Receipt(#[from] ReceiptError),
    #[error(transparent)]
    Net(NetError),
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

impl From<crate::io::keys::SoftwareKeyError> for CoreError {
    fn from(e: crate::io::keys::SoftwareKeyError) -> Self {
        match e {
            crate::io::keys::SoftwareKeyError::Store(e) => CoreError::Store(e),
            crate::io::keys::SoftwareKeyError::Key(e) => CoreError::Key(e),
        }
    }
}

impl From<NetError> for CoreError {
    /// A family refusal from the platform (`family_refused`, its message beginning with the
    /// refusal's code) is the same typed refusal the core gives offline.
    fn from(e: NetError) -> Self {
        if let NetError::Platform { code: crate::wire::PlatformCode::FamilyRefused, message, .. } = &e {
            if let Some(r) = crate::domain::family::Refusal::from_message(message) {
                return CoreError::Family(r);
            }
        }
        CoreError::Net(e)
    }
}

impl From<SecretStoreError> for CoreError {
    fn from(e: SecretStoreError) -> Self {
        CoreError::Store(StoreError::Secret(e))
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
