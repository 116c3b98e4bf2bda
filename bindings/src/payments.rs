//! Mixed payment across the FFI (`docs/payments.md`): quote, pay, the bank's second
//! confirmation, the cash still due, resuming payments whose answer was lost, and receipts
//! verified on the phone. Converts types; the rules and the exactly-once flow are
//! `carepass_core::domain::payment` and `carepass_core::app`.

use std::sync::Arc;

use carepass_core::domain::payment::{self as core_payment, Channel};
use carepass_core::{wire, QuoteOptions};

use crate::account::CarePass;
use crate::bills::ItemCategory;
use crate::error::{invalid, CarePassError, InputField};
use crate::tasks::{forward, TaskHandle};

/// Receives a payment now and after every change, then the error that ended the stream.
#[uniffi::export(with_foreign)]
pub trait PaymentListener: Send + Sync {
    fn on_update(&self, payment: Payment);
    fn on_error(&self, error: CarePassError);
}

/// One bill line as the quote settled it (fen).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QuoteLine {
    pub item_code: String,
    pub category: ItemCategory,
    pub quantity: u32,
    pub amount_fen: i64,
    /// Paid by the pooled fund for this line.
    pub fund_fen: i64,
    /// Class B first self-pay share (乙类先行自付).
    pub first_self_pay_fen: i64,
    /// Class C amount (全自费).
    pub out_of_scope_fen: i64,
}

/// A checked quote: what each source pays, to show before the patient confirms.
/// `total = fund + personal_account + mutual_aid + cash`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PaymentQuote {
    pub quote_id: String,
    pub bill_id: String,
    pub subject: String,
    pub total_fen: i64,
    /// 统筹基金.
    pub fund_fen: i64,
    /// 个人账户.
    pub personal_account_fen: i64,
    /// 家庭共济.
    pub mutual_aid_fen: i64,
    pub mutual_aid_from: Option<String>,
    /// 自费 via the channel.
    pub cash_fen: i64,
    /// Masked (`card ····4242`, `credit`, `none`).
    pub channel: String,
    pub use_account: bool,
    pub lines: Vec<QuoteLine>,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PaymentStatus {
    Processing,
    /// The bank wants the code it sent the patient: `confirm_payment`.
    RequiresAction,
    Succeeded,
    /// Nothing was charged (`failure` says why); the bill can be paid again.
    Failed,
    /// The insurance paid; the card was declined at capture: `pay_cash_due` with another card.
    CashDue,
    PartlyRefunded,
    Refunded,
}

/// A payment as it stands (fen).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Payment {
    pub payment_id: String,
    pub bill_id: String,
    pub subject: String,
    pub actor: String,
    pub status: PaymentStatus,
    pub total_fen: i64,
    pub fund_fen: i64,
    pub personal_account_fen: i64,
    pub mutual_aid_fen: i64,
    pub cash_fen: i64,
    /// Still owed (status `CashDue`).
    pub cash_due_fen: i64,
    /// Masked.
    pub channel: String,
    pub refunded_fen: i64,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// What the patient must do (`confirm_code`), with a message and a deadline.
    pub action_kind: Option<String>,
    pub action_message: Option<String>,
    pub action_expires_at_ms: Option<i64>,
    pub receipt_count: u32,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceiptLine {
    pub code: String,
    pub name: String,
    pub category: ItemCategory,
    pub quantity: u32,
    pub amount_fen: i64,
}

/// An electronic receipt whose signature, check code and amounts the core verified.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VerifiedReceipt {
    /// 票据代码 (8 digits), 票据号码 (10 digits), 校验码 (6 hex).
    pub receipt_code: String,
    pub receipt_number: String,
    pub check_code: String,
    /// A write-off (冲红) cancelling `writes_off_number` after a refund.
    pub write_off: bool,
    pub writes_off_number: Option<String>,
    pub issued_at_ms: i64,
    pub payee: String,
    pub payer_name: String,
    pub presented_by_name: Option<String>,
    pub bill_id: String,
    pub payment_id: String,
    pub total_fen: i64,
    pub fund_fen: i64,
    pub personal_account_fen: i64,
    pub mutual_aid_fen: i64,
    pub cash_fen: i64,
    pub own_pay_fen: i64,
    pub self_pay_fen: i64,
    pub channel: String,
    pub lines: Vec<ReceiptLine>,
    /// A wallet-style card (SVG text) with a QR code of the verification fields.
    pub svg: String,
}

