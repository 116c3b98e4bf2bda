//! The domain: pure rules over plain data, one room per capability plus the shared pieces.
//! Nothing here does I/O (no network, no files, no clock reads, no global state), and
//! nothing here imports `crate::wire`, `crate::io` or `crate::app`; the layering test
//! (`rust-core/tests/layering.rs`) checks both, and that the rooms form no cycle.
//!
//! Shared: `money` (integer fen), `clock` (the injected time source), `crypto` (P-256
//! verification and the device-key interface), `person` (schemes, person records, ages),
//! `account` (phones, codes, login proofs, token lifetimes).
//! Rooms: `voucher`, `bills`, `settlement`, `pharmacy`, `family`, `payment`.

pub mod account;
pub mod bills;
pub mod clock;
pub mod crypto;
pub mod family;
pub mod money;
pub mod payment;
pub mod person;
pub mod pharmacy;
pub mod settlement;
pub mod voucher;

/// What an input is about, so a refusal names its field (the shells show it, the FFI passes
/// it on as a typed kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
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

impl Field {
    /// The field's name in messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            Field::Phone => "phone",
            Field::VerificationCode => "verification code",
            Field::BirthDate => "birth date",
            Field::DeviceId => "device id",
            Field::PersonId => "person id",
            Field::BillId => "bill id",
            Field::OrderId => "order id",
            Field::PrescriptionId => "prescription id",
            Field::PharmacyId => "pharmacy id",
            Field::PushService => "push service",
            Field::PushToken => "push token",
            Field::Location => "location",
            Field::DeliveryAddress => "delivery address",
            Field::ContactPhone => "contact phone",
            Field::Fulfilment => "fulfilment",
            Field::SearchRadius => "search radius",
            Field::Limit => "limit",
            Field::Payload => "payload",
            Field::Amount => "amount",
            Field::Purpose => "purpose",
            Field::PaymentChannel => "payment channel",
            Field::IdempotencyKey => "idempotency key",
            Field::QuoteId => "quote id",
            Field::PaymentId => "payment id",
            Field::Receipt => "receipt",
            Field::RefundLines => "refund lines",
            Field::CreditLimit => "credit limit",
            Field::LinkId => "link id",
            Field::Relationship => "relationship",
            Field::Scope => "scope",
        }
    }
}

/// An input refused before anything was sent or stored: which field, and a sentence saying
/// what a valid one looks like (never the value itself, which may be personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", field.name())]
pub struct InvalidInput {
    pub field: Field,
    pub reason: &'static str,
}

impl InvalidInput {
    pub fn new(field: Field, reason: &'static str) -> Self {
        InvalidInput { field, reason }
    }
}

/// Ids that go into URL paths: 1 to 64 letters, digits and `_`.
pub fn check_id(field: Field, id: &str) -> Result<(), InvalidInput> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(InvalidInput::new(field, "an id is 1 to 64 letters, digits and _"));
    }
    Ok(())
}
