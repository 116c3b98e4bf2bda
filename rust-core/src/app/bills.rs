//! The pending-bill flows of [`CarePass`]: pull by cursor, handle a doorbell from the shell's
//! push service, register push tokens, and keep the foreground live stream open (reconnecting
//! with backoff, resyncing on every reconnect). Changes reach listeners only after they are
//! committed to the store, and each at most once.

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::Method;

use super::CarePass;
use crate::app::error::{CoreError, CoreResult};
use crate::app::inbox::Inbox;
use crate::domain::bills::doorbell;
use crate::domain::bills::{InboxChange, PushOutcome};
use crate::domain::{Field, InvalidInput};
use crate::io::net::NetError;
use crate::io::sse::SseParser;
use crate::wire::{self, Bill, InboxEntry, InboxPage};

const KEY_PUSH_KEYS: &str = "push_keys";
/// Entries asked for per page.
const PAGE: usize = 200;
/// After a doorbell, how long to wait between pulls while the change is not yet readable.
const NOT_YET_READABLE_BACKOFF_MS: [u64; 5] = [0, 100, 300, 700, 1500];
/// The stream is reopened when nothing (not even a heartbeat) arrives for this long.
const STREAM_IDLE: Duration = Duration::from_secs(45);
const BACKOFF_MIN_MS: u64 = 200;
const BACKOFF_MAX_MS: u64 = 10_000;

impl CarePass {
    fn inbox_of(&self, person_id: &str) -> CoreResult<Inbox> {
        Ok(Inbox::new(self.store.profile(person_id)?))
    }

    /// The signed-in person's bills from the phone's store, newest first, with expiry applied
    /// on platform time. No network.
    pub fn bills(&self) -> CoreResult<Vec<Bill>> {
        let person_id = self.signed_in_person()?;
        Ok(self.inbox_of(&person_id)?.bills(self.client.server_now_ms())?)
    }

    /// Pulls every change after the stored cursor; returns what is new to the phone.
    pub async fn sync_inbox(&self) -> CoreResult<Vec<InboxChange>> {
        let person_id = self.active_person()?;
        let inbox = self.inbox_of(&person_id)?;
        let _serial = self.inbox_lock.lock().await;
        let mut changes = Vec::new();
        loop {
            let cursor = inbox.cursor()?;
            let path = format!("v1/inbox?after={cursor}&limit={PAGE}");
            let page: InboxPage = self.authed(&person_id, Method::GET, &path, None::<&()>).await?;
            check_page(&page, cursor)?;
            changes.extend(inbox.apply(&page.entries, page.cursor)?);
            self.store.flush()?;
            if !page.more || page.entries.is_empty() {
                return Ok(changes);
            }
        }
    }

    /// Handles a push the shell's push service delivered (the data map as is): verifies the
    /// doorbell, then pulls. A doorbell for a change already pulled is `AlreadySeen`; one
    /// whose change the platform does not serve yet is remembered and pulled by the next sync.
    pub async fn handle_push(&self, data: &HashMap<String, String>) -> CoreResult<PushOutcome> {
        let person_id = self.active_person()?;
        let now = self.client.server_now_ms();
        let bell = match doorbell::verify(data, &self.push_keys(false).await?, &person_id, now) {
            Err(doorbell::DoorbellError::UnknownKey) => {
                // The platform may have rotated its push key: fetch the keys once more.
                doorbell::verify(data, &self.push_keys(true).await?, &person_id, now)?
            }
            other => other?,
        };
        let inbox = self.inbox_of(&person_id)?;
        if bell.seq <= inbox.cursor()? {
            return Ok(PushOutcome::AlreadySeen);
        }
        inbox.note_rung(bell.seq)?;
        self.store.flush()?;
        let mut changes = Vec::new();
        for wait in NOT_YET_READABLE_BACKOFF_MS {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            changes.extend(self.sync_inbox().await?);
            if inbox.cursor()? >= bell.seq {
                return Ok(PushOutcome::Pulled(changes));
            }
        }
        Ok(if changes.is_empty() { PushOutcome::NotYetReadable } else { PushOutcome::Pulled(changes) })
    }

    /// Whether a doorbell announced a change not pulled yet (e.g. the app was killed between
    /// the push and the pull): the app calls `sync_inbox` when this is true at start.
    pub fn pull_owed(&self) -> CoreResult<bool> {
        let person_id = self.signed_in_person()?;
        Ok(self.inbox_of(&person_id)?.pull_owed()?)
    }

    /// Registers the push service's token for the signed-in person (`fcm`, `apns`, `huawei`,
    /// `xiaomi`); doorbells are then relayed to it.
    pub async fn register_push_token(&self, service: &str, token: &str) -> CoreResult<()> {
        if !matches!(service, "fcm" | "apns" | "huawei" | "xiaomi") {
            return Err(InvalidInput::new(Field::PushService, "a push service is fcm, apns, huawei or xiaomi").into());
        }
        if token.is_empty() || token.len() > 4096 {
            return Err(InvalidInput::new(Field::PushToken, "a push token is 1 to 4096 characters").into());
        }
        let person_id = self.active_person()?;
        let body = wire::PushTokenRegistration { service: service.into(), token: token.into() };
        let _: serde_json::Value = self.authed(&person_id, Method::POST, "v1/push-tokens", Some(&body)).await?;
        Ok(())
    }

