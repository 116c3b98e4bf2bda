//! The platform's side of mixed payment (`docs/payments.md`): quotes, the signed pay request
//! with its idempotency record, the saga (hold the cash → settle the insurance, the pivot →
//! capture), second confirmations, the cash still due, refunds with write-off receipts,
//! e-receipts, the counter's one-code charge, credit pay-later, and the driver that resumes
//! every payment a crash or a timeout left in the middle.
//!
//! Every state move is one sled transaction (the payment, the balances, the bill's change
//! and its doorbells together) made durable before anything depends on it; every call to
//! the channel carries the same key on every retry.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::bills::state::can_transition;
use carepass_core::domain::family::audit::AuditAction;
use carepass_core::domain::family::Scope;
use carepass_core::domain::payment::consent::check_idempotency_key;
use carepass_core::domain::payment::credit::{self, CreditTerms};
use carepass_core::domain::payment::quote::{payable, QUOTE_TTL_MS};
use carepass_core::domain::payment::receipt::{check_code, Receipt, ReceiptItem, ReceiptKind, ReceiptParty};
use carepass_core::domain::payment::refund::{coverage_before, refund as refund_split, remaining_items};
use carepass_core::domain::payment::state::{self as saga, legs, resume, Resume};
use carepass_core::domain::payment::{CashLeg, Channel, InsuranceLeg, Legs, Quote, SignedReceipt, Step};
use carepass_core::domain::settlement::{
    settle_with_rule, PatientCoverage, Settlement, SettlementItem, SettlementRule, VisitType, YearToDate,
};
use carepass_core::domain::voucher::cert::Issuer;
use carepass_core::wire::{
    self, Bill, BillPayment, BillState, CounterScan, PaymentFailure, PlatformCode, ReceiptKey, RefundStatus,
};
use carepass_core::Fen;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use crate::bills::{abort, abort_error, read_bill, Abort, Change, StagedTrees};
use crate::channel::{AuthStatus, Authorisation, AuthoriseRequest, ChannelAnswer, ChannelClient};
use crate::error::{ApiError, ApiResult};
use crate::platform::{Caller, Platform};

/// Time the patient has for a bank's second confirmation.
pub const ACTION_TTL_MS: i64 = 10 * 60 * 1000;
/// Idempotency records are kept at least this long (and until their payment is final).
pub const IDEMPOTENCY_KEEP_MS: i64 = 24 * 3600 * 1000;
/// A payment the driver finds still `created` this long after it was made lost its handler
/// (a crash): the driver takes it over.
pub const ORPHAN_AFTER_MS: i64 = 2_000;
/// The receipt key's id.
pub const RECEIPT_KEY_ID: u16 = 1;

type Tx<T> = Result<T, ConflictableTransactionError<Abort>>;

/// A person's personal account and year-to-date accumulators (per year and benefit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    pub account_balance: Fen,
    /// `"2026/outpatient"`, `"2026/chronic"` → what was used.
    pub accumulators: BTreeMap<String, YearToDate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct QuoteRecord {
    quote: Quote,
    used_by: Option<String>,
}

/// A payment as the platform keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub payment_id: String,
    pub quote: Quote,
    pub idempotency_key: String,
    pub channel: Channel,
    pub consent_signature: String,
    pub step: Step,
    /// The channel key of the hold.
    pub hold_key: String,
    /// Whether the channel placed the hold (then a failure releases it).
    pub hold_placed: bool,
    /// Where the captured cash is (the hold, or the cash-due attempt that paid), for refunds.
    pub captured_key: Option<String>,
    pub failure: Option<PaymentFailure>,
    pub action_expires_at_ms: Option<i64>,
    pub cash_due: Fen,
    /// A cash-due attempt in flight: its channel key and channel.
    pub attempt: Option<(String, Channel)>,
    pub attempts: u32,
    pub receipts: Vec<SignedReceipt>,
    /// The split standing after refunds (none: the quote's).
    pub standing: Option<Settlement>,
    /// Units returned per line.
    pub returned: Vec<u32>,
    pub refunded: Fen,
    pub rule: SettlementRule,
    pub accumulator_key: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl PaymentRecord {
    fn cash(&self) -> Fen {
        self.quote.legs.cash.amount
    }

    fn insurance(&self) -> &InsuranceLeg {
        &self.quote.legs.insurance
    }

    fn settlement(&self) -> &Settlement {
        self.standing.as_ref().unwrap_or(&self.quote.settlement)
    }
}

/// The first answer to an idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdemRecord {
    fingerprint: Vec<u8>,
    payment_id: Option<String>,
    answer: Option<StoredAnswer>,
    created_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefundRecord {
    fingerprint: Vec<u8>,
    refund: wire::Refund,
    /// The channel refund still to make: (key, authorisation, amount).
    cash: Option<(String, String, Fen)>,
}

/// A person's credit line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreditRecord {
    pub terms: Option<CreditTerms>,
    pub signature: String,
    /// Held for payments not yet captured.
    pub reserved: Fen,
    pub draws: Vec<wire::CreditDraw>,
}

impl CreditRecord {
    fn used(&self) -> Fen {
        Fen(self.reserved.0 + self.draws.iter().map(|d| d.amount_fen.0 - d.repaid_fen.0).sum::<i64>())
    }
}

/// The payment side's state in the platform.
pub struct Payments {
    channel: std::sync::OnceLock<ChannelClient>,
    receipt_key: Issuer,
    /// Idempotency keys with a request in progress (a concurrent one gets 409).
    keys_busy: Mutex<HashSet<String>>,
    /// Payments a task is driving (one driver at a time).
    driving: Mutex<HashSet<String>>,
}

impl Payments {
    pub fn new(receipt_key: Issuer) -> Payments {
        Payments {
            channel: std::sync::OnceLock::new(),
            receipt_key,
            keys_busy: Mutex::new(HashSet::new()),
            driving: Mutex::new(HashSet::new()),
        }
    }
}

/// Holds a key or a payment for one task; released on drop.
struct Hold<'a>(&'a Mutex<HashSet<String>>, String);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(&self.1);
        }
    }
}

fn take<'a>(set: &'a Mutex<HashSet<String>>, key: &str) -> Option<Hold<'a>> {
    let mut guard = set.lock().ok()?;
    guard.insert(key.to_string()).then(|| Hold(set, key.to_string()))
}

/// Test hook: a debug build aborts the process at the named point when
/// `CAREPASS_SANDBOX_CRASH_AT` names it (the crash matrix kills the platform there).
pub fn crash_point(name: &str) {
    if cfg!(debug_assertions) && std::env::var("CAREPASS_SANDBOX_CRASH_AT").as_deref() == Ok(name) {
        eprintln!("carepass-sandbox: crash point {name}");
        std::process::abort();
    }
}

/// The accumulator a visit counts against, in the year of `now_ms` (China time): ordinary
/// outpatient care has its own; chronic care and pharmacy fills share the chronic one.
pub fn accumulator_key(visit: VisitType, now_ms: i64) -> String {
    let date = carepass_core::domain::payment::receipt::receipt_date(now_ms);
    let benefit = match visit {
        VisitType::Outpatient => "outpatient",
        VisitType::ChronicOutpatient | VisitType::Pharmacy => "chronic",
    };
    format!("{}/{benefit}", &date[..4])
}

fn failure(code: &str, message: impl Into<String>) -> PaymentFailure {
    PaymentFailure { code: code.into(), message: message.into() }
}

fn conflict(code: PlatformCode, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

fn get_tx<T: serde::de::DeserializeOwned>(tree: &TransactionalTree, key: &str) -> Tx<Option<T>> {
    match tree.get(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(abort)?)),
        None => Ok(None),
    }
}

fn put_tx<T: Serialize>(tree: &TransactionalTree, key: &str, value: &T) -> Tx<()> {
    tree.insert(key.as_bytes(), serde_json::to_vec(value).map_err(abort)?)?;
    Ok(())
}

/// The trees of a payment transaction.
pub(crate) struct Views<'a> {
    pub bills: &'a TransactionalTree,
    pub meta: &'a TransactionalTree,
    pub payments: &'a TransactionalTree,
    pub open: &'a TransactionalTree,
    pub idem: &'a TransactionalTree,
    pub quotes: &'a TransactionalTree,
    pub accounts: &'a TransactionalTree,
    pub credit: &'a TransactionalTree,
    pub refunds: &'a TransactionalTree,
    /// The transaction's person and their seed account, read before it began: a plain
    /// read inside a sled transaction waits for the lock the transaction holds (a deadlock).
    pub person_id: &'a str,
    pub default_account: &'a ApiResult<AccountRecord>,
    /// The seed accounts of the other people the transaction may touch (a giving relative).
    pub other_defaults: &'a [(String, ApiResult<AccountRecord>)],
}

impl Views<'_> {
    fn payment(&self, id: &str) -> Tx<PaymentRecord> {
        get_tx(self.payments, id)?.ok_or(ConflictableTransactionError::Abort(Abort::NotFound))
    }

    /// Writes a payment and keeps the index of payments the driver looks at.
    fn put_payment(&self, record: &PaymentRecord) -> Tx<()> {
        put_tx(self.payments, &record.payment_id, record)?;
        let open = !saga::is_final(record.step) && record.step != Step::PartlyRefunded;
        if open {
            self.open.insert(record.payment_id.as_bytes(), &[])?;
        } else {
            self.open.remove(record.payment_id.as_bytes())?;
        }
        Ok(())
    }

    fn account(&self, person_id: &str) -> Tx<AccountRecord> {
        match get_tx(self.accounts, person_id)? {
            Some(a) => Ok(a),
            None if person_id == self.person_id => {
                self.default_account.clone().map_err(|e| ConflictableTransactionError::Abort(Abort::Api(e)))
            }
            None => match self.other_defaults.iter().find(|(p, _)| p == person_id) {
                Some((_, a)) => a.clone().map_err(|e| ConflictableTransactionError::Abort(Abort::Api(e))),
                None => refuse(ApiError::internal("another person's account in a payment transaction")),
            },
        }
    }

    fn credit_line(&self, person_id: &str) -> Tx<CreditRecord> {
        Ok(get_tx(self.credit, person_id)?.unwrap_or_default())
    }
}

