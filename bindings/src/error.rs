//! The one public error of the FFI, and the one place core errors become it. Each variant is
//! a kind the app can act on; enums inside (`InputField`, `PlatformErrorCode`,
//! `RefusalKind`, `PushRefusal`) say precisely what, so no shell ever matches on a string.
//! `reason` is a sentence for developers with no personal data. Internal, storage and
//! tampering failures are logged here, once, as they cross into the shell.

use carepass_core::domain::bills::doorbell::DoorbellError;
use carepass_core::domain::family::Refusal;
use carepass_core::domain::money::MoneyError;
use carepass_core::domain::payment::receipt::ReceiptError;
use carepass_core::domain::payment::QuoteRefusal;
use carepass_core::domain::pharmacy::PharmacyError;
use carepass_core::domain::settlement::SettlementError;
use carepass_core::domain::voucher::VoucherError;
use carepass_core::domain::Field;
use carepass_core::io::net::NetError;
use carepass_core::io::store::StoreError;
use carepass_core::wire::PlatformCode;
use carepass_core::CoreError;

/// What an input refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InputField {
    Phone,
    VerificationCode,
    BirthDate,
    DeviceId,
    PersonId,
    BillId,
    OrderId,
    PrescriptionId,
    PharmacyId,
    PushService,
    PushToken,
    Location,
    DeliveryAddress,
    ContactPhone,
    Fulfilment,
    SearchRadius,
    Limit,
    Payload,
    Amount,
    Purpose,
    ServerUrl,
    PaymentChannel,
    IdempotencyKey,
    QuoteId,
    PaymentId,
    Receipt,
    RefundLines,
    CreditLimit,
    LinkId,
    Relationship,
    Scope,
}

impl From<Field> for InputField {
    fn from(f: Field) -> Self {
        match f {
            Field::Phone => InputField::Phone,
            Field::VerificationCode => InputField::VerificationCode,
            Field::BirthDate => InputField::BirthDate,
            Field::DeviceId => InputField::DeviceId,
            Field::PersonId => InputField::PersonId,
            Field::BillId => InputField::BillId,
            Field::OrderId => InputField::OrderId,
            Field::PrescriptionId => InputField::PrescriptionId,
            Field::PharmacyId => InputField::PharmacyId,
            Field::PushService => InputField::PushService,
            Field::PushToken => InputField::PushToken,
            Field::Location => InputField::Location,
            Field::DeliveryAddress => InputField::DeliveryAddress,
            Field::ContactPhone => InputField::ContactPhone,
            Field::Fulfilment => InputField::Fulfilment,
            Field::SearchRadius => InputField::SearchRadius,
            Field::Limit => InputField::Limit,
            Field::Payload => InputField::Payload,
            Field::Amount => InputField::Amount,
            Field::Purpose => InputField::Purpose,
            Field::PaymentChannel => InputField::PaymentChannel,
            Field::IdempotencyKey => InputField::IdempotencyKey,
            Field::QuoteId => InputField::QuoteId,
            Field::PaymentId => InputField::PaymentId,
            Field::Receipt => InputField::Receipt,
            Field::RefundLines => InputField::RefundLines,
            Field::CreditLimit => InputField::CreditLimit,
            Field::LinkId => InputField::LinkId,
            Field::Relationship => InputField::Relationship,
            Field::Scope => InputField::Scope,
        }
    }
}

/// The platform's error codes (`docs/api.md` § Errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PlatformErrorCode {
    InvalidRequest,
    WrongVerificationCode,
    Unauthorized,
    AccessTokenExpired,
    RefreshTokenExpired,
    RefreshTokenReused,
    UnknownDevice,
    ChallengeInvalid,
    SignatureInvalid,
    Forbidden,
    NotFound,
    Conflict,
    Expired,
    AlreadyOrdered,
    IncompleteQuote,
    RateLimited,
    QuoteExpired,
    QuoteUsed,
    ConsentMismatch,
    IdempotencyKeyReused,
    IdempotencyInProgress,
    BillNotPayable,
    CreditLimitExceeded,
    FamilyRefused,
    Internal,
    /// A code this library does not know (a newer platform).
    Unknown,
}

