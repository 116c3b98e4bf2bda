//! The session: who acts and for whom. The **actor** is the signed-in device owner, named by
//! the session's tokens; the **subject** is the person a call is about — the actor, or (with
//! the family work) a relative the actor is linked to. Every authenticated call names its
//! subject ([`crate::wire::SUBJECT_HEADER`] when it is not the actor), and the phone keeps
//! each subject's data in its own store section, `s/<actor>/<subject>`, so signing out wipes
//! every section the actor held (RFC 8693 calls this delegation, as opposed to impersonation).
//!
//! Tokens live in the vault, bound to the platform origin they came from: a session is never
//! sent to another server. Refresh tokens are single use, so refreshing is serialised in the
//! process and, through the vault lock, across the app's processes.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::NaiveDate;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::streams::{stream, CoreStream, Sink};
use super::{CarePass, Profile};
use crate::app::error::{CoreError, CoreResult};
use crate::domain::clock::ms_to_time;
use crate::domain::family::link::Act;
use crate::domain::family::{FamilyLink, Scope};
use crate::domain::money::Fen;
use crate::domain::person::{self, mask_phone};
use crate::domain::voucher::format::DeviceCertificate;
use crate::domain::{account, check_id, Field};
use crate::io::net::{Auth, NetError};
use crate::wire::{self, PersonRecord, PlatformCode, SessionGrant, SessionTokens};

pub(crate) const KEY_ACTIVE: &str = "active";
pub(crate) const KEY_ENROLMENTS: &str = "enrolments";
pub(crate) const KEY_CLOCK_OFFSET: &str = "clock-offset";
/// How long to wait for another process that is refreshing the same session.
const REFRESH_WAIT: Duration = Duration::from_secs(30);

fn key_session(actor: &str) -> String {
    format!("session.{actor}")
}

fn key_person(actor: &str) -> String {
    format!("person.{actor}")
}

/// This device's enrolment for one person on one platform (kept across sign-out, so the
/// device signs in again without registering a new key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Enrolment {
    pub person_id: String,
    pub phone: String,
    pub device_id: String,
    /// The device certificate for offline codes (base64url), when the platform issued one.
    #[serde(default)]
    pub certificate: Option<String>,
    /// The platform origin that enrolled the device.
    pub origin: String,
}

/// A session's tokens and the platform origin they are valid at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredSession {
    tokens: SessionTokens,
    origin: String,
}

/// The signed-in device owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub person_id: String,
    pub device_id: String,
}

/// Whether someone is signed in, as the session stream tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// Nobody is signed in (never, or signed out on this device).
    SignedOut,
    SignedIn(Profile),
    /// The platform ended the session (expired, revoked, signed out elsewhere): sign in again.
    Ended,
}

impl CarePass {
    /// Who is signed in now (no network).
    pub fn session_state(&self) -> CoreResult<SessionState> {
        self.check_open()?;
        Ok(self.session.borrow().clone())
    }

