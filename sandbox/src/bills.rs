//! The platform's side of pending bills (`docs/bills.md`): the clinic issues and cancels
//! bills; each change is one sled transaction that checks the state move, takes the
//! recipient's next log sequence, writes the bill and its log entry, and queues its doorbell
//! for each of the recipient's push tokens in the relay outbox (the stand-in for handing it to
//! FCM/APNs) — so a change, its sequence number and its doorbells land together or not at all.
//!
//! A change is *published* (served, streamed, counted in the log head) only once it is on
//! disk: [`Platform::publish`] runs after the handler's durable commit. Reads serve the
//! readable, durable prefix of a log after a cursor, with the log's epoch and head.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::bills::doorbell::{self, Doorbell};
use carepass_core::domain::bills::state::can_transition;
use carepass_core::domain::bills::{check_push_token, PushService, MAX_PUSH_TOKEN_LEN};
use carepass_core::wire::{self, Bill, BillItem, BillState, InboxEntry, InboxPage, PlatformCode};
use carepass_core::Fen;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;

/// Most items on one bill.
pub const MAX_ITEMS: usize = 200;
/// Push tokens a device may hold: one per push service it uses.
pub const MAX_PUSH_TOKENS_PER_DEVICE: usize = PushService::ALL.len();

/// One entry of a recipient's inbox log.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogEntry {
    /// The bill as it is after this change.
    bill: Bill,
    /// Not served before this time (test fixture for replication lag).
    readable_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutboxRecord {
    person_id: String,
    push: wire::RelayedPush,
}

/// A page of the relay outbox.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutboxPage {
    pub pushes: Vec<OutboxItem>,
    pub cursor: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutboxItem {
    pub n: u64,
    pub person_id: String,
    pub push: wire::RelayedPush,
}

/// A change written but not yet published: published by [`Platform::publish`] once the
/// write is durable.
#[derive(Debug, Clone)]
#[must_use = "a written change must be published after the durable commit"]
pub struct Change {
    pub person_id: String,
    pub seq: u64,
    pub readable_at_ms: i64,
}

/// Why a bill's (or a payment's) transaction stopped.
#[derive(Debug)]
pub(crate) enum Abort {
    NotFound,
    Refused(BillState, BillState),
    Data(String),
    /// A rule said no: answered as it is.
    Api(ApiError),
}

pub(crate) fn abort(e: impl std::fmt::Display) -> ConflictableTransactionError<Abort> {
    ConflictableTransactionError::Abort(Abort::Data(e.to_string()))
}

/// The trees of a bill change.
pub(crate) struct BillTrees {
    pub bills: sled::Tree,
    pub meta: sled::Tree,
    pub log: sled::Tree,
    pub outbox: sled::Tree,
}

/// Those trees inside a transaction.
pub(crate) struct StagedTrees<'a> {
    pub bills: &'a TransactionalTree,
    pub meta: &'a TransactionalTree,
    pub log: &'a TransactionalTree,
    pub outbox: &'a TransactionalTree,
}

/// The bill with this id, inside a transaction.
pub(crate) fn read_bill(
    bills: &TransactionalTree,
    bill_id: &str,
) -> Result<Option<Bill>, ConflictableTransactionError<Abort>> {
    match bills.get(bill_id)? {
        Some(v) => Ok(Some(serde_json::from_slice::<Bill>(&v).map_err(abort)?)),
        None => Ok(None),
    }
}

/// A failed transaction as the platform's answer.
pub(crate) fn abort_error(e: TransactionError<Abort>) -> ApiError {
    match e {
        TransactionError::Abort(Abort::NotFound) => {
            ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such bill")
        }
        TransactionError::Abort(Abort::Refused(from, to)) => ApiError::new(
            StatusCode::CONFLICT,
            PlatformCode::Conflict,
            format!("a {} bill cannot become {}", state_name(from), state_name(to)),
        ),
        TransactionError::Abort(Abort::Data(e)) => ApiError::internal(e),
        TransactionError::Abort(Abort::Api(e)) => e,
        TransactionError::Storage(e) => e.into(),
    }
}