impl From<PlatformCode> for PlatformErrorCode {
    fn from(c: PlatformCode) -> Self {
        match c {
            PlatformCode::InvalidRequest => PlatformErrorCode::InvalidRequest,
            PlatformCode::WrongVerificationCode => PlatformErrorCode::WrongVerificationCode,
            PlatformCode::Unauthorized => PlatformErrorCode::Unauthorized,
            PlatformCode::AccessTokenExpired => PlatformErrorCode::AccessTokenExpired,
            PlatformCode::RefreshTokenExpired => PlatformErrorCode::RefreshTokenExpired,
            PlatformCode::RefreshTokenReused => PlatformErrorCode::RefreshTokenReused,
            PlatformCode::UnknownDevice => PlatformErrorCode::UnknownDevice,
            PlatformCode::ChallengeInvalid => PlatformErrorCode::ChallengeInvalid,
            PlatformCode::SignatureInvalid => PlatformErrorCode::SignatureInvalid,
            PlatformCode::Forbidden => PlatformErrorCode::Forbidden,
            PlatformCode::NotFound => PlatformErrorCode::NotFound,
            PlatformCode::Conflict => PlatformErrorCode::Conflict,
            PlatformCode::Expired => PlatformErrorCode::Expired,
            PlatformCode::AlreadyOrdered => PlatformErrorCode::AlreadyOrdered,
            PlatformCode::IncompleteQuote => PlatformErrorCode::IncompleteQuote,
            PlatformCode::RateLimited => PlatformErrorCode::RateLimited,
            PlatformCode::QuoteExpired => PlatformErrorCode::QuoteExpired,
            PlatformCode::QuoteUsed => PlatformErrorCode::QuoteUsed,
            PlatformCode::ConsentMismatch => PlatformErrorCode::ConsentMismatch,
            PlatformCode::IdempotencyKeyReused => PlatformErrorCode::IdempotencyKeyReused,
            PlatformCode::IdempotencyInProgress => PlatformErrorCode::IdempotencyInProgress,
            PlatformCode::BillNotPayable => PlatformErrorCode::BillNotPayable,
            PlatformCode::CreditLimitExceeded => PlatformErrorCode::CreditLimitExceeded,
            PlatformCode::FamilyRefused => PlatformErrorCode::FamilyRefused,
            PlatformCode::Internal => PlatformErrorCode::Internal,
            PlatformCode::Unknown => PlatformErrorCode::Unknown,
        }
    }
}

/// Why a settlement, a ranking or an amount was refused by the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RefusalKind {
    InvalidRegion,
    UnknownRegion,
    NoRule,
    DuplicateRule,
    RatioOutOfRange,
    NegativeAmount,
    NegativePrice,
    ZeroQuantity,
    NoItems,
    TooManyItems,
    Overflow,
    Invariant,
    CatalogueTooLarge,
    InvalidDrug,
    DuplicateDrug,
    DuplicatePharmacy,
    InvalidPharmacy,
    UnknownStockDrug,
    EmptyPrescription,
    DuplicateItem,
    UnknownDrug,
    InvalidOptions,
}

