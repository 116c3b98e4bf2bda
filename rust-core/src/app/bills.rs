//! The pending-bill flows: pull by cursor, verify and answer doorbells (in the app, or in a
//! Notification Service Extension that leaves its pull in the spool), register push tokens,
//! and the inbox stream — the subject's bills now, then after every change, kept fresh by
//! the live server-sent-events connection while someone watches. Every change is committed
//! to the store before anyone hears of it. `docs/bills.md` is normative.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::inbox::{Inbox, InboxUpdate, Shown, Touch};
use super::session::{core_closed, session_ended, Actor};
use super::streams::{spawn, stream, CoreStream, Sink};
use super::CarePass;
use crate::app::error::{CoreError, CoreResult};
use crate::domain::bills::doorbell;
use crate::domain::bills::{check_push_token, Bill, InboxChange, PushOutcome};
use crate::domain::family::Scope;
use crate::io::net::{Auth, NetError};
use crate::io::sse::SseParser;
use crate::io::store::Held;
use crate::wire::{self, InboxEntry, InboxPage};

const KEY_PUSH_KEYS: &str = "push-keys";
/// Entries asked for per page.
const PAGE: usize = 200;
/// After a doorbell, how long to wait between pulls while the change is not yet readable.
const NOT_YET_READABLE_BACKOFF_MS: [u64; 5] = [0, 100, 300, 700, 1500];
/// The stream is reopened when nothing (not even a heartbeat) arrives for this long.
const STREAM_IDLE: Duration = Duration::from_secs(45);
const BACKOFF_MIN_MS: u64 = 200;
const BACKOFF_MAX_MS: u64 = 10_000;
/// Largest server-sent event line the phone reads.
const MAX_EVENT_LINE: usize = 256 * 1024;

/// What a process without the database leaves for the one with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum SpoolRecord {
    /// A doorbell verified and, if readable, its change pulled (the iOS extension's work).
    /// `log`: the relative whose log it was (none: the actor's own).
    Pulled {
        actor: String,
        #[serde(default)]
        log: Option<String>,
        rung: u64,
        entries: Vec<InboxEntry>,
    },
}