fn category(c: carepass_core::domain::settlement::ItemCategory) -> ItemCategory {
    match c {
        carepass_core::domain::settlement::ItemCategory::A => ItemCategory::A,
        carepass_core::domain::settlement::ItemCategory::B => ItemCategory::B,
        carepass_core::domain::settlement::ItemCategory::C => ItemCategory::C,
    }
}

impl From<core_payment::Quote> for PaymentQuote {
    fn from(q: core_payment::Quote) -> Self {
        PaymentQuote {
            lines: q
                .settlement
                .lines
                .iter()
                .map(|l| QuoteLine {
                    item_code: l.code.clone(),
                    category: category(l.category),
                    quantity: l.quantity,
                    amount_fen: l.amount.0,
                    fund_fen: l.fund.0,
                    first_self_pay_fen: l.first_self_pay.0,
                    out_of_scope_fen: l.out_of_scope.0,
                })
                .collect(),
            quote_id: q.quote_id,
            bill_id: q.bill_id,
            subject: q.subject,
            total_fen: q.settlement.total.0,
            fund_fen: q.legs.insurance.fund.0,
            personal_account_fen: q.legs.insurance.personal_account.0,
            mutual_aid_fen: q.legs.insurance.mutual_aid.0,
            mutual_aid_from: q.legs.insurance.mutual_aid_from,
            cash_fen: q.legs.cash.amount.0,
            channel: q.legs.cash.channel.masked(),
            use_account: q.use_account,
            expires_at_ms: q.expires_at_ms,
        }
    }
}

fn status(s: core_payment::PaymentStatus) -> PaymentStatus {
    match s {
        core_payment::PaymentStatus::Processing => PaymentStatus::Processing,
        core_payment::PaymentStatus::RequiresAction => PaymentStatus::RequiresAction,
        core_payment::PaymentStatus::Succeeded => PaymentStatus::Succeeded,
        core_payment::PaymentStatus::Failed => PaymentStatus::Failed,
        core_payment::PaymentStatus::CashDue => PaymentStatus::CashDue,
        core_payment::PaymentStatus::PartlyRefunded => PaymentStatus::PartlyRefunded,
        core_payment::PaymentStatus::Refunded => PaymentStatus::Refunded,
    }
}

impl From<wire::Payment> for Payment {
    fn from(p: wire::Payment) -> Self {
        Payment {
            payment_id: p.payment_id,
            bill_id: p.bill_id,
            subject: p.subject,
            actor: p.actor,
            status: status(p.status),
            total_fen: p.total_fen.0,
            fund_fen: p.insurance.fund_fen.0,
            personal_account_fen: p.insurance.personal_account_fen.0,
            mutual_aid_fen: p.insurance.mutual_aid_fen.0,
            cash_fen: p.cash.amount_fen.0,
            cash_due_fen: p.cash.due_fen.0,
            channel: p.cash.channel,
            refunded_fen: p.refunded_fen.0,
            failure_code: p.failure.as_ref().map(|f| f.code.clone()),
            failure_message: p.failure.map(|f| f.message),
            action_kind: p.action.as_ref().map(|a| a.kind.clone()),
            action_message: p.action.as_ref().map(|a| a.message.clone()),
            action_expires_at_ms: p.action.map(|a| a.expires_at_ms),
            receipt_count: p.receipts.len() as u32,
            created_at_ms: p.created_at_ms,
            updated_at_ms: p.updated_at_ms,
        }
    }
}

