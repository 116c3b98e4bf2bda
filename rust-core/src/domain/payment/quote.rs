//! The quote (pre-settlement, 预结算; `docs/payments.md` § 3): the platform settles a bill with
//! the settlement rules and the person's live coverage and answers with the split per line
//! and in total, the legs, and a short expiry. The core checks every invariant here before
//! anything is shown ([`check_quote`]); a quote that fails is refused with its reason.

use serde::{Deserialize, Serialize};

use super::channel::Channel;
use super::consent::{Consent, ConsentKind};
use crate::domain::bills::state::effective_state;
use crate::domain::bills::{Bill, BillState};
use crate::domain::money::Fen;
use crate::domain::settlement::{Settlement, SettlementError, VisitType};

/// How long a quote lives (WeChat's pay authorisation lives minutes).
pub const QUOTE_TTL_MS: i64 = 5 * 60 * 1000;
/// The longest life the core accepts on a quote.
pub const MAX_QUOTE_TTL_MS: i64 = 10 * 60 * 1000;
/// How far in the phone's future a quote's creation time may be (clock skew).
pub const QUOTE_SKEW_MS: i64 = 60 * 1000;

/// The insurance leg: settled at once, atomically, at the pivot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InsuranceLeg {
    pub fund: Fen,
    pub personal_account: Fen,
    pub mutual_aid: Fen,
    /// Whose personal account pays the mutual aid (家庭共济); none when it is 0.
    #[serde(default)]
    pub mutual_aid_from: Option<String>,
}

impl InsuranceLeg {
    /// What the insurance side pays in all.
    pub fn total(&self) -> Fen {
        Fen(self.fund.0.saturating_add(self.personal_account.0).saturating_add(self.mutual_aid.0))
    }
}

/// The cash leg: held, then captured after the pivot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CashLeg {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub channel: Channel,
    pub amount: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Legs {
    pub insurance: InsuranceLeg,
    pub cash: CashLeg,
}

/// A quote for paying one bill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    pub quote_id: String,
    pub bill_id: String,
    /// The patient the bill is for.
    pub subject: String,
    /// Who asked for the quote and will confirm it.
    pub actor: String,
    /// The device that will sign the consent.
    pub device_id: String,
    /// The family link the actor acts under (none when acting for oneself).
    #[serde(default)]
    pub link_id: Option<String>,
    pub visit_type: VisitType,
    /// Whether the personal account was asked to pay.
    pub use_account: bool,
    /// Whether the actor asked their own personal account to give (家庭共济); left out of
    /// the JSON when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mutual_aid: bool,
    pub settlement: Settlement,
    pub legs: Legs,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// Who the phone expects a quote to be for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected<'a> {
    pub subject: &'a str,
    pub actor: &'a str,
    pub device_id: &'a str,
}

/// Why a quote is refused before it is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteRefusal {
    #[error("the quote's split breaks a settlement rule: {0}")]
    Invariant(SettlementError),
    #[error("the quote does not match the bill: {0}")]
    BillMismatch(&'static str),
    #[error("the quote's legs do not add up to its split: {0}")]
    Legs(&'static str),
    #[error("the quote is for someone else: {0}")]
    WrongParty(&'static str),
    #[error("the quote has expired")]
    Expired,
    #[error("the quote's lifetime is not plausible")]
    Lifetime,
    #[error("{}", not_payable(*.0))]
    NotPayable(BillState),
}

impl QuoteRefusal {
    /// Stable code (vectors, the FFI).
    pub fn code(&self) -> &'static str {
        match self {
            QuoteRefusal::Invariant(_) => "invariant",
            QuoteRefusal::BillMismatch(_) => "bill_mismatch",
            QuoteRefusal::Legs(_) => "legs_mismatch",
            QuoteRefusal::WrongParty(_) => "wrong_party",
            QuoteRefusal::Expired => "expired",
            QuoteRefusal::Lifetime => "lifetime",
            QuoteRefusal::NotPayable(_) => "not_payable",
        }
    }
}

/// Whether a bill in this state (at this time) can take a payment.
/// Why a bill in `state` cannot be paid, in words for people.
fn not_payable(state: BillState) -> &'static str {
    match state {
        BillState::Pending | BillState::Failed => "the bill can be paid",
        BillState::Paying => "the bill is being paid: an earlier payment is still going through",
        BillState::Paid => "the bill is already paid",
        BillState::CashDue => "the insurance has paid this bill; only the cash still due is left to pay",
        BillState::Expired => "the bill has expired; ask the clinic to issue it again",
        BillState::Cancelled => "the clinic cancelled the bill",
        BillState::Refunded => "the bill was paid and refunded",
        BillState::PartlyRefunded => "the bill is paid (part of it was refunded)",
    }
}

