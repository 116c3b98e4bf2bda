//! The platform's state and rules: insured persons, enrolled devices, sessions, challenges,
//! all kept in sled so a restart loses nothing. Handlers in `api.rs` call these methods; no
//! HTTP types here.
//!
//! Tokens are random 256-bit strings; only their SHA-256 digests are stored.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::clock::Clock;
use carepass_core::domain::family::{Refusal, Scope};
use carepass_core::domain::voucher::cert::{revocation_message, Issuer};
use carepass_core::domain::voucher::format::{device_id_to_bytes, device_id_to_string};
use carepass_core::domain::voucher::verify::{DeviceDirectory, KnownDevice, ReplayCache, Verifier};
use carepass_core::domain::voucher::Purpose;
use carepass_core::domain::{account, crypto as keys};
use carepass_core::io::clock::OffsetClock;
use carepass_core::wire::{self, PersonRecord, PlatformCode, SessionGrant, SessionTokens};
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::seed;

pub const ACCESS_TTL_MS: i64 = 15 * 60 * 1000;
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
pub const CHALLENGE_TTL_MS: i64 = 2 * 60 * 1000;
pub const CODE_TTL_S: u32 = 300;
/// Device certificates for offline codes live 180 days and are renewed at every sign-in.
pub const CERT_TTL_S: i64 = 180 * 24 * 3600;
/// How far a phone's corrected clock may still be from the platform's when a code is scanned.
pub const SCAN_SKEW_MS: i64 = 5_000;
pub const ISSUER_KEY_ID: u16 = 1;
pub const PUSH_KEY_ID: u16 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub device_id: String,
    pub person_id: String,
    pub public_key: Vec<u8>,
    pub name: String,
    pub platform: String,
    pub enrolled_at_ms: i64,
    pub revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionRecord {
    person_id: String,
    device_id: String,
    revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    session_id: String,
    expires_at_ms: i64,
    spent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChallengeRecord {
    device_id: String,
    expires_at_ms: i64,
}

/// What a pruning pass dropped.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PruneReport {
    pub challenges: usize,
    pub access_tokens: usize,
    pub refresh_tokens: usize,
    pub used_codes: usize,
    pub limits: usize,
    /// Idempotency records past 24 h whose payment is final.
    pub idempotency: usize,
}

/// Who a valid access token speaks for (the actor), and whom the request is about (the
/// subject: the actor, unless the request names a relative in `x-carepass-subject`, in which
/// case the actor's active link to them and what it lets them do now are attached).
#[derive(Debug, Clone)]
pub struct Caller {
    pub person_id: String,
    pub device_id: String,
    pub session_id: String,
    acting: Option<(carepass_core::domain::family::FamilyLink, Vec<Scope>)>,
}

impl Caller {
    /// The person the request is about, for an act needing `scope`: the actor themselves,
    /// or the relative when the link grants `scope` now. The one door to the subject, so no
    /// handler can reach a relative's data without naming what it does.
    pub fn subject(&self, scope: Scope) -> ApiResult<&str> {
        match &self.acting {
            None => Ok(&self.person_id),
            Some((link, scopes)) if scopes.contains(&scope) => Ok(&link.principal),
            Some(_) => Err(crate::family::refused(Refusal::ScopeMissing(scope))),
        }
    }

    /// The actor, for what only a person does for themselves (credit, push tokens, links):
    /// refused when the request names a relative.
    pub fn own(&self) -> ApiResult<&str> {
        match &self.acting {
            None => Ok(&self.person_id),
            Some(_) => Err(crate::family::refused(Refusal::NotThePrincipal)),
        }
    }

    /// The link the actor acts under, if the request names a relative.
    pub fn link(&self) -> Option<&carepass_core::domain::family::FamilyLink> {
        self.acting.as_ref().map(|(l, _)| l)
    }
}