fn refuse<T>(e: ApiError) -> Tx<T> {
    Err(ConflictableTransactionError::Abort(Abort::Api(e)))
}

impl Platform {
    /// Connects the platform to its payment channel (once, at start).
    pub fn set_channel(&self, client: ChannelClient) {
        let _ = self.payments.channel.set(client);
    }

    fn channel(&self) -> ApiResult<&ChannelClient> {
        self.payments.channel.get().ok_or_else(|| ApiError::internal("no payment channel configured"))
    }

    pub fn receipt_keys(&self) -> Vec<ReceiptKey> {
        let key = &self.payments.receipt_key;
        vec![ReceiptKey { key_id: key.key_id, public_key: B64.encode(key.public_key()) }]
    }

    /// A payment transaction: `f` reads and writes through the views and may return the
    /// bill as it is after the step, whose change (sequence, log entry, doorbells) is staged
    /// in the same transaction.
    fn pay_tx<T>(
        &self,
        person_id: &str,
        f: impl Fn(&Views<'_>) -> Tx<(T, Option<Bill>)>,
    ) -> ApiResult<(T, Option<Change>)> {
        self.pay_tx_with(person_id, None, f)
    }

    /// [`Self::pay_tx`] that may also touch `other`'s account (a relative giving mutual aid).
    fn pay_tx_with<T>(
        &self,
        person_id: &str,
        other: Option<&str>,
        f: impl Fn(&Views<'_>) -> Tx<(T, Option<Bill>)>,
    ) -> ApiResult<(T, Option<Change>)> {
        let other_defaults: Vec<(String, ApiResult<AccountRecord>)> =
            other.map(|p| (p.to_owned(), self.default_account(p))).into_iter().collect();
        let bt = self.bill_trees(person_id)?;
        let (payments, open, idem, quotes, accounts, credit, refunds) = (
            self.tree("payments")?,
            self.tree("open_payments")?,
            self.tree("idempotency")?,
            self.tree("quotes")?,
            self.tree("accounts")?,
            self.tree("credit")?,
            self.tree("refunds")?,
        );
        let tokens = self.doorbell_tokens(person_id)?;
        let default_account = self.default_account(person_id);
        let now = self.now_ms();
        let result =
            (&bt.bills, &bt.meta, &bt.log, &bt.outbox, &payments, &open, &idem, &quotes, &accounts, &credit, &refunds)
                .transaction(|(bills, meta, log, outbox, payments, open, idem, quotes, accounts, credit, refunds)| {
                    let views = Views {
                        bills,
                        meta,
                        payments,
                        open,
                        idem,
                        quotes,
                        accounts,
                        credit,
                        refunds,
                        person_id,
                        default_account: &default_account,
                        other_defaults: &other_defaults,
                    };
                    let (value, bill) = f(&views)?;
                    let seq = match bill {
                        Some(bill) => Some(self.stage_bill(
                            StagedTrees { bills, meta, log, outbox },
                            person_id,
                            &bill,
                            now,
                            now,
                            &tokens,
                        )?),
                        None => None,
                    };
                    Ok((value, seq))
                });
        match result {
            Ok((value, seq)) => {
                Ok((value, seq.map(|seq| Change { person_id: person_id.into(), seq, readable_at_ms: now })))
            }
            Err(e) => Err(abort_error(e)),
        }
    }

    /// Commits durably, then publishes the bill change (if any).
    async fn land(self: &Arc<Self>, change: Option<Change>) -> ApiResult<()> {
        self.commit().await?;
        if let Some(change) = change {
            self.publish(change);
        }
        Ok(())
    }

    /// The seed's account for a person: employees have a personal account balance.
    pub(crate) fn default_account(&self, person_id: &str) -> ApiResult<AccountRecord> {
        let coverage = self.coverage(person_id, true)?;
        Ok(AccountRecord { account_balance: coverage.account_balance, accumulators: BTreeMap::new() })
    }

    /// A person's account as it stands.
    pub fn account(&self, person_id: &str) -> ApiResult<AccountRecord> {
        match self.tree("accounts")?.get(person_id)? {
            Some(v) => Ok(serde_json::from_slice(&v)?),
            None => self.default_account(person_id),
        }
    }

    /// The bill as the payment moves it: the bill's state for the step, and the payment's
    /// summary. A move the bill's state machine forbids aborts the transaction.
    fn moved_bill(&self, v: &Views<'_>, record: &PaymentRecord, now: i64) -> Tx<Bill> {
        let mut bill =
            read_bill(v.bills, &record.quote.bill_id)?.ok_or(ConflictableTransactionError::Abort(Abort::NotFound))?;
        let to = saga::bill_state(record.step);
        if bill.state != to && !can_transition(bill.state, to) {
            return Err(ConflictableTransactionError::Abort(Abort::Refused(bill.state, to)));
        }
        bill.state = to;
        bill.updated_at_ms = now;
        bill.payment = Some(self.summary(record));
        Ok(bill)
    }

    fn summary(&self, r: &PaymentRecord) -> BillPayment {
        let ins = r.insurance();
        BillPayment {
            payment_id: r.payment_id.clone(),
            actor: r.quote.actor.clone(),
            fund_fen: ins.fund,
            personal_account_fen: ins.personal_account,
            mutual_aid_fen: ins.mutual_aid,
            cash_fen: r.cash(),
            channel: r.channel.masked(),
            cash_due_fen: r.cash_due,
            refunded_fen: r.refunded,
            failure: r.failure.clone(),
            receipts: r.receipts.clone(),
        }
    }

    /// The payment as the API reports it.
    pub fn payment_view(&self, r: &PaymentRecord) -> wire::Payment {
        let ins = r.insurance();
        let (insurance_state, cash_state) =
            legs(r.step, ins.total().0 > 0, r.cash().0 > 0, r.hold_placed && r.step == Step::Failed);
        wire::Payment {
            payment_id: r.payment_id.clone(),
            bill_id: r.quote.bill_id.clone(),
            quote_id: r.quote.quote_id.clone(),
            subject: r.quote.subject.clone(),
            actor: r.quote.actor.clone(),
            link_id: r.quote.link_id.clone(),
            status: saga::status(r.step),
            step: r.step,
            total_fen: r.quote.settlement.total,
            insurance: wire::InsuranceLegView {
                state: insurance_state,
                fund_fen: ins.fund,
                personal_account_fen: ins.personal_account,
                mutual_aid_fen: ins.mutual_aid,
                mutual_aid_from: ins.mutual_aid_from.clone(),
            },
            cash: wire::CashLegView {
                state: cash_state,
                channel: r.channel.masked(),
                amount_fen: r.cash(),
                due_fen: r.cash_due,
            },
            failure: r.failure.clone(),
            action: (r.step == Step::RequiresAction).then(|| wire::PaymentAction {
                kind: "confirm_code".into(),
                message: "enter the code your bank sent to confirm the card payment".into(),
                expires_at_ms: r.action_expires_at_ms.unwrap_or(0),
            }),
            receipts: r.receipts.clone(),
            refunded_fen: r.refunded,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }

    pub fn payment_record(&self, payment_id: &str) -> ApiResult<Option<PaymentRecord>> {
        match self.tree("payments")?.get(payment_id)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// One of the subject's payments.
    pub fn payment_for(&self, subject: &str, payment_id: &str) -> ApiResult<wire::Payment> {
        match self.payment_record(payment_id)? {
            Some(r) if r.quote.subject == subject => Ok(self.payment_view(&r)),
            _ => Err(ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such payment")),
        }
    }

    // ---- quotes -------------------------------------------------------------------------

    /// Pre-settles a bill for its patient with their live coverage.
    pub async fn quote(self: &Arc<Self>, caller: &Caller, bill_id: &str, req: &wire::QuoteRequest) -> ApiResult<Quote> {
        let now = self.now_ms();
        self.limits().windowed(
            &format!("quote/{}", caller.person_id),
            crate::limits::QUOTES_PER_MINUTE,
            crate::limits::MINUTE_MS,
            now,
            "too many quotes in a minute",
        )?;
        let unknown = || ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such bill");
        let subject = caller.subject(Scope::PayBills)?;
        let bill = self.bill(bill_id)?.filter(|b| b.person_id == subject).ok_or_else(unknown)?;
        payable(&bill, now).map_err(|e| conflict(PlatformCode::BillNotPayable, e.to_string()))?;
        let person = self.person(&bill.person_id)?.ok_or_else(unknown)?;
        let account = self.account(&bill.person_id)?;
        let key = accumulator_key(bill.visit_type, now);
        let coverage = PatientCoverage {
            insurance_type: person.insurance_type,
            pooling_region: person.pooling_region.clone(),
            year_to_date: account.accumulators.get(&key).copied().unwrap_or_default(),
            account_balance: account.account_balance,
            use_account: req.use_account,
        };
        let policy = &self.pharmacies().policy;
        let rule = policy
            .rule(&person.pooling_region, person.insurance_type, bill.visit_type)
            .map_err(|e| conflict(PlatformCode::Conflict, format!("no settlement rule for this visit: {e}")))?;
        let settlement = settle_with_rule(rule, &coverage, &settlement_items(&bill))
            .map_err(|e| ApiError::internal(format!("settlement failed: {e}")))?;
        let (settlement, giver) = if req.mutual_aid {
            let (giver, balance) = self.mutual_aid_giver(caller, &person, now)?;
            let with = settlement
                .with_mutual_aid(balance)
                .map_err(|e| ApiError::internal(format!("mutual aid failed: {e}")))?;
            let giver = (with.mutual_aid.0 > 0).then_some(giver);
            (with, giver)
        } else {
            (settlement, None)
        };
        let channel = if settlement.cash.0 == 0 {
            Channel::None
        } else if req.channel.is_none() {
            return Err(ApiError::bad_request("the cash part needs a channel (a card or credit)"));
        } else {
            req.channel.clone()
        };
        if channel == Channel::Credit {
            // Credit is the actor's own agreement: a proxy pays a relative's bill by card.
            let line = self.credit_record(caller.own()?)?;
            if line.terms.is_none() {
                return Err(conflict(PlatformCode::CreditLimitExceeded, "no credit agreement is signed"));
            }
            let limit = line.terms.as_ref().map(|t| t.limit).unwrap_or(Fen::ZERO);
            credit::check_draw(limit, line.used(), settlement.cash)
                .map_err(|e| conflict(PlatformCode::CreditLimitExceeded, e.to_string()))?;
        }
        let legs = Legs {
            insurance: InsuranceLeg {
                fund: settlement.fund,
                personal_account: settlement.personal_account,
                mutual_aid: settlement.mutual_aid,
                mutual_aid_from: giver,
            },
            cash: CashLeg { channel, amount: settlement.cash },
        };
        let quote = Quote {
            quote_id: format!("q_{}", self.random_hex(8)?),
            bill_id: bill.bill_id.clone(),
            subject: bill.person_id.clone(),
            actor: caller.person_id.clone(),
            device_id: caller.device_id.clone(),
            link_id: caller.link().map(|l| l.link_id.clone()),
            visit_type: bill.visit_type,
            use_account: req.use_account,
            mutual_aid: req.mutual_aid,
            settlement,
            legs,
            created_at_ms: now,
            expires_at_ms: now + QUOTE_TTL_MS,
        };
        let record = QuoteRecord { quote: quote.clone(), used_by: None };
        self.tree("quotes")?.insert(quote.quote_id.as_bytes(), serde_json::to_vec(&record)?)?;
        self.commit().await?;
        Ok(quote)
    }

    /// The relative who gives (家庭共济) for a quote the caller asked mutual aid on, and their
    /// personal account balance now: the caller acting under a link, where the family rules
    /// allow the link's relationship, the giver's scheme and the regions' reach today.
    fn mutual_aid_giver(&self, caller: &Caller, receiver: &wire::PersonRecord, now: i64) -> ApiResult<(String, Fen)> {
        let link = caller
            .link()
            .ok_or_else(|| ApiError::bad_request("mutual aid is given by a relative acting for the patient"))?;
        let giver = self.person(&caller.person_id)?.ok_or_else(|| ApiError::internal("giver vanished"))?;
        self.family_rules()?
            .mutual_aid(link.relationship, giver.insurance_type, &giver.pooling_region, &receiver.pooling_region, now)
            .map_err(crate::family::refused)?;
        Ok((caller.person_id.clone(), self.account(&caller.person_id)?.account_balance))
    }

    // ---- pay ---------------------------------------------------------------------------

    /// The signed pay request: validated (a refusal is not saved), recorded with its
    /// idempotency key, driven as far as it goes now, and its first answer kept for the key.
    /// Returns the answer and whether it was replayed.
    pub async fn pay(
        self: &Arc<Self>,
        caller: &Caller,
        key: &str,
        req: &wire::PayRequest,
    ) -> ApiResult<(StoredAnswer, bool)> {
        check_idempotency_key(key).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let consent = req.consent(key);
        let fingerprint = consent.fingerprint().map_err(|e| ApiError::bad_request(e.to_string()))?.to_vec();
        let idem_key = format!("{}\0{key}", caller.person_id);
        let Some(_busy) = take(&self.payments.keys_busy, &idem_key) else {
            return Err(conflict(
                PlatformCode::IdempotencyInProgress,
                "a request with this idempotency key is in progress",
            ));
        };
        if let Some(answer) = self.replay(&idem_key, &fingerprint).await? {
            return Ok((answer, true));
        }
        // Validation: nothing below is saved when it refuses.
        let now = self.now_ms();
        self.limits().windowed(
            &format!("pay/{}", caller.person_id),
            crate::limits::PAYMENTS_PER_HOUR,
            crate::limits::HOUR_MS,
            now,
            "too many payment requests in an hour",
        )?;
        let quote_record: QuoteRecord = match self.tree("quotes")?.get(&req.quote_id)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => return Err(ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such quote")),
        };
        let quote = quote_record.quote;
        let mismatch = |what: &str| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                PlatformCode::ConsentMismatch,
                format!("the consent does not match the quote: {what}"),
            )
        };
        if req.actor != caller.person_id || quote.actor != caller.person_id {
            return Err(mismatch("the actor is not the caller"));
        }
        if req.device_id != caller.device_id || quote.device_id != caller.device_id {
            return Err(mismatch("the device is not the caller's"));
        }
        if req.subject != quote.subject || caller.subject(Scope::PayBills)? != quote.subject {
            return Err(mismatch("the patient"));
        }
        if consent != quote.consent(key) {
            let expected = quote.consent(key);
            let field = if consent.total != expected.total
                || consent.fund != expected.fund
                || consent.personal_account != expected.personal_account
                || consent.mutual_aid != expected.mutual_aid
                || consent.cash != expected.cash
            {
                "an amount"
            } else if consent.channel != expected.channel {
                "the channel"
            } else if consent.expires_at_ms != expected.expires_at_ms {
                "the expiry"
            } else {
                "the bill, the link or the mutual aid"
            };
            return Err(mismatch(field));
        }
        let device = self.device(&caller.device_id)?.ok_or_else(|| ApiError::internal("caller's device vanished"))?;
        let signature = B64.decode(&req.signature).map_err(|_| ApiError::bad_request("signature is not base64url"))?;
        consent.verify(&device.public_key, &signature).map_err(|_| {
            ApiError::unauthorized(
                PlatformCode::SignatureInvalid,
                "the consent's signature does not verify for this device",
            )
        })?;
        if now >= quote.expires_at_ms {
            return Err(ApiError::new(
                StatusCode::GONE,
                PlatformCode::QuoteExpired,
                "the quote has expired; ask for a new one",
            ));
        }
        if quote_record.used_by.is_some() {
            return Err(conflict(PlatformCode::QuoteUsed, "the quote was already used by another payment request"));
        }
        let person = self.person(&quote.subject)?.ok_or_else(|| ApiError::internal("subject vanished"))?;
        let rule = self
            .pharmacies()
            .policy
            .rule(&person.pooling_region, person.insurance_type, quote.visit_type)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .clone();
        let payment_id = format!("pay_{}", self.random_hex(8)?);
        let record = PaymentRecord {
            payment_id: payment_id.clone(),
            hold_key: format!("{payment_id}-hold"),
            channel: quote.legs.cash.channel.clone(),
            idempotency_key: key.into(),
            consent_signature: req.signature.clone(),
            step: Step::Created,
            hold_placed: false,
            captured_key: None,
            failure: None,
            action_expires_at_ms: None,
            cash_due: Fen::ZERO,
            attempt: None,
            attempts: 0,
            receipts: Vec::new(),
            standing: None,
            returned: Vec::new(),
            refunded: Fen::ZERO,
            rule,
            accumulator_key: accumulator_key(quote.visit_type, now),
            created_at_ms: now,
            updated_at_ms: now,
            quote: quote.clone(),
        };
        let _driving = take(&self.payments.driving, &payment_id);
        // What leaves the family's pockets, counted against the link's limits in one step.
        let family_pays =
            Fen::sum([quote.legs.insurance.personal_account, quote.legs.insurance.mutual_aid, quote.legs.cash.amount])
                .map_err(|e| ApiError::internal(e.to_string()))?;
        self.spend_under_link(caller, family_pays)?;
        let created = self.pay_tx(&quote.subject, |v| {
            let mut q: QuoteRecord =
                get_tx(v.quotes, &quote.quote_id)?.ok_or(ConflictableTransactionError::Abort(Abort::NotFound))?;
            if q.used_by.is_some() {
                return refuse(conflict(
                    PlatformCode::QuoteUsed,
                    "the quote was already used by another payment request",
                ));
            }
            let bill =
                read_bill(v.bills, &quote.bill_id)?.ok_or(ConflictableTransactionError::Abort(Abort::NotFound))?;
            if payable(&bill, now).is_err() {
                let why = match bill.state {
                    BillState::Paying => "the bill is being paid from another device".to_string(),
                    s => format!("the bill is {}", crate::bills::state_name(s)),
                };
                return refuse(conflict(PlatformCode::BillNotPayable, why));
            }
            q.used_by = Some(payment_id.clone());
            put_tx(v.quotes, &quote.quote_id, &q)?;
            put_tx(
                v.idem,
                &idem_key,
                &IdemRecord {
                    fingerprint: fingerprint.clone(),
                    payment_id: Some(payment_id.clone()),
                    answer: None,
                    created_at_ms: now,
                },
            )?;
            v.put_payment(&record)?;
            Ok(((), Some(self.moved_bill(v, &record, now)?)))
        });
        let ((), change) = match created {
            Ok(done) => done,
            Err(e) => {
                self.unspend_under_link(caller, family_pays)?;
                return Err(e);
            }
        };
        self.audit_act(caller, AuditAction::PaymentMade, Some(family_pays), &payment_id)?;
        self.land(change).await?;
        crash_point("pay:created");
        let record = self.drive_held(&payment_id).await?;
        let answer = StoredAnswer { status: 200, body: serde_json::to_value(self.payment_view(&record))? };
        self.store_answer(&idem_key, &answer).await?;
        crash_point("pay:answered");
        Ok((answer, false))
    }

    /// The stored answer for a key, or — a request whose handler crashed after recording the
    /// payment — the payment as it stands now (then stored). `None`: a new request.
    async fn replay(self: &Arc<Self>, idem_key: &str, fingerprint: &[u8]) -> ApiResult<Option<StoredAnswer>> {
        let record: IdemRecord = match self.tree("idempotency")?.get(idem_key)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => return Ok(None),
        };
        if record.fingerprint != fingerprint {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                PlatformCode::IdempotencyKeyReused,
                "this idempotency key was used with another request",
            ));
        }
        if let Some(answer) = record.answer {
            return Ok(Some(answer));
        }
        let Some(payment_id) = record.payment_id else { return Ok(None) };
        let payment = self.drive_now(&payment_id).await?;
        let answer = StoredAnswer { status: 200, body: serde_json::to_value(self.payment_view(&payment))? };
        self.store_answer(idem_key, &answer).await?;
        Ok(Some(answer))
    }

