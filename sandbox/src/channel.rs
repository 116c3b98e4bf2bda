//! The payment channel (`docs/sandbox.md` § Payment channel): the stand-in for a bank card
//! acquirer, as a separate HTTP server with its own sled database and its own idempotency.
//! The platform talks to it over HTTP like it would to a bank: place a hold (authorise),
//! capture it, release it, refund a capture; every call carries the platform's key for it, so
//! a retry after a timeout or a crash answers what was done instead of doing it again.
//!
//! Test cards, like a payment sandbox's (any other number that passes the Luhn check
//! succeeds like `4242…`):
//!
//! | Card | Behaviour |
//! |---|---|
//! | `4242424242424242` | succeeds |
//! | `4000000000009995` | declined at the hold: `insufficient_funds` |
//! | `4000000000000341` | the hold succeeds, the capture is declined: `card_declined` |
//! | `4000000000000119` | the hold's answer comes too late (a timeout); it did succeed |
//! | `4000000000000127` | the hold's answer comes too late; it failed: `processing_error` |
//! | `4000000000003220` | needs a second confirmation: the bank's code `123456` |

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use carepass_core::domain::payment::channel::luhn;
use carepass_core::wire::PlatformCode;
use carepass_core::Fen;
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::api::{Body, Segment};
use crate::error::{ApiError, ApiResult};

pub const CARD_OK: &str = "4242424242424242";
pub const CARD_INSUFFICIENT_FUNDS: &str = "4000000000009995";
pub const CARD_DECLINED_AT_CAPTURE: &str = "4000000000000341";
pub const CARD_TIMEOUT_THEN_SUCCEEDS: &str = "4000000000000119";
pub const CARD_TIMEOUT_THEN_FAILS: &str = "4000000000000127";
pub const CARD_NEEDS_CONFIRMATION: &str = "4000000000003220";
/// The bank's second-confirmation code in the sandbox.
pub const CONFIRMATION_CODE: &str = "123456";
/// Wrong confirmation codes before the hold is declined.
pub const CONFIRMATION_TRIES: u8 = 3;

/// A hold request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthoriseRequest {
    /// The caller's key for this hold: the same key answers the same hold.
    pub key: String,
    pub card: String,
    pub amount_fen: Fen,
    /// What it is for (the payment id), shown on the statement.
    pub reference: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStatus {
    Authorised,
    Declined,
    RequiresAction,
    Captured,
    CaptureFailed,
    Released,
}