fn settlement_kind(e: &SettlementError) -> RefusalKind {
    match e {
        SettlementError::InvalidRegion(_) => RefusalKind::InvalidRegion,
        SettlementError::UnknownRegion(_) => RefusalKind::UnknownRegion,
        SettlementError::NoRule { .. } => RefusalKind::NoRule,
        SettlementError::DuplicateRule { .. } => RefusalKind::DuplicateRule,
        SettlementError::RatioOutOfRange { .. } => RefusalKind::RatioOutOfRange,
        SettlementError::NegativeAmount { .. } => RefusalKind::NegativeAmount,
        SettlementError::NegativePrice { .. } => RefusalKind::NegativePrice,
        SettlementError::ZeroQuantity { .. } => RefusalKind::ZeroQuantity,
        SettlementError::NoItems => RefusalKind::NoItems,
        SettlementError::TooManyItems => RefusalKind::TooManyItems,
        SettlementError::Overflow => RefusalKind::Overflow,
        SettlementError::Invariant(_) => RefusalKind::Invariant,
    }
}

fn pharmacy_kind(e: &PharmacyError) -> RefusalKind {
    match e {
        PharmacyError::CatalogueTooLarge => RefusalKind::CatalogueTooLarge,
        PharmacyError::InvalidDrug(_) => RefusalKind::InvalidDrug,
        PharmacyError::DuplicateDrug(_) => RefusalKind::DuplicateDrug,
        PharmacyError::DuplicatePharmacy(_) => RefusalKind::DuplicatePharmacy,
        PharmacyError::InvalidPharmacy { .. } => RefusalKind::InvalidPharmacy,
        PharmacyError::UnknownStockDrug { .. } => RefusalKind::UnknownStockDrug,
        PharmacyError::EmptyPrescription => RefusalKind::EmptyPrescription,
        PharmacyError::TooManyItems => RefusalKind::TooManyItems,
        PharmacyError::DuplicateItem(_) => RefusalKind::DuplicateItem,
        PharmacyError::ZeroQuantity(_) => RefusalKind::ZeroQuantity,
        PharmacyError::UnknownDrug(_) => RefusalKind::UnknownDrug,
        PharmacyError::InvalidOptions(_) => RefusalKind::InvalidOptions,
        PharmacyError::Settlement(s) => settlement_kind(s),
        PharmacyError::Invariant(_) => RefusalKind::Invariant,
    }
}

/// Why a push was not accepted as a doorbell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PushRefusal {
    Malformed,
    UnknownKey,
    Forged,
    WrongRecipient,
    Stale,
    FromTheFuture,
}

fn push_refusal(e: &DoorbellError) -> PushRefusal {
    match e {
        DoorbellError::Malformed(_) => PushRefusal::Malformed,
        DoorbellError::UnknownKey => PushRefusal::UnknownKey,
        DoorbellError::Forged => PushRefusal::Forged,
        DoorbellError::WrongRecipient => PushRefusal::WrongRecipient,
        DoorbellError::Stale => PushRefusal::Stale,
        DoorbellError::FromTheFuture => PushRefusal::FromTheFuture,
    }
}

/// Why the core refused a quote before showing it (`docs/payments.md` § 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum QuoteProblem {
    /// The split breaks a settlement rule.
    Invariant,
    /// The quote does not match the bill on the phone.
    BillMismatch,
    /// The legs do not add up to the split.
    LegsMismatch,
    /// The quote is for another patient, payer or device.
    WrongParty,
    Expired,
    /// The quote's lifetime is not plausible.
    Lifetime,
    /// The bill cannot be paid in its state.
    NotPayable,
}

fn quote_problem(e: &QuoteRefusal) -> QuoteProblem {
    match e {
        QuoteRefusal::Invariant(_) => QuoteProblem::Invariant,
        QuoteRefusal::BillMismatch(_) => QuoteProblem::BillMismatch,
        QuoteRefusal::Legs(_) => QuoteProblem::LegsMismatch,
        QuoteRefusal::WrongParty(_) => QuoteProblem::WrongParty,
        QuoteRefusal::Expired => QuoteProblem::Expired,
        QuoteRefusal::Lifetime => QuoteProblem::Lifetime,
        QuoteRefusal::NotPayable(_) => QuoteProblem::NotPayable,
    }
}

/// Why a receipt is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ReceiptProblem {
    Malformed,
    UnknownKey,
    Forged,
    CheckCode,
    Amounts,
}