    async fn store_answer(self: &Arc<Self>, idem_key: &str, answer: &StoredAnswer) -> ApiResult<()> {
        let tree = self.tree("idempotency")?;
        if let Some(v) = tree.get(idem_key)? {
            let mut record: IdemRecord = serde_json::from_slice(&v)?;
            if record.answer.is_none() {
                record.answer = Some(answer.clone());
                tree.insert(idem_key.as_bytes(), serde_json::to_vec(&record)?)?;
                self.commit().await?;
            }
        }
        Ok(())
    }

    // ---- the saga ----------------------------------------------------------------------

    /// Drives a payment now, waiting (bounded) for another task that is driving it.
    async fn drive_now(self: &Arc<Self>, payment_id: &str) -> ApiResult<PaymentRecord> {
        for _ in 0..200 {
            if let Some(_hold) = take(&self.payments.driving, payment_id) {
                return self.drive_held(payment_id).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        Err(conflict(PlatformCode::IdempotencyInProgress, "the payment is being processed; retry shortly"))
    }

    /// Drives a payment the caller holds in `driving` as far as it goes without the patient.
    async fn drive_held(self: &Arc<Self>, payment_id: &str) -> ApiResult<PaymentRecord> {
        for _ in 0..12 {
            let record = self.payment_record(payment_id)?.ok_or_else(|| ApiError::internal("payment vanished"))?;
            let moved = match resume(record.step) {
                Resume::Authorise => self.authorise(&record).await?,
                Resume::Query => self.query_hold(&record).await?,
                Resume::Settle => self.settle(&record).await?,
                Resume::Capture => self.capture(&record).await?,
                Resume::Release => self.release(&record).await?,
                Resume::WaitForPatient => self.wait_for_patient(&record).await?,
                Resume::Nothing => false,
            };
            if !moved {
                // Read again: a step that waits (requires_action, unknown, a failed cash-due
                // attempt) was written but does not count as moving on.
                break;
            }
        }
        self.payment_record(payment_id)?.ok_or_else(|| ApiError::internal("payment vanished"))
    }

    /// Writes a payment's next step (and the bill's change when the bill's state follows).
    async fn step(
        self: &Arc<Self>,
        record: &PaymentRecord,
        expect: &[Step],
        change: impl Fn(&mut PaymentRecord),
    ) -> ApiResult<bool> {
        let now = self.now_ms();
        let (moved, bill_change) = self.pay_tx(&record.quote.subject, |v| {
            let mut r = v.payment(&record.payment_id)?;
            if !expect.contains(&r.step) {
                return Ok((false, None));
            }
            let before = r.step;
            change(&mut r);
            if before != r.step && !saga::can_move(before, r.step) {
                return Err(abort(format!("payment step {before:?} → {:?} is not allowed", r.step)));
            }
            r.updated_at_ms = now;
            v.put_payment(&r)?;
            let bill_moves = saga::bill_state(before) != saga::bill_state(r.step) || r.step == Step::Failed;
            let bill = if bill_moves { Some(self.moved_bill(v, &r, now)?) } else { None };
            Ok((true, bill))
        })?;
        self.land(bill_change).await?;
        Ok(moved)
    }

    async fn fail(self: &Arc<Self>, record: &PaymentRecord, expect: &[Step], why: PaymentFailure) -> ApiResult<bool> {
        self.step(record, expect, |r| {
            r.step = Step::Failed;
            r.failure = Some(why.clone());
        })
        .await
    }

    /// `created`: place the hold (or, with no cash, go straight to the pivot).
    async fn authorise(self: &Arc<Self>, record: &PaymentRecord) -> ApiResult<bool> {
        match &record.channel {
            Channel::None => self.settle(record).await,
            Channel::Credit => self.credit_hold(record).await,
            Channel::Card(card) => {
                let request = AuthoriseRequest {
                    key: record.hold_key.clone(),
                    card: card.clone(),
                    amount_fen: record.cash(),
                    reference: record.payment_id.clone(),
                };
                match self.channel()?.authorise(&request).await {
                    ChannelAnswer::Done(auth) => self.apply_hold(record, &auth).await,
                    ChannelAnswer::Refused(why) => {
                        self.fail(record, &[Step::Created, Step::Unknown], failure("channel_refused", why)).await
                    }
                    ChannelAnswer::Unknown(_) => {
                        self.step(record, &[Step::Created], |r| r.step = Step::Unknown).await?;
                        Ok(false)
                    }
                }
            }
        }
    }

    /// What the channel said about the hold.
    async fn apply_hold(self: &Arc<Self>, record: &PaymentRecord, auth: &Authorisation) -> ApiResult<bool> {
        crash_point("pay:hold-answered");
        let from = [Step::Created, Step::Unknown, Step::RequiresAction];
        let now = self.now_ms();
        match auth.status {
            AuthStatus::Authorised => {
                self.step(record, &from, |r| {
                    r.step = Step::Authorised;
                    r.hold_placed = true;
                })
                .await
            }
            AuthStatus::RequiresAction => {
                if record.step == Step::RequiresAction {
                    return Ok(false);
                }
                self.step(record, &from, |r| {
                    r.step = Step::RequiresAction;
                    r.action_expires_at_ms = Some(now + ACTION_TTL_MS);
                })
                .await?;
                Ok(false)
            }
            AuthStatus::Declined => {
                let code = auth.decline_code.clone().unwrap_or_else(|| "declined".into());
                let message = decline_message(&code);
                self.fail(record, &from, failure(&code, message)).await
            }
            other => Err(ApiError::internal(format!("a new hold answered {other:?}"))),
        }
    }

    /// `unknown`: ask the channel what it did under the same key; a hold it never saw is
    /// asked for again under that key.
    async fn query_hold(self: &Arc<Self>, record: &PaymentRecord) -> ApiResult<bool> {
        match self.channel()?.query(&record.hold_key).await {
            ChannelAnswer::Done(auth) => self.apply_hold(record, &auth).await,
            ChannelAnswer::Refused(_) => self.authorise(record).await,
            ChannelAnswer::Unknown(_) => Ok(false),
        }
    }

    /// Credit pay-later: reserve the cash on the credit line.
    async fn credit_hold(self: &Arc<Self>, record: &PaymentRecord) -> ApiResult<bool> {
        let now = self.now_ms();
        let person = record.quote.subject.clone();
        let (outcome, change) = self.pay_tx(&person, |v| {
            let mut r = v.payment(&record.payment_id)?;
            if r.step != Step::Created {
                return Ok((false, None));
            }
            let mut line = v.credit_line(&person)?;
            let limit = line.terms.as_ref().map(|t| t.limit).unwrap_or(Fen::ZERO);
            let ok = credit::check_draw(limit, line.used(), r.cash());
            r.updated_at_ms = now;
            match ok {
                Ok(()) => {
                    line.reserved = Fen(line.reserved.0 + r.cash().0);
                    put_tx(v.credit, &person, &line)?;
                    r.step = Step::Authorised;
                    r.hold_placed = true;
                    v.put_payment(&r)?;
                    Ok((true, None))
                }
                Err(e) => {
                    r.step = Step::Failed;
                    r.failure = Some(failure("credit_limit_exceeded", e.to_string()));
                    v.put_payment(&r)?;
                    Ok((true, Some(self.moved_bill(v, &r, now)?)))
                }
            }
        })?;
        self.land(change).await?;
        Ok(outcome)
    }

    /// `authorised`: the pivot. The insurance leg settles atomically — the personal account
    /// and the accumulators change exactly once — if the coverage still gives the quoted
    /// split; otherwise the hold is released and the payment fails with the reason.
    async fn settle(self: &Arc<Self>, record: &PaymentRecord) -> ApiResult<bool> {
        let now = self.now_ms();
        let person_id = record.quote.subject.clone();
        let person = self.person(&person_id)?.ok_or_else(|| ApiError::internal("subject vanished"))?;
        let from = if record.channel.is_none() { Step::Created } else { Step::Authorised };
        let giver = record.quote.legs.insurance.mutual_aid_from.as_deref();
        let (outcome, change) = self.pay_tx_with(&person_id, giver, |v| {
            let mut r = v.payment(&record.payment_id)?;
            if r.step != from {
                return Ok((None, None));
            }
            let mut account = v.account(&person_id)?;
            let ytd = account.accumulators.get(&r.accumulator_key).copied().unwrap_or_default();
            let coverage = PatientCoverage {
                insurance_type: person.insurance_type,
                pooling_region: person.pooling_region.clone(),
                year_to_date: ytd,
                account_balance: account.account_balance,
                use_account: r.quote.use_account,
            };
            let quoted = &r.quote.settlement;
            let now_split = settle_with_rule(&r.rule, &coverage, &quoted_items(quoted)).ok();
            // The patient's own split must be the quoted one; a giving relative's account
            // must still hold the quoted mutual aid (家庭共济; it pays no more than quoted).
            let giver = match &r.quote.legs.insurance.mutual_aid_from {
                Some(giver) => Some((giver.clone(), v.account(giver)?)),
                None => None,
            };
            let rest = |s: &Settlement| s.mutual_aid.0.saturating_add(s.cash.0);
            let same = now_split.as_ref().is_some_and(|s| {
                (s.fund, s.personal_account, rest(s), s.deductible_applied)
                    == (quoted.fund, quoted.personal_account, rest(quoted), quoted.deductible_applied)
            }) && giver.as_ref().is_none_or(|(_, a)| a.account_balance >= quoted.mutual_aid);
            r.updated_at_ms = now;
            if !same {
                r.failure = Some(failure(
                    "coverage_changed",
                    "the account balance or this year's accumulators changed since the quote; ask for a new quote",
                ));
                r.step = if r.hold_placed { Step::Releasing } else { Step::Failed };
                v.put_payment(&r)?;
                let bill = if r.step == Step::Failed { Some(self.moved_bill(v, &r, now)?) } else { None };
                return Ok((Some(false), bill));
            }
            account.account_balance = account.account_balance.checked_sub(quoted.personal_account).map_err(abort)?;
            let after = quoted.year_to_date_after(ytd).map_err(abort)?;
            account.accumulators.insert(r.accumulator_key.clone(), after);
            put_tx(v.accounts, &person_id, &account)?;
            if let Some((giver, mut given)) = giver {
                given.account_balance = given.account_balance.checked_sub(quoted.mutual_aid).map_err(abort)?;
                put_tx(v.accounts, &giver, &given)?;
            }
            r.step = Step::Settled;
            v.put_payment(&r)?;
            Ok((Some(true), None))
        })?;
        self.land(change).await?;
        if outcome == Some(true) {
            crash_point("pay:settled");
        }
        Ok(outcome.is_some())
    }

    /// `settled`: capture the cash (retried with the same key until the channel answers);
    /// a capture the channel declines leaves the rest due. With no cash or on credit, done.
    async fn capture(self: &Arc<Self>, record: &PaymentRecord) -> ApiResult<bool> {
        match &record.channel {
            Channel::None => self.succeed(record, None).await,
            Channel::Credit => self.succeed(record, None).await,
            Channel::Card(_) => match self.channel()?.capture(&record.hold_key).await {
                ChannelAnswer::Done(auth) if auth.status == AuthStatus::Captured => {
                    crash_point("pay:captured");
                    self.succeed(record, Some(record.hold_key.clone())).await
                }
                ChannelAnswer::Done(auth) => {
                    // Declined at capture: free the hold, and the rest is due.
                    let _ = self.channel()?.release(&record.hold_key).await;
                    let code = auth.decline_code.unwrap_or_else(|| "capture_failed".into());
                    let message = format!(
                        "the insurance paid its part; the card was declined for the rest ({}); pay it with another card",
                        decline_message(&code)
                    );
                    self.step(record, &[Step::Settled], |r| {
                        r.step = Step::CashDue;
                        r.cash_due = r.cash();
                        r.failure = Some(failure(&code, message.clone()));
                    })
                    .await
                }
                ChannelAnswer::Refused(why) => {
                    self.step(record, &[Step::Settled], |r| {
                        r.step = Step::CashDue;
                        r.cash_due = r.cash();
                        r.failure = Some(failure("capture_refused", why.clone()));
                    })
                    .await
                }
                ChannelAnswer::Unknown(_) => Ok(false),
            },
        }
    }

    /// The payment succeeded: the receipt is issued and the bill is paid, in one transaction.
    async fn succeed(self: &Arc<Self>, record: &PaymentRecord, captured_key: Option<String>) -> ApiResult<bool> {
        let now = self.now_ms();
        let person_id = record.quote.subject.clone();
        let payer = self.person(&person_id)?.ok_or_else(|| ApiError::internal("subject vanished"))?;
        let presenter = self.presenter_of(&record.quote)?;
        let (moved, change) = self.pay_tx(&person_id, |v| {
            let mut r = v.payment(&record.payment_id)?;
            if !matches!(r.step, Step::Settled | Step::CashDue) {
                return Ok((false, None));
            }
            if r.channel == Channel::Credit && r.step == Step::Settled {
                let mut line = v.credit_line(&person_id)?;
                let term = line.terms.as_ref().map(|t| t.term_days).unwrap_or(credit::TERM_DAYS);
                line.reserved = Fen((line.reserved.0 - r.cash().0).max(0));
                line.draws.push(wire::CreditDraw {
                    payment_id: r.payment_id.clone(),
                    amount_fen: r.cash(),
                    repaid_fen: Fen::ZERO,
                    drawn_at_ms: now,
                    due_at_ms: now + i64::from(term) * 86_400_000,
                });
                put_tx(v.credit, &person_id, &line)?;
            }
            r.step = Step::Succeeded;
            r.cash_due = Fen::ZERO;
            r.failure = None;
            // Paid by a cash-due attempt: that card paid, and the receipt (and refunds) name it.
            if let Some((key, channel)) = r.attempt.take() {
                if captured_key.as_deref() == Some(key.as_str()) {
                    r.channel = channel;
                }
            }
            if captured_key.is_some() {
                r.captured_key = captured_key.clone();
            }
            let bill =
                read_bill(v.bills, &r.quote.bill_id)?.ok_or(ConflictableTransactionError::Abort(Abort::NotFound))?;
            let receipt = self.receipt_for(
                v,
                &r,
                &bill,
                &payer,
                presenter.as_ref(),
                r.settlement(),
                ReceiptKind::Original,
                None,
                now,
            )?;
            r.receipts.push(receipt);
            r.updated_at_ms = now;
            v.put_payment(&r)?;
            Ok((true, Some(self.moved_bill(v, &r, now)?)))
        })?;
        self.land(change).await?;
        Ok(moved)
    }

    /// `releasing`: free the hold (same key), then the payment fails with its reason.
    async fn release(self: &Arc<Self>, record: &PaymentRecord) -> ApiResult<bool> {
        match &record.channel {
            Channel::Credit => {
                let now = self.now_ms();
                let person = record.quote.subject.clone();
                let (moved, change) = self.pay_tx(&person, |v| {
                    let mut r = v.payment(&record.payment_id)?;
                    if r.step != Step::Releasing {
                        return Ok((false, None));
                    }
                    let mut line = v.credit_line(&person)?;
                    line.reserved = Fen((line.reserved.0 - r.cash().0).max(0));
                    put_tx(v.credit, &person, &line)?;
                    r.step = Step::Failed;
                    r.updated_at_ms = now;
                    v.put_payment(&r)?;
                    Ok((true, Some(self.moved_bill(v, &r, now)?)))
                })?;
                self.land(change).await?;
                Ok(moved)
            }
            _ => match self.channel()?.release(&record.hold_key).await {
                ChannelAnswer::Done(_) | ChannelAnswer::Refused(_) => {
                    self.step(record, &[Step::Releasing], |r| r.step = Step::Failed).await
                }
                ChannelAnswer::Unknown(_) => Ok(false),
            },
        }
    }

    /// `requires_action` past its time: the hold is released and the payment fails;
    /// `cash_due` with an attempt in flight: the attempt goes on.
    async fn wait_for_patient(self: &Arc<Self>, record: &PaymentRecord) -> ApiResult<bool> {
        match record.step {
            Step::RequiresAction if record.action_expires_at_ms.is_some_and(|t| self.now_ms() >= t) => {
                match self.channel()?.release(&record.hold_key).await {
                    ChannelAnswer::Unknown(_) => Ok(false),
                    _ => {
                        self.fail(
                            record,
                            &[Step::RequiresAction],
                            failure(
                                "action_timeout",
                                "the bank's confirmation was not given in time; nothing was charged",
                            ),
                        )
                        .await
                    }
                }
            }
            Step::CashDue if record.attempt.is_some() => self.continue_attempt(record).await,
            _ => Ok(false),
        }
    }

    // ---- the patient's part: second confirmation, cash still due ------------------------

    /// The bank's second confirmation for a payment's hold.
    pub async fn confirm(self: &Arc<Self>, caller: &Caller, payment_id: &str, code: &str) -> ApiResult<wire::Payment> {
        let record = self.owned_payment(caller, payment_id)?;
        if record.step != Step::RequiresAction {
            return Ok(self.payment_view(&record));
        }
        if code.is_empty() || code.len() > 16 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_request("a confirmation code is 1 to 16 digits"));
        }
        if let ChannelAnswer::Done(auth) = self.channel()?.confirm(&record.hold_key, code).await {
            if auth.status != AuthStatus::RequiresAction {
                self.apply_hold(&record, &auth).await?;
            }
        }
        let record = self.drive_now(payment_id).await?;
        Ok(self.payment_view(&record))
    }

