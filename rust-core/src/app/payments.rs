//! The mixed-payment flow on the phone (`docs/payments.md`): quote a bill, check the quote
//! against the bill the phone holds, sign the consent, and pay — exactly once, whatever
//! happens to the phone, the network or the platform.
//!
//! The one rule that makes it so: **the idempotency key and the exact request are stored
//! durably before the request is sent** (an *intent*). An answer settles the intent; no
//! answer (a timeout, a dropped connection, a 5xx, a 409 "in progress") leaves it open, and
//! the phone sends the same key and the same bytes again later ([`CarePass::resume_payments`],
//! also run before every new payment and after every inbox sync) until the platform answers.
//! A new payment for a bill is refused while an earlier one's outcome is unknown: a second
//! key could charge twice.
//!
//! Receipts are verified offline against the platform's receipt keys, kept in the vault.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::Method;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::session::{core_closed, session_ended, Actor};
use super::streams::{spawn, stream, CoreStream, Sink};
use super::CarePass;
use crate::app::error::{CoreError, CoreResult};
use crate::domain::bills::Bill;
use crate::domain::family::Scope;
use crate::domain::payment::consent::{self, ConsentError, Parties, CASH_DUE_CONSENT_TTL_MS};
use crate::domain::payment::quote::{check_quote, Expected};
use crate::domain::payment::receipt::{self, Receipt, ReceiptError};
use crate::domain::payment::{Channel, PaymentStatus, Quote, QuoteRefusal, SignedReceipt};
use crate::domain::{check_id, Field, InvalidInput};
use crate::io::net::NetError;
use crate::wire::{self, CashDueRequest, ConfirmRequest, PayRequest, Payment, PlatformCode, QuoteRequest};

const QUOTE_PREFIX: &str = "pay/quote/";
const PAYMENT_PREFIX: &str = "pay/payment/";
const INTENT_PREFIX: &str = "pay/intent/";
const KEY_RECEIPT_KEYS: &str = "receipt-keys";

/// What the patient chose for a quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteOptions {
    /// Let the personal account pay the patient's share first.
    pub use_account: bool,
    /// How the cash part is paid (ignored when there is none).
    pub channel: Channel,
    /// Acting for a relative: let your own personal account pay what theirs leaves
    /// (家庭共济, where the family rules allow it).
    pub mutual_aid: bool,
}

/// A request stored before it is sent: replayed with the same key and bytes until answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Intent {
    pub key: String,
    pub subject: String,
    pub bill_id: String,
    /// The platform path it is sent to.
    pub path: String,
    /// The exact body.
    pub body: serde_json::Value,
    pub created_at_ms: i64,
    pub state: IntentState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum IntentState {
    /// Sent (or about to be), no answer seen.
    Open,
    /// The platform answered with this payment.
    Answered { payment_id: String },
    /// The platform refused the request (nothing was done).
    Refused { code: String, message: String },
}

/// A receipt after its signature and its own checks passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    pub receipt: Receipt,
    pub signed: SignedReceipt,
}

/// How one send of an intent ended.
enum Sent {
    Answered(Box<Payment>),
    /// No answer: the intent stays open.
    Unknown(CoreError),
    Refused(CoreError),
}

/// Crash points of the phone's side, for the kill tests (debug builds only): with
/// `CAREPASS_CRASH_AT=<name>` in the environment, the process aborts there.
pub fn crash_point(name: &str) {
    if cfg!(debug_assertions) && std::env::var("CAREPASS_CRASH_AT").as_deref() == Ok(name) {
        eprintln!("carepass: crash point {name}");
        std::process::abort();
    }
}