impl CarePass {
    /// A subject's bills from the phone's store (`None`: the signed-in person), newest first,
    /// expiry applied on platform time. No network.
    pub fn bills(&self, subject: Option<&str>) -> CoreResult<Vec<Bill>> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::ViewBills)?;
        let held = self.hold()?;
        Ok(Inbox::new(&held, &actor.person_id).bills(&subject, self.client.server_now_ms())?)
    }

    /// The named bills of a subject as stored now (`None` for one the phone no longer has).
    fn bills_by_id(&self, subject: &str, ids: &[String]) -> CoreResult<Vec<(String, Option<Bill>)>> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, Some(subject), Scope::ViewBills)?;
        let held = self.hold()?;
        let inbox = Inbox::new(&held, &actor.person_id);
        let now = self.client.server_now_ms();
        ids.iter().map(|id| Ok((id.clone(), inbox.bill(&subject, id, now)?))).collect()
    }

    /// Pulls every change after the stored cursor; returns what is new to the phone. Then
    /// sends again any payment request whose answer was lost (`docs/payments.md` § 4.6);
    /// a failure there does not fail the sync.
    pub async fn sync_inbox(&self) -> CoreResult<Vec<InboxChange>> {
        if !self.config.extension && self.acts_for_anyone()? {
            // Links change on the other side (a consent, a revocation): know them first, so
            // the relatives' logs pulled are the ones the platform serves now. (Nothing to do,
            // and no round trip, for someone who acts for nobody.)
            if let Err(e) = self.refresh_family().await {
                log::info!(target: "carepass::family", "links not refreshed before the sync: {e}");
            }
        }
        let changes = self.pull_inbox().await?;
        if !self.config.extension {
            if let Err(e) = self.resume_payments_if_idle().await {
                log::info!(target: "carepass::payments", "payments not resumed after the sync: {e}");
            }
        }
        Ok(changes)
    }

    /// Pulls the actor's own log, then the log of every relative whose bills the actor may
    /// see. A relative's log the platform no longer serves to the actor (the link was revoked,
    /// expired, or lost the scope) leaves the phone with their bills.
    async fn pull_inbox(&self) -> CoreResult<Vec<InboxChange>> {
        let actor = self.actor()?;
        let _serial = self.inbox_lock.lock().await;
        let mut changes = self.pull_log(&actor, &actor.person_id).await?;
        let watched = self.relatives()?.into_iter().filter(|v| v.effective_scopes.contains(&Scope::ViewBills));
        let mut gone = false;
        for relative in watched {
            match self.pull_log(&actor, &relative.link.principal).await {
                Ok(more) => changes.extend(more),
                Err(CoreError::Family(refusal)) => {
                    log::info!(target: "carepass::family", "a relative's bills no longer reach this phone: {refusal}");
                    if !self.config.extension {
                        let held = self.hold()?;
                        held.drop_sections(&CarePass::section_name(&actor, &relative.link.principal))?;
                        held.flush()?;
                        self.touch_subject(&relative.link.principal);
                    }
                    gone = true;
                }
                Err(e) => return Err(e),
            }
        }
        if gone {
            self.refresh_family().await?;
        }
        Ok(changes)
    }

    /// Pulls one log (the actor's own, or a relative's) after its stored cursor.
    async fn pull_log(&self, actor: &Actor, log: &str) -> CoreResult<Vec<InboxChange>> {
        let mut changes = Vec::new();
        loop {
            let cursor = Inbox::of(&self.hold()?, &actor.person_id, log).cursor()?;
            let path = format!("v1/inbox?after={cursor}&limit={PAGE}");
            let page: InboxPage = self.authed(actor, log, Method::GET, &path, None::<&()>).await?;
            check_page(&page, cursor)?;
            self.check_recipients(actor, log, &page.entries)?;
            let held = self.hold()?;
            let inbox = Inbox::of(&held, &actor.person_id, log);
            if inbox.log_replaced(&page.epoch, page.head)? {
                log::warn!(target: "carepass::bills", "the platform's inbox log was replaced or went back; syncing from scratch");
                inbox.start_over(&page.epoch)?;
                held.flush()?;
                self.touch_all(&held, actor);
                continue;
            }
            inbox.note_epoch(&page.epoch)?;
            let applied = inbox.apply_page(&page.entries, page.cursor)?;
            held.flush()?;
            self.touch(&applied);
            changes.extend(applied);
            if !page.more || page.entries.is_empty() {
                return Ok(changes);
            }
        }
    }

    /// Handles a push the shell's push service delivered (the data map as is): verifies the
    /// doorbell, then pulls. A doorbell for a change already pulled is `AlreadySeen`; one
    /// whose change the platform does not serve yet is remembered and pulled by the next sync.
    /// In an extension process the pull is left in the spool for the app.
    pub async fn handle_push(&self, data: &HashMap<String, String>) -> CoreResult<PushOutcome> {
        let actor = self.actor()?;
        let now = self.client.server_now_ms();
        // The doorbell names whose log changed: the actor's, or a relative's they watch.
        let named = data.get("r").map(String::as_str).unwrap_or_default();
        let log = if named != actor.person_id && self.subject_of(&actor, Some(named), Scope::ViewBills).is_ok() {
            named.to_string()
        } else {
            actor.person_id.clone()
        };
        let bell = match doorbell::verify(data, &self.push_keys(false).await?, &log, now) {
            Err(doorbell::DoorbellError::UnknownKey) => {
                // The platform may have rotated its push key: fetch the keys once more.
                doorbell::verify(data, &self.push_keys(true).await?, &log, now)?
            }
            other => other?,
        };
        if self.config.extension {
            return self.pull_into_spool(&actor, &log, bell.seq).await;
        }
        {
            let held = self.hold()?;
            let inbox = Inbox::of(&held, &actor.person_id, &log);
            if bell.seq <= inbox.cursor()? {
                return Ok(PushOutcome::AlreadySeen);
            }
            inbox.note_rung(bell.seq)?;
            held.flush()?;
        }
        let mut changes = Vec::new();
        for wait in NOT_YET_READABLE_BACKOFF_MS {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            changes.extend(self.sync_inbox().await?);
            if Inbox::of(&self.hold()?, &actor.person_id, &log).cursor()? >= bell.seq {
                return Ok(PushOutcome::Pulled(changes));
            }
        }
        Ok(if changes.is_empty() { PushOutcome::NotYetReadable } else { PushOutcome::Pulled(changes) })
    }

    /// The extension's pull: the entries from the doorbell's sequence on, left in the spool
    /// (with the rung sequence) for the app to apply; the changes are returned so the
    /// extension can word its notification.
    async fn pull_into_spool(&self, actor: &Actor, log: &str, seq: u64) -> CoreResult<PushOutcome> {
        let path = format!("v1/inbox?after={}&limit={PAGE}", seq - 1);
        let page: InboxPage = self.authed(actor, log, Method::GET, &path, None::<&()>).await?;
        check_page(&page, seq - 1)?;
        self.check_recipients(actor, log, &page.entries)?;
        let record = SpoolRecord::Pulled {
            actor: actor.person_id.clone(),
            log: (log != actor.person_id).then(|| log.to_string()),
            rung: seq,
            entries: page.entries.clone(),
        };
        self.store.spool.append(&record, self.client.server_now_ms())?;
        if page.entries.is_empty() {
            return Ok(PushOutcome::NotYetReadable);
        }
        let mut changes: Vec<InboxChange> = Vec::new();
        for entry in page.entries {
            match changes.iter_mut().find(|c| c.bill().bill_id == entry.bill.bill_id) {
                Some(InboxChange::Added(b)) | Some(InboxChange::Updated(b)) => *b = entry.bill,
                None => changes.push(InboxChange::Added(entry.bill)),
            }
        }
        Ok(PushOutcome::Pulled(changes))
    }

    /// Applies what other processes left in the spool (called on every fresh hold).
    pub(crate) fn apply_spool(&self, held: &Held) -> CoreResult<()> {
        let applied = self.store.spool.drain(|record: SpoolRecord| -> CoreResult<()> {
            match record {
                SpoolRecord::Pulled { actor, log, rung, entries } => {
                    let inbox = Inbox::of(held, &actor, log.as_deref().unwrap_or(&actor));
                    inbox.note_rung(rung)?;
                    let changes = inbox.apply_loose(&entries)?;
                    held.flush()?;
                    self.touch(&changes);
                }
            }
            Ok(())
        })?;
        if applied > 0 {
            log::info!(target: "carepass::bills", "applied {applied} spooled pulls");
        }
        Ok(())
    }

    /// Whether a doorbell announced a change not pulled yet (e.g. the app was killed between
    /// the push and the pull): the app calls `sync_inbox` when this is true at start.
    pub fn pull_owed(&self) -> CoreResult<bool> {
        let actor = self.actor()?;
        let held = self.hold()?;
        if Inbox::new(&held, &actor.person_id).pull_owed()? {
            return Ok(true);
        }
        for relative in self.relatives()? {
            if Inbox::of(&held, &actor.person_id, &relative.link.principal).pull_owed()? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Registers the push service's token for the signed-in person (`fcm`, `apns`, `huawei`,
    /// `xiaomi`); doorbells are then relayed to it.
    pub async fn register_push_token(&self, service: &str, token: &str) -> CoreResult<()> {
        self.check_open()?;
        let service = check_push_token(service, token)?;
        let actor = self.actor()?;
        let body = wire::PushTokenRegistration { service: service.name().into(), token: token.into() };
        let _: serde_json::Value =
            self.authed(&actor, &actor.person_id, Method::POST, "v1/push-tokens", Some(&body)).await?;
        Ok(())
    }

    /// The subject's bills now, then again after every change with the changes since the
    /// listener's last update, while the live connection keeps them fresh (reconnecting with
    /// backoff and resuming from the cursor, which is the resync). Whoever brought a change —
    /// this stream, a sync or a doorbell in this process, another process of the app on the
    /// same store, an extension's spool — the listener hears of each bill once when it
    /// arrives and again only when it changes: the stream compares the store with what it
    /// last handed over. Ends with `NotSignedIn`/`SessionExpired` when the session ends and
    /// `Closed` when the core closes.
    pub fn inbox_stream(self: &Arc<Self>, subject: Option<String>) -> CoreStream<InboxUpdate> {
        let core = Arc::downgrade(self);
        let mut touched = self.inbox_touched.subscribe();
        let mut session = self.session.subscribe();
        let mut closed = self.closed.subscribe();
        stream(move |sink: Sink<InboxUpdate>| async move {
            let (actor, subject, first) = {
                let core = core.upgrade().ok_or(CoreError::Closed)?;
                let actor = core.actor()?;
                let subject = core.subject_of(&actor, subject.as_deref(), Scope::ViewBills)?;
                let bills = core.bills(Some(&subject))?;
                (actor, subject.clone(), InboxUpdate { subject, bills: Arc::new(bills.into()), changes: Vec::new() })
            };
            let mut shown = Shown::new(Arc::clone(&first.bills));
            if !sink.send(first).await {
                return Ok(());
            }
            let (ended_tx, mut ended) = tokio::sync::oneshot::channel::<CoreError>();
            let live_core = core.clone();
            let _live = spawn(async move {
                if let Err(e) = live_connection(live_core, actor).await {
                    let _ = ended_tx.send(e);
                }
            });
            loop {
                // The bills a change names, or `None`: any of them may have changed.
                let named = tokio::select! {
                    touch = touched.recv() => match touch {
                        Ok(t) if t.subject != subject => continue,
                        Ok(t) => t.bills,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return Err(CoreError::Closed),
                    },
                    error = &mut ended => return Err(error.unwrap_or(CoreError::Closed)),
                    ended = session_ended(&mut session) => return Err(ended),
                    _ = core_closed(&mut closed) => return Err(CoreError::Closed),
                    _ = sink.closed() => return Ok(()),
                };
                let Some(core) = core.upgrade() else { return Err(CoreError::Closed) };
                let changes = match named {
                    // Only the bills named, unless a shown bill's due time passed meanwhile
                    // (then the whole list: it expired on the phone).
                    Some(ids) if !shown.expiry_passed(core.client.server_now_ms()) => {
                        shown.apply(core.bills_by_id(&subject, &ids)?)
                    }
                    _ => shown.replace(core.bills(Some(&subject))?),
                };
                drop(core);
                if !changes.is_empty()
                    && !sink.send(InboxUpdate { subject: subject.clone(), bills: shown.list(), changes }).await
                {
                    return Ok(());
                }
            }
        })
    }

    /// Tells this process's inbox streams which subjects' bills may have changed.
    fn touch(&self, changes: &[InboxChange]) {
        let mut by_subject: Vec<(&str, Vec<String>)> = Vec::new();
        for change in changes {
            let bill = change.bill();
            match by_subject.iter_mut().find(|(s, _)| *s == bill.person_id) {
                Some((_, ids)) => ids.push(bill.bill_id.clone()),
                None => by_subject.push((&bill.person_id, vec![bill.bill_id.clone()])),
            }
        }
        for (subject, ids) in by_subject {
            let _ = self.inbox_touched.send(Touch { subject: subject.to_string(), bills: Some(ids) });
        }
    }

    /// Tells this process's inbox streams that every list may have changed (a start-over).
    fn touch_subject(&self, subject: &str) {
        let _ = self.inbox_touched.send(Touch { subject: subject.to_string(), bills: None });
    }

    fn touch_all(&self, held: &Held, actor: &Actor) {
        for name in held.section_names(&format!("s/{}/", actor.person_id)) {
            if let Some(subject) = name.rsplit('/').next() {
                let _ = self.inbox_touched.send(Touch { subject: subject.to_string(), bills: None });
            }
        }
        let _ = self.inbox_touched.send(Touch { subject: actor.person_id.clone(), bills: None });
    }

    /// Every entry of `log` must be a bill of its owner: the actor, or a relative whose bills
    /// reach them.
    fn check_recipients(&self, actor: &Actor, log: &str, entries: &[InboxEntry]) -> CoreResult<()> {
        for entry in entries {
            if entry.bill.person_id != log || self.subject_of(actor, Some(log), Scope::ViewBills).is_err() {
                return Err(NetError::Undecodable(
                    "the platform sent a bill for someone this phone does not act for".into(),
                )
                .into());
            }
        }
        Ok(())
    }

    /// One live connection's events, applied as they come; `Ok` when the platform closed it.
    async fn stream_once(self: &Arc<Self>, actor: &Actor, backoff: &mut u64) -> CoreResult<()> {
        // Every (re)connection starts with a pull: it is the resync, and it checks that the
        // platform's log is still the one the cursor counts in.
        self.sync_inbox().await?;
        let cursor = Inbox::new(&self.hold()?, &actor.person_id).cursor()?;
        let tokens = self.fresh_session(&actor.person_id).await?;
        let path = format!("v1/inbox/stream?after={cursor}");
        let response = self.client.open_stream(&path, Auth::bearer(&tokens.access_token)).await;
        let mut response = self.session_answer(&actor.person_id, response)?;
        *backoff = BACKOFF_MIN_MS;
        let mut parser = SseParser::new(MAX_EVENT_LINE);
        loop {
            let chunk = match tokio::time::timeout(STREAM_IDLE, response.chunk()).await {
                Err(_) => return Err(NetError::Timeout.into()),
                Ok(chunk) => chunk.map_err(crate::io::net::map_reqwest)?,
            };
            let Some(chunk) = chunk else { return Ok(()) };
            let events = parser.feed(&chunk).map_err(|e| NetError::Undecodable(e.to_string()))?;
            for event in events {
                let entry: InboxEntry = serde_json::from_str(&event.data)
                    .map_err(|e| NetError::Undecodable(format!("stream event: {e}")))?;
                self.check_recipients(actor, &actor.person_id, std::slice::from_ref(&entry))?;
                let behind = {
                    let _serial = self.inbox_lock.lock().await;
                    let held = self.hold()?;
                    let inbox = Inbox::new(&held, &actor.person_id);
                    // Not flushed: a crash before sled writes it out only means the change is
                    // pulled again (never listed twice).
                    inbox.apply_loose(std::slice::from_ref(&entry))?;
                    // Touched even when another process applied it first: its listeners here
                    // have not heard of it yet.
                    let _ = self.inbox_touched.send(Touch {
                        subject: entry.bill.person_id.clone(),
                        bills: Some(vec![entry.bill.bill_id.clone()]),
                    });
                    inbox.cursor()? < entry.seq
                };
                if behind {
                    self.sync_inbox().await?;
                }
            }
        }
    }

    /// The platform's doorbell keys, cached in the vault; fetched when missing or `refetch`.
    async fn push_keys(&self, refetch: bool) -> CoreResult<HashMap<u16, Vec<u8>>> {
        let vault = &self.store.vault;
        if !refetch {
            if let Some(keys) = vault.get::<Vec<wire::PushKey>>(KEY_PUSH_KEYS)? {
                return decode_push_keys(&keys);
            }
        }
        let keys: Vec<wire::PushKey> = self.client.get("v1/push/keys", None).await?;
        let decoded = decode_push_keys(&keys)?;
        vault.put(KEY_PUSH_KEYS, &keys)?;
        Ok(decoded)
    }
}

/// What changed between the bills last handed to a listener and the bills now, in the order
/// of the list now; `shown` becomes the list now.
/// Keeps the live connection open: reconnects with exponential backoff (200 ms to 10 s,
/// with jitter) until the session ends or the core goes. Holds the core only while it handles
/// something, never across a wait.
pub(super) async fn live_connection(core: Weak<CarePass>, actor: Actor) -> CoreResult<()> {
    let mut backoff = BACKOFF_MIN_MS;
    loop {
        let jitter_source = {
            let Some(core) = core.upgrade() else { return Ok(()) };
            match core.stream_once(&actor, &mut backoff).await {
                Err(e @ (CoreError::SessionExpired | CoreError::NotSignedIn | CoreError::Closed)) => return Err(e),
                Err(e) => log::info!(target: "carepass::bills", "live stream interrupted: {e}"),
                Ok(()) => log::info!(target: "carepass::bills", "live stream closed by the platform"),
            }
            core.clock.now_ms()
        };
        let jitter = (jitter_source.rem_euclid(1000) as u64 * backoff) / 4000;
        tokio::time::sleep(Duration::from_millis(backoff + jitter)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX_MS);
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
