//! Mixed payment on the wire (`docs/payments.md`): quotes, the signed pay request, the payment
//! as the platform reports it, second confirmations, the cash still due, receipts and their
//! keys, refunds (clinic role), the counter's one-code charge (一码付, scanner role), credit
//! pay-later.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub use crate::domain::bills::{BillPayment, PaymentFailure};
use crate::domain::money::Fen;
pub use crate::domain::payment::credit::CreditTerms;
pub use crate::domain::payment::receipt::{Receipt, ReceiptKind, ReceiptRef};
pub use crate::domain::payment::refund::{RefundSplit, ReturnedLine};
pub use crate::domain::payment::{
    CashLeg, CashLegState, Channel, Consent, ConsentKind, InsuranceLeg, InsuranceLegState, Legs, PaymentStatus, Quote,
    SignedReceipt, Step,
};
use crate::domain::settlement::VisitType;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The idempotency header of the pay, cash-due and repayment requests.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Set to `true` on an answer replayed from an idempotency record.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

fn yes() -> bool {
    true
}

/// `POST /v1/bills/{bill_id}/quotes`: settle the bill for its patient now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// Let the personal account pay the patient's share first (default true).
    #[serde(default = "yes")]
    pub use_account: bool,
    /// The cash leg's channel (`none`, `card:<number>`, `credit`); ignored when nothing is
    /// left for cash (the quote then says `none`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub channel: Channel,
    /// Family mutual aid (家庭共济): a relative acting for the patient under a family link
    /// lets their own personal account pay what the patient's account leaves (default
    /// false; refused with `family_refused` where the family rules do not allow it).
    #[serde(default)]
    pub mutual_aid: bool,
}

/// `POST /v1/payments` with an `Idempotency-Key`: every field the device signed
/// ([`Consent`] of kind `pay`), and the signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub quote_id: String,
    pub bill_id: String,
    pub subject: String,
    pub actor: String,
    pub device_id: String,
    #[serde(default)]
    pub link_id: Option<String>,
    pub total_fen: Fen,
    pub fund_fen: Fen,
    pub personal_account_fen: Fen,
    pub mutual_aid_fen: Fen,
    #[serde(default)]
    pub mutual_aid_from: Option<String>,
    pub cash_fen: Fen,
    /// The channel's wire form.
    pub channel: String,
    pub expires_at_ms: i64,
    /// ECDSA P-256 / SHA-256 over the consent bytes, r‖s, base64url without padding.
    pub signature: String,
}

impl PayRequest {
    /// The request for a consent and its signature.
    pub fn new(consent: &Consent, signature: &[u8]) -> PayRequest {
        PayRequest {
            quote_id: consent.reference.clone(),
            bill_id: consent.bill_id.clone(),
            subject: consent.subject.clone(),
            actor: consent.actor.clone(),
            device_id: consent.device_id.clone(),
            link_id: (!consent.link_id.is_empty()).then(|| consent.link_id.clone()),
            total_fen: consent.total,
            fund_fen: consent.fund,
            personal_account_fen: consent.personal_account,
            mutual_aid_fen: consent.mutual_aid,
            mutual_aid_from: (!consent.mutual_aid_from.is_empty()).then(|| consent.mutual_aid_from.clone()),
            cash_fen: consent.cash,
            channel: consent.channel.clone(),
            expires_at_ms: consent.expires_at_ms,
            signature: B64.encode(signature),
        }
    }

    /// The consent this request claims, under the key it was sent with.
    pub fn consent(&self, idempotency_key: &str) -> Consent {
        Consent {
            kind: ConsentKind::Pay,
            idempotency_key: idempotency_key.into(),
            bill_id: self.bill_id.clone(),
            reference: self.quote_id.clone(),
            subject: self.subject.clone(),
            actor: self.actor.clone(),
            device_id: self.device_id.clone(),
            link_id: self.link_id.clone().unwrap_or_default(),
            total: self.total_fen,
            fund: self.fund_fen,
            personal_account: self.personal_account_fen,
            mutual_aid: self.mutual_aid_fen,
            mutual_aid_from: self.mutual_aid_from.clone().unwrap_or_default(),
            cash: self.cash_fen,
            channel: self.channel.clone(),
            expires_at_ms: self.expires_at_ms,
        }
    }
}

/// The insurance leg as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct InsuranceLegView {
    pub state: InsuranceLegState,
    pub fund_fen: Fen,
    pub personal_account_fen: Fen,
    pub mutual_aid_fen: Fen,
    #[serde(default)]
    pub mutual_aid_from: Option<String>,
}