/// A hold as the channel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorisation {
    pub key: String,
    pub status: AuthStatus,
    #[serde(default)]
    pub decline_code: Option<String>,
    pub amount_fen: Fen,
    pub captured_fen: Fen,
    pub refunded_fen: Fen,
    pub reference: String,
    /// Last four digits.
    pub card_last4: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuthRecord {
    auth: Authorisation,
    fingerprint: Vec<u8>,
    card: String,
    confirm_tries: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub key: String,
    /// The hold whose capture is refunded.
    pub authorisation: String,
    pub amount_fen: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRefund {
    pub key: String,
    pub authorisation: String,
    pub amount_fen: Fen,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefundRecord {
    refund: ChannelRefund,
    fingerprint: Vec<u8>,
}

/// Everything the channel did (test view): holds and refunds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub authorisations: Vec<Authorisation>,
    pub refunds: Vec<ChannelRefund>,
}

impl Ledger {
    /// Money taken from cards and not given back.
    pub fn net_captured(&self) -> i64 {
        self.authorisations.iter().map(|a| a.captured_fen.0 - a.refunded_fen.0).sum()
    }

    /// Holds still placed (authorised, not captured or released).
    pub fn open_holds(&self) -> Vec<&Authorisation> {
        self.authorisations.iter().filter(|a| a.status == AuthStatus::Authorised).collect()
    }
}

/// The channel server's state.
pub struct Channel {
    db: sled::Db,
    /// How long the "times out" cards keep the caller waiting.
    hang: Duration,
    busy: Mutex<HashSet<String>>,
}

impl Channel {
    pub fn open(dir: &Path, hang: Duration) -> Result<Channel, sled::Error> {
        let db = crate::platform::open_db(dir)?;
        Ok(Channel { db, hang, busy: Mutex::new(HashSet::new()) })
    }

    fn tree(&self, name: &str) -> ApiResult<sled::Tree> {
        Ok(self.db.open_tree(name)?)
    }

    /// Every write is on disk before it is answered (the channel's volume is small).
    fn durable(&self) -> ApiResult<()> {
        self.db.flush()?;
        Ok(())
    }

    fn get(&self, key: &str) -> ApiResult<Option<AuthRecord>> {
        match self.tree("authorisations")?.get(key)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    fn put(&self, record: &AuthRecord) -> ApiResult<()> {
        self.tree("authorisations")?.insert(record.auth.key.as_bytes(), serde_json::to_vec(record)?)?;
        self.durable()
    }

    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such authorisation")
    }

    /// Marks a key busy for one request; a concurrent request with it gets 409.
    fn claim(&self, key: &str) -> ApiResult<Claim<'_>> {
        let mut busy = self.busy.lock().map_err(|_| ApiError::internal("lock poisoned"))?;
        if !busy.insert(key.to_string()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                PlatformCode::IdempotencyInProgress,
                "a request with this key is in progress",
            ));
        }
        Ok(Claim(self, key.to_string()))
    }

    /// Places a hold (or answers the one this key placed). Returns the answer and whether
    /// to answer late (the timeout cards, on first sight).
    fn authorise(&self, req: &AuthoriseRequest) -> ApiResult<(Authorisation, bool)> {
        if req.key.is_empty() || req.key.len() > 255 {
            return Err(ApiError::bad_request("a key is 1 to 255 characters"));
        }
        if req.amount_fen.0 <= 0 {
            return Err(ApiError::bad_request("the amount is at least 1 fen"));
        }
        if !(12..=19).contains(&req.card.len()) || !req.card.bytes().all(|b| b.is_ascii_digit()) || !luhn(&req.card) {
            return Err(ApiError::bad_request("not a card number"));
        }
        let fingerprint = digest(&SHA256, &serde_json::to_vec(req)?).as_ref().to_vec();
        if let Some(existing) = self.get(&req.key)? {
            if existing.fingerprint != fingerprint {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    PlatformCode::IdempotencyKeyReused,
                    "this key was used for another hold",
                ));
            }
            return Ok((existing.auth, false));
        }
        let (status, decline, late) = match req.card.as_str() {
            CARD_INSUFFICIENT_FUNDS => (AuthStatus::Declined, Some("insufficient_funds"), false),
            CARD_TIMEOUT_THEN_SUCCEEDS => (AuthStatus::Authorised, None, true),
            CARD_TIMEOUT_THEN_FAILS => (AuthStatus::Declined, Some("processing_error"), true),
            CARD_NEEDS_CONFIRMATION => (AuthStatus::RequiresAction, None, false),
            _ => (AuthStatus::Authorised, None, false),
        };
        let auth = Authorisation {
            key: req.key.clone(),
            status,
            decline_code: decline.map(str::to_string),
            amount_fen: req.amount_fen,
            captured_fen: Fen::ZERO,
            refunded_fen: Fen::ZERO,
            reference: req.reference.clone(),
            card_last4: req.card[req.card.len() - 4..].to_string(),
        };
        self.put(&AuthRecord { auth: auth.clone(), fingerprint, card: req.card.clone(), confirm_tries: 0 })?;
        Ok((auth, late))
    }

    fn confirm(&self, key: &str, code: &str) -> ApiResult<Authorisation> {
        let mut record = self.get(key)?.ok_or_else(Self::not_found)?;
        if record.auth.status != AuthStatus::RequiresAction {
            return Ok(record.auth);
        }
        if code == CONFIRMATION_CODE {
            record.auth.status = AuthStatus::Authorised;
        } else {
            record.confirm_tries += 1;
            if record.confirm_tries >= CONFIRMATION_TRIES {
                record.auth.status = AuthStatus::Declined;
                record.auth.decline_code = Some("authentication_failed".into());
            }
        }
        self.put(&record)?;
        Ok(record.auth)
    }

    fn capture(&self, key: &str) -> ApiResult<Authorisation> {
        let mut record = self.get(key)?.ok_or_else(Self::not_found)?;
        match record.auth.status {
            AuthStatus::Authorised => {
                if record.card == CARD_DECLINED_AT_CAPTURE {
                    record.auth.status = AuthStatus::CaptureFailed;
                    record.auth.decline_code = Some("card_declined".into());
                } else {
                    record.auth.status = AuthStatus::Captured;
                    record.auth.captured_fen = record.auth.amount_fen;
                }
                self.put(&record)?;
                Ok(record.auth)
            }
            AuthStatus::Captured | AuthStatus::CaptureFailed => Ok(record.auth),
            other => Err(ApiError::new(
                StatusCode::CONFLICT,
                PlatformCode::Conflict,
                format!("a {other:?} authorisation cannot be captured"),
            )),
        }
    }

    fn release(&self, key: &str) -> ApiResult<Authorisation> {
        let mut record = self.get(key)?.ok_or_else(Self::not_found)?;
        match record.auth.status {
            AuthStatus::Authorised | AuthStatus::RequiresAction | AuthStatus::CaptureFailed => {
                record.auth.status = AuthStatus::Released;
                self.put(&record)?;
                Ok(record.auth)
            }
            AuthStatus::Released | AuthStatus::Declined => Ok(record.auth),
            AuthStatus::Captured => Err(ApiError::new(
                StatusCode::CONFLICT,
                PlatformCode::Conflict,
                "a captured authorisation is refunded, not released",
            )),
        }
    }

    fn refund(&self, req: &RefundRequest) -> ApiResult<ChannelRefund> {
        let fingerprint = digest(&SHA256, &serde_json::to_vec(req)?).as_ref().to_vec();
        let refunds = self.tree("refunds")?;
        if let Some(v) = refunds.get(&req.key)? {
            let existing: RefundRecord = serde_json::from_slice(&v)?;
            if existing.fingerprint != fingerprint {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    PlatformCode::IdempotencyKeyReused,
                    "this key was used for another refund",
                ));
            }
            return Ok(existing.refund);
        }
        let mut record = self.get(&req.authorisation)?.ok_or_else(Self::not_found)?;
        let left = record.auth.captured_fen.0 - record.auth.refunded_fen.0;
        if req.amount_fen.0 <= 0 || req.amount_fen.0 > left {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                PlatformCode::Conflict,
                format!("refund of {} fen with {left} fen refundable", req.amount_fen.0),
            ));
        }
        record.auth.refunded_fen = Fen(record.auth.refunded_fen.0 + req.amount_fen.0);
        let refund = ChannelRefund {
            key: req.key.clone(),
            authorisation: req.authorisation.clone(),
            amount_fen: req.amount_fen,
        };
        let auths = self.tree("authorisations")?;
        use sled::Transactional;
        (&auths, &refunds)
            .transaction(|(auths, refunds)| {
                auths.insert(record.auth.key.as_bytes(), serde_json::to_vec(&record).unwrap_or_default())?;
                refunds.insert(
                    req.key.as_bytes(),
                    serde_json::to_vec(&RefundRecord { refund: refund.clone(), fingerprint: fingerprint.clone() })
                        .unwrap_or_default(),
                )?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| ApiError::internal(format!("channel storage: {e:?}")))?;
        self.durable()?;
        Ok(refund)
    }

    pub fn ledger(&self) -> ApiResult<Ledger> {
        let mut ledger = Ledger::default();
        for item in self.tree("authorisations")?.iter() {
            let (_, v) = item?;
            ledger.authorisations.push(serde_json::from_slice::<AuthRecord>(&v)?.auth);
        }
        for item in self.tree("refunds")?.iter() {
            let (_, v) = item?;
            ledger.refunds.push(serde_json::from_slice::<RefundRecord>(&v)?.refund);
        }
        Ok(ledger)
    }
}