pub(super) fn new_key(prefix: &str) -> CoreResult<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| crate::domain::crypto::KeyError::Platform("no system randomness".into()))?;
    Ok(format!("{prefix}{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

fn consent_error(e: ConsentError) -> CoreError {
    match e {
        ConsentError::Invalid(e) => CoreError::InvalidInput(e),
        ConsentError::TooLong => InvalidInput::new(Field::Payload, "a consent field is longer than 255 bytes").into(),
        ConsentError::Key(e) => CoreError::Key(e),
    }
}

/// Whether an error means the request may or may not have been done. A 429 is a refusal:
/// the platform looks at its limits only after answering a key it has done with the stored
/// answer, so a limited request was not done (`docs/payments.md` § Limits).
pub(super) fn outcome_unknown(e: &CoreError) -> bool {
    match e {
        CoreError::Net(NetError::Timeout | NetError::Network(_) | NetError::Undecodable(_)) => true,
        CoreError::Net(NetError::Platform { status, code, .. }) => {
            *status >= 500 || *code == PlatformCode::IdempotencyInProgress
        }
        _ => false,
    }
}

impl CarePass {
    /// Asks the platform to pre-settle a bill (`None`: the signed-in person's) and checks the
    /// answer against the bill on the phone before anyone sees it: the split's invariants,
    /// every line, the legs, the parties, the bill's state, the lifetime. The quote is kept
    /// on the phone; [`CarePass::pay`] pays exactly what it says.
    pub async fn quote(&self, bill_id: &str, options: &QuoteOptions, subject: Option<&str>) -> CoreResult<Quote> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::PayBills)?;
        check_id(Field::BillId, bill_id)?;
        {
            // An earlier request for this bill without an answer is settled first: it may
            // have paid the bill (then the platform says so), or it is still unknown (then no
            // new payment may start).
            let _serial = self.payment_lock.lock().await;
            self.settle_open_intents(&actor, Some(bill_id)).await?;
        }
        let mut bill = self.local_bill(&actor, &subject, bill_id).await?;
        let request = QuoteRequest {
            use_account: options.use_account,
            channel: options.channel.clone(),
            mutual_aid: options.mutual_aid,
        };
        let path = format!("v1/bills/{bill_id}/quotes");
        let quote: Quote = self.authed(&actor, &subject, Method::POST, &path, Some(&request)).await?;
        let expected = Expected { subject: &subject, actor: &actor.person_id, device_id: &actor.device_id };
        let now = self.client.server_now_ms();
        if let Err(first) = check_quote(&quote, &bill, &expected, now) {
            // The phone's copy of the bill may be behind the platform's: sync once, check again.
            if !matches!(first, QuoteRefusal::BillMismatch(_) | QuoteRefusal::NotPayable(_)) {
                return Err(CoreError::QuoteRefused(first));
            }
            self.sync_inbox().await?;
            bill = self.local_bill(&actor, &subject, bill_id).await?;
            check_quote(&quote, &bill, &expected, now).map_err(CoreError::QuoteRefused)?;
        }
        if quote.mutual_aid != options.mutual_aid {
            return Err(CoreError::QuoteRefused(QuoteRefusal::Legs("mutual aid differs from what was asked")));
        }
        let held = self.hold()?;
        let section = held.section(&Self::section_name(&actor, &subject))?;
        for (key, old) in section.scan::<Quote>(QUOTE_PREFIX)? {
            if old.expires_at_ms <= now {
                section.remove(&key)?;
            }
        }
        section.put(&format!("{QUOTE_PREFIX}{}", quote.quote_id), &quote)?;
        Ok(quote)
    }

    /// The bill from the phone's inbox, pulling once if the phone has not seen it yet.
    async fn local_bill(&self, actor: &Actor, subject: &str, bill_id: &str) -> CoreResult<Bill> {
        if let Some(bill) = self.bill_of(actor, subject, bill_id)? {
            return Ok(bill);
        }
        self.sync_inbox().await?;
        self.bill_of(actor, subject, bill_id)?
            .ok_or_else(|| InvalidInput::new(Field::BillId, "no such bill for this person").into())
    }

    fn bill_of(&self, actor: &Actor, subject: &str, bill_id: &str) -> CoreResult<Option<Bill>> {
        let held = self.hold()?;
        Ok(super::inbox::Inbox::new(&held, &actor.person_id).bill(subject, bill_id, self.client.server_now_ms())?)
    }

    /// Pays a quote the phone holds: signs the consent to its amounts with the device key,
    /// stores the request with a new idempotency key (durably) and only then sends it.
    ///
    /// A declined card is an answer (the payment comes back `failed`, nothing charged). No
    /// answer is [`CoreError::PaymentOutcomeUnknown`]: the phone re-sends the same request
    /// until the platform answers, and refuses another payment of the bill until then.
    pub async fn pay(&self, quote_id: &str, subject: Option<&str>) -> CoreResult<Payment> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::PayBills)?;
        check_id(Field::QuoteId, quote_id)?;
        let quote: Quote = {
            let held = self.hold()?;
            held.section(&Self::section_name(&actor, &subject))?.get(&format!("{QUOTE_PREFIX}{quote_id}"))?.ok_or_else(
                || InvalidInput::new(Field::QuoteId, "no such quote on this phone; ask for a quote first"),
            )?
        };
        if self.client.server_now_ms() >= quote.expires_at_ms {
            return Err(CoreError::QuoteRefused(QuoteRefusal::Expired));
        }
        // One payment at a time in this process; across processes the platform's idempotency
        // record and the bill's state refuse a second one.
        let _serial = self.payment_lock.lock().await;
        let earlier = self.settle_open_intents(&actor, Some(&quote.bill_id)).await?;
        // A resend of an earlier request that paid (or is paying) the bill is the answer: a
        // new request would only be refused, and the patient should hear what happened.
        if let Some(paid) = earlier.into_iter().rev().find(|p| p.status != PaymentStatus::Failed) {
            return Ok(paid);
        }
        let key = new_key("pay_")?;
        let consent = quote.consent(&key);
        let signature = consent.sign(self.keys.as_ref()).map_err(consent_error)?;
        let request = PayRequest::new(&consent, &signature);
        let intent = Intent {
            key: key.clone(),
            subject: subject.clone(),
            bill_id: quote.bill_id.clone(),
            path: "v1/payments".into(),
            body: serde_json::to_value(&request).map_err(|e| NetError::Undecodable(e.to_string()))?,
            created_at_ms: self.client.server_now_ms(),
            state: IntentState::Open,
        };
        self.store_intent(&actor, &intent)?;
        crash_point("pay:key-stored");
        match self.send_intent(&actor, &intent).await? {
            Sent::Answered(payment) => Ok(*payment),
            Sent::Unknown(_) => Err(CoreError::PaymentOutcomeUnknown { bill_id: quote.bill_id }),
            Sent::Refused(e) => Err(e),
        }
    }

    /// Pays the cash still due on a payment (the insurance paid; the card was declined at
    /// capture) from another card, under a new idempotency key stored before sending.
    pub async fn pay_cash_due(
        &self,
        payment_id: &str,
        channel: &Channel,
        subject: Option<&str>,
    ) -> CoreResult<Payment> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::PayBills)?;
        check_id(Field::PaymentId, payment_id)?;
        if !matches!(channel, Channel::Card(_)) {
            return Err(InvalidInput::new(Field::PaymentChannel, "the cash still due is paid with a card").into());
        }
        let payment = self.payment(payment_id, Some(&subject)).await?;
        if payment.status != PaymentStatus::CashDue {
            return Err(CoreError::Net(NetError::Platform {
                status: 409,
                code: PlatformCode::BillNotPayable,
                message: format!("no cash is due on this payment (it is {:?})", payment.status),
                retry_after_s: None,
            }));
        }
        let _serial = self.payment_lock.lock().await;
        self.settle_open_intents(&actor, Some(&payment.bill_id)).await?;
        let key = new_key("due_")?;
        let link = payment.link_id.clone().unwrap_or_default();
        let parties =
            Parties { subject: &subject, actor: &actor.person_id, device_id: &actor.device_id, link_id: &link };
        let expires_at_ms = self.client.server_now_ms().saturating_add(CASH_DUE_CONSENT_TTL_MS);
        let consent = consent::cash_due(
            &payment.bill_id,
            payment_id,
            &parties,
            &key,
            &channel.wire(),
            payment.cash.due_fen,
            expires_at_ms,
        );
        let signature = consent.sign(self.keys.as_ref()).map_err(consent_error)?;
        let request = CashDueRequest {
            channel: channel.wire(),
            amount_fen: payment.cash.due_fen,
            expires_at_ms,
            signature: B64.encode(signature),
        };
        let intent = Intent {
            key,
            subject: subject.clone(),
            bill_id: payment.bill_id.clone(),
            path: format!("v1/payments/{payment_id}/cash"),
            body: serde_json::to_value(&request).map_err(|e| NetError::Undecodable(e.to_string()))?,
            created_at_ms: self.client.server_now_ms(),
            state: IntentState::Open,
        };
        self.store_intent(&actor, &intent)?;
        crash_point("cash:key-stored");
        match self.send_intent(&actor, &intent).await? {
            Sent::Answered(payment) => Ok(*payment),
            Sent::Unknown(_) => Err(CoreError::PaymentOutcomeUnknown { bill_id: payment.bill_id }),
            Sent::Refused(e) => Err(e),
        }
    }

    /// Sends every request whose answer the phone has not seen (after a crash, a timeout, a
    /// lost connection) again, with its key and bytes; returns the payments that got an
    /// answer. Requests that still get none stay stored for the next try.
    pub async fn resume_payments(&self) -> CoreResult<Vec<Payment>> {
        let actor = self.actor()?;
        let _serial = self.payment_lock.lock().await;
        self.settle_open_intents(&actor, None).await
    }

    /// [`Self::resume_payments`] unless a payment is being made or resumed right now (then
    /// that one settles them).
    pub(crate) async fn resume_payments_if_idle(&self) -> CoreResult<()> {
        let actor = self.actor()?;
        if self.open_intents(&actor)?.is_empty() {
            return Ok(());
        }
        let Ok(_serial) = self.payment_lock.try_lock() else { return Ok(()) };
        self.settle_open_intents(&actor, None).await.map(|_| ())
    }

    /// Re-sends the open intents (of one bill, or all); refuses to go on when one of `bill`
    /// still has no answer. The caller holds the payment lock.
    async fn settle_open_intents(&self, actor: &Actor, bill: Option<&str>) -> CoreResult<Vec<Payment>> {
        let mut answered = Vec::new();
        for intent in self.open_intents(actor)? {
            if bill.is_some_and(|b| b != intent.bill_id) {
                continue;
            }
            match self.send_intent(actor, &intent).await? {
                Sent::Answered(payment) => answered.push(*payment),
                Sent::Refused(_) => {}
                Sent::Unknown(e) => {
                    if bill.is_some() {
                        log::info!(target: "carepass::payments", "an earlier payment's outcome is still unknown: {e}");
                        return Err(CoreError::PaymentOutcomeUnknown { bill_id: intent.bill_id });
                    }
                }
            }
        }
        Ok(answered)
    }

    pub(super) fn actor_section_name(actor: &Actor) -> String {
        Self::section_name(actor, &actor.person_id)
    }

    fn store_intent(&self, actor: &Actor, intent: &Intent) -> CoreResult<()> {
        let held = self.hold()?;
        held.section(&Self::actor_section_name(actor))?.put(&format!("{INTENT_PREFIX}{}", intent.key), intent)?;
        held.flush()?;
        Ok(())
    }

    pub(crate) fn open_intents(&self, actor: &Actor) -> CoreResult<Vec<Intent>> {
        let held = self.hold()?;
        let mut open: Vec<Intent> = held
            .section(&Self::actor_section_name(actor))?
            .scan::<Intent>(INTENT_PREFIX)?
            .into_iter()
            .map(|(_, i)| i)
            .filter(|i| i.state == IntentState::Open)
            .collect();
        open.sort_by_key(|i| i.created_at_ms);
        Ok(open)
    }

    /// Whether a payment's answer is still owed to this phone (for the shells' "resuming").
    pub fn payments_unresolved(&self) -> CoreResult<usize> {
        let actor = self.actor()?;
        Ok(self.open_intents(&actor)?.len())
    }

    /// One send of an intent; the answer (or the refusal) is stored before it is returned.
    async fn send_intent(&self, actor: &Actor, intent: &Intent) -> CoreResult<Sent> {
        let answer: CoreResult<Payment> = self
            .authed_keyed(actor, &intent.subject, Method::POST, &intent.path, Some(&intent.body), Some(&intent.key))
            .await;
        let (sent, state) = match answer {
            Ok(payment) => {
                self.check_payment(actor, intent, &payment)?;
                let state = IntentState::Answered { payment_id: payment.payment_id.clone() };
                (Sent::Answered(Box::new(payment)), state)
            }
            Err(e) if outcome_unknown(&e) => return Ok(Sent::Unknown(e)),
            Err(CoreError::Net(NetError::Platform { status, code, message, retry_after_s })) => {
                let state = IntentState::Refused { code: code.as_str().to_string(), message: message.clone() };
                (Sent::Refused(CoreError::Net(NetError::Platform { status, code, message, retry_after_s })), state)
            }
            // The platform refused it under a family rule: an answer like any refusal, so the
            // request is never sent again (a later link must not revive it).
            Err(CoreError::Family(refusal)) => {
                let state = IntentState::Refused {
                    code: crate::wire::PlatformCode::FamilyRefused.as_str().to_string(),
                    message: format!("{}: {refusal}", refusal.code()),
                };
                (Sent::Refused(CoreError::Family(refusal)), state)
            }
            // Not signed in, session over, store failures: nothing was sent or nothing known.
            Err(e) => return Err(e),
        };
        let held = self.hold()?;
        let mut stored = intent.clone();
        stored.state = state;
        if let Sent::Answered(payment) = &sent {
            held.section(&Self::section_name(actor, &payment.subject))?
                .put(&format!("{PAYMENT_PREFIX}{}", payment.payment_id), payment)?;
        }
        held.section(&Self::actor_section_name(actor))?.put(&format!("{INTENT_PREFIX}{}", intent.key), &stored)?;
        held.flush()?;
        crash_point("pay:answered");
        Ok(sent)
    }

    /// A payment answer must be about the bill and the people the request was.
    fn check_payment(&self, actor: &Actor, intent: &Intent, payment: &Payment) -> CoreResult<()> {
        let bad = |what: &str| CoreError::Net(NetError::Undecodable(format!("the payment answer is for {what}")));
        if payment.bill_id != intent.bill_id {
            return Err(bad("another bill"));
        }
        if payment.subject != intent.subject {
            return Err(bad("another patient"));
        }
        if payment.actor != actor.person_id {
            return Err(bad("another payer"));
        }
        check_id(Field::PaymentId, &payment.payment_id)
            .map_err(|_| NetError::Undecodable("the payment id is not an id".into()))?;
        Ok(())
    }

    /// A payment as the platform has it now (kept on the phone).
    pub async fn payment(&self, payment_id: &str, subject: Option<&str>) -> CoreResult<Payment> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::PayBills)?;
        check_id(Field::PaymentId, payment_id)?;
        let path = format!("v1/payments/{payment_id}");
        let payment: Payment = self.authed(&actor, &subject, Method::GET, &path, None::<&()>).await?;
        if payment.payment_id != payment_id || payment.subject != subject {
            return Err(NetError::Undecodable("the platform answered with another payment".into()).into());
        }
        self.keep_payment(&actor, &payment)?;
        Ok(payment)
    }

    fn keep_payment(&self, actor: &Actor, payment: &Payment) -> CoreResult<()> {
        let held = self.hold()?;
        held.section(&Self::section_name(actor, &payment.subject))?
            .put(&format!("{PAYMENT_PREFIX}{}", payment.payment_id), payment)?;
        held.flush()?;
        drop(held);
        let _ = self.payment_touched.send(payment.payment_id.clone());
        Ok(())
    }

    /// A payment now (as stored, or from the platform when the phone has none), then again
    /// each time it changes: stored here by a call (pay, confirmation, cash due, a resend), or
    /// moved at the platform — the live connection (or a doorbell) tells the phone its bill
    /// changed, and the stream asks the platform for the payment once. No polling. Ends with
    /// `NotSignedIn`/`SessionExpired` when the session ends and `Closed` when the core closes;
    /// the listener stops it when it has seen the state it waits for.
    pub fn payment_stream(self: &Arc<Self>, payment_id: &str, subject: Option<&str>) -> CoreStream<Payment> {
        let core = Arc::downgrade(self);
        let mut touched = self.inbox_touched.subscribe();
        let mut stored = self.payment_touched.subscribe();
        let mut session = self.session.subscribe();
        let mut closed = self.closed.subscribe();
        let payment_id = payment_id.to_string();
        let subject = subject.map(str::to_string);
        stream(move |sink: Sink<Payment>| async move {
            let (actor, subject, first) = {
                let core = core.upgrade().ok_or(CoreError::Closed)?;
                let actor = core.actor()?;
                let subject = core.subject_of(&actor, subject.as_deref(), Scope::PayBills)?;
                check_id(Field::PaymentId, &payment_id)?;
                let first = match core.stored_payment(&actor, &subject, &payment_id)? {
                    Some(p) => p,
                    None => core.payment(&payment_id, Some(&subject)).await?,
                };
                (actor, subject, first)
            };
            let mut shown = first.clone();
            if !sink.send(first).await {
                return Ok(());
            }
            let (ended_tx, mut ended) = tokio::sync::oneshot::channel::<CoreError>();
            let live_core = core.clone();
            let live_actor = actor.clone();
            let _live = spawn(async move {
                if let Err(e) = super::bills::live_connection(live_core, live_actor).await {
                    let _ = ended_tx.send(e);
                }
            });
            loop {
                let now = tokio::select! {
                    touch = touched.recv() => match touch {
                        // Another subject's bills, or other bills of this subject: nothing to ask.
                        Ok(t) if t.subject != subject || t.bills.as_ref().is_some_and(|ids| !ids.contains(&shown.bill_id)) => {
                            continue
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let Some(core) = core.upgrade() else { return Err(CoreError::Closed) };
                            // The bill moved; the payment may have. A failed ask is not the
                            // end of the stream: the next change asks again.
                            match core.payment(&payment_id, Some(&subject)).await {
                                Ok(p) => p,
                                Err(e @ (CoreError::SessionExpired | CoreError::NotSignedIn | CoreError::Closed)) => return Err(e),
                                Err(e) => {
                                    log::info!(target: "carepass::payments", "payment {payment_id} not refreshed: {e}");
                                    continue;
                                }
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return Err(CoreError::Closed),
                    },
                    id = stored.recv() => match id {
                        Ok(id) if id != payment_id => continue,
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let Some(core) = core.upgrade() else { return Err(CoreError::Closed) };
                            match core.stored_payment(&actor, &subject, &payment_id)? {
                                Some(p) => p,
                                None => continue,
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return Err(CoreError::Closed),
                    },
                    error = &mut ended => return Err(error.unwrap_or(CoreError::Closed)),
                    ended = session_ended(&mut session) => return Err(ended),
                    _ = core_closed(&mut closed) => return Err(CoreError::Closed),
                    _ = sink.closed() => return Ok(()),
                };
                if now != shown {
                    shown = now.clone();
                    if !sink.send(now).await {
                        return Ok(());
                    }
                }
            }
        })
    }

    fn stored_payment(&self, actor: &Actor, subject: &str, payment_id: &str) -> CoreResult<Option<Payment>> {
        Ok(self.hold()?.section(&Self::section_name(actor, subject))?.get(&format!("{PAYMENT_PREFIX}{payment_id}"))?)
    }

    /// The payments the phone knows of for a subject, newest first (no network).
    pub fn payments(&self, subject: Option<&str>) -> CoreResult<Vec<Payment>> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::PayBills)?;
        let held = self.hold()?;
        let mut all: Vec<Payment> = held
            .section(&Self::section_name(&actor, &subject))?
            .scan::<Payment>(PAYMENT_PREFIX)?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        all.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then_with(|| a.payment_id.cmp(&b.payment_id)));
        Ok(all)
    }

    /// The bank's second confirmation (the code it sent the patient).
    pub async fn confirm_payment(&self, payment_id: &str, code: &str, subject: Option<&str>) -> CoreResult<Payment> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::PayBills)?;
        check_id(Field::PaymentId, payment_id)?;
        if code.is_empty() || code.len() > 16 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidInput::new(Field::VerificationCode, "the bank's code is 1 to 16 digits").into());
        }
        let path = format!("v1/payments/{payment_id}/confirmation");
        let request = ConfirmRequest { code: code.into() };
        let payment: Payment = self.authed(&actor, &subject, Method::POST, &path, Some(&request)).await?;
        self.keep_payment(&actor, &payment)?;
        Ok(payment)
    }

    /// The platform's receipt keys: from the vault, or fetched (and kept) when `refresh` or
    /// none is kept.
    async fn receipt_keys(&self, refresh: bool) -> CoreResult<HashMap<u16, Vec<u8>>> {
        let kept: Option<Vec<wire::ReceiptKey>> =
            if refresh { None } else { self.store.vault.get(KEY_RECEIPT_KEYS)? };
        let keys = match kept {
            Some(keys) => keys,
            None => {
                let keys: Vec<wire::ReceiptKey> = self.client.get("v1/receipts/keys", None).await?;
                self.store.vault.put(KEY_RECEIPT_KEYS, &keys)?;
                keys
            }
        };
        keys.iter()
            .map(|k| {
                let bytes = B64
                    .decode(&k.public_key)
                    .map_err(|_| NetError::Undecodable("a receipt key is not base64url".into()))?;
                crate::domain::crypto::check_public_key(&bytes)
                    .map_err(|_| NetError::Undecodable("a receipt key is not a P-256 point".into()))?;
                Ok((k.key_id, bytes))
            })
            .collect()
    }

    /// Verifies a signed receipt against the platform's receipt keys (fetched once, then
    /// offline): signature, format, check code, amounts.
    pub async fn verify_receipt(&self, signed: &SignedReceipt) -> CoreResult<Receipt> {
        self.check_open()?;
        match receipt::verify(signed, &self.receipt_keys(false).await?) {
            Err(ReceiptError::UnknownKey) => Ok(receipt::verify(signed, &self.receipt_keys(true).await?)?),
            other => Ok(other?),
        }
    }

    /// Every receipt of a subject's payments on the phone, verified, newest first. A receipt
    /// that does not verify is an error naming why (it is never shown as valid).
    pub async fn receipts(&self, subject: Option<&str>) -> CoreResult<Vec<VerifiedReceipt>> {
        let mut out = Vec::new();
        for payment in self.payments(subject)? {
            for signed in payment.receipts {
                let receipt = self.verify_receipt(&signed).await?;
                out.push(VerifiedReceipt { receipt, signed });
            }
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.receipt.issued_at_ms));
        Ok(out)
    }
}
