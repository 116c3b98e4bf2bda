//! The account flows: ask for an SMS code, enrol this device, sign in again with the device
//! key, refresh the person record, revoke a lost device, sign out. The rules they use (phones,
//! codes, the login proof) are `crate::domain::account`; tokens are kept by `session`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::Method;

use super::{CarePass, Profile};
use crate::app::error::{CoreError, CoreResult};
use crate::domain::crypto as keys;
use crate::domain::voucher::format::device_id_to_bytes;
use crate::domain::{account, Field, InvalidInput};
use crate::io::net::NetError;
use crate::wire::{self, PersonRecord, PlatformCode, SessionGrant};

/// What signing out did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedOut {
    /// The platform confirmed the session is revoked. When `false` (no network), the tokens
    /// are gone from this phone but the platform session lives until it expires.
    pub revoked_at_platform: bool,
}

impl CarePass {
    /// Asks the platform to send a verification code by SMS; returns its lifetime in seconds.
    pub async fn request_verification_code(&self, phone: &str) -> CoreResult<u32> {
        self.check_open()?;
        account::check_phone(phone)?;
        let sent: wire::VerificationCodeSent = self
            .client
            .post("v1/verification-codes", &wire::VerificationCodeRequest { phone: phone.into() }, None)
            .await?;
        Ok(sent.expires_in_s)
    }

    /// Enrols this device for the person who owns `phone` and signs them in.
    pub async fn enrol(&self, phone: &str, code: &str) -> CoreResult<Profile> {
        self.check_open()?;
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
        self.check_open()?;
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

    /// Signs in: again with the device key when this device is enrolled for `phone`, or by
    /// enrolling it. A platform that no longer knows the device (it lost the enrolment, or
    /// revoked the device) is no dead end: the SMS code proves the phone, so the device
    /// enrols afresh.
    pub async fn sign_in(&self, phone: &str, code: &str) -> CoreResult<Profile> {
        self.check_open()?;
        account::check_phone(phone)?;
        if self.enrolments()?.iter().any(|e| e.phone == phone) {
            match self.login(phone, code).await {
                Err(CoreError::NotEnrolled) => {
                    log::info!(target: "carepass::account", "the platform no longer knows this device; enrolling again");
                    self.forget_enrolment(phone)?;
                }
                other => return other,
            }
        }
        self.enrol(phone, code).await
    }

    /// Fetches the signed-in person from the platform (refreshing the session if needed)
    /// and keeps it.
    pub async fn refresh_profile(&self) -> CoreResult<Profile> {
        let actor = self.actor()?;
        let person: PersonRecord = self.authed(&actor, &actor.person_id, Method::GET, "v1/me", None::<&()>).await?;
        if person.person_id != actor.person_id {
            return Err(NetError::Undecodable("the platform answered for another person".into()).into());
        }
        self.store_person(&actor.person_id, &person)?;
        self.remember_clock_offset()?;
        self.profile_of(&person, &actor.device_id)
    }

    /// Revokes one of the signed-in person's devices (a lost phone): its codes and sessions
    /// stop working at once.
    pub async fn revoke_device(&self, device_id: &str) -> CoreResult<()> {
        self.check_open()?;
        device_id_to_bytes(device_id)
            .map_err(|_| InvalidInput::new(Field::DeviceId, "a device id is dev_ and 16 hex digits"))?;
        let actor = self.actor()?;
        let path = format!("v1/devices/{device_id}/revoke");
        let _: wire::Revoked =
            self.authed(&actor, &actor.person_id, Method::POST, &path, Some(&serde_json::json!({}))).await?;
        if actor.device_id == device_id {
            // This very device: its session ended with it.
            self.drop_session(&actor.person_id)?;
        }
        Ok(())
    }

    /// Signs out: the platform revokes the session (best effort) and everything this device
    /// holds for the signed-in person — their data and their relatives' — is wiped. The
    /// enrolment stays, so [`CarePass::sign_in`] proves the device with its key next time.
    pub async fn logout(&self) -> CoreResult<SignedOut> {
        self.check_open()?;
        let actor = self.store.vault.get::<String>(super::session::KEY_ACTIVE)?.ok_or(CoreError::NotSignedIn)?;
        // Only to the platform the session came from: a session is never sent elsewhere.
        let tokens = match self.tokens(&actor) {
            Ok(tokens) => Some(tokens),
            Err(CoreError::NotSignedIn | CoreError::OtherPlatform { .. }) => None,
            Err(e) => return Err(e),
        };
        // Wiped first: from here on this phone is signed out, whatever the platform answers,
        // and live streams end as signed out (not as a session the platform ended).
        self.wipe_actor(&actor)?;
        let mut revoked_at_platform = false;
        if let Some(tokens) = tokens {
            let revoked: Result<serde_json::Value, NetError> =
                self.client.delete("v1/sessions/current", Some(&tokens.access_token)).await;
            match revoked {
                Ok(_) => revoked_at_platform = true,
                // Already over at the platform: nothing left to revoke.
                Err(e) if e.platform_code() == Some(PlatformCode::Unauthorized) => revoked_at_platform = true,
                Err(e) => {
                    log::warn!(target: "carepass::account", "session revocation not confirmed by the platform: {e}")
                }
            }
        }
        Ok(SignedOut { revoked_at_platform })
    }
}

/// The account routes' refusals, as the flows name them.
fn auth_error(e: NetError) -> CoreError {
    match e.platform_code() {
        Some(PlatformCode::WrongVerificationCode) => CoreError::WrongVerificationCode,
        Some(PlatformCode::UnknownDevice) => CoreError::NotEnrolled,
        _ => e.into(),
    }
}