struct Claim<'a>(&'a Channel, String);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.0.busy.lock() {
            busy.remove(&self.1);
        }
    }
}

type ChannelState = Arc<Channel>;

/// The channel's routes (not part of the platform's OpenAPI: it is the bank's API).
pub fn router(channel: Arc<Channel>) -> Router {
    Router::new()
        .route("/channel/v1/authorisations", post(authorise))
        .route("/channel/v1/authorisations/{key}", get(query))
        .route("/channel/v1/authorisations/{key}/confirm", post(confirm))
        .route("/channel/v1/authorisations/{key}/capture", post(capture))
        .route("/channel/v1/authorisations/{key}/release", post(release))
        .route("/channel/v1/refunds", post(refund))
        .route("/channel/v1/ledger", get(ledger))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such route") })
        .with_state(channel)
}

async fn authorise(State(c): State<ChannelState>, Body(req): Body<AuthoriseRequest>) -> ApiResult<Json<Authorisation>> {
    let _claim = c.claim(&req.key)?;
    let (auth, late) = c.authorise(&req)?;
    if late {
        tokio::time::sleep(c.hang).await;
    }
    Ok(Json(auth))
}

async fn query(State(c): State<ChannelState>, Segment(key): Segment<String>) -> ApiResult<Json<Authorisation>> {
    c.get(&key)?.map(|r| Json(r.auth)).ok_or_else(Channel::not_found)
}

async fn confirm(
    State(c): State<ChannelState>,
    Segment(key): Segment<String>,
    Body(req): Body<ConfirmRequest>,
) -> ApiResult<Json<Authorisation>> {
    let _claim = c.claim(&key)?;
    c.confirm(&key, &req.code).map(Json)
}

async fn capture(State(c): State<ChannelState>, Segment(key): Segment<String>) -> ApiResult<Json<Authorisation>> {
    let _claim = c.claim(&key)?;
    c.capture(&key).map(Json)
}