    /// The session state now, then each change, until the core is closed.
    pub fn session_stream(&self) -> CoreStream<SessionState> {
        let mut changes = self.session.subscribe();
        let mut closed = self.closed.subscribe();
        stream(move |sink: Sink<SessionState>| async move {
            loop {
                if *closed.borrow() {
                    return Err(CoreError::Closed);
                }
                let state = changes.borrow_and_update().clone();
                if !sink.send(state).await {
                    return Ok(());
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return Err(CoreError::Closed) },
                    _ = core_closed(&mut closed) => return Err(CoreError::Closed),
                }
            }
        })
    }

    /// The signed-in person from the vault (no network), or `None`.
    pub fn current_profile(&self) -> CoreResult<Option<Profile>> {
        self.check_open()?;
        Ok(match self.read_session_state()? {
            SessionState::SignedIn(profile) => Some(profile),
            SessionState::SignedOut | SessionState::Ended => None,
        })
    }

    /// The session state as the vault has it.
    pub(crate) fn read_session_state(&self) -> CoreResult<SessionState> {
        let vault = &self.store.vault;
        let Some(actor) = vault.get::<String>(KEY_ACTIVE)? else { return Ok(SessionState::SignedOut) };
        if vault.get::<StoredSession>(&key_session(&actor))?.is_none() {
            return Ok(SessionState::Ended);
        }
        let (Some(person), Some(enrolment)) =
            (vault.get::<PersonRecord>(&key_person(&actor))?, self.enrolment_of(&actor)?)
        else {
            return Ok(SessionState::Ended);
        };
        Ok(SessionState::SignedIn(self.profile_of(&person, &enrolment.device_id)?))
    }

    /// Re-reads the vault and tells the session stream, if anything changed.
    ///
    /// The vault is read while the stream's value is held, so publishers run one at a time
    /// and a slow one cannot put back a state an earlier read saw (a sign-out read half-way
    /// as "the platform ended it", then told after the sign-out's own "signed out").
    pub(crate) fn publish_session(&self) -> CoreResult<()> {
        let mut read = Ok(());
        self.session.send_if_modified(|s| match self.read_session_state() {
            Ok(state) if *s != state => {
                *s = state;
                true
            }
            Ok(_) => false,
            Err(e) => {
                read = Err(e);
                false
            }
        });
        read
    }

    /// The signed-in device owner (with a session: not only an active profile).
    pub(crate) fn actor(&self) -> CoreResult<Actor> {
        self.check_open()?;
        let vault = &self.store.vault;
        let Some(person_id) = vault.get::<String>(KEY_ACTIVE)? else {
            // Perhaps another process of the app signed out: tell this one's session stream.
            self.publish_session()?;
            return Err(CoreError::NotSignedIn);
        };
        // A session for another platform is named as such, before anything else.
        if let Err(e) = self.tokens(&person_id) {
            self.publish_session()?;
            return Err(e);
        }
        let enrolment = self.enrolment_of(&person_id)?.ok_or(CoreError::NotEnrolled)?;
        Ok(Actor { person_id, device_id: enrolment.device_id })
    }

    /// The subject a call is for, to do what `scope` covers: the actor when `subject` is
    /// `None` or names them; otherwise a relative the actor holds an active link to that
    /// grants `scope` now (the link as last fetched, under the rules as last fetched, on
    /// platform time). The platform checks the same again, so this refuses early and offline.
    pub(crate) fn subject_of(&self, actor: &Actor, subject: Option<&str>, scope: Scope) -> CoreResult<String> {
        match subject {
            None => Ok(actor.person_id.clone()),
            Some(s) if s == actor.person_id => Ok(actor.person_id.clone()),
            Some(s) => {
                check_id(Field::PersonId, s)?;
                let link = self.link_for(actor, s)?.ok_or(CoreError::NotLinked)?;
                let act = Act { scope, amount: None, spent_this_month: Fen::ZERO };
                FamilyLink::authorize(Some(&link), &self.family_rules_cached()?, self.client.server_now_ms(), act)
                    .map_err(CoreError::Family)?;
                Ok(s.to_string())
            }
        }
    }

    /// The store section of `subject` as seen by `actor`.
    pub(crate) fn section_name(actor: &Actor, subject: &str) -> String {
        format!("s/{}/{subject}", actor.person_id)
    }

    /// A request for `subject` with the actor's bearer token: refreshed first when about to
    /// expire, and once more if the platform says it expired anyway. A session the platform
    /// ended is dropped from the phone at once.
    pub(crate) async fn authed<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        actor: &Actor,
        subject: &str,
        method: Method,
        path: &str,
        body: Option<&Req>,
    ) -> CoreResult<Resp> {
        self.authed_keyed(actor, subject, method, path, body, None).await
    }

    /// [`Self::authed`] with an `Idempotency-Key`.
    pub(crate) async fn authed_keyed<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        actor: &Actor,
        subject: &str,
        method: Method,
        path: &str,
        body: Option<&Req>,
        idempotency_key: Option<&str>,
    ) -> CoreResult<Resp> {
        let tokens = self.fresh_session(&actor.person_id).await?;
        let auth = |token| Auth {
            bearer: Some(token),
            subject: (subject != actor.person_id).then_some(subject),
            idempotency_key,
        };
        let answer = match self.client.call(method.clone(), path, body, auth(&tokens.access_token)).await {
            Err(e) if e.platform_code() == Some(PlatformCode::AccessTokenExpired) => {
                let tokens = self.refresh_session(&actor.person_id, &tokens.refresh_token).await?;
                self.client.call(method, path, body, auth(&tokens.access_token)).await
            }
            other => other,
        };
        self.session_answer(&actor.person_id, answer)
    }

    /// Drops the session when the platform says it is over; passes everything else on.
    pub(crate) fn session_answer<T>(&self, actor: &str, answer: Result<T, NetError>) -> CoreResult<T> {
        match answer {
            Err(e) if e.platform_code() == Some(PlatformCode::Unauthorized) => {
                self.drop_session(actor)?;
                Err(CoreError::SessionExpired)
            }
            other => Ok(other?),
        }
    }

    /// The actor's tokens, refreshed first when the access token is about to expire.
    pub(crate) async fn fresh_session(&self, actor: &str) -> CoreResult<SessionTokens> {
        let tokens = self.tokens(actor)?;
        if account::needs_refresh(tokens.access_expires_at_ms, self.client.server_now_ms()) {
            return self.refresh_session(actor, &tokens.refresh_token).await;
        }
        Ok(tokens)
    }

    /// The actor's tokens, if they belong to the platform this core talks to.
    pub(crate) fn tokens(&self, actor: &str) -> CoreResult<SessionTokens> {
        let stored = self.store.vault.get::<StoredSession>(&key_session(actor))?.ok_or(CoreError::NotSignedIn)?;
        if stored.origin != self.client.origin() {
            return Err(CoreError::OtherPlatform { signed_in_at: stored.origin, asked: self.client.origin() });
        }
        Ok(stored.tokens)
    }

    /// Trades the refresh token for a new pair, unless another caller (in this process or
    /// another) already did while we waited for the lock.
    async fn refresh_session(&self, actor: &str, spent: &str) -> CoreResult<SessionTokens> {
        let _in_process = self.refresh_lock.lock().await;
        let _across_processes = self.store.vault.lock_async(REFRESH_WAIT).await?;
        let current = self.tokens(actor)?;
        if current.refresh_token != spent {
            return Ok(current);
        }
        let request = wire::RefreshRequest { refresh_token: current.refresh_token.clone() };
        match self.client.post::<_, SessionTokens>("v1/sessions/refresh", &request, None).await {
            Ok(tokens) => {
                let stored = StoredSession { tokens: tokens.clone(), origin: self.client.origin() };
                self.store.vault.put(&key_session(actor), &stored)?;
                Ok(tokens)
            }
            Err(e)
                if matches!(
                    e.platform_code(),
                    Some(
                        PlatformCode::RefreshTokenExpired
                            | PlatformCode::RefreshTokenReused
                            | PlatformCode::Unauthorized
                    )
                ) =>
            {
                self.drop_session(actor)?;
                Err(CoreError::SessionExpired)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets the actor's session (the platform ended it); live streams end at once.
    pub(crate) fn drop_session(&self, actor: &str) -> CoreResult<()> {
        self.store.vault.remove(&key_session(actor))?;
        self.publish_session()
    }

    /// Forgets the actor's session and person record and wipes every store section the
    /// actor held (their own and their relatives').
    pub(crate) fn wipe_actor(&self, actor: &str) -> CoreResult<()> {
        let vault = &self.store.vault;
        // Inactive first: whoever reads the vault half-way sees "signed out", never a
        // session the platform ended.
        if vault.get::<String>(KEY_ACTIVE)?.as_deref() == Some(actor) {
            vault.remove(KEY_ACTIVE)?;
        }
        vault.remove(&key_session(actor))?;
        vault.remove(&key_person(actor))?;
        vault.remove(&super::family::key_family(actor))?;
        vault.remove(&super::family::key_audit_head(actor))?;
        if !self.config.extension {
            let held = self.hold()?;
            held.drop_sections(&format!("s/{actor}/"))?;
            held.flush()?;
        }
        self.publish_session()
    }

    /// Keeps what the platform granted (enrolment, session, person) and makes them active.
    pub(crate) fn accept_grant(&self, phone: &str, grant: SessionGrant) -> CoreResult<Profile> {
        let person_id = grant.person.person_id.clone();
        check_id(Field::PersonId, &person_id)
            .map_err(|_| NetError::Undecodable("the platform's person id is not an id".into()))?;
        if let Some(cert) = &grant.device_certificate {
            decode_certificate(cert)?; // refuse a certificate we could never use
        }
        let origin = self.client.origin();
        let vault = &self.store.vault;
        {
            let _lock = vault.lock(Duration::from_secs(5))?;
            let mut enrolments: Vec<Enrolment> = vault.get(KEY_ENROLMENTS)?.unwrap_or_default();
            enrolments.retain(|e| e.origin != origin || (e.person_id != person_id && e.phone != phone));
            enrolments.push(Enrolment {
                person_id: person_id.clone(),
                phone: phone.into(),
                device_id: grant.device_id.clone(),
                certificate: grant.device_certificate.clone(),
                origin: origin.clone(),
            });
            vault.put(KEY_ENROLMENTS, &enrolments)?;
        }
        vault.put(&key_session(&person_id), &StoredSession { tokens: grant.tokens.clone(), origin })?;
        vault.put(&key_person(&person_id), &grant.person)?;
        vault.put(KEY_ACTIVE, &person_id)?;
        self.remember_clock_offset()?;
        self.publish_session()?;
        self.profile_of(&grant.person, &grant.device_id)
    }

    /// Keeps a fresh person record for the actor.
    pub(crate) fn store_person(&self, actor: &str, person: &PersonRecord) -> CoreResult<()> {
        self.store.vault.put(&key_person(actor), person)?;
        self.publish_session()
    }

    pub(crate) fn profile_of(&self, person: &PersonRecord, device_id: &str) -> CoreResult<Profile> {
        let birth = person::parse_birth_date(&person.birth_date)
            .map_err(|_| NetError::Undecodable("birth date is not YYYY-MM-DD".into()))?;
        let today: NaiveDate = ms_to_time(self.client.server_now_ms()).date_naive();
        Ok(Profile {
            person_id: person.person_id.clone(),
            name: person.name.clone(),
            phone_masked: mask_phone(&person.phone),
            birth_date: person.birth_date.clone(),
            age: person::age_on(birth, today),
            insurance_type: person.insurance_type,
            pooling_region: person.pooling_region.clone(),
            pooling_region_name: person.pooling_region_name.clone(),
            device_id: device_id.into(),
        })
    }

    /// This device's enrolments at the platform this core talks to.
    pub(crate) fn enrolments(&self) -> CoreResult<Vec<Enrolment>> {
        let origin = self.client.origin();
        let all: Vec<Enrolment> = self.store.vault.get(KEY_ENROLMENTS)?.unwrap_or_default();
        Ok(all.into_iter().filter(|e| e.origin == origin).collect())
    }

    pub(crate) fn enrolment_of(&self, person_id: &str) -> CoreResult<Option<Enrolment>> {
        Ok(self.enrolments()?.into_iter().find(|e| e.person_id == person_id))
    }

    /// Forgets this device's enrolment for `phone` (the platform no longer knows it).
    pub(crate) fn forget_enrolment(&self, phone: &str) -> CoreResult<()> {
        let origin = self.client.origin();
        let vault = &self.store.vault;
        let _lock = vault.lock(Duration::from_secs(5))?;
        let mut enrolments: Vec<Enrolment> = vault.get(KEY_ENROLMENTS)?.unwrap_or_default();
        enrolments.retain(|e| !(e.origin == origin && e.phone == phone));
        vault.put(KEY_ENROLMENTS, &enrolments)?;
        Ok(())
    }
}

pub(crate) fn decode_certificate(text: &str) -> CoreResult<DeviceCertificate> {
    let bytes = B64.decode(text).map_err(|_| NetError::Undecodable("device certificate is not base64url".into()))?;
    DeviceCertificate::from_bytes(&bytes)
        .map_err(|_| NetError::Undecodable("device certificate has the wrong length".into()).into())
}

/// Resolves when the session is no longer signed in, with the error a stream ends with.
pub(crate) async fn session_ended(session: &mut tokio::sync::watch::Receiver<SessionState>) -> CoreError {
    match session.wait_for(|s| !matches!(s, SessionState::SignedIn(_))).await {
        Ok(state) if matches!(*state, SessionState::Ended) => CoreError::SessionExpired,
        Ok(_) => CoreError::NotSignedIn,
        Err(_) => CoreError::Closed,
    }
}

/// Resolves when the core is closed (or gone).
pub(crate) async fn core_closed(closed: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = closed.wait_for(|c| *c).await;
}