impl From<carepass_core::VerifiedReceipt> for VerifiedReceipt {
    fn from(v: carepass_core::VerifiedReceipt) -> Self {
        let r = v.receipt;
        VerifiedReceipt {
            svg: r.svg(),
            receipt_code: r.receipt_code,
            receipt_number: r.receipt_number,
            check_code: r.check_code,
            write_off: r.kind == core_payment::receipt::ReceiptKind::WriteOff,
            writes_off_number: r.writes_off.map(|w| w.receipt_number),
            issued_at_ms: r.issued_at_ms,
            payee: r.payee,
            payer_name: r.payer.name,
            presented_by_name: r.presented_by.map(|p| p.name),
            bill_id: r.bill_id,
            payment_id: r.payment_id,
            total_fen: r.total.0,
            fund_fen: r.fund.0,
            personal_account_fen: r.personal_account.0,
            mutual_aid_fen: r.mutual_aid.0,
            cash_fen: r.cash.0,
            own_pay_fen: r.own_pay.0,
            self_pay_fen: r.self_pay.0,
            channel: r.channel,
            lines: r
                .items
                .into_iter()
                .map(|i| ReceiptLine {
                    code: i.code,
                    name: i.name,
                    category: category(i.category),
                    quantity: i.quantity,
                    amount_fen: i.amount.0,
                })
                .collect(),
        }
    }
}

/// One use of the credit line (fen).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CreditDraw {
    pub payment_id: String,
    pub amount_fen: i64,
    pub repaid_fen: i64,
    pub drawn_at_ms: i64,
    pub due_at_ms: i64,
}

/// The signed-in person's credit pay-later line (信用就医), fen.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CreditLine {
    pub signed: bool,
    pub limit_fen: i64,
    pub used_fen: i64,
    pub available_fen: i64,
    pub term_days: u16,
    pub draws: Vec<CreditDraw>,
}

impl From<wire::CreditLine> for CreditLine {
    fn from(l: wire::CreditLine) -> Self {
        CreditLine {
            signed: l.signed,
            limit_fen: l.limit_fen.0,
            used_fen: l.used_fen.0,
            available_fen: l.available_fen.0,
            term_days: l.term_days,
            draws: l
                .draws
                .into_iter()
                .map(|d| CreditDraw {
                    payment_id: d.payment_id,
                    amount_fen: d.amount_fen.0,
                    repaid_fen: d.repaid_fen.0,
                    drawn_at_ms: d.drawn_at_ms,
                    due_at_ms: d.due_at_ms,
                })
                .collect(),
        }
    }
}

fn channel(text: &str) -> Result<Channel, CarePassError> {
    Channel::parse(text).map_err(|e| invalid(InputField::PaymentChannel, e.to_string()))
}

#[uniffi::export(async_runtime = "tokio")]
impl CarePass {
    /// Pre-settles a bill (null subject: the signed-in person) and checks the answer against
    /// the bill on the phone. `channel`: `none`, `card:<number>` or `credit`.
    /// `mutual_aid`: acting for a relative, your own personal account pays what theirs leaves
    /// (家庭共济, where the family rules allow it).
    #[uniffi::method(default(subject = None, mutual_aid = false))]
    pub async fn quote_bill(
        &self,
        bill_id: String,
        use_account: bool,
        channel_text: String,
        subject: Option<String>,
        mutual_aid: bool,
    ) -> Result<PaymentQuote, CarePassError> {
        let options = QuoteOptions { use_account, channel: channel(&channel_text)?, mutual_aid };
        Ok(self.core().quote(&bill_id, &options, subject.as_deref()).await?.into())
    }

    /// Pays a quote: signs the consent, stores the request, then sends it. A declined card
    /// is a `Failed` payment; no answer is `PaymentOutcomeUnknown` (resumed by the core).
    #[uniffi::method(default(subject = None))]
    pub async fn pay(&self, quote_id: String, subject: Option<String>) -> Result<Payment, CarePassError> {
        Ok(self.core().pay(&quote_id, subject.as_deref()).await?.into())
    }