/// The sandbox platform.
pub struct Platform {
    db: sled::Db,
    durability: crate::durable::Durability,
    limits: crate::limits::Limits,
    /// Per recipient, the highest log sequence that is on disk (served and streamed).
    heads: Mutex<std::collections::HashMap<String, u64>>,
    /// Names this log: a platform whose data was replaced (restored, reset) has another one,
    /// and phones then re-sync from scratch (`docs/bills.md` § 3).
    epoch: String,
    /// Set when the server shuts down: live streams end at once.
    shutdown: tokio::sync::watch::Sender<bool>,
    clock: Arc<OffsetClock>,
    rng: SystemRandom,
    admin_token_digest: Option<Vec<u8>>,
    /// Compound updates (check then write) run one at a time.
    write: Mutex<()>,
    issuer: Issuer,
    verifier: Verifier,
    push_key: Issuer,
    /// Wakes live inbox streams: the person id whose inbox changed.
    inbox_changed: tokio::sync::broadcast::Sender<String>,
    /// Bumped to cut every open stream (test fixture).
    stream_cuts: tokio::sync::watch::Sender<u64>,
    pharmacies: crate::pharmacy::PharmacyNetwork,
    pub(crate) payments: crate::payments::Payments,
    pub(crate) family: crate::family::FamilyLocks,
}

impl Platform {
    /// Opens the platform's database in `dir`; seeds it with the demo data on first open
    /// when `demo_seed` is set.
    pub fn open(
        dir: &Path,
        demo_seed: bool,
        admin_token: Option<&str>,
        durability: crate::durable::DurabilityMode,
    ) -> Result<Platform, sled::Error> {
        let db = open_db(dir)?;
        let epoch = load_epoch(&db)?;
        let durability = crate::durable::Durability::new(db.clone(), durability).map_err(sled::Error::Io)?;
        let limits = crate::limits::Limits::new(db.open_tree("limits")?);
        let offset = db
            .open_tree("meta")?
            .get("clock_offset_ms")?
            .and_then(|v| v.as_ref().try_into().ok().map(i64::from_be_bytes))
            .unwrap_or(0);
        let issuer = load_signing_key(&db, "issuer_pkcs8", ISSUER_KEY_ID)?;
        let push_key = load_signing_key(&db, "push_pkcs8", PUSH_KEY_ID)?;
        let receipt_key = load_signing_key(&db, "receipt_pkcs8", crate::payments::RECEIPT_KEY_ID)?;
        let verifier = Verifier::new(
            std::collections::HashMap::from([(issuer.key_id, issuer.public_key())]),
            SCAN_SKEW_MS,
            Arc::new(SledReplayCache(db.open_tree("used_codes")?)),
        );
        let platform = Platform {
            db,
            durability,
            limits,
            heads: Mutex::new(std::collections::HashMap::new()),
            epoch,
            shutdown: tokio::sync::watch::channel(false).0,
            clock: Arc::new(OffsetClock::new(offset)),
            rng: SystemRandom::new(),
            admin_token_digest: admin_token.map(|t| digest(&SHA256, t.as_bytes()).as_ref().to_vec()),
            write: Mutex::new(()),
            issuer,
            verifier,
            push_key,
            inbox_changed: tokio::sync::broadcast::channel(1024).0,
            stream_cuts: tokio::sync::watch::channel(0).0,
            pharmacies: crate::pharmacy::PharmacyNetwork::demo().map_err(sled::Error::Unsupported)?,
            payments: crate::payments::Payments::new(receipt_key),
            family: Default::default(),
        };
        if demo_seed {
            platform.seed_demo()?;
            platform.seed_prescriptions().map_err(|e| sled::Error::Unsupported(e.message))?;
        }
        Ok(platform)
    }

