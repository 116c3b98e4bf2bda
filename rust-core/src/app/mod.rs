//! [`CarePass`]: the core as the shells see it — one object that owns the platform client,
//! the encrypted store, the device key and the clock, and runs the account flows (enrol,
//! log in, refresh, log out) over them. Capability flows are added beside these.

mod bills;
mod codes;
pub mod error;
pub mod inbox;
mod pharmacy;

use std::path::PathBuf;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::NaiveDate;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::app::error::{CoreError, CoreResult};
use crate::domain::account;
use crate::domain::clock::{ms_to_time, Clock};
use crate::domain::crypto::SoftwareDeviceKey;
use crate::domain::crypto::{self as keys, DeviceKeyStore};
use crate::domain::person::{self, mask_phone};
use crate::domain::voucher::format::{device_id_to_bytes, DeviceCertificate};
use crate::domain::voucher::rotator::{CodeSource, DisplayCode};
use crate::domain::voucher::{self, Purpose, VoucherError};
use crate::domain::{Field, InvalidInput};
use crate::io::net::{ClientOptions, NetError, PlatformClient};
use crate::io::secrets::SecretStore;
use crate::io::store::Store;
use crate::wire::{self, InsuranceType, PersonRecord, PlatformCode, SessionGrant, SessionTokens};
use codes::CodeRotator;

/// How the app opens the core.
#[derive(Debug, Clone)]
pub struct Config {
    pub server_url: String,
    /// Directory the store lives in (created if missing).
    pub data_dir: PathBuf,
    pub client: ClientOptions,
    /// Shown to the user in their device list.
    pub device_name: String,
    /// `android`, `ios` or `terminal`.
    pub platform: String,
}

/// The signed-in person, as the app shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub person_id: String,
    pub name: String,
    /// Masked: `138****0001`.
    pub phone_masked: String,
    pub birth_date: String,
    /// Whole years on the platform's current date.
    pub age: u32,
    pub insurance_type: InsuranceType,
    pub pooling_region: String,
    pub pooling_region_name: String,
    pub device_id: String,
}

/// This device's enrolment for one person (app-wide: kept across logout, so the device can
/// sign in again without registering a new key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Enrolment {
    person_id: String,
    phone: String,
    device_id: String,
    /// The device certificate for offline codes (base64url), when the platform issued one.
    #[serde(default)]
    certificate: Option<String>,
}

const KEY_ACTIVE: &str = "active_profile";
const KEY_ENROLMENTS: &str = "enrolments";
const KEY_DEVICE_KEY: &str = "software_device_key";
const KEY_SESSION: &str = "session";
const KEY_PERSON: &str = "person";
const KEY_CLOCK_OFFSET: &str = "clock_offset_ms";

/// The CarePass core.
pub struct CarePass {
    client: PlatformClient,
    store: Store,
    keys: Arc<dyn DeviceKeyStore>,
    clock: Arc<dyn Clock>,
    config: Config,
    refresh_lock: tokio::sync::Mutex<()>,
    /// Pulls and stream events are applied one at a time, so a change is announced once.
    inbox_lock: tokio::sync::Mutex<()>,
    /// Bumped whenever a session ends on this phone (logout, expiry, revocation), so live
    /// streams close at once.
    session_epoch: tokio::sync::watch::Sender<u64>,
    rotator: CodeRotator,
}

