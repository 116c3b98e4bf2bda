//! The one public error of the FFI, and the one place core errors become it. Each variant is
//! a machine-readable kind; `reason` is a sentence for developers with no personal data.

use carepass_core::domain::voucher::VoucherError;
use carepass_core::io::net::NetError;
use carepass_core::io::store::StoreError;
use carepass_core::CoreError;

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum CarePassError {
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    #[error("server URL refused: {reason}")]
    InsecureServerUrl { reason: String },
    #[error("network failure: {reason}")]
    Network { reason: String },
    #[error("the platform did not answer in time")]
    Timeout { reason: String },
    #[error("platform error {code}: {reason}")]
    Platform { code: String, reason: String },
    #[error("the platform's answer could not be understood: {reason}")]
    InvalidServerAnswer { reason: String },
    #[error("wrong verification code: {reason}")]
    WrongVerificationCode { reason: String },
    #[error("not enrolled: {reason}")]
    NotEnrolled { reason: String },
    #[error("not signed in: {reason}")]
    NotSignedIn { reason: String },
    #[error("session expired: {reason}")]
    SessionExpired { reason: String },
    #[error("stored data failed authentication: {reason}")]
    StoreTampered { reason: String },
    #[error("the data key does not open the store: {reason}")]
    WrongDataKey { reason: String },
    #[error("the store has data but the secret store has no data key: {reason}")]
    MissingDataKey { reason: String },
    #[error("storage failure: {reason}")]
    Storage { reason: String },
    #[error("device key failure: {reason}")]
    KeyStore { reason: String },
    #[error("settlement or ranking refused ({kind}): {reason}")]
    Refused { kind: String, reason: String },
    #[error("push refused: {reason}")]
    InvalidPush { reason: String },
    #[error("no offline certificate: {reason}")]
    NoOfflineCertificate { reason: String },
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

impl From<CoreError> for CarePassError {
    fn from(e: CoreError) -> Self {
        let reason = e.to_string();
        match e {
            CoreError::InvalidInput(_) | CoreError::Money(_) => CarePassError::InvalidInput { reason },
            CoreError::WrongVerificationCode => CarePassError::WrongVerificationCode { reason },
            CoreError::NotEnrolled => CarePassError::NotEnrolled { reason },
            CoreError::NotSignedIn => CarePassError::NotSignedIn { reason },
            CoreError::SessionExpired => CarePassError::SessionExpired { reason },
            CoreError::NoPrescription => CarePassError::InvalidInput { reason },
            CoreError::Key(_) => CarePassError::KeyStore { reason },
            CoreError::Net(net) => match net {
                NetError::InvalidUrl(_) | NetError::InsecureUrl => CarePassError::InsecureServerUrl { reason },
                NetError::Network(_) => CarePassError::Network { reason },
                NetError::Timeout => CarePassError::Timeout { reason },
                NetError::Platform { code, message, .. } => {
                    CarePassError::Platform { code: code.to_string(), reason: message }
                }
                NetError::Undecodable(_) => CarePassError::InvalidServerAnswer { reason },
            },
            CoreError::Doorbell(_) => CarePassError::InvalidPush { reason },
            CoreError::Settlement(e) => CarePassError::Refused { kind: e.kind().into(), reason },
            CoreError::Pharmacy(e) => CarePassError::Refused { kind: e.kind().into(), reason },
            CoreError::Voucher(v) => match v {
                VoucherError::NoCertificate => CarePassError::NoOfflineCertificate { reason },
                VoucherError::Key(_) => CarePassError::KeyStore { reason },
                VoucherError::Format(_) => CarePassError::InvalidServerAnswer { reason },
                VoucherError::Render(_) | VoucherError::TimeOutOfRange => CarePassError::Internal { reason },
            },
            CoreError::Store(store) => match store {
                StoreError::Tampered => CarePassError::StoreTampered { reason },
                StoreError::WrongDataKey => CarePassError::WrongDataKey { reason },
                StoreError::MissingDataKey => CarePassError::MissingDataKey { reason },
                StoreError::Secret(_) => CarePassError::KeyStore { reason },
                StoreError::Io(_) | StoreError::UnsupportedSchema { .. } | StoreError::Corrupt(_) => {
                    CarePassError::Storage { reason }
                }
            },
        }
    }
}