impl Platform {
    /// Clinic role: issues a bill to the patient who owns `phone`.
    pub fn issue_bill(&self, req: &wire::IssueBillRequest) -> ApiResult<(Bill, Change)> {
        self.issue_bill_with(req, None)
    }

    /// Issues a bill, with the counter scan it came from (一码付) if any.
    pub fn issue_bill_with(
        &self,
        req: &wire::IssueBillRequest,
        counter: Option<carepass_core::wire::CounterScan>,
    ) -> ApiResult<(Bill, Change)> {
        let person = self.person_by_phone(&req.phone)?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no insured person has that phone")
        })?;
        if req.items.is_empty() || req.items.len() > MAX_ITEMS {
            return Err(ApiError::bad_request(format!("a bill has 1 to {MAX_ITEMS} items")));
        }
        for text in [&req.hospital, &req.department, &req.doctor] {
            if text.is_empty() || text.chars().count() > 100 {
                return Err(ApiError::bad_request("hospital, department and doctor are 1 to 100 characters"));
            }
        }
        let mut items = Vec::with_capacity(req.items.len());
        for item in &req.items {
            if item.quantity == 0 || item.unit_price_fen.0 < 0 || item.item_code.is_empty() || item.name.is_empty() {
                return Err(ApiError::bad_request("each item needs a code, a name, a quantity ≥ 1 and a price ≥ 0"));
            }
            let amount = item
                .unit_price_fen
                .checked_mul(item.quantity as i64)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            items.push(BillItem {
                item_code: item.item_code.clone(),
                name: item.name.clone(),
                category: item.category,
                quantity: item.quantity,
                unit_price_fen: item.unit_price_fen,
                amount_fen: amount,
            });
        }
        let total = Fen::sum(items.iter().map(|i| i.amount_fen)).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let now = self.now_ms();
        let due_minutes = req.due_in_minutes.unwrap_or(24 * 60).clamp(1, 30 * 24 * 60) as i64;
        let bill = Bill {
            bill_id: format!("bill_{}", self.random_hex(8)?),
            person_id: person.person_id.clone(),
            visit_id: format!("visit_{}", self.random_hex(6)?),
            hospital: req.hospital.clone(),
            department: req.department.clone(),
            doctor: req.doctor.clone(),
            items,
            total_fen: total,
            created_at_ms: now,
            due_at_ms: now.saturating_add(due_minutes * 60_000),
            state: BillState::Pending,
            updated_at_ms: now,
            visit_type: req.visit_type,
            payment: None,
            counter,
        };
        let readable_at_ms = now.saturating_add(i64::from(req.readable_after_ms.unwrap_or(0)));
        let (bill, change) =
            self.write_change(&bill.bill_id, &bill.person_id, readable_at_ms, |current| match current {
                None => Ok(bill.clone()),
                Some(_) => Err(Abort::Data("bill id collision".into())),
            })?;
        Ok((bill, change))
    }

    /// Moves a bill to `to` if the state machine allows it from the state it is in *now*:
    /// the check and the write are one transaction, so of two racing moves exactly one wins
    /// and the other is answered `409 conflict`.
    pub fn set_bill_state(&self, bill_id: &str, to: BillState) -> ApiResult<(Bill, Change)> {
        let person_id = self
            .bill(bill_id)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such bill"))?
            .person_id;
        let now = self.now_ms();
        self.write_change(bill_id, &person_id, now, |current| {
            let mut bill = current.ok_or(Abort::NotFound)?;
            if !can_transition(bill.state, to) {
                return Err(Abort::Refused(bill.state, to));
            }
            bill.state = to;
            bill.updated_at_ms = now;
            Ok(bill)
        })
    }

    pub fn bill(&self, bill_id: &str) -> ApiResult<Option<Bill>> {
        match self.tree("bills")?.get(bill_id)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// One change, atomically: `next` computes the bill after the change from the bill as it
    /// is inside the transaction (it may run more than once, on conflicts); the recipient's
    /// log sequence, the log entry, the bill and the doorbells for every registered push token
    /// are written together.
    fn write_change(
        &self,
        bill_id: &str,
        person_id: &str,
        readable_at_ms: i64,
        next: impl Fn(Option<Bill>) -> Result<Bill, Abort>,
    ) -> ApiResult<(Bill, Change)> {
        let trees = self.bill_trees(person_id)?;
        let tokens = self.doorbell_tokens(person_id)?;
        let issued_at_ms = self.now_ms();
        let result =
            (&trees.bills, &trees.meta, &trees.log, &trees.outbox).transaction(|(bills, meta, log, outbox)| {
                let current = read_bill(bills, bill_id)?;
                let bill = next(current).map_err(ConflictableTransactionError::Abort)?;
                let seq = self.stage_bill(
                    StagedTrees { bills, meta, log, outbox },
                    person_id,
                    &bill,
                    readable_at_ms,
                    issued_at_ms,
                    &tokens,
                )?;
                Ok((bill, seq))
            });
        match result {
            Ok((bill, seq)) => Ok((bill, Change { person_id: person_id.into(), seq, readable_at_ms })),
            Err(e) => Err(abort_error(e)),
        }
    }

    /// The trees one bill change touches.
    pub(crate) fn bill_trees(&self, person_id: &str) -> ApiResult<BillTrees> {
        Ok(BillTrees {
            bills: self.tree("bills")?,
            meta: self.tree("meta")?,
            log: self.tree(&format!("inbox/{person_id}"))?,
            outbox: self.tree("push_outbox")?,
        })
    }

    /// Inside a transaction: takes the recipient's next sequence and writes the bill, its log
    /// entry and its doorbells (one per push token). Returns the sequence.
    pub(crate) fn stage_bill(
        &self,
        t: StagedTrees<'_>,
        person_id: &str,
        bill: &Bill,
        readable_at_ms: i64,
        issued_at_ms: i64,
        tokens: &[(String, String)],
    ) -> Result<u64, ConflictableTransactionError<Abort>> {
        let counter = format!("inbox_seq/{person_id}");
        let seq = read_u64(t.meta.get(counter.as_bytes())?) + 1;
        t.meta.insert(counter.as_bytes(), &seq.to_be_bytes())?;
        t.bills.insert(bill.bill_id.as_bytes(), serde_json::to_vec(bill).map_err(abort)?)?;
        let entry = LogEntry { bill: bill.clone(), readable_at_ms };
        t.log.insert(&seq.to_be_bytes(), serde_json::to_vec(&entry).map_err(abort)?)?;
        if !tokens.is_empty() {
            let bell = Doorbell { key_id: self.push_key().key_id, recipient: person_id.into(), seq, issued_at_ms };
            let data = self.sign_doorbell(&bell).map_err(|e| abort(e.message))?;
            let mut n = read_u64(t.meta.get("push_outbox_n")?);
            for (service, token) in tokens {
                n += 1;
                let record = OutboxRecord {
                    person_id: person_id.into(),
                    push: wire::RelayedPush { service: service.clone(), token: token.clone(), data: data.clone() },
                };
                t.outbox.insert(&n.to_be_bytes(), serde_json::to_vec(&record).map_err(abort)?)?;
            }
            t.meta.insert("push_outbox_n", &n.to_be_bytes())?;
        }
        Ok(seq)
    }

    /// Publishes a durable change: the log head moves, live streams wake (again when the
    /// change becomes readable, for the replication-lag fixture).
    pub fn publish(self: &Arc<Self>, change: Change) {
        self.note_durable(&change.person_id, change.seq);
        self.wake_streams(&change.person_id);
        let delay = change.readable_at_ms - self.now_ms();
        if delay > 0 {
            let platform = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay as u64)).await;
                platform.wake_streams(&change.person_id);
            });
        }
    }

    /// The push data map of a doorbell, signed with the platform's push key.
    pub fn sign_doorbell(&self, bell: &Doorbell) -> ApiResult<BTreeMap<String, String>> {
        let message = doorbell::signed_bytes(bell.key_id, &bell.recipient, bell.seq, bell.issued_at_ms);
        let signature = self.push_key().sign(&message).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(doorbell::to_data(bell, &signature))
    }

    /// The readable, durable prefix of the recipient's log after `after`, at most `limit`
    /// entries, with the log's epoch and head.
    pub fn inbox_page(&self, person_id: &str, after: u64, limit: usize) -> ApiResult<InboxPage> {
        let log = self.tree(&format!("inbox/{person_id}"))?;
        let head = self.durable_head(person_id, &log)?;
        let now = self.now_ms();
        let mut entries = Vec::new();
        let mut more = false;
        if after < head {
            for item in log.range((after + 1).to_be_bytes()..=head.to_be_bytes()) {
                let (k, v) = item?;
                let entry: LogEntry = serde_json::from_slice(&v)?;
                if entry.readable_at_ms > now {
                    break; // later entries wait for this one: the readable part is a prefix
                }
                if entries.len() == limit {
                    more = true;
                    break;
                }
                let seq = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| ApiError::internal("bad log key"))?);
                entries.push(InboxEntry { seq, bill: entry.bill });
            }
        }
        let cursor = entries.last().map(|e| e.seq).unwrap_or(after);
        Ok(InboxPage { entries, cursor, more, epoch: self.epoch().to_string(), head })
    }

    /// Registers a device's push token. One token per push service and device: a new one
    /// replaces the old, so a device holds at most one per service.
    pub fn register_push_token(&self, person_id: &str, device_id: &str, service: &str, token: &str) -> ApiResult<()> {
        let service = check_push_token(service, token).map_err(|e| ApiError::bad_request(e.to_string()))?;
        debug_assert!(token.len() <= MAX_PUSH_TOKEN_LEN);
        let key = format!("{person_id}\0{device_id}\0{}", service.name());
        self.tree("push_tokens")?.insert(key.as_bytes(), token.as_bytes())?;
        Ok(())
    }

    /// Forgets every push token of a device (a revoked device gets no doorbells).
    pub(crate) fn drop_push_tokens(&self, person_id: &str, device_id: &str) -> ApiResult<usize> {
        let tree = self.tree("push_tokens")?;
        let prefix = format!("{person_id}\0{device_id}\0");
        let mut dropped = 0;
        for item in tree.scan_prefix(prefix.as_bytes()) {
            let (k, _) = item?;
            tree.remove(k)?;
            dropped += 1;
        }
        Ok(dropped)
    }

    /// (service, token) of every device of the person.
    pub(crate) fn push_tokens(&self, person_id: &str) -> ApiResult<Vec<(String, String)>> {
        let prefix = format!("{person_id}\0");
        let mut out = Vec::new();
        for item in self.tree("push_tokens")?.scan_prefix(prefix.as_bytes()) {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            if let Some(service) = key.rsplit('\0').next() {
                out.push((service.to_string(), String::from_utf8_lossy(&v).into_owned()));
            }
        }
        Ok(out)
    }

    /// The relay outbox after `after`, optionally for one recipient.
    pub fn outbox(&self, after: u64, person_id: Option<&str>, limit: usize) -> ApiResult<OutboxPage> {
        let mut pushes = Vec::new();
        let mut cursor = after;
        let start = after.saturating_add(1);
        if start > after {
            for item in self.tree("push_outbox")?.range(start.to_be_bytes()..) {
                let (k, v) = item?;
                let n = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| ApiError::internal("bad outbox key"))?);
                cursor = n;
                let record: OutboxRecord = serde_json::from_slice(&v)?;
                if person_id.is_none_or(|p| p == record.person_id) {
                    pushes.push(OutboxItem { n, person_id: record.person_id, push: record.push });
                    if pushes.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok(OutboxPage { pushes, cursor })
    }

    pub fn push_keys(&self) -> Vec<wire::PushKey> {
        let key = self.push_key();
        vec![wire::PushKey { key_id: key.key_id, public_key: B64.encode(key.public_key()) }]
    }
}

pub(crate) fn read_u64(v: Option<sled::IVec>) -> u64 {
    v.and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)).unwrap_or(0)
}

pub(crate) fn state_name(s: BillState) -> &'static str {
    match s {
        BillState::Pending => "pending",
        BillState::Paying => "paying",
        BillState::Paid => "paid",
        BillState::Failed => "failed",
        BillState::Expired => "expired",
        BillState::Cancelled => "cancelled",
        BillState::Refunded => "refunded",
        BillState::CashDue => "cash_due",
        BillState::PartlyRefunded => "partly_refunded",
    }
}