impl CarePass {
    /// Opens the core on `config.data_dir`. With no `key_store`, a software P-256 key kept
    /// sealed in the store is the device key.
    pub fn open(
        config: Config,
        secrets: &dyn SecretStore,
        key_store: Option<Arc<dyn DeviceKeyStore>>,
        clock: Arc<dyn Clock>,
    ) -> CoreResult<CarePass> {
        let client = PlatformClient::new(&config.server_url, clock.clone(), &config.client)?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| CoreError::Store(crate::io::store::StoreError::Io(e.to_string())))?;
        let store = Store::open(&config.data_dir.join("store"), secrets)?;
        let keys = match key_store {
            Some(k) => k,
            None => Arc::new(software_key(&store)?),
        };
        if let Some(offset) = store.app()?.get::<i64>(KEY_CLOCK_OFFSET)? {
            client.seed_clock_offset_ms(offset);
        }
        Ok(CarePass {
            client,
            store,
            keys,
            clock,
            config,
            refresh_lock: tokio::sync::Mutex::new(()),
            inbox_lock: tokio::sync::Mutex::new(()),
            session_epoch: tokio::sync::watch::channel(0).0,
            rotator: CodeRotator::new(),
        })
    }

    pub fn client(&self) -> &PlatformClient {
        &self.client
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The device's public key (SEC1 uncompressed).
    pub fn device_public_key(&self) -> CoreResult<Vec<u8>> {
        Ok(self.keys.public_key()?)
    }

    /// Server clock minus phone clock, in ms, as last measured.
    pub fn clock_offset_ms(&self) -> i64 {
        self.client.clock_offset_ms()
    }

    /// Learns the platform's time (one small request) and remembers the offset, so codes made
    /// later with no network are on platform time. Returns the offset in ms.
    pub async fn sync_clock(&self) -> CoreResult<i64> {
        let _: wire::Health = self.client.get("healthz", None).await?;
        self.remember_clock_offset()?;
        Ok(self.client.clock_offset_ms())
    }

    /// Keeps the last measured clock offset in the store for the next start.
    fn remember_clock_offset(&self) -> CoreResult<()> {
        if self.client.clock_offset_known() {
            self.store.app()?.put(KEY_CLOCK_OFFSET, &self.client.clock_offset_ms())?;
        }
        Ok(())
    }

    /// Asks the platform to send a verification code by SMS.
    pub async fn request_verification_code(&self, phone: &str) -> CoreResult<u32> {
        account::check_phone(phone)?;
        let sent: wire::VerificationCodeSent = self
            .client
            .post("v1/verification-codes", &wire::VerificationCodeRequest { phone: phone.into() }, None)
            .await?;
        Ok(sent.expires_in_s)
    }

    /// Enrols this device for the person who owns `phone` and signs them in.
    pub async fn enrol(&self, phone: &str, code: &str) -> CoreResult<Profile> {
        account::check_phone(phone)?;
        account::check_verification_code(code)?;
        let public_key = self.keys.public_key()?;
        keys::check_public_key(&public_key)?;
        let request = wire::EnrolRequest {
            phone: phone.into(),
            code: code.into(),
            device_public_key: B64.encode(&public_key),
            device_name: self.config.device_name.clone(),
            platform: self.config.platform.clone(),
        };
        let grant: SessionGrant = self.client.post("v1/enrolments", &request, None).await.map_err(auth_error)?;
        self.accept_grant(phone, grant)
    }

    /// Signs in again on a device already enrolled for `phone`: verification code plus a
    /// signature by the device key over a fresh platform challenge.
    pub async fn login(&self, phone: &str, code: &str) -> CoreResult<Profile> {
        account::check_phone(phone)?;
        account::check_verification_code(code)?;
        let enrolment = self.enrolments()?.into_iter().find(|e| e.phone == phone).ok_or(CoreError::NotEnrolled)?;
        let challenge: wire::Challenge = self
            .client
            .post("v1/sessions/challenge", &wire::ChallengeRequest { device_id: enrolment.device_id.clone() }, None)
            .await
            .map_err(auth_error)?;
        let signature =
            keys::sign_fixed(self.keys.as_ref(), &account::login_message(&enrolment.device_id, &challenge.nonce))?;
        let request = wire::LoginRequest {
            device_id: enrolment.device_id.clone(),
            phone: phone.into(),
            code: code.into(),
            nonce: challenge.nonce,
            signature: B64.encode(signature),
        };
        let grant: SessionGrant = self.client.post("v1/sessions", &request, None).await.map_err(auth_error)?;
        self.accept_grant(phone, grant)
    }

    /// Enrols, or signs in again when this device is already enrolled for `phone`.
    pub async fn sign_in(&self, phone: &str, code: &str) -> CoreResult<Profile> {
        account::check_phone(phone)?;
        if self.enrolments()?.iter().any(|e| e.phone == phone) {
            self.login(phone, code).await
        } else {
            self.enrol(phone, code).await
        }
    }

    /// The signed-in person from the store (no network), or `None`.
    pub fn current_profile(&self) -> CoreResult<Option<Profile>> {
        let Some(person_id) = self.store.app()?.get::<String>(KEY_ACTIVE)? else { return Ok(None) };
        let section = self.store.profile(&person_id)?;
        if section.get::<SessionTokens>(KEY_SESSION)?.is_none() {
            return Ok(None);
        }
        let Some(person) = section.get::<PersonRecord>(KEY_PERSON)? else { return Ok(None) };
        let Some(enrolment) = self.enrolments()?.into_iter().find(|e| e.person_id == person_id) else {
            return Ok(None);
        };
        Ok(Some(self.profile_of(&person, &enrolment.device_id)?))
    }

    /// Fetches the signed-in person from the platform (refreshing the session if needed)
    /// and stores it.
    pub async fn refresh_profile(&self) -> CoreResult<Profile> {
        let person_id = self.active_person()?;
        let person: PersonRecord = self.authed(&person_id, Method::GET, "v1/me", None::<&()>).await?;
        if person.person_id != person_id {
            return Err(NetError::Undecodable("the platform answered for another person".into()).into());
        }
        let section = self.store.profile(&person_id)?;
        section.put(KEY_PERSON, &person)?;
        self.remember_clock_offset()?;
        self.store.flush()?;
        let enrolment = self.enrolment_of(&person_id)?;
        self.profile_of(&person, &enrolment.device_id)
    }

    /// The code to show now for `purpose`, made on this device with no network, on platform
    /// time (the phone's clock corrected by the offset learned from the platform). The same
    /// code is returned until its period ends.
    pub fn current_code(&self, purpose: Purpose, offline: bool) -> CoreResult<DisplayCode> {
        let person_id = self.signed_in_person()?;
        let enrolment = self.enrolment_of(&person_id)?;
        let device_id = device_id_to_bytes(&enrolment.device_id).map_err(VoucherError::from)?;
        let certificate = enrolment.certificate.as_deref().map(decode_certificate).transpose()?;
        let source = CodeSource {
            keys: self.keys.as_ref(),
            device_id,
            certificate: certificate.as_ref(),
            period_s: voucher::DEFAULT_PERIOD_S,
        };
        self.rotator.current(&source, purpose, offline, false, self.client.server_now_ms())
    }

    /// Revokes one of the signed-in person's devices (a lost phone): its codes and sessions
    /// stop working at once.
    pub async fn revoke_device(&self, device_id: &str) -> CoreResult<()> {
        device_id_to_bytes(device_id)
            .map_err(|_| InvalidInput::new(Field::DeviceId, "a device id is dev_ and 16 hex digits"))?;
        let person_id = self.active_person()?;
        let path = format!("v1/devices/{device_id}/revoke");
        let _: wire::Revoked = self.authed(&person_id, Method::POST, &path, Some(&serde_json::json!({}))).await?;
        if self.enrolment_of(&person_id)?.device_id == device_id {
            // This very device: its session ended with it.
            self.drop_session(&person_id)?;
        }
        Ok(())
    }

    /// Ends the session: the platform revokes it (best effort: with no network the tokens
    /// are still gone from the phone) and the profile's local data is wiped.
    pub async fn logout(&self) -> CoreResult<()> {
        let person_id = self.active_person()?;
        let section = self.store.profile(&person_id)?;
        if let Ok(Some(tokens)) = section.get::<SessionTokens>(KEY_SESSION) {
            let revoked: Result<serde_json::Value, NetError> =
                self.client.delete("v1/sessions/current", Some(&tokens.access_token)).await;
            if let Err(e) = revoked {
                log::warn!("session revocation not confirmed by the platform: {e}");
            }
        }
        self.store.wipe_profile(&person_id)?;
        self.store.app()?.remove(KEY_ACTIVE)?;
        self.store.flush()?;
        self.session_epoch.send_modify(|n| *n += 1);
        Ok(())
    }

    /// A request with the active session's bearer token: refreshed first when about to
    /// expire, and once more if the platform says it expired anyway.
    pub async fn authed<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        person_id: &str,
        method: Method,
        path: &str,
        body: Option<&Req>,
    ) -> CoreResult<Resp> {
        let tokens = self.fresh_session(person_id).await?;
        let answer = match self.client.call(method.clone(), path, body, Some(&tokens.access_token)).await {
            Err(e) if e.platform_code() == Some(PlatformCode::AccessTokenExpired) => {
                let tokens = self.refresh_session(person_id, &tokens.refresh_token).await?;
                self.client.call(method, path, body, Some(&tokens.access_token)).await
            }
            other => other,
        };
        match answer {
            Err(e) if e.platform_code() == Some(PlatformCode::Unauthorized) => {
                // The platform ended the session (logout elsewhere, device revoked): the
                // phone must not go on showing it as signed in.
                self.drop_session(person_id)?;
                Err(CoreError::SessionExpired)
            }
            other => Ok(other?),
        }
    }

    fn drop_session(&self, person_id: &str) -> CoreResult<()> {
        self.store.profile(person_id)?.remove(KEY_SESSION)?;
        self.store.flush()?;
        self.session_epoch.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The signed-in person, with a session (not only an active profile).
    fn signed_in_person(&self) -> CoreResult<String> {
        let person_id = self.active_person()?;
        self.session(&person_id)?;
        Ok(person_id)
    }

    /// The session's tokens, refreshed first when the access token is about to expire.
    async fn fresh_session(&self, person_id: &str) -> CoreResult<SessionTokens> {
        let tokens = self.session(person_id)?;
        if account::needs_refresh(tokens.access_expires_at_ms, self.client.server_now_ms()) {
            return self.refresh_session(person_id, &tokens.refresh_token).await;
        }
        Ok(tokens)
    }

    /// Trades the refresh token for a new pair. Serialised: refresh tokens are single use,
    /// and two refreshes racing with one token would end the session.
    async fn refresh_session(&self, person_id: &str, spent: &str) -> CoreResult<SessionTokens> {
        let _guard = self.refresh_lock.lock().await;
        let section = self.store.profile(person_id)?;
        let current = section.get::<SessionTokens>(KEY_SESSION)?.ok_or(CoreError::NotSignedIn)?;
        if current.refresh_token != spent {
            return Ok(current); // another caller refreshed while we waited
        }
        let request = wire::RefreshRequest { refresh_token: current.refresh_token.clone() };
        match self.client.post::<_, SessionTokens>("v1/sessions/refresh", &request, None).await {
            Ok(tokens) => {
                section.put(KEY_SESSION, &tokens)?;
                self.store.flush()?;
                Ok(tokens)
            }
            Err(e) if is_session_over(&e) => {
                self.drop_session(person_id)?;
                Err(CoreError::SessionExpired)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn accept_grant(&self, phone: &str, grant: SessionGrant) -> CoreResult<Profile> {
        let person_id = grant.person.person_id.clone();
        let mut enrolments = self.enrolments()?;
        enrolments.retain(|e| e.person_id != person_id && e.phone != phone);
        if let Some(cert) = &grant.device_certificate {
            decode_certificate(cert)?; // refuse a certificate we could never use
        }
        enrolments.push(Enrolment {
            person_id: person_id.clone(),
            phone: phone.into(),
            device_id: grant.device_id.clone(),
            certificate: grant.device_certificate.clone(),
        });
        let app = self.store.app()?;
        app.put(KEY_ENROLMENTS, &enrolments)?;
        let section = self.store.profile(&person_id)?;
        section.put(KEY_SESSION, &grant.tokens)?;
        section.put(KEY_PERSON, &grant.person)?;
        app.put(KEY_ACTIVE, &person_id)?;
        self.remember_clock_offset()?;
        self.store.flush()?;
        self.profile_of(&grant.person, &grant.device_id)
    }

    fn profile_of(&self, person: &PersonRecord, device_id: &str) -> CoreResult<Profile> {
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

    fn active_person(&self) -> CoreResult<String> {
        self.store.app()?.get::<String>(KEY_ACTIVE)?.ok_or(CoreError::NotSignedIn)
    }

    fn session(&self, person_id: &str) -> CoreResult<SessionTokens> {
        self.store.profile(person_id)?.get(KEY_SESSION)?.ok_or(CoreError::NotSignedIn)
    }

    fn enrolments(&self) -> CoreResult<Vec<Enrolment>> {
        Ok(self.store.app()?.get(KEY_ENROLMENTS)?.unwrap_or_default())
    }

    fn enrolment_of(&self, person_id: &str) -> CoreResult<Enrolment> {
        self.enrolments()?.into_iter().find(|e| e.person_id == person_id).ok_or(CoreError::NotEnrolled)
    }
}

/// The software device key, created on first use and kept sealed in the store.
fn software_key(store: &Store) -> CoreResult<SoftwareDeviceKey> {
    let app = store.app()?;
    if let Some(encoded) = app.get::<String>(KEY_DEVICE_KEY)? {
        let pkcs8 = B64.decode(encoded).map_err(|_| keys::KeyError::BadKeyMaterial)?;
        return Ok(SoftwareDeviceKey::from_pkcs8(&pkcs8)?);
    }
    let (key, pkcs8) = SoftwareDeviceKey::generate()?;
    app.put(KEY_DEVICE_KEY, &B64.encode(pkcs8))?;
    store.flush()?;
    Ok(key)
}

fn decode_certificate(text: &str) -> CoreResult<DeviceCertificate> {
    let bytes = B64.decode(text).map_err(|_| NetError::Undecodable("device certificate is not base64url".into()))?;
    DeviceCertificate::from_bytes(&bytes)
        .map_err(|_| NetError::Undecodable("device certificate has the wrong length".into()).into())
}

fn auth_error(e: NetError) -> CoreError {
    match e.platform_code() {
        Some(PlatformCode::WrongVerificationCode) => CoreError::WrongVerificationCode,
        Some(PlatformCode::UnknownDevice) => CoreError::NotEnrolled,
        _ => e.into(),
    }
}

fn is_session_over(e: &NetError) -> bool {
    matches!(
        e.platform_code(),
        Some(PlatformCode::RefreshTokenExpired | PlatformCode::RefreshTokenReused | PlatformCode::Unauthorized)
    )
}