    pub fn clock(&self) -> Arc<OffsetClock> {
        self.clock.clone()
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn seed_demo(&self) -> Result<(), sled::Error> {
        let persons = self.db.open_tree("persons")?;
        let phones = self.db.open_tree("phones")?;
        for p in seed::demo_persons() {
            if persons.get(&p.person_id)?.is_none() {
                let json = serde_json::to_vec(&p).map_err(|e| sled::Error::Unsupported(e.to_string()))?;
                persons.insert(p.person_id.as_bytes(), json)?;
                phones.insert(p.phone.as_bytes(), p.person_id.as_bytes())?;
            }
        }
        self.db.flush()?;
        Ok(())
    }

    /// Whether `token` is the admin token (false when admin routes are off).
    pub fn is_admin(&self, token: &str) -> bool {
        match &self.admin_token_digest {
            Some(expected) => digest(&SHA256, token.as_bytes()).as_ref() == expected.as_slice(),
            None => false,
        }
    }

    pub fn admin_enabled(&self) -> bool {
        self.admin_token_digest.is_some()
    }

    // ---- persons ----------------------------------------------------------------------

    pub fn person(&self, person_id: &str) -> ApiResult<Option<PersonRecord>> {
        get_json(&self.db.open_tree("persons")?, person_id)
    }

    pub fn persons(&self) -> ApiResult<Vec<PersonRecord>> {
        let mut out = Vec::new();
        for entry in self.db.open_tree("persons")?.iter() {
            let (_, v) = entry?;
            out.push(serde_json::from_slice(&v)?);
        }
        Ok(out)
    }

    pub(crate) fn person_by_phone(&self, phone: &str) -> ApiResult<Option<PersonRecord>> {
        let Some(id) = self.db.open_tree("phones")?.get(phone)? else { return Ok(None) };
        self.person(&String::from_utf8_lossy(&id))
    }

    /// The person a phone and verification code identify. Unknown phones get the same answer
    /// as wrong codes, so the API does not tell who is insured.
    ///
    /// Wrong codes count against the phone and against the device trying (its key or id):
    /// a few in a row lock both out for a while, and while locked out even the right code is
    /// refused with `429`.
    fn authenticate_phone(&self, phone: &str, code: &str, device: &str) -> ApiResult<PersonRecord> {
        account::check_phone(phone).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let keys = [format!("code/phone/{phone}"), format!("code/device/{device}")];
        let now = self.now_ms();
        self.limits.code_allowed(&keys, now)?;
        let wrong =
            || ApiError::unauthorized(PlatformCode::WrongVerificationCode, "the verification code is wrong or expired");
        let person = match self.person_by_phone(phone)? {
            Some(person) if code == seed::SANDBOX_CODE => person,
            _ => {
                self.limits.wrong_code(&keys, now)?;
                return Err(wrong());
            }
        };
        self.limits.right_code(&keys)?;
        Ok(person)
    }

    /// The SMS code request: one per 30 s and a daily cap per phone (the same answer for
    /// phones the platform does not know).
    pub fn request_code(&self, phone: &str) -> ApiResult<()> {
        account::check_phone(phone).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let now = self.now_ms();
        self.limits.spaced(
            &format!("sms/spacing/{phone}"),
            crate::limits::SMS_INTERVAL_MS,
            now,
            "a code was just sent",
        )?;
        self.limits.windowed(
            &format!("sms/day/{phone}"),
            crate::limits::SMS_PER_DAY,
            crate::limits::DAY_MS,
            now,
            "too many codes sent to this phone today",
        )
    }

    pub fn limits(&self) -> &crate::limits::Limits {
        &self.limits
    }

    // ---- enrolment and sessions -------------------------------------------------------

    pub fn enrol(
        &self,
        phone: &str,
        code: &str,
        public_key_b64: &str,
        name: &str,
        platform: &str,
    ) -> ApiResult<SessionGrant> {
        let public_key =
            B64.decode(public_key_b64).map_err(|_| ApiError::bad_request("device_public_key is not base64url"))?;
        keys::check_public_key(&public_key).map_err(|_| {
            ApiError::bad_request("device_public_key is not a P-256 point (65 bytes SEC1 uncompressed, on the curve)")
        })?;
        let person = self.authenticate_phone(phone, code, &hex(&digest(&SHA256, &public_key).as_ref()[..8]))?;
        self.limits.windowed(
            &format!("enrol/{phone}"),
            crate::limits::ENROLMENTS_PER_DAY,
            crate::limits::DAY_MS,
            self.now_ms(),
            "too many enrolments for this phone today",
        )?;
        if name.chars().count() > 64 || !matches!(platform, "android" | "ios" | "terminal") {
            return Err(ApiError::bad_request(
                "device_name is at most 64 characters; platform is android, ios or terminal",
            ));
        }
        let _w = self.lock()?;
        let devices = self.db.open_tree("devices")?;
        let by_key = self.db.open_tree("device_by_key")?;
        let key_index = [person.person_id.as_bytes(), b"\0", &public_key].concat();
        let device_id = match by_key.get(&key_index)? {
            Some(id)
                if !get_json::<DeviceRecord>(&devices, &String::from_utf8_lossy(&id))?
                    .map(|d| d.revoked)
                    .unwrap_or(true) =>
            {
                String::from_utf8_lossy(&id).into_owned()
            }
            _ => {
                let device = DeviceRecord {
                    device_id: format!("dev_{}", self.random_hex(8)?),
                    person_id: person.person_id.clone(),
                    public_key: public_key.clone(),
                    name: name.into(),
                    platform: platform.into(),
                    enrolled_at_ms: self.now_ms(),
                    revoked: false,
                };
                put_json(&devices, &device.device_id, &device)?;
                by_key.insert(key_index, device.device_id.as_bytes())?;
                device.device_id
            }
        };
        let tokens = self.new_session(&person.person_id, &device_id)?;
        let device_certificate = Some(self.certify(&device_id, &public_key)?);
        Ok(SessionGrant { person, device_id, tokens, device_certificate })
    }

    pub fn device(&self, device_id: &str) -> ApiResult<Option<DeviceRecord>> {
        get_json(&self.db.open_tree("devices")?, device_id)
    }

    pub fn challenge(&self, device_id: &str) -> ApiResult<(String, i64)> {
        self.limits.windowed(
            &format!("challenge/{device_id}"),
            crate::limits::CHALLENGES_PER_MINUTE,
            crate::limits::MINUTE_MS,
            self.now_ms(),
            "too many login challenges for this device",
        )?;
        match self.device(device_id)? {
            Some(d) if !d.revoked => {}
            _ => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    PlatformCode::UnknownDevice,
                    "no such enrolled device",
                ))
            }
        }
        let nonce = self.random_b64(24)?;
        let expires_at_ms = self.now_ms() + CHALLENGE_TTL_MS;
        put_json(
            &self.db.open_tree("challenges")?,
            &nonce,
            &ChallengeRecord { device_id: device_id.into(), expires_at_ms },
        )?;
        Ok((nonce, expires_at_ms))
    }

    pub fn login(
        &self,
        device_id: &str,
        phone: &str,
        code: &str,
        nonce: &str,
        signature_b64: &str,
    ) -> ApiResult<SessionGrant> {
        let person = self.authenticate_phone(phone, code, device_id)?;
        let _w = self.lock()?;
        let challenges = self.db.open_tree("challenges")?;
        let bad_challenge =
            || ApiError::unauthorized(PlatformCode::ChallengeInvalid, "the challenge is unknown, used or expired");
        // Single use: taken out before anything else is checked.
        let challenge: ChallengeRecord = match challenges.remove(nonce)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => return Err(bad_challenge()),
        };
        if challenge.device_id != device_id || challenge.expires_at_ms < self.now_ms() {
            return Err(bad_challenge());
        }
        let device = match self.device(device_id)? {
            Some(d) if !d.revoked && d.person_id == person.person_id => d,
            _ => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    PlatformCode::UnknownDevice,
                    "no such enrolled device for this person",
                ))
            }
        };
        let signature = B64.decode(signature_b64).map_err(|_| ApiError::bad_request("signature is not base64url"))?;
        keys::verify_p256(&device.public_key, &account::login_message(device_id, nonce), &signature).map_err(|_| {
            ApiError::unauthorized(PlatformCode::SignatureInvalid, "the device signature does not verify")
        })?;
        let tokens = self.new_session(&person.person_id, device_id)?;
        let device_certificate = Some(self.certify(device_id, &device.public_key)?);
        Ok(SessionGrant { person, device_id: device_id.into(), tokens, device_certificate })
    }

    /// Trades a refresh token for a new pair. A spent refresh token presented again means it
    /// was copied: the whole session ends.
    pub fn refresh(&self, refresh_token: &str) -> ApiResult<SessionTokens> {
        let _w = self.lock()?;
        let refresh = self.db.open_tree("refresh_tokens")?;
        let key = token_digest(refresh_token);
        let unknown = || ApiError::unauthorized(PlatformCode::Unauthorized, "unknown refresh token");
        let mut record: TokenRecord = get_json_bytes(&refresh, &key)?.ok_or_else(unknown)?;
        let sessions = self.db.open_tree("sessions")?;
        let mut session: SessionRecord = get_json(&sessions, &record.session_id)?.ok_or_else(unknown)?;
        if session.revoked || self.device(&session.device_id)?.is_none_or(|d| d.revoked) {
            return Err(ApiError::unauthorized(PlatformCode::Unauthorized, "the session has ended"));
        }
        if record.spent {
            session.revoked = true;
            put_json(&sessions, &record.session_id, &session)?;
            return Err(ApiError::unauthorized(
                PlatformCode::RefreshTokenReused,
                "refresh token already used; the session is ended",
            ));
        }
        if record.expires_at_ms <= self.now_ms() {
            return Err(ApiError::unauthorized(
                PlatformCode::RefreshTokenExpired,
                "the refresh token has expired; sign in again",
            ));
        }
        record.spent = true;
        refresh.insert(key, serde_json::to_vec(&record)?)?;
        let tokens = self.issue_tokens(&record.session_id)?;
        Ok(tokens)
    }

    /// The caller behind an access token.
    pub fn caller(&self, access_token: &str) -> ApiResult<Caller> {
        let unknown = || ApiError::unauthorized(PlatformCode::Unauthorized, "unknown or revoked access token");
        let record: TokenRecord =
            get_json_bytes(&self.db.open_tree("access_tokens")?, &token_digest(access_token))?.ok_or_else(unknown)?;
        let session: SessionRecord =
            get_json(&self.db.open_tree("sessions")?, &record.session_id)?.ok_or_else(unknown)?;
        if session.revoked {
            return Err(unknown());
        }
        match self.device(&session.device_id)? {
            Some(d) if !d.revoked => {}
            _ => return Err(unknown()),
        }
        if record.expires_at_ms <= self.now_ms() {
            return Err(ApiError::unauthorized(
                PlatformCode::AccessTokenExpired,
                "the access token has expired; refresh it",
            ));
        }
        Ok(Caller {
            person_id: session.person_id,
            device_id: session.device_id,
            session_id: record.session_id,
            acting: None,
        })
    }

    /// The caller acting for `subject` (from `x-carepass-subject`): themselves, or a
    /// relative they hold an active link to; refused otherwise (`no_link`, `link_pending`,
    /// `link_revoked`, `link_expired`).
    pub fn acting_for(&self, mut caller: Caller, subject: &str) -> ApiResult<Caller> {
        carepass_core::domain::check_id(carepass_core::domain::Field::PersonId, subject)
            .map_err(|e| ApiError::bad_request(format!("x-carepass-subject: {e}")))?;
        if subject != caller.person_id {
            caller.acting = Some(self.acting_link(&caller.person_id, subject)?);
        }
        Ok(caller)
    }

    pub fn end_session(&self, session_id: &str) -> ApiResult<()> {
        let _w = self.lock()?;
        let sessions = self.db.open_tree("sessions")?;
        if let Some(mut s) = get_json::<SessionRecord>(&sessions, session_id)? {
            s.revoked = true;
            put_json(&sessions, session_id, &s)?;
        }
        self.db.flush()?;
        Ok(())
    }

    // ---- e-voucher codes ---------------------------------------------------------------

    fn certify(&self, device_id: &str, public_key: &[u8]) -> ApiResult<String> {
        let id = device_id_to_bytes(device_id).map_err(|e| ApiError::internal(e.to_string()))?;
        let not_after_s =
            u32::try_from(self.now_ms() / 1000 + CERT_TTL_S).map_err(|_| ApiError::internal("time out of range"))?;
        let cert = self.issuer.certify(&id, public_key, not_after_s).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(B64.encode(cert.to_bytes()))
    }

    /// Verifies a scanned code for `purpose` (accepting each code once) and says whose it is.
    pub fn scan(&self, payload: &str, purpose: Purpose) -> ApiResult<wire::ScanOutcome> {
        let directory = PlatformDirectory(self.db.open_tree("devices")?);
        let verdict = self.verifier.verify(payload, purpose, self.now_ms(), &directory);
        let refused = |reason: &str| wire::ScanOutcome {
            accepted: false,
            reason: Some(reason.to_string()),
            holder: None,
            presenter_device_id: None,
            presenter_person_id: None,
            offline: false,
            proxy: false,
            presenter: None,
            link_id: None,
            relationship: None,
        };
        let code = match verdict {
            Ok(code) => code,
            Err(rejection) => return Ok(refused(rejection.code())),
        };
        let device = self.device(&code.device_id)?.ok_or_else(|| ApiError::internal("verified device vanished"))?;
        let scanned = |p: PersonRecord| wire::ScannedPerson {
            person_id: p.person_id,
            name: p.name,
            insurance_type: p.insurance_type,
            pooling_region: p.pooling_region,
        };
        // A proxy code names its link: the holder is the link's principal, and the link must
        // still let the presenting device's owner show their code (`docs/family.md` § 6).
        let (holder_id, link) = match &code.link_id {
            None => (device.person_id.clone(), None),
            Some(link_id) => match self.link_for_scan(link_id, &device.person_id)? {
                Ok(link) => (link.principal.clone(), Some(link)),
                Err(reason) => return Ok(refused(reason)),
            },
        };
        let holder = self.person(&holder_id)?.map(scanned);
        let presenter = match &link {
            Some(_) => self.person(&device.person_id)?.map(scanned),
            None => None,
        };
        if let Some(link) = &link {
            self.audit(carepass_core::domain::family::audit::AuditEntry {
                at_ms: self.now_ms(),
                principal: link.principal.clone(),
                actor: device.person_id.clone(),
                link_id: link.link_id.clone(),
                action: carepass_core::domain::family::audit::AuditAction::CodeScanned,
                amount: None,
                reference: purpose.name().to_string(),
            })?;
        }
        Ok(wire::ScanOutcome {
            accepted: true,
            reason: None,
            holder,
            presenter_device_id: Some(code.device_id),
            presenter_person_id: Some(device.person_id),
            offline: code.offline,
            proxy: code.proxy,
            presenter,
            link_id: link.as_ref().map(|l| l.link_id.clone()),
            relationship: link.map(|l| l.relationship),
        })
    }

    /// Revokes a device (lost phone). With `owner`, only a device of that person may be
    /// revoked (others answer as unknown); the admin role passes `None`.
    pub fn revoke_device(&self, device_id: &str, owner: Option<&str>) -> ApiResult<()> {
        let _w = self.lock()?;
        let devices = self.db.open_tree("devices")?;
        let unknown = || ApiError::new(StatusCode::NOT_FOUND, PlatformCode::UnknownDevice, "no such device");
        let mut device: DeviceRecord = get_json(&devices, device_id)?.ok_or_else(unknown)?;
        if owner.is_some_and(|o| o != device.person_id) {
            return Err(unknown());
        }
        if !device.revoked {
            device.revoked = true;
            put_json(&devices, device_id, &device)?;
            let meta = self.db.open_tree("meta")?;
            let sequence = read_u64(&meta, "revocation_sequence")? + 1;
            meta.insert("revocation_sequence", &sequence.to_be_bytes())?;
        }
        // A lost phone gets no more doorbells.
        self.drop_push_tokens(&device.person_id, device_id)?;
        Ok(())
    }

    pub fn trust_list(&self) -> wire::TrustList {
        wire::TrustList {
            issuers: vec![wire::TrustedIssuer {
                key_id: self.issuer.key_id,
                public_key: B64.encode(self.issuer.public_key()),
            }],
        }
    }

    /// The signed list of revoked devices.
    pub fn revocation_list(&self) -> ApiResult<wire::RevocationList> {
        let mut ids = Vec::new();
        for entry in self.db.open_tree("devices")?.iter() {
            let (_, v) = entry?;
            let device: DeviceRecord = serde_json::from_slice(&v)?;
            if device.revoked {
                if let Ok(id) = device_id_to_bytes(&device.device_id) {
                    ids.push(id);
                }
            }
        }
        ids.sort_unstable();
        let sequence = read_u64(&self.db.open_tree("meta")?, "revocation_sequence")?;
        let issued_at_ms = self.now_ms();
        let signature = self
            .issuer
            .sign(&revocation_message(sequence, issued_at_ms, &ids))
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(wire::RevocationList {
            sequence,
            issued_at_ms,
            issuer_key_id: self.issuer.key_id,
            device_ids: ids.iter().map(device_id_to_string).collect(),
            signature: B64.encode(signature),
        })
    }

    // ---- test fixtures ----------------------------------------------------------------

    /// Moves platform time; the offset is kept across restarts.
    pub fn advance_clock(&self, delta_ms: i64) -> ApiResult<i64> {
        let _w = self.lock()?;
        self.clock.advance_ms(delta_ms);
        let offset = self.clock.offset_ms();
        self.db.open_tree("meta")?.insert("clock_offset_ms", &offset.to_be_bytes())?;
        self.db.flush()?;
        Ok(offset)
    }

    // ---- live streams ------------------------------------------------------------------

    pub fn pharmacies(&self) -> &crate::pharmacy::PharmacyNetwork {
        &self.pharmacies
    }

    pub(crate) fn push_key(&self) -> &Issuer {
        &self.push_key
    }

    pub(crate) fn wake_streams(&self, person_id: &str) {
        let _ = self.inbox_changed.send(person_id.to_string());
    }

    pub fn subscribe_inbox(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inbox_changed.subscribe()
    }

    pub fn stream_cuts(&self) -> tokio::sync::watch::Receiver<u64> {
        self.stream_cuts.subscribe()
    }

    /// Test fixture: ends every open live stream (clients must reconnect and resync).
    pub fn cut_streams(&self) -> u64 {
        self.stream_cuts.send_modify(|n| *n += 1);
        *self.stream_cuts.borrow()
    }

    // ---- helpers ----------------------------------------------------------------------

    pub(crate) fn tree(&self, name: &str) -> ApiResult<sled::Tree> {
        Ok(self.db.open_tree(name)?)
    }

    /// Returns once every write made before the call is durable (per the durability mode):
    /// every handler that wrote awaits this before it answers.
    pub async fn commit(&self) -> ApiResult<()> {
        self.durability.commit().await
    }

    pub fn durability(&self) -> crate::durable::DurabilityMode {
        self.durability.mode()
    }

    /// This log's epoch.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Moves a recipient's durable head to `seq` (never back).
    pub(crate) fn note_durable(&self, person_id: &str, seq: u64) {
        if let Ok(mut heads) = self.heads.lock() {
            let head = heads.entry(person_id.to_string()).or_insert(0);
            *head = (*head).max(seq);
        }
    }

    /// A recipient's durable head: everything on disk at start, then what was published.
    pub(crate) fn durable_head(&self, person_id: &str, log: &sled::Tree) -> ApiResult<u64> {
        let mut heads = self.heads.lock().map_err(|_| ApiError::internal("heads lock poisoned"))?;
        if let Some(head) = heads.get(person_id) {
            return Ok(*head);
        }
        let on_disk = match log.last()? {
            Some((k, _)) => u64::from_be_bytes(k.as_ref().try_into().map_err(|_| ApiError::internal("bad log key"))?),
            None => 0,
        };
        heads.insert(person_id.to_string(), on_disk);
        Ok(on_disk)
    }

    /// Drops what no rule needs any more: login challenges, access and refresh tokens past
    /// their expiry (a spent refresh token is kept until then, to catch its replay), replay
    /// entries past their window, rate-limit counters over a day old.
    pub fn prune(&self) -> ApiResult<PruneReport> {
        let now = self.now_ms();
        let expired_json = |tree: &str, field: &str| -> ApiResult<usize> {
            let tree = self.db.open_tree(tree)?;
            let mut dropped = 0;
            for item in tree.iter() {
                let (k, v) = item?;
                let value: serde_json::Value = serde_json::from_slice(&v)?;
                if value[field].as_i64().is_some_and(|t| t <= now) {
                    tree.remove(k)?;
                    dropped += 1;
                }
            }
            Ok(dropped)
        };
        let challenges = expired_json("challenges", "expires_at_ms")?;
        let access_tokens = expired_json("access_tokens", "expires_at_ms")?;
        let refresh_tokens = expired_json("refresh_tokens", "expires_at_ms")?;
        let used = self.db.open_tree("used_codes")?;
        let mut used_codes = 0;
        for item in used.iter() {
            let (k, v) = item?;
            let until = v.as_ref().try_into().map(i64::from_be_bytes).unwrap_or(i64::MAX);
            if until <= now {
                used.remove(k)?;
                used_codes += 1;
            }
        }
        let limits = self.limits.prune(now)?;
        let idempotency = self.prune_idempotency(now)?;
        Ok(PruneReport { challenges, access_tokens, refresh_tokens, used_codes, limits, idempotency })
    }

    /// Ends every live stream and refuses new ones (graceful shutdown).
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    fn new_session(&self, person_id: &str, device_id: &str) -> ApiResult<SessionTokens> {
        let session_id = format!("ses_{}", self.random_hex(12)?);
        put_json(
            &self.db.open_tree("sessions")?,
            &session_id,
            &SessionRecord { person_id: person_id.into(), device_id: device_id.into(), revoked: false },
        )?;
        self.issue_tokens(&session_id)
    }

    fn issue_tokens(&self, session_id: &str) -> ApiResult<SessionTokens> {
        let now = self.now_ms();
        let access_token = self.random_b64(32)?;
        let refresh_token = self.random_b64(32)?;
        let access = TokenRecord { session_id: session_id.into(), expires_at_ms: now + ACCESS_TTL_MS, spent: false };
        let refresh = TokenRecord { session_id: session_id.into(), expires_at_ms: now + REFRESH_TTL_MS, spent: false };
        self.db.open_tree("access_tokens")?.insert(token_digest(&access_token), serde_json::to_vec(&access)?)?;
        self.db.open_tree("refresh_tokens")?.insert(token_digest(&refresh_token), serde_json::to_vec(&refresh)?)?;
        Ok(SessionTokens {
            access_token,
            refresh_token,
            access_expires_at_ms: access.expires_at_ms,
            refresh_expires_at_ms: refresh.expires_at_ms,
        })
    }

    pub(crate) fn lock(&self) -> ApiResult<std::sync::MutexGuard<'_, ()>> {
        self.write.lock().map_err(|_| ApiError::internal("state lock poisoned"))
    }

    fn random_bytes(&self, n: usize) -> ApiResult<Vec<u8>> {
        let mut out = vec![0u8; n];
        self.rng.fill(&mut out).map_err(|_| ApiError::internal("random generator failed"))?;
        Ok(out)
    }

    pub(crate) fn random_hex(&self, n: usize) -> ApiResult<String> {
        Ok(self.random_bytes(n)?.iter().map(|b| format!("{b:02x}")).collect())
    }

    fn random_b64(&self, n: usize) -> ApiResult<String> {
        Ok(B64.encode(self.random_bytes(n)?))
    }
}

