//! The platform's side of pending bills: the clinic issues and cancels bills; each change
//! appends an entry to the recipient's inbox log with a strictly increasing sequence; the
//! doorbell for it is signed with the push key and queued in the relay outbox for every push
//! token the recipient registered (the stand-in for handing it to FCM/APNs); live streams are
//! woken. Reads serve the readable prefix of the log after a cursor.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::bills::doorbell::{self, Doorbell};
use carepass_core::domain::bills::state::can_transition;
use carepass_core::wire::{self, Bill, BillItem, BillState, InboxEntry, InboxPage, PlatformCode};
use carepass_core::Fen;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;

/// Most items on one bill.
pub const MAX_ITEMS: usize = 200;

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

impl Platform {
    /// Clinic role: issues a bill to the patient who owns `phone`.
    pub fn issue_bill(self: &Arc<Self>, req: &wire::IssueBillRequest) -> ApiResult<Bill> {
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
            due_at_ms: now + due_minutes * 60_000,
            state: BillState::Pending,
            updated_at_ms: now,
        };
        self.record_change(bill.clone(), now + req.readable_after_ms.unwrap_or(0) as i64)?;
        Ok(bill)
    }

    /// Moves a bill to `to` if the state machine allows it (clinic cancels; test fixtures
    /// mark bills paid elsewhere, refunded…).
    pub fn set_bill_state(self: &Arc<Self>, bill_id: &str, to: BillState) -> ApiResult<Bill> {
        let mut bill = self
            .bill(bill_id)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such bill"))?;
        if !can_transition(bill.state, to) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                PlatformCode::Conflict,
                format!("a {:?} bill cannot become {:?}", bill.state, to),
            ));
        }
        bill.state = to;
        bill.updated_at_ms = self.now_ms();
        self.record_change(bill.clone(), bill.updated_at_ms)?;
        Ok(bill)
    }

    pub fn bill(&self, bill_id: &str) -> ApiResult<Option<Bill>> {
        match self.tree("bills")?.get(bill_id)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Appends the change to the recipient's log, rings the doorbell through every registered
    /// push token, and wakes the live streams.
    fn record_change(self: &Arc<Self>, bill: Bill, readable_at_ms: i64) -> ApiResult<()> {
        let person_id = bill.person_id.clone();
        let seq;
        {
            let _w = self.lock()?;
            let meta = self.tree("meta")?;
            let counter = format!("inbox_seq/{person_id}");
            seq = meta.get(&counter)?.and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)).unwrap_or(0) + 1;
            meta.insert(counter.as_bytes(), &seq.to_be_bytes())?;
            self.tree("bills")?.insert(bill.bill_id.as_bytes(), serde_json::to_vec(&bill)?)?;
            let entry = LogEntry { bill, readable_at_ms };
            self.tree(&format!("inbox/{person_id}"))?.insert(seq.to_be_bytes(), serde_json::to_vec(&entry)?)?;
            self.relay_doorbell(&person_id, seq)?;
            // Durable within sled's 200 ms flush interval (the sandbox favours latency; a real
            // platform commits to its database before answering).
        }
        self.wake_streams(&person_id);
        let delay = readable_at_ms - self.now_ms();
        if delay > 0 {
            let platform = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay as u64)).await;
                platform.wake_streams(&person_id);
            });
        }
        Ok(())
    }

    /// Signs the doorbell for `seq` and queues it for each of the recipient's push tokens.
    fn relay_doorbell(&self, person_id: &str, seq: u64) -> ApiResult<()> {
        let tokens = self.push_tokens(person_id)?;
        if tokens.is_empty() {
            return Ok(()); // nobody to ring: the app pulls or streams
        }
        let bell =
            Doorbell { key_id: self.push_key().key_id, recipient: person_id.into(), seq, issued_at_ms: self.now_ms() };
        let data = self.sign_doorbell(&bell)?;
        let outbox = self.tree("push_outbox")?;
        for (service, token) in tokens {
            let n = self.next_counter("push_outbox_n")?;
            let record = OutboxRecord {
                person_id: person_id.into(),
                push: wire::RelayedPush { service, token, data: data.clone() },
            };
            outbox.insert(n.to_be_bytes(), serde_json::to_vec(&record)?)?;
        }
        Ok(())
    }

    /// The push data map of a doorbell, signed with the platform's push key.
    pub fn sign_doorbell(&self, bell: &Doorbell) -> ApiResult<BTreeMap<String, String>> {
        let message = doorbell::signed_bytes(bell.key_id, &bell.recipient, bell.seq, bell.issued_at_ms);
        let signature = self.push_key().sign(&message).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(doorbell::to_data(bell, &signature))
    }

    /// The readable prefix of the recipient's log after `after`, at most `limit` entries.
    pub fn inbox_page(&self, person_id: &str, after: u64, limit: usize) -> ApiResult<InboxPage> {
        let log = self.tree(&format!("inbox/{person_id}"))?;
        let now = self.now_ms();
        let mut entries = Vec::new();
        let mut more = false;
        for item in log.range((after + 1).to_be_bytes()..) {
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
        let cursor = entries.last().map(|e| e.seq).unwrap_or(after);
        Ok(InboxPage { entries, cursor, more })
    }

    pub fn register_push_token(&self, person_id: &str, service: &str, token: &str) -> ApiResult<()> {
        carepass_core::domain::bills::check_push_token(service, token)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let key = format!("{person_id}\0{service}\0{token}");
        self.tree("push_tokens")?.insert(key.as_bytes(), &[])?;
        self.flush()?;
        Ok(())
    }

    fn push_tokens(&self, person_id: &str) -> ApiResult<Vec<(String, String)>> {
        let prefix = format!("{person_id}\0");
        let mut out = Vec::new();
        for item in self.tree("push_tokens")?.scan_prefix(prefix.as_bytes()) {
            let (k, _) = item?;
            let text = String::from_utf8_lossy(&k).into_owned();
            let mut parts = text.splitn(3, '\0');
            if let (Some(_), Some(service), Some(token)) = (parts.next(), parts.next(), parts.next()) {
                out.push((service.to_string(), token.to_string()));
            }
        }
        Ok(out)
    }

    /// The relay outbox after `after`, optionally for one recipient.
    pub fn outbox(&self, after: u64, person_id: Option<&str>, limit: usize) -> ApiResult<OutboxPage> {
        let mut pushes = Vec::new();
        let mut cursor = after;
        for item in self.tree("push_outbox")?.range((after + 1).to_be_bytes()..) {
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
        Ok(OutboxPage { pushes, cursor })
    }

    pub fn push_keys(&self) -> Vec<wire::PushKey> {
        let key = self.push_key();
        vec![wire::PushKey { key_id: key.key_id, public_key: B64.encode(key.public_key()) }]
    }
}