pub fn payable(bill: &Bill, now_ms: i64) -> Result<(), QuoteRefusal> {
    match effective_state(bill, now_ms) {
        BillState::Pending | BillState::Failed => Ok(()),
        other => Err(QuoteRefusal::NotPayable(other)),
    }
}

/// Every check of a quote against the bill the phone holds, in the order the refusals are
/// reported: the split's invariants; the bill (id, patient, total, and each line against the
/// bill's item); the legs against the split; the parties; the bill's state; the lifetime.
pub fn check_quote(quote: &Quote, bill: &Bill, expected: &Expected<'_>, now_ms: i64) -> Result<(), QuoteRefusal> {
    let s = &quote.settlement;
    s.check().map_err(QuoteRefusal::Invariant)?;
    if quote.bill_id != bill.bill_id {
        return Err(QuoteRefusal::BillMismatch("bill id"));
    }
    if quote.subject != bill.person_id {
        return Err(QuoteRefusal::BillMismatch("patient"));
    }
    if s.total != bill.total_fen {
        return Err(QuoteRefusal::BillMismatch("total"));
    }
    if quote.visit_type != bill.visit_type {
        return Err(QuoteRefusal::BillMismatch("visit type"));
    }
    if s.lines.len() != bill.items.len() {
        return Err(QuoteRefusal::BillMismatch("number of lines"));
    }
    for (line, item) in s.lines.iter().zip(&bill.items) {
        if line.code != item.item_code
            || line.category != item.category
            || line.unit_price != item.unit_price_fen
            || line.quantity != item.quantity
            || line.amount != item.amount_fen
        {
            return Err(QuoteRefusal::BillMismatch("a line differs from the bill's item"));
        }
    }
    let legs = &quote.legs;
    if legs.insurance.fund != s.fund {
        return Err(QuoteRefusal::Legs("fund"));
    }
    if legs.insurance.personal_account != s.personal_account {
        return Err(QuoteRefusal::Legs("personal account"));
    }
    if legs.insurance.mutual_aid != s.mutual_aid {
        return Err(QuoteRefusal::Legs("mutual aid"));
    }
    if (legs.insurance.mutual_aid.0 > 0) != legs.insurance.mutual_aid_from.is_some() {
        return Err(QuoteRefusal::Legs("mutual aid needs its giver, and only then"));
    }
    if legs.cash.amount != s.cash {
        return Err(QuoteRefusal::Legs("cash"));
    }
    if (legs.cash.amount.0 > 0) == legs.cash.channel.is_none() {
        return Err(QuoteRefusal::Legs("a cash leg needs a channel, and no cash needs none"));
    }
    if !quote.use_account && s.personal_account.0 > 0 {
        return Err(QuoteRefusal::Legs("the personal account pays though it was not asked to"));
    }
    if !quote.mutual_aid && s.mutual_aid.0 > 0 {
        return Err(QuoteRefusal::Legs("mutual aid pays though it was not asked to"));
    }
    if quote.subject != expected.subject {
        return Err(QuoteRefusal::WrongParty("subject"));
    }
    if quote.actor != expected.actor {
        return Err(QuoteRefusal::WrongParty("actor"));
    }
    if quote.device_id != expected.device_id {
        return Err(QuoteRefusal::WrongParty("device"));
    }
    if (quote.subject != quote.actor) != quote.link_id.is_some() {
        return Err(QuoteRefusal::WrongParty("acting for someone else needs a link, and only then"));
    }
    if let Some(giver) = &legs.insurance.mutual_aid_from {
        if *giver != quote.actor || quote.subject == quote.actor {
            return Err(QuoteRefusal::WrongParty("mutual aid comes only from the relative who confirms it"));
        }
    }
    payable(bill, now_ms)?;
    let life = quote.expires_at_ms.saturating_sub(quote.created_at_ms);
    if life <= 0 || life > MAX_QUOTE_TTL_MS || quote.created_at_ms > now_ms.saturating_add(QUOTE_SKEW_MS) {
        return Err(QuoteRefusal::Lifetime);
    }
    if now_ms >= quote.expires_at_ms {
        return Err(QuoteRefusal::Expired);
    }
    Ok(())
}

impl Quote {
    /// The consent to this quote under an idempotency key.
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
            total: self.settlement.total,
            fund: self.legs.insurance.fund,
            personal_account: self.legs.insurance.personal_account,
            mutual_aid: self.legs.insurance.mutual_aid,
            mutual_aid_from: self.legs.insurance.mutual_aid_from.clone().unwrap_or_default(),
            cash: self.legs.cash.amount,
            channel: self.legs.cash.channel.wire(),
            expires_at_ms: self.expires_at_ms,
        }
    }
}