    /// Keeps the live stream open while the app is in the foreground: every change is applied
    /// to the store, then handed to `on_change`. Reconnects with exponential backoff (200 ms
    /// to 10 s, with jitter) and resumes from the stored cursor, which is the resync. Returns
    /// only when the session ends (`SessionExpired`, `NotSignedIn`); stop it by dropping or
    /// aborting the future.
    pub async fn run_inbox_stream(&self, on_change: &(dyn Fn(InboxChange) + Send + Sync)) -> CoreResult<()> {
        let mut backoff = BACKOFF_MIN_MS;
        loop {
            match self.stream_once(on_change, &mut backoff).await {
                Err(e @ (CoreError::SessionExpired | CoreError::NotSignedIn)) => return Err(e),
                Err(e) => log::info!(target: "carepass::bills", "live stream interrupted: {e}"),
                Ok(()) => log::info!(target: "carepass::bills", "live stream closed by the platform"),
            }
            let jitter = (self.clock.now_ms().rem_euclid(1000) as u64 * backoff) / 4000;
            tokio::time::sleep(Duration::from_millis(backoff + jitter)).await;
            backoff = (backoff * 2).min(BACKOFF_MAX_MS);
        }
    }

    async fn stream_once(&self, on_change: &(dyn Fn(InboxChange) + Send + Sync), backoff: &mut u64) -> CoreResult<()> {
        let mut session_ended = self.session_epoch.subscribe();
        let person_id = self.signed_in_person()?;
        let inbox = self.inbox_of(&person_id)?;
        let tokens = self.fresh_session(&person_id).await?;
        let path = format!("v1/inbox/stream?after={}", inbox.cursor()?);
        let mut response = match self.client.open_stream(&path, &tokens.access_token).await {
            Err(e) if e.platform_code() == Some(wire::PlatformCode::Unauthorized) => {
                self.drop_session(&person_id)?;
                return Err(CoreError::SessionExpired);
            }
            other => other?,
        };
        *backoff = BACKOFF_MIN_MS;
        let mut parser = SseParser::new(256 * 1024);
        loop {
            let chunk = tokio::select! {
                _ = session_ended.changed() => return Err(CoreError::NotSignedIn),
                chunk = tokio::time::timeout(STREAM_IDLE, response.chunk()) => match chunk {
                    Err(_) => return Err(NetError::Timeout.into()),
                    Ok(chunk) => chunk.map_err(crate::io::net::map_reqwest)?,
                },
            };
            let Some(chunk) = chunk else { return Ok(()) };
            let events = parser.feed(&chunk).map_err(|e| NetError::Undecodable(e.to_string()))?;
            for event in events {
                let entry: InboxEntry = serde_json::from_str(&event.data)
                    .map_err(|e| NetError::Undecodable(format!("stream event: {e}")))?;
                if entry.bill.person_id != person_id {
                    return Err(NetError::Undecodable("the stream carried another person's bill".into()).into());
                }
                let changes = {
                    let _serial = self.inbox_lock.lock().await;
                    let cursor = inbox.cursor()?;
                    // Only a change right after the cursor moves it; after a gap, pull instead.
                    let next = if entry.seq == cursor + 1 { entry.seq } else { cursor };
                    // Not flushed here: sled writes it out within its flush interval, and a crash
                    // before that only means the change is pulled again (never listed twice).
                    inbox.apply(std::slice::from_ref(&entry), next)?
                };
                for change in changes {
                    on_change(change);
                }
                if inbox.cursor()? < entry.seq {
                    for change in self.sync_inbox().await? {
                        on_change(change);
                    }
                }
            }
        }
    }

    /// The platform's doorbell keys, cached in the store; fetched when missing or `refetch`.
    async fn push_keys(&self, refetch: bool) -> CoreResult<HashMap<u16, Vec<u8>>> {
        let app = self.store.app()?;
        if !refetch {
            if let Some(keys) = app.get::<Vec<wire::PushKey>>(KEY_PUSH_KEYS)? {
                return decode_push_keys(&keys);
            }
        }
        let keys: Vec<wire::PushKey> = self.client.get("v1/push/keys", None).await?;
        let decoded = decode_push_keys(&keys)?;
        app.put(KEY_PUSH_KEYS, &keys)?;
        self.store.flush()?;
        Ok(decoded)
    }
}

fn decode_push_keys(keys: &[wire::PushKey]) -> CoreResult<HashMap<u16, Vec<u8>>> {
    keys.iter()
        .map(|k| {
            let key =
                B64.decode(&k.public_key).map_err(|_| NetError::Undecodable("push key is not base64url".into()))?;
            crate::domain::crypto::check_public_key(&key)?;
            Ok((k.key_id, key))
        })
        .collect()
}

/// A page must be ascending, after the cursor asked from, and end at its stated cursor.
fn check_page(page: &InboxPage, asked_after: u64) -> CoreResult<()> {
    let mut last = asked_after;
    for entry in &page.entries {
        if entry.seq <= last {
            return Err(NetError::Undecodable("inbox page out of order".into()).into());
        }
        last = entry.seq;
    }
    if page.cursor != last {
        return Err(NetError::Undecodable("inbox page cursor does not match its entries".into()).into());
    }
    Ok(())
}