fn receipt_problem(e: &ReceiptError) -> ReceiptProblem {
    match e {
        ReceiptError::Malformed(_) => ReceiptProblem::Malformed,
        ReceiptError::UnknownKey => ReceiptProblem::UnknownKey,
        ReceiptError::Forged => ReceiptProblem::Forged,
        ReceiptError::CheckCode => ReceiptProblem::CheckCode,
        ReceiptError::Amounts(_) => ReceiptProblem::Amounts,
    }
}

/// Why a family rule refused (`docs/family.md` § 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FamilyProblem {
    NoLink,
    LinkPending,
    LinkRevoked,
    LinkExpired,
    ScopeMissing,
    OverPaymentLimit,
    OverMonthlyLimit,
    RelationshipNotVerified,
    MinorNeedsParent,
    TooManyLinks,
    SelfLink,
    AlreadyLinked,
    ConsentPathNotAllowed,
    NotThePrincipal,
    IllegalMove,
    MutualAidRelationship,
    MutualAidRegion,
    MutualAidScheme,
}

impl From<&Refusal> for FamilyProblem {
    fn from(r: &Refusal) -> Self {
        match r {
            Refusal::NoLink => FamilyProblem::NoLink,
            Refusal::LinkPending => FamilyProblem::LinkPending,
            Refusal::LinkRevoked => FamilyProblem::LinkRevoked,
            Refusal::LinkExpired => FamilyProblem::LinkExpired,
            Refusal::ScopeMissing(_) => FamilyProblem::ScopeMissing,
            Refusal::OverPaymentLimit => FamilyProblem::OverPaymentLimit,
            Refusal::OverMonthlyLimit => FamilyProblem::OverMonthlyLimit,
            Refusal::RelationshipNotVerified => FamilyProblem::RelationshipNotVerified,
            Refusal::MinorNeedsParent => FamilyProblem::MinorNeedsParent,
            Refusal::TooManyLinks => FamilyProblem::TooManyLinks,
            Refusal::SelfLink => FamilyProblem::SelfLink,
            Refusal::AlreadyLinked => FamilyProblem::AlreadyLinked,
            Refusal::ConsentPathNotAllowed => FamilyProblem::ConsentPathNotAllowed,
            Refusal::NotThePrincipal => FamilyProblem::NotThePrincipal,
            Refusal::IllegalMove => FamilyProblem::IllegalMove,
            Refusal::MutualAidRelationship => FamilyProblem::MutualAidRelationship,
            Refusal::MutualAidRegion => FamilyProblem::MutualAidRegion,
            Refusal::MutualAidScheme => FamilyProblem::MutualAidScheme,
        }
    }
}

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum CarePassError {
    #[error("{reason}")]
    InvalidInput { field: InputField, reason: String },
    #[error("{reason}")]
    InsecureServerUrl { reason: String },
    #[error("{reason}")]
    Network { reason: String },
    #[error("{reason}")]
    Timeout { reason: String },
    #[error("{reason}")]
    Platform { code: PlatformErrorCode, status: u16, retry_after_s: Option<u64>, reason: String },
    #[error("{reason}")]
    InvalidServerAnswer { reason: String },
    #[error("{reason}")]
    WrongVerificationCode { reason: String },
    #[error("{reason}")]
    NotEnrolled { reason: String },
    #[error("{reason}")]
    NotSignedIn { reason: String },
    #[error("{reason}")]
    SessionExpired { reason: String },
    #[error("{reason}")]
    NotLinked { reason: String },
    /// A family rule refused the act or the link move (the core's or the platform's).
    #[error("{reason}")]
    FamilyRefused { kind: FamilyProblem, reason: String },
    /// The audit trail did not verify: a record was changed, dropped or reordered.
    #[error("{reason}")]
    AuditTampered { reason: String },
    #[error("{reason}")]
    OtherPlatform { reason: String },
    #[error("{reason}")]
    StoreTampered { reason: String },
    #[error("{reason}")]
    WrongDataKey { reason: String },
    #[error("{reason}")]
    MissingDataKey { reason: String },
    #[error("{reason}")]
    StoreBusy { reason: String },
    #[error("{reason}")]
    Storage { reason: String },
    #[error("{reason}")]
    KeyStore { reason: String },
    #[error("{reason}")]
    Refused { kind: RefusalKind, reason: String },
    #[error("{reason}")]
    InvalidPush { kind: PushRefusal, reason: String },
    #[error("{reason}")]
    NoOfflineCertificate { reason: String },
    #[error("{reason}")]
    NoPrescription { reason: String },
    #[error("{reason}")]
    Closed { reason: String },
    #[error("{reason}")]
    NotInExtension { reason: String },
    #[error("{reason}")]
    QuoteRefused { kind: QuoteProblem, reason: String },
    /// The payment was sent and no answer came: the core re-sends the same request until
    /// the platform answers (`resume_payments`); nothing is paid twice. Show "checking".
    #[error("{reason}")]
    PaymentOutcomeUnknown { bill_id: String, reason: String },
    #[error("{reason}")]
    InvalidReceipt { kind: ReceiptProblem, reason: String },
    #[error("{reason}")]
    Internal { reason: String },
}