/// Opens the database, waiting up to 5 s for a platform that just stopped on the same
/// directory to let go of it (sled's own flusher can hold it a few more milliseconds).
pub(crate) fn open_db(dir: &Path) -> Result<sled::Db, sled::Error> {
    let config = sled::Config::new().path(dir).flush_every_ms(Some(200));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// The log epoch, created (random) on first start and kept.
fn load_epoch(db: &sled::Db) -> Result<String, sled::Error> {
    let meta = db.open_tree("meta")?;
    if let Some(v) = meta.get("log_epoch")? {
        return Ok(String::from_utf8_lossy(&v).into_owned());
    }
    let mut bytes = [0u8; 8];
    SystemRandom::new().fill(&mut bytes).map_err(|_| sled::Error::Unsupported("random generator failed".into()))?;
    let epoch: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    meta.insert("log_epoch", epoch.as_bytes())?;
    db.flush()?;
    Ok(epoch)
}

/// A platform signing key (certificate issuer, push), created on first start and kept in
/// the database.
fn load_signing_key(db: &sled::Db, name: &str, key_id: u16) -> Result<Issuer, sled::Error> {
    let meta = db.open_tree("meta")?;
    let pkcs8 = match meta.get(name)? {
        Some(v) => v.to_vec(),
        None => {
            let fresh = Issuer::generate_pkcs8().map_err(|e| sled::Error::Unsupported(e.to_string()))?;
            meta.insert(name, fresh.as_slice())?;
            db.flush()?;
            fresh
        }
    };
    Issuer::from_pkcs8(key_id, &pkcs8).map_err(|e| sled::Error::Unsupported(e.to_string()))
}

fn read_u64(tree: &sled::Tree, key: &str) -> ApiResult<u64> {
    Ok(tree.get(key)?.and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)).unwrap_or(0))
}