    fn owned_payment(&self, caller: &Caller, payment_id: &str) -> ApiResult<PaymentRecord> {
        match self.payment_record(payment_id)? {
            Some(r) if r.quote.subject == caller.subject(Scope::PayBills)? && r.quote.actor == caller.person_id => {
                Ok(r)
            }
            _ => Err(ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such payment")),
        }
    }

    /// Pays the cash still due on a payment with another channel (signed, idempotent).
    pub async fn pay_cash_due(
        self: &Arc<Self>,
        caller: &Caller,
        payment_id: &str,
        key: &str,
        req: &wire::CashDueRequest,
    ) -> ApiResult<(StoredAnswer, bool)> {
        check_idempotency_key(key).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let record = self.owned_payment(caller, payment_id)?;
        let consent = cash_due_consent(&record, caller, key, &req.channel, req.amount_fen, req.expires_at_ms);
        let fingerprint = consent.fingerprint().map_err(|e| ApiError::bad_request(e.to_string()))?.to_vec();
        let idem_key = format!("{}\0{key}", caller.person_id);
        let Some(_busy) = take(&self.payments.keys_busy, &idem_key) else {
            return Err(conflict(
                PlatformCode::IdempotencyInProgress,
                "a request with this idempotency key is in progress",
            ));
        };
        if let Some(answer) = self.replay(&idem_key, &fingerprint).await? {
            return Ok((answer, true));
        }
        let channel = Channel::parse(&req.channel).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if !matches!(channel, Channel::Card(_)) {
            return Err(ApiError::bad_request("the cash still due is paid with a card"));
        }
        if record.step != Step::CashDue || record.attempt.is_some() {
            return Err(conflict(PlatformCode::BillNotPayable, "no cash is due on this payment now"));
        }
        if req.amount_fen != record.cash_due {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                PlatformCode::ConsentMismatch,
                "the consent does not match what is due: an amount",
            ));
        }
        if self.now_ms() >= req.expires_at_ms || req.expires_at_ms > self.now_ms() + QUOTE_TTL_MS * 2 {
            return Err(ApiError::new(StatusCode::GONE, PlatformCode::QuoteExpired, "the consent's time is over"));
        }
        let device = self.device(&caller.device_id)?.ok_or_else(|| ApiError::internal("caller's device vanished"))?;
        let signature = B64.decode(&req.signature).map_err(|_| ApiError::bad_request("signature is not base64url"))?;
        consent.verify(&device.public_key, &signature).map_err(|_| {
            ApiError::unauthorized(
                PlatformCode::SignatureInvalid,
                "the consent's signature does not verify for this device",
            )
        })?;
        let now = self.now_ms();
        let _driving = take(&self.payments.driving, payment_id);
        let ((), change) = self.pay_tx(&record.quote.subject, |v| {
            let mut r = v.payment(payment_id)?;
            if r.step != Step::CashDue || r.attempt.is_some() {
                return refuse(conflict(PlatformCode::BillNotPayable, "no cash is due on this payment now"));
            }
            r.attempts += 1;
            r.attempt = Some((format!("{payment_id}-cash-{}", r.attempts), channel.clone()));
            r.updated_at_ms = now;
            v.put_payment(&r)?;
            put_tx(
                v.idem,
                &idem_key,
                &IdemRecord {
                    fingerprint: fingerprint.clone(),
                    payment_id: Some(payment_id.into()),
                    answer: None,
                    created_at_ms: now,
                },
            )?;
            Ok(((), None))
        })?;
        self.land(change).await?;
        let record = self.drive_held(payment_id).await?;
        let answer = StoredAnswer { status: 200, body: serde_json::to_value(self.payment_view(&record))? };
        self.store_answer(&idem_key, &answer).await?;
        Ok((answer, false))
    }

    /// A cash-due attempt: hold and capture on the new channel (same key on every retry).
    async fn continue_attempt(self: &Arc<Self>, record: &PaymentRecord) -> ApiResult<bool> {
        let Some((key, Channel::Card(card))) = record.attempt.clone() else { return Ok(false) };
        let channel = self.channel()?;
        let auth = match channel.query(&key).await {
            ChannelAnswer::Done(auth) => auth,
            ChannelAnswer::Refused(_) => {
                let request = AuthoriseRequest {
                    key: key.clone(),
                    card,
                    amount_fen: record.cash_due,
                    reference: record.payment_id.clone(),
                };
                match channel.authorise(&request).await {
                    ChannelAnswer::Done(auth) => auth,
                    ChannelAnswer::Refused(why) => {
                        return self.attempt_failed(record, failure("channel_refused", why)).await
                    }
                    ChannelAnswer::Unknown(_) => return Ok(false),
                }
            }
            ChannelAnswer::Unknown(_) => return Ok(false),
        };
        let auth = match auth.status {
            AuthStatus::Authorised => match channel.capture(&key).await {
                ChannelAnswer::Done(auth) => auth,
                _ => return Ok(false),
            },
            _ => auth,
        };
        match auth.status {
            AuthStatus::Captured => self.succeed(record, Some(key)).await,
            AuthStatus::RequiresAction => {
                let _ = channel.release(&key).await;
                self.attempt_failed(
                    record,
                    failure("requires_action", "this card needs a confirmation; use another card"),
                )
                .await
            }
            _ => {
                let _ = channel.release(&key).await;
                let code = auth.decline_code.unwrap_or_else(|| "declined".into());
                let message = decline_message(&code);
                self.attempt_failed(record, failure(&code, message)).await
            }
        }
    }

    async fn attempt_failed(self: &Arc<Self>, record: &PaymentRecord, why: PaymentFailure) -> ApiResult<bool> {
        self.step(record, &[Step::CashDue], |r| {
            r.attempt = None;
            r.failure = Some(why.clone());
        })
        .await?;
        Ok(false)
    }

    // ---- receipts ----------------------------------------------------------------------

    /// Who presented a proxy's payment, for its receipts (read before any transaction: a
    /// plain read inside one can wait on the lock it holds).
    fn presenter_of(&self, quote: &Quote) -> ApiResult<Option<ReceiptParty>> {
        if quote.link_id.is_none() {
            return Ok(None);
        }
        let name = self.person(&quote.actor)?.map(|p| p.name).unwrap_or_default();
        Ok(Some(ReceiptParty { person_id: quote.actor.clone(), name }))
    }

    /// Issues a signed receipt (inside the transaction: the number is taken there).
    #[allow(clippy::too_many_arguments)]
    fn receipt_for(
        &self,
        v: &Views<'_>,
        r: &PaymentRecord,
        bill: &Bill,
        payer: &wire::PersonRecord,
        presenter: Option<&ReceiptParty>,
        split: &Settlement,
        kind: ReceiptKind,
        writes_off: Option<wire::ReceiptRef>,
        now: i64,
    ) -> Tx<SignedReceipt> {
        let date = carepass_core::domain::payment::receipt::receipt_date(now);
        let code = format!("{}{}", payer.pooling_region, &date[2..4]);
        let counter = format!("receipt_seq/{code}");
        let n = crate::bills::read_u64(v.meta.get(counter.as_bytes())?) + 1;
        v.meta.insert(counter.as_bytes(), &n.to_be_bytes())?;
        let number = format!("{n:010}");
        let items = split
            .lines
            .iter()
            .map(|line| ReceiptItem {
                code: line.code.clone(),
                name: bill.items.iter().find(|i| i.item_code == line.code).map(|i| i.name.clone()).unwrap_or_default(),
                category: line.category,
                quantity: line.quantity,
                amount: line.amount,
            })
            .collect();
        let receipt = Receipt {
            version: 1,
            kind,
            check_code: check_code(&code, &number, now, split.total),
            receipt_code: code,
            receipt_number: number,
            issued_at_ms: now,
            payer: ReceiptParty { person_id: payer.person_id.clone(), name: payer.name.clone() },
            // A proxy's payment records both identities (the fund-use regulation, § 17).
            presented_by: presenter.cloned(),
            link_id: r.quote.link_id.clone(),
            payee: bill.hospital.clone(),
            bill_id: bill.bill_id.clone(),
            payment_id: r.payment_id.clone(),
            items,
            total: split.total,
            fund: split.fund,
            personal_account: split.personal_account,
            mutual_aid: split.mutual_aid,
            cash: split.cash,
            own_pay: Fen(split.total.0 - split.fund.0 - split.out_of_scope.0),
            self_pay: split.out_of_scope,
            channel: r.channel.masked(),
            writes_off,
        };
        let key = &self.payments.receipt_key;
        receipt.sign(key.key_id, |m| key.sign(m)).map_err(abort)
    }

    // ---- refunds (clinic role) ---------------------------------------------------------

    /// Refunds a paid bill, whole or some lines: re-settled per source, balances and
    /// accumulators restored in one transaction with the write-off receipt (and, for a
    /// partial refund, the new receipt for what stays paid); then the cash goes back through
    /// the channel (retried by the driver until it does).
    pub async fn refund(self: &Arc<Self>, bill_id: &str, req: &wire::RefundRequest) -> ApiResult<wire::Refund> {
        if req.refund_id.is_empty()
            || req.refund_id.len() > 64
            || !req.refund_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ApiError::bad_request("a refund id is 1 to 64 letters, digits, _ and -"));
        }
        if req.reason.is_empty() || req.reason.chars().count() > 200 {
            return Err(ApiError::bad_request("a refund reason is 1 to 200 characters"));
        }
        let fingerprint =
            ring::digest::digest(&ring::digest::SHA256, &serde_json::to_vec(&(bill_id, req))?).as_ref().to_vec();
        if let Some(v) = self.tree("refunds")?.get(&req.refund_id)? {
            let existing: RefundRecord = serde_json::from_slice(&v)?;
            if existing.fingerprint != fingerprint {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    PlatformCode::IdempotencyKeyReused,
                    "this refund id was used for another refund",
                ));
            }
            self.refund_cash(&req.refund_id).await?;
            return self.refund_view(&req.refund_id);
        }
        let bill = self
            .bill(bill_id)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such bill"))?;
        let payment_id = bill
            .payment
            .as_ref()
            .map(|p| p.payment_id.clone())
            .filter(|_| matches!(bill.state, BillState::Paid | BillState::PartlyRefunded))
            .ok_or_else(|| conflict(PlatformCode::Conflict, "only a paid bill is refunded"))?;
        let payer = self.person(&bill.person_id)?.ok_or_else(|| ApiError::internal("payer vanished"))?;
        // Read once, before the transaction: who presented it, and who gave (家庭共济).
        let (presenter, giver) = match self.payment_record(&payment_id)? {
            Some(record) => (self.presenter_of(&record.quote)?, record.quote.legs.insurance.mutual_aid_from),
            None => (None, None),
        };
        let now = self.now_ms();
        let person_id = bill.person_id.clone();
        let refund_id = req.refund_id.clone();
        let (refund, change) = self.pay_tx_with(&person_id, giver.as_deref(), |v| {
            if v.refunds.get(refund_id.as_bytes())?.is_some() {
                return refuse(conflict(PlatformCode::IdempotencyInProgress, "this refund is being made"));
            }
            let mut r = v.payment(&payment_id)?;
            if !matches!(r.step, Step::Succeeded | Step::PartlyRefunded) {
                return refuse(conflict(PlatformCode::Conflict, "only a paid bill is refunded"));
            }
            let bill =
                read_bill(v.bills, &r.quote.bill_id)?.ok_or(ConflictableTransactionError::Abort(Abort::NotFound))?;
            let items = settlement_items(&bill);
            let all: Vec<wire::ReturnedLine> = items
                .iter()
                .enumerate()
                .map(|(i, item)| wire::ReturnedLine {
                    line: i as u32,
                    quantity: item.quantity - r.returned.get(i).copied().unwrap_or(0),
                })
                .filter(|l| l.quantity > 0)
                .collect();
            let returned = req.lines.clone().unwrap_or(all);
            let (remaining, taken) = remaining_items(&items, &r.returned, &returned).map_err(|e| {
                ConflictableTransactionError::Abort(Abort::Api(conflict(PlatformCode::Conflict, e.to_string())))
            })?;
            let coverage = coverage_before(
                &r.rule,
                &r.quote.settlement,
                payer.insurance_type,
                &payer.pooling_region,
                r.quote.use_account,
            )
            .map_err(abort)?;
            let (split, after) = refund_split(&r.rule, &coverage, r.settlement(), &remaining).map_err(|e| {
                ConflictableTransactionError::Abort(Abort::Api(conflict(PlatformCode::Conflict, e.to_string())))
            })?;
            // Balances and accumulators back by exactly what the returned lines had added.
            let mut account = v.account(&person_id)?;
            account.account_balance = account.account_balance.checked_add(split.personal_account).map_err(abort)?;
            let ytd = account.accumulators.entry(r.accumulator_key.clone()).or_default();
            ytd.deductible_paid = Fen((ytd.deductible_paid.0 - split.deductible.0).max(0));
            ytd.fund_paid = Fen((ytd.fund_paid.0 - split.fund.0).max(0));
            put_tx(v.accounts, &person_id, &account)?;
            // What a relative gave (家庭共济) goes back to their account.
            if let Some(giver) = r.quote.legs.insurance.mutual_aid_from.as_deref().filter(|_| split.mutual_aid.0 > 0) {
                let mut given = v.account(giver)?;
                given.account_balance = given.account_balance.checked_add(split.mutual_aid).map_err(abort)?;
                put_tx(v.accounts, giver, &given)?;
            }
            // Receipts: write off the standing one; a partial refund re-issues the rest.
            let mut receipts = Vec::new();
            let standing_ref = r
                .receipts
                .iter()
                .rev()
                .find_map(|s| {
                    let keys = std::collections::HashMap::from([(
                        self.payments.receipt_key.key_id,
                        self.payments.receipt_key.public_key(),
                    )]);
                    carepass_core::domain::payment::receipt::verify(s, &keys)
                        .ok()
                        .filter(|rc| rc.kind == ReceiptKind::Original)
                })
                .map(|rc| rc.reference());
            let standing = r.settlement().clone();
            receipts.push(self.receipt_for(
                v,
                &r,
                &bill,
                &payer,
                presenter.as_ref(),
                &standing,
                ReceiptKind::WriteOff,
                standing_ref,
                now,
            )?);
            if let Some(after) = &after {
                receipts.push(self.receipt_for(
                    v,
                    &r,
                    &bill,
                    &payer,
                    presenter.as_ref(),
                    after,
                    ReceiptKind::Original,
                    None,
                    now,
                )?);
            }
            r.receipts.extend(receipts.iter().cloned());
            r.returned = taken;
            r.refunded = Fen(r.refunded.0 + split.total.0);
            r.standing = Some(after.clone().unwrap_or_else(|| zero_settlement(&standing)));
            r.step = if after.is_some() { Step::PartlyRefunded } else { Step::Refunded };
            r.updated_at_ms = now;
            // The cash part: credit goes back at once; a card through the channel, after.
            let mut cash = None;
            let mut status = RefundStatus::Succeeded;
            if split.cash.0 > 0 {
                match (&r.channel, &r.captured_key) {
                    (Channel::Credit, _) => {
                        let mut line = v.credit_line(&person_id)?;
                        if let Some(draw) = line.draws.iter_mut().find(|d| d.payment_id == r.payment_id) {
                            draw.amount_fen = Fen((draw.amount_fen.0 - split.cash.0).max(draw.repaid_fen.0));
                        }
                        put_tx(v.credit, &person_id, &line)?;
                    }
                    (_, Some(auth)) => {
                        cash = Some((format!("{}-refund-{refund_id}", r.payment_id), auth.clone(), split.cash));
                        status = RefundStatus::CashPending;
                    }
                    (_, None) => return Err(abort("a paid card payment without its capture")),
                }
            }
            let refund = wire::Refund {
                refund_id: refund_id.clone(),
                bill_id: bill.bill_id.clone(),
                payment_id: r.payment_id.clone(),
                status,
                split,
                reason: req.reason.clone(),
                created_at_ms: now,
                receipts,
            };
            put_tx(
                v.refunds,
                &refund_id,
                &RefundRecord { fingerprint: fingerprint.clone(), refund: refund.clone(), cash },
            )?;
            if status == RefundStatus::CashPending {
                v.open.insert(format!("refund:{refund_id}").as_bytes(), &[])?;
            }
            v.put_payment(&r)?;
            Ok((refund, Some(self.moved_bill(v, &r, now)?)))
        })?;
        self.land(change).await?;
        crash_point("refund:insurance");
        if refund.status == RefundStatus::CashPending {
            self.refund_cash(&refund.refund_id).await?;
            return self.refund_view(&refund.refund_id);
        }
        Ok(refund)
    }

    fn refund_view(&self, refund_id: &str) -> ApiResult<wire::Refund> {
        let v = self.tree("refunds")?.get(refund_id)?.ok_or_else(|| ApiError::internal("refund vanished"))?;
        Ok(serde_json::from_slice::<RefundRecord>(&v)?.refund)
    }

    /// Sends a refund's cash back through the channel (same key on every retry).
    async fn refund_cash(self: &Arc<Self>, refund_id: &str) -> ApiResult<bool> {
        let tree = self.tree("refunds")?;
        let Some(v) = tree.get(refund_id)? else { return Ok(false) };
        let mut record: RefundRecord = serde_json::from_slice(&v)?;
        let Some((key, authorisation, amount)) = record.cash.clone() else { return Ok(false) };
        let request = crate::channel::RefundRequest { key, authorisation, amount_fen: amount };
        match self.channel()?.refund(&request).await {
            ChannelAnswer::Done(_) => {
                record.cash = None;
                record.refund.status = RefundStatus::Succeeded;
                let open = self.tree("open_payments")?;
                (&tree, &open)
                    .transaction(|(tree, open)| {
                        tree.insert(refund_id.as_bytes(), serde_json::to_vec(&record).map_err(abort)?)?;
                        open.remove(format!("refund:{refund_id}").as_bytes())?;
                        Ok::<_, ConflictableTransactionError<Abort>>(())
                    })
                    .map_err(abort_error)?;
                self.commit().await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    // ---- the driver --------------------------------------------------------------------

    /// One pass over every payment and refund a crash, a timeout or the clock left waiting:
    /// each is moved on as its step says (`state::resume`). Returns how many moved.
    pub async fn drive_open(self: &Arc<Self>) -> ApiResult<usize> {
        let mut moved = 0;
        let now = self.now_ms();
        let ids: Vec<String> = self
            .tree("open_payments")?
            .iter()
            .keys()
            .filter_map(|k| k.ok().map(|k| String::from_utf8_lossy(&k).into_owned()))
            .collect();
        for id in ids {
            if let Some(refund_id) = id.strip_prefix("refund:") {
                if self.refund_cash(refund_id).await.unwrap_or(false) {
                    moved += 1;
                }
                continue;
            }
            let Some(record) = self.payment_record(&id)? else { continue };
            if record.step == Step::Created && now - record.updated_at_ms < ORPHAN_AFTER_MS {
                continue; // its handler is probably still on it
            }
            let Some(_hold) = take(&self.payments.driving, &id) else { continue };
            let before = record.step;
            match self.drive_held(&id).await {
                Ok(after) if after.step != before => moved += 1,
                Ok(_) => {}
                Err(e) => log::warn!("driving {id}: {}", e.message),
            }
        }
        Ok(moved)
    }

    // ---- one code at the counter (一码付) ----------------------------------------------

    /// A cashier scanned the patient's code and sent the items: a bill for the code's holder,
    /// linked to the scan, reaches their phone; they confirm the payment there.
    pub async fn counter_charge(self: &Arc<Self>, req: &wire::CounterChargeRequest) -> ApiResult<wire::CounterCharge> {
        use carepass_core::domain::voucher::Purpose;
        let purpose = match req.purpose.as_str() {
            "pharmacy_purchase" => Purpose::PharmacyPurchase,
            "outpatient_settlement" => Purpose::OutpatientSettlement,
            _ => {
                return Err(ApiError::bad_request(
                    "a counter charge's purpose is pharmacy_purchase or outpatient_settlement",
                ))
            }
        };
        if req.merchant.is_empty() || req.merchant.chars().count() > 100 {
            return Err(ApiError::bad_request("the merchant is 1 to 100 characters"));
        }
        if req.payload.len() > 4096 {
            return Err(ApiError::bad_request("payload longer than any code"));
        }
        let scan = self.scan(&req.payload, purpose)?;
        if !scan.accepted {
            self.commit().await?;
            return Ok(wire::CounterCharge { accepted: false, reason: scan.reason, bill: None, holder: None });
        }
        let holder = scan.holder.clone().ok_or_else(|| ApiError::internal("accepted code without a holder"))?;
        let person = self.person(&holder.person_id)?.ok_or_else(|| ApiError::internal("holder vanished"))?;
        let request = wire::IssueBillRequest {
            phone: person.phone.clone(),
            hospital: req.merchant.clone(),
            department: match purpose {
                Purpose::PharmacyPurchase => "药店收银 Pharmacy counter".into(),
                _ => "门诊收费 Outpatient cashier".into(),
            },
            doctor: "—".into(),
            items: req.items.clone(),
            due_in_minutes: Some(30),
            visit_type: match purpose {
                Purpose::PharmacyPurchase => VisitType::Pharmacy,
                _ => VisitType::Outpatient,
            },
            readable_after_ms: None,
        };
        let counter = CounterScan {
            purpose: req.purpose.clone(),
            presenter_device_id: scan.presenter_device_id.clone().unwrap_or_default(),
            scanned_at_ms: self.now_ms(),
        };
        let (bill, change) = self.issue_bill_with(&request, Some(counter))?;
        self.commit().await?;
        self.publish(change);
        Ok(wire::CounterCharge { accepted: true, reason: None, bill: Some(bill), holder: Some(holder) })
    }

    // ---- credit pay-later --------------------------------------------------------------

    pub fn credit_record(&self, person_id: &str) -> ApiResult<CreditRecord> {
        match self.tree("credit")?.get(person_id)? {
            Some(v) => Ok(serde_json::from_slice(&v)?),
            None => Ok(CreditRecord::default()),
        }
    }

    pub fn credit_line(&self, person_id: &str) -> ApiResult<wire::CreditLine> {
        let record = self.credit_record(person_id)?;
        let limit = record.terms.as_ref().map(|t| t.limit).unwrap_or(Fen::ZERO);
        let used = record.used();
        Ok(wire::CreditLine {
            signed: record.terms.is_some(),
            limit_fen: limit,
            used_fen: used,
            available_fen: Fen((limit.0 - used.0).max(0)),
            term_days: record.terms.as_ref().map(|t| t.term_days).unwrap_or(credit::TERM_DAYS),
            draws: record.draws,
        })
    }

    /// The patient signs a credit agreement (or a new limit, not below what is used).
    pub async fn sign_credit(
        self: &Arc<Self>,
        caller: &Caller,
        req: &wire::CreditAgreementRequest,
    ) -> ApiResult<wire::CreditLine> {
        caller.own()?;
        credit::check_limit(req.limit_fen).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if req.term_days != credit::TERM_DAYS {
            return Err(ApiError::bad_request(format!("the sandbox's credit term is {} days", credit::TERM_DAYS)));
        }
        let now = self.now_ms();
        if req.signed_at_ms.abs_diff(now) > 5 * 60 * 1000 {
            return Err(ApiError::bad_request("the agreement's signing time is not now"));
        }
        let terms = CreditTerms {
            person_id: caller.person_id.clone(),
            device_id: caller.device_id.clone(),
            limit: req.limit_fen,
            term_days: req.term_days,
            signed_at_ms: req.signed_at_ms,
        };
        let device = self.device(&caller.device_id)?.ok_or_else(|| ApiError::internal("caller's device vanished"))?;
        let signature = B64.decode(&req.signature).map_err(|_| ApiError::bad_request("signature is not base64url"))?;
        terms.verify(&device.public_key, &signature).map_err(|_| {
            ApiError::unauthorized(
                PlatformCode::SignatureInvalid,
                "the agreement's signature does not verify for this device",
            )
        })?;
        let _lock = self.lock()?;
        let mut record = self.credit_record(&caller.person_id)?;
        if req.limit_fen < record.used() {
            return Err(conflict(PlatformCode::CreditLimitExceeded, "the new limit is below what is used"));
        }
        record.terms = Some(terms);
        record.signature = req.signature.clone();
        self.tree("credit")?.insert(caller.person_id.as_bytes(), serde_json::to_vec(&record)?)?;
        drop(_lock);
        self.commit().await?;
        self.credit_line(&caller.person_id)
    }

    /// Repays drawn credit from a card (oldest draw first), idempotent by key.
    pub async fn repay_credit(
        self: &Arc<Self>,
        caller: &Caller,
        key: &str,
        req: &wire::CreditRepayRequest,
    ) -> ApiResult<wire::CreditLine> {
        caller.own()?;
        check_idempotency_key(key).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let Channel::Card(card) = Channel::parse(&req.channel).map_err(|e| ApiError::bad_request(e.to_string()))?
        else {
            return Err(ApiError::bad_request("credit is repaid with a card"));
        };
        // A key already applied is answered first (a resend after a lost answer), whatever is
        // owed now; the same key with another body is refused.
        let auth_key = format!("repay-{}-{key}", caller.person_id);
        let fingerprint = format!("{}|{}", req.channel, req.amount_fen.0).into_bytes();
        let applied = self.tree("credit_repayments")?;
        if let Some(done) = applied.get(&auth_key)? {
            if done.as_ref() != fingerprint.as_slice() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    PlatformCode::IdempotencyKeyReused,
                    "this idempotency key was used with another repayment",
                ));
            }
            return self.credit_line(&caller.person_id);
        }
        let owed: i64 =
            self.credit_record(&caller.person_id)?.draws.iter().map(|d| d.amount_fen.0 - d.repaid_fen.0).sum();
        if req.amount_fen.0 <= 0 || req.amount_fen.0 > owed {
            return Err(conflict(PlatformCode::Conflict, format!("{} is owed", Fen(owed))));
        }
        let channel = self.channel()?;
        let request =
            AuthoriseRequest { key: auth_key.clone(), card, amount_fen: req.amount_fen, reference: auth_key.clone() };
        let auth = match channel.authorise(&request).await {
            ChannelAnswer::Done(a) if a.status == AuthStatus::Authorised || a.status == AuthStatus::Captured => a,
            ChannelAnswer::Done(a) => {
                return Err(conflict(
                    PlatformCode::Conflict,
                    decline_message(a.decline_code.as_deref().unwrap_or("declined")),
                ))
            }
            ChannelAnswer::Refused(why) => return Err(ApiError::bad_request(why)),
            ChannelAnswer::Unknown(_) => {
                return Err(conflict(
                    PlatformCode::IdempotencyInProgress,
                    "the bank did not answer; retry with the same key",
                ))
            }
        };
        if auth.status != AuthStatus::Captured {
            match channel.capture(&auth_key).await {
                ChannelAnswer::Done(a) if a.status == AuthStatus::Captured => {}
                _ => return Err(conflict(PlatformCode::Conflict, "the card was declined; nothing was repaid")),
            }
        }
        let _lock = self.lock()?;
        if applied.get(&auth_key)?.is_none() {
            let mut record = self.credit_record(&caller.person_id)?;
            let mut left = req.amount_fen.0;
            for draw in &mut record.draws {
                let open = draw.amount_fen.0 - draw.repaid_fen.0;
                let pay = open.min(left);
                draw.repaid_fen = Fen(draw.repaid_fen.0 + pay);
                left -= pay;
            }
            let credit = self.tree("credit")?;
            (&credit, &applied)
                .transaction(|(credit, applied)| {
                    credit.insert(caller.person_id.as_bytes(), serde_json::to_vec(&record).map_err(abort)?)?;
                    applied.insert(auth_key.as_bytes(), fingerprint.as_slice())?;
                    Ok::<_, ConflictableTransactionError<Abort>>(())
                })
                .map_err(abort_error)?;
        }
        drop(_lock);
        self.commit().await?;
        self.credit_line(&caller.person_id)
    }

    /// Test-fixture role: set a person's personal account balance.
    pub async fn set_account_balance(self: &Arc<Self>, person_id: &str, balance: Fen) -> ApiResult<AccountRecord> {
        if balance.0 < 0 {
            return Err(ApiError::bad_request("a balance is not negative"));
        }
        let ((), _) = self.pay_tx(person_id, |v| {
            let mut account = v.account(person_id)?;
            account.account_balance = balance;
            put_tx(v.accounts, person_id, &account)?;
            Ok(((), None))
        })?;
        self.commit().await?;
        self.account(person_id)
    }

    /// Drops idempotency records past their keeping time whose payment is final.
    pub(crate) fn prune_idempotency(&self, now: i64) -> ApiResult<usize> {
        let tree = self.tree("idempotency")?;
        let mut dropped = 0;
        for item in tree.iter() {
            let (k, v) = item?;
            let record: IdemRecord = serde_json::from_slice(&v)?;
            if now - record.created_at_ms < IDEMPOTENCY_KEEP_MS {
                continue;
            }
            let settled = match &record.payment_id {
                Some(id) => {
                    self.payment_record(id)?.is_none_or(|p| saga::is_final(p.step) || p.step == Step::PartlyRefunded)
                }
                None => true,
            };
            if settled {
                tree.remove(k)?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

/// The consent a cash-due request signs: the core's one rule (`consent::cash_due`), with the
/// parties from the payment and the caller.
pub fn cash_due_consent(
    record: &PaymentRecord,
    caller: &Caller,
    key: &str,
    channel: &str,
    amount: Fen,
    expires_at_ms: i64,
) -> carepass_core::domain::payment::Consent {
    let link_id = record.quote.link_id.clone().unwrap_or_default();
    let parties = carepass_core::domain::payment::consent::Parties {
        subject: &record.quote.subject,
        actor: &caller.person_id,
        device_id: &caller.device_id,
        link_id: &link_id,
    };
    carepass_core::domain::payment::consent::cash_due(
        &record.quote.bill_id,
        &record.payment_id,
        &parties,
        key,
        channel,
        amount,
        expires_at_ms,
    )
}

/// A bill's lines as settlement items (the bill's field names mapped, `docs/settlement.md` § 1).
pub fn settlement_items(bill: &Bill) -> Vec<SettlementItem> {
    bill.items
        .iter()
        .map(|i| SettlementItem {
            code: i.item_code.clone(),
            category: i.category,
            unit_price: i.unit_price_fen,
            quantity: i.quantity,
        })
        .collect()
}

fn quoted_items(s: &Settlement) -> Vec<SettlementItem> {
    s.lines
        .iter()
        .map(|l| SettlementItem {
            code: l.code.clone(),
            category: l.category,
            unit_price: l.unit_price,
            quantity: l.quantity,
        })
        .collect()
}

/// The split standing after a full refund: nothing.
fn zero_settlement(like: &Settlement) -> Settlement {
    Settlement {
        total: Fen::ZERO,
        fund: Fen::ZERO,
        personal_account: Fen::ZERO,
        mutual_aid: Fen::ZERO,
        cash: Fen::ZERO,
        first_self_pay: Fen::ZERO,
        out_of_scope: Fen::ZERO,
        eligible: Fen::ZERO,
        deductible_applied: Fen::ZERO,
        lines: Vec::new(),
        ..like.clone()
    }
}

/// A decline code in words.
pub fn decline_message(code: &str) -> String {
    match code {
        "insufficient_funds" => "the card has insufficient funds; nothing was charged".into(),
        "processing_error" => "the bank could not process the card; nothing was charged".into(),
        "card_declined" => "the card was declined".into(),
        "authentication_failed" => "the bank's confirmation code was wrong too often; nothing was charged".into(),
        other => format!("the card was declined ({other}); nothing was charged"),
    }
}