impl From<CoreError> for CarePassError {
    fn from(e: CoreError) -> Self {
        let reason = e.to_string();
        let converted = match e {
            CoreError::InvalidInput(i) => CarePassError::InvalidInput { field: i.field.into(), reason },
            CoreError::Money(m) => match m {
                MoneyError::Overflow => CarePassError::Refused { kind: RefusalKind::Overflow, reason },
                MoneyError::Negative(_) => CarePassError::Refused { kind: RefusalKind::NegativeAmount, reason },
                MoneyError::Unparsable(_) => CarePassError::InvalidInput { field: InputField::Amount, reason },
            },
            CoreError::WrongVerificationCode => CarePassError::WrongVerificationCode { reason },
            CoreError::QuoteRefused(q) => CarePassError::QuoteRefused { kind: quote_problem(&q), reason },
            CoreError::PaymentOutcomeUnknown { bill_id } => CarePassError::PaymentOutcomeUnknown { bill_id, reason },
            CoreError::Receipt(r) => CarePassError::InvalidReceipt { kind: receipt_problem(&r), reason },
            CoreError::NotEnrolled => CarePassError::NotEnrolled { reason },
            CoreError::NotSignedIn => CarePassError::NotSignedIn { reason },
            CoreError::SessionExpired => CarePassError::SessionExpired { reason },
            CoreError::NoPrescription => CarePassError::NoPrescription { reason },
            CoreError::NotLinked => CarePassError::NotLinked { reason },
            CoreError::Family(r) => CarePassError::FamilyRefused { kind: (&r).into(), reason },
            CoreError::AuditChain(_) => CarePassError::AuditTampered { reason },
            CoreError::OtherPlatform { .. } => CarePassError::OtherPlatform { reason },
            CoreError::Closed => CarePassError::Closed { reason },
            CoreError::NotInExtension => CarePassError::NotInExtension { reason },
            CoreError::Key(_) => CarePassError::KeyStore { reason },
            CoreError::Net(net) => match net {
                NetError::InvalidUrl(_) | NetError::InsecureUrl => CarePassError::InsecureServerUrl { reason },
                NetError::Network(_) => CarePassError::Network { reason },
                NetError::Timeout => CarePassError::Timeout { reason },
                NetError::Platform { code, status, message, retry_after_s } => {
                    CarePassError::Platform { code: code.into(), status, retry_after_s, reason: message }
                }
                NetError::Undecodable(_) => CarePassError::InvalidServerAnswer { reason },
            },
            CoreError::Doorbell(d) => CarePassError::InvalidPush { kind: push_refusal(&d), reason },
            CoreError::Settlement(s) => CarePassError::Refused { kind: settlement_kind(&s), reason },
            CoreError::Pharmacy(p) => CarePassError::Refused { kind: pharmacy_kind(&p), reason },
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
                StoreError::Busy(_) => CarePassError::StoreBusy { reason },
                StoreError::Secret(_) => CarePassError::KeyStore { reason },
                StoreError::Io(_) | StoreError::UnsupportedSchema { .. } | StoreError::Corrupt(_) => {
                    CarePassError::Storage { reason }
                }
            },
        };
        converted.log_if_serious();
        converted
    }
}