/// Enrolled devices, for online-profile codes.
struct PlatformDirectory(sled::Tree);

impl DeviceDirectory for PlatformDirectory {
    fn device(&self, device_id: &[u8; 8]) -> Option<KnownDevice> {
        let record: DeviceRecord = serde_json::from_slice(&self.0.get(device_id_to_string(device_id)).ok()??).ok()?;
        Some(KnownDevice { public_key: record.public_key, revoked: record.revoked })
    }
}

/// Used codes, in sled: key → the time until which it must be remembered. Entries past
/// that are swept by [`Platform::prune`].
struct SledReplayCache(sled::Tree);

impl ReplayCache for SledReplayCache {
    fn first_use(&self, key: &[u8; 16], keep_until_ms: i64, now_ms: i64) -> Result<bool, String> {
        let fresh = self
            .0
            .compare_and_swap(key, None as Option<&[u8]>, Some(&keep_until_ms.to_be_bytes()[..]))
            .map_err(|e| e.to_string())?
            .is_ok();
        // Durable before the scan is answered: the handler's commit (group commit) covers it.
        // Expired entries are swept by the platform's pruning, not on this path.
        let _ = now_ms;
        Ok(fresh)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn token_digest(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

fn get_json<T: DeserializeOwned>(tree: &sled::Tree, key: &str) -> ApiResult<Option<T>> {
    get_json_bytes(tree, key.as_bytes())
}

fn get_json_bytes<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> ApiResult<Option<T>> {
    match tree.get(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
        None => Ok(None),
    }
}

fn put_json<T: Serialize>(tree: &sled::Tree, key: &str, value: &T) -> ApiResult<()> {
    tree.insert(key.as_bytes(), serde_json::to_vec(value)?)?;
    Ok(())
}