/// The cash leg as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CashLegView {
    pub state: CashLegState,
    /// Masked (`card ····4242`).
    pub channel: String,
    pub amount_fen: Fen,
    /// Still owed (the payment is `cash_due`).
    pub due_fen: Fen,
}

/// What the patient must do for a payment to go on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PaymentAction {
    /// `confirm_code`: enter the code the bank sent (the sandbox's is `123456`).
    pub kind: String,
    pub message: String,
    /// Until when the action can be done; after it the payment fails and nothing is charged.
    pub expires_at_ms: i64,
}

/// A payment as the platform reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Payment {
    pub payment_id: String,
    pub bill_id: String,
    pub quote_id: String,
    pub subject: String,
    pub actor: String,
    #[serde(default)]
    pub link_id: Option<String>,
    pub status: PaymentStatus,
    pub step: Step,
    pub total_fen: Fen,
    pub insurance: InsuranceLegView,
    pub cash: CashLegView,
    #[serde(default)]
    pub failure: Option<PaymentFailure>,
    #[serde(default)]
    pub action: Option<PaymentAction>,
    #[serde(default)]
    pub receipts: Vec<SignedReceipt>,
    pub refunded_fen: Fen,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// `POST /v1/payments/{payment_id}/confirmation`: the second confirmation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub code: String,
}

/// `POST /v1/payments/{payment_id}/cash` with an `Idempotency-Key`: pay the cash still due
/// with another channel ([`Consent`] of kind `cash_due`, its reference the payment id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CashDueRequest {
    pub channel: String,
    pub amount_fen: Fen,
    pub expires_at_ms: i64,
    pub signature: String,
}

/// A receipt-signing key of the platform (`GET /v1/receipts/keys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ReceiptKey {
    pub key_id: u16,
    /// Uncompressed P-256 public key, base64url without padding.
    pub public_key: String,
}

/// Clinic role: `POST /admin/v1/bills/{bill_id}/refunds`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The clinic's refund number: the refund's idempotency key.
    pub refund_id: String,
    /// The lines and quantities returned; none: the whole bill.
    #[serde(default)]
    pub lines: Option<Vec<ReturnedLine>>,
    pub reason: String,
}

/// How a refund stands (the national refund's `SUCC` / `FAIL` / `EXP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Every source is refunded.
    Succeeded,
    /// The insurance part is refunded; the cash part is being retried with the channel.
    CashPending,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Refund {
    pub refund_id: String,
    pub bill_id: String,
    pub payment_id: String,
    pub status: RefundStatus,
    pub split: RefundSplit,
    pub reason: String,
    pub created_at_ms: i64,
    /// The write-off of the receipt it replaces, then (for a partial refund) the new receipt
    /// for what stays paid.
    pub receipts: Vec<SignedReceipt>,
}

/// Scanner role: `POST /v1/counter/charges` — a cashier scans the patient's code and sends
/// the items; the platform issues a bill for the code's holder, linked to the scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CounterChargeRequest {
    pub payload: String,
    /// `pharmacy_purchase` or `outpatient_settlement`.
    pub purpose: String,
    /// The pharmacy or hospital charging.
    pub merchant: String,
    pub items: Vec<super::NewBillItem>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CounterCharge {
    pub accepted: bool,
    /// Why the code was refused (`replayed`, `expired`, …).
    #[serde(default)]
    pub reason: Option<String>,
    /// The bill issued to the code's holder.
    #[serde(default)]
    pub bill: Option<super::Bill>,
    #[serde(default)]
    pub holder: Option<super::ScannedPerson>,
}

/// `POST /v1/credit/agreement`: the signed credit terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreditAgreementRequest {
    pub limit_fen: Fen,
    pub term_days: u16,
    pub signed_at_ms: i64,
    pub signature: String,
}

/// One use of the credit line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreditDraw {
    pub payment_id: String,
    pub amount_fen: Fen,
    pub repaid_fen: Fen,
    pub drawn_at_ms: i64,
    pub due_at_ms: i64,
}

/// `GET /v1/credit`: the credit line as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreditLine {
    pub signed: bool,
    pub limit_fen: Fen,
    pub used_fen: Fen,
    pub available_fen: Fen,
    pub term_days: u16,
    pub draws: Vec<CreditDraw>,
}

/// `POST /v1/credit/repayments` with an `Idempotency-Key`: repay from a card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreditRepayRequest {
    pub channel: String,
    pub amount_fen: Fen,
}

/// The visit type a clinic bills under (re-exported for the issue request).
pub type BillVisitType = VisitType;