impl CarePassError {
    /// The kind's name, for logs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            CarePassError::InvalidInput { .. } => "InvalidInput",
            CarePassError::InsecureServerUrl { .. } => "InsecureServerUrl",
            CarePassError::Network { .. } => "Network",
            CarePassError::Timeout { .. } => "Timeout",
            CarePassError::Platform { .. } => "Platform",
            CarePassError::InvalidServerAnswer { .. } => "InvalidServerAnswer",
            CarePassError::WrongVerificationCode { .. } => "WrongVerificationCode",
            CarePassError::NotEnrolled { .. } => "NotEnrolled",
            CarePassError::NotSignedIn { .. } => "NotSignedIn",
            CarePassError::SessionExpired { .. } => "SessionExpired",
            CarePassError::NotLinked { .. } => "NotLinked",
            CarePassError::FamilyRefused { .. } => "FamilyRefused",
            CarePassError::AuditTampered { .. } => "AuditTampered",
            CarePassError::OtherPlatform { .. } => "OtherPlatform",
            CarePassError::StoreTampered { .. } => "StoreTampered",
            CarePassError::WrongDataKey { .. } => "WrongDataKey",
            CarePassError::MissingDataKey { .. } => "MissingDataKey",
            CarePassError::StoreBusy { .. } => "StoreBusy",
            CarePassError::Storage { .. } => "Storage",
            CarePassError::KeyStore { .. } => "KeyStore",
            CarePassError::Refused { .. } => "Refused",
            CarePassError::InvalidPush { .. } => "InvalidPush",
            CarePassError::NoOfflineCertificate { .. } => "NoOfflineCertificate",
            CarePassError::NoPrescription { .. } => "NoPrescription",
            CarePassError::Closed { .. } => "Closed",
            CarePassError::NotInExtension { .. } => "NotInExtension",
            CarePassError::QuoteRefused { .. } => "QuoteRefused",
            CarePassError::PaymentOutcomeUnknown { .. } => "PaymentOutcomeUnknown",
            CarePassError::InvalidReceipt { .. } => "InvalidReceipt",
            CarePassError::Internal { .. } => "Internal",
        }
    }

    /// Failures the app team must see in its logs (the reasons carry no personal data):
    /// internal errors, storage failures, tampering (of the store, of a family audit chain), a
    /// lost or wrong data key, key-store failures, a receipt that does not verify.
    pub fn is_serious(&self) -> bool {
        matches!(
            self,
            CarePassError::Internal { .. }
                | CarePassError::Storage { .. }
                | CarePassError::StoreTampered { .. }
                | CarePassError::WrongDataKey { .. }
                | CarePassError::MissingDataKey { .. }
                | CarePassError::KeyStore { .. }
                | CarePassError::InvalidReceipt { .. }
                | CarePassError::AuditTampered { .. }
        )
    }

    fn log_if_serious(&self) {
        if self.is_serious() {
            log::error!(target: "carepass::ffi", "{}: {}", self.kind_name(), self);
        }
    }
}

/// An input refusal made at the FFI edge itself (a shell argument the core never sees).
pub(crate) fn invalid(field: InputField, reason: impl Into<String>) -> CarePassError {
    CarePassError::InvalidInput { field, reason: reason.into() }
}