async fn release(State(c): State<ChannelState>, Segment(key): Segment<String>) -> ApiResult<Json<Authorisation>> {
    let _claim = c.claim(&key)?;
    c.release(&key).map(Json)
}

async fn refund(State(c): State<ChannelState>, Body(req): Body<RefundRequest>) -> ApiResult<Json<ChannelRefund>> {
    let _claim = c.claim(&req.key)?;
    c.refund(&req).map(Json)
}

async fn ledger(State(c): State<ChannelState>) -> ApiResult<Json<Ledger>> {
    c.ledger().map(Json)
}

/// A channel server running in this process.
pub struct RunningChannel {
    pub addr: std::net::SocketAddr,
    pub channel: Arc<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningChannel {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Serves a channel on `listen` from the database in `dir`.
pub async fn start_channel(
    listen: std::net::SocketAddr,
    dir: &Path,
    hang: Duration,
) -> std::io::Result<RunningChannel> {
    let channel = Arc::new(Channel::open(dir, hang).map_err(|e| std::io::Error::other(e.to_string()))?);
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(channel.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(RunningChannel { addr, channel, stop: Some(stop), task: Some(task) })
}

/// What the platform gets from a channel call.
#[derive(Debug)]
pub enum ChannelAnswer<T> {
    Done(T),
    /// The channel refused the request itself (a 4xx): it will not do it.
    Refused(String),
    /// No answer (a timeout, the channel down, a 5xx): the outcome is unknown; ask again
    /// with the same key.
    Unknown(String),
}

/// The platform's client of the channel.
#[derive(Debug, Clone)]
pub struct ChannelClient {
    base: String,
    http: reqwest::Client,
}

impl ChannelClient {
    pub fn new(base: &str, timeout: Duration) -> Result<ChannelClient, String> {
        carepass_core::io::net::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("channel client: {e}"))?;
        Ok(ChannelClient { base: base.trim_end_matches('/').to_string(), http })
    }

    async fn call<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Req>,
    ) -> ChannelAnswer<Resp> {
        let mut request = self.http.request(method, format!("{}/channel/v1/{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return ChannelAnswer::Unknown(if e.is_timeout() { "timeout".into() } else { e.to_string() }),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return ChannelAnswer::Unknown(e.to_string()),
        };
        if status.is_success() {
            match serde_json::from_slice(&bytes) {
                Ok(v) => ChannelAnswer::Done(v),
                Err(e) => ChannelAnswer::Unknown(format!("undecodable channel answer: {e}")),
            }
        } else if status.is_client_error() && status != reqwest::StatusCode::CONFLICT {
            ChannelAnswer::Refused(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            ChannelAnswer::Unknown(format!("channel answered {status}"))
        }
    }

    pub async fn authorise(&self, req: &AuthoriseRequest) -> ChannelAnswer<Authorisation> {
        self.call(reqwest::Method::POST, "authorisations", Some(req)).await
    }

    /// The hold placed under `key`; `Refused` when the channel never saw it.
    pub async fn query(&self, key: &str) -> ChannelAnswer<Authorisation> {
        self.call::<(), _>(reqwest::Method::GET, &format!("authorisations/{key}"), None).await
    }

    pub async fn confirm(&self, key: &str, code: &str) -> ChannelAnswer<Authorisation> {
        let body = ConfirmRequest { code: code.into() };
        self.call(reqwest::Method::POST, &format!("authorisations/{key}/confirm"), Some(&body)).await
    }

    pub async fn capture(&self, key: &str) -> ChannelAnswer<Authorisation> {
        self.call(reqwest::Method::POST, &format!("authorisations/{key}/capture"), Some(&serde_json::json!({}))).await
    }

    pub async fn release(&self, key: &str) -> ChannelAnswer<Authorisation> {
        self.call(reqwest::Method::POST, &format!("authorisations/{key}/release"), Some(&serde_json::json!({}))).await
    }

    pub async fn refund(&self, req: &RefundRequest) -> ChannelAnswer<ChannelRefund> {
        self.call(reqwest::Method::POST, "refunds", Some(req)).await
    }

    pub async fn ledger(&self) -> ChannelAnswer<Ledger> {
        self.call::<(), _>(reqwest::Method::GET, "ledger", None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_cards_pass_the_luhn_check() {
        for card in [
            CARD_OK,
            CARD_INSUFFICIENT_FUNDS,
            CARD_DECLINED_AT_CAPTURE,
            CARD_TIMEOUT_THEN_SUCCEEDS,
            CARD_TIMEOUT_THEN_FAILS,
            CARD_NEEDS_CONFIRMATION,
        ] {
            assert!(luhn(card), "{card}");
        }
    }
}