    /// The bank's second confirmation.
    #[uniffi::method(default(subject = None))]
    pub async fn confirm_payment(
        &self,
        payment_id: String,
        code: String,
        subject: Option<String>,
    ) -> Result<Payment, CarePassError> {
        Ok(self.core().confirm_payment(&payment_id, &code, subject.as_deref()).await?.into())
    }

    /// Pays the cash still due with another card (`card:<number>`).
    #[uniffi::method(default(subject = None))]
    pub async fn pay_cash_due(
        &self,
        payment_id: String,
        channel_text: String,
        subject: Option<String>,
    ) -> Result<Payment, CarePassError> {
        let channel = channel(&channel_text)?;
        Ok(self.core().pay_cash_due(&payment_id, &channel, subject.as_deref()).await?.into())
    }

    /// A payment as the platform has it now.
    #[uniffi::method(default(subject = None))]
    pub async fn payment(&self, payment_id: String, subject: Option<String>) -> Result<Payment, CarePassError> {
        Ok(self.core().payment(&payment_id, subject.as_deref()).await?.into())
    }

    /// Hands `listener` a payment now and after every change (stored by a call here, or
    /// moved at the platform and announced by the live connection or a doorbell); no
    /// polling. `on_error` once when the session ends or the client closes; cancel the handle
    /// when the state waited for has come.
    #[uniffi::method(default(subject = None))]
    pub fn watch_payment(
        &self,
        payment_id: String,
        listener: Arc<dyn PaymentListener>,
        subject: Option<String>,
    ) -> Arc<TaskHandle> {
        let on_error = listener.clone();
        forward(
            self.core().payment_stream(&payment_id, subject.as_deref()),
            move |p| listener.on_update(p.into()),
            move |e| on_error.on_error(e),
        )
    }

    /// The payments the phone knows of (no network), newest first.
    #[uniffi::method(default(subject = None))]
    pub fn payments(&self, subject: Option<String>) -> Result<Vec<Payment>, CarePassError> {
        Ok(self.core().payments(subject.as_deref())?.into_iter().map(Into::into).collect())
    }

    /// Sends again every payment request whose answer was lost; call when the app starts
    /// and when the network returns. Returns the payments that got an answer.
    pub async fn resume_payments(&self) -> Result<Vec<Payment>, CarePassError> {
        Ok(self.core().resume_payments().await?.into_iter().map(Into::into).collect())
    }

    /// How many payment requests still wait for an answer.
    pub fn payments_unresolved(&self) -> Result<u32, CarePassError> {
        Ok(self.core().payments_unresolved()? as u32)
    }

    /// The signed-in person's credit line (limit, used, draws and their due dates).
    pub async fn credit_line(&self) -> Result<CreditLine, CarePassError> {
        Ok(self.core().credit_line().await?.into())
    }

    /// Signs the credit pay-later agreement for `limit_fen` (1 to 500000) with the device key.
    pub async fn sign_credit_agreement(&self, limit_fen: i64) -> Result<CreditLine, CarePassError> {
        Ok(self.core().sign_credit_agreement(carepass_core::Fen(limit_fen)).await?.into())
    }

    /// Repays `amount_fen` of the credit line from a card (`card:<number>`), exactly once (the
    /// request is stored before it is sent; no answer is `PaymentOutcomeUnknown` with the
    /// bill id `credit`, resolved by the next repayment call).
    pub async fn repay_credit(&self, channel_text: String, amount_fen: i64) -> Result<CreditLine, CarePassError> {
        let channel = channel(&channel_text)?;
        Ok(self.core().repay_credit(&channel, carepass_core::Fen(amount_fen)).await?.into())
    }

    /// The subject's receipts, each verified (signature, check code, amounts).
    #[uniffi::method(default(subject = None))]
    pub async fn receipts(&self, subject: Option<String>) -> Result<Vec<VerifiedReceipt>, CarePassError> {
        Ok(self.core().receipts(subject.as_deref()).await?.into_iter().map(Into::into).collect())
    }
}
