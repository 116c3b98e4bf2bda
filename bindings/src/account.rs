//! The `CarePass` object and the account flows: open, enrol, sign in, the session stream,
//! sign out, close. Converts types and errors; the flows themselves are
//! `carepass_core::CarePass`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use carepass_core::io::net::ClientOptions;
use carepass_core::wire;
use carepass_core::SystemClock;

use crate::error::CarePassError;
use crate::platform::{install_logger, DeviceKeyAdapter, DeviceKeyStore, Logger, SecretStore, SecretStoreAdapter};
use crate::tasks::{forward, TaskHandle};

/// How the app opens CarePass.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CarePassConfig {
    /// `https://…`, or `http://` to a loopback address (the sandbox).
    pub server_url: String,
    /// A directory private to the app (created if missing).
    pub data_dir: String,
    /// Shown in the user's device list.
    pub device_name: String,
    /// `android`, `ios` or `terminal`.
    pub platform: String,
    /// Whole-request timeout in milliseconds (0: the default, 15 s).
    #[uniffi(default = 0)]
    pub request_timeout_ms: u64,
    /// PEM root certificates to pin; empty trusts the operating system's verifier.
    #[uniffi(default = [])]
    pub pinned_roots_pem: Vec<String>,
    /// An app extension that must never open the database (the iOS Notification Service
    /// Extension): `handle_push` leaves its pull for the app to apply.
    #[uniffi(default = false)]
    pub extension: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InsuranceType {
    EmployeeActive,
    EmployeeRetired,
    Resident,
}

impl From<wire::InsuranceType> for InsuranceType {
    fn from(t: wire::InsuranceType) -> Self {
        match t {
            wire::InsuranceType::EmployeeActive => InsuranceType::EmployeeActive,
            wire::InsuranceType::EmployeeRetired => InsuranceType::EmployeeRetired,
            wire::InsuranceType::Resident => InsuranceType::Resident,
        }
    }
}

/// The signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Profile {
    pub person_id: String,
    pub name: String,
    pub phone_masked: String,
    pub birth_date: String,
    pub age: u32,
    pub insurance_type: InsuranceType,
    pub pooling_region: String,
    pub pooling_region_name: String,
    pub device_id: String,
}

impl From<carepass_core::Profile> for Profile {
    fn from(p: carepass_core::Profile) -> Self {
        Profile {
            person_id: p.person_id,
            name: p.name,
            phone_masked: p.phone_masked,
            birth_date: p.birth_date,
            age: p.age,
            insurance_type: p.insurance_type.into(),
            pooling_region: p.pooling_region,
            pooling_region_name: p.pooling_region_name,
            device_id: p.device_id,
        }
    }
}

/// Whether someone is signed in.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SessionState {
    /// Nobody is signed in (never, or signed out on this device).
    SignedOut,
    SignedIn {
        profile: Profile,
    },
    /// The platform ended the session (expired, revoked, signed out elsewhere): sign in again.
    Ended,
}

impl From<carepass_core::app::session::SessionState> for SessionState {
    fn from(s: carepass_core::app::session::SessionState) -> Self {
        use carepass_core::app::session::SessionState as Core;
        match s {
            Core::SignedOut => SessionState::SignedOut,
            Core::SignedIn(p) => SessionState::SignedIn { profile: p.into() },
            Core::Ended => SessionState::Ended,
        }
    }
}

/// Receives the session state now and at each change, then the error that ended the stream.
#[uniffi::export(with_foreign)]
pub trait SessionListener: Send + Sync {
    fn on_state(&self, state: SessionState);
    fn on_error(&self, error: CarePassError);
}

/// What signing out did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SignOutResult {
    /// The platform confirmed the session is revoked. `false` (no network): the tokens are
    /// gone from this phone, but the platform session lives until it expires.
    pub revoked_at_platform: bool,
}

/// The CarePass core, opened on the app's data directory.
#[derive(uniffi::Object)]
pub struct CarePass {
    core: Arc<carepass_core::CarePass>,
}

impl CarePass {
    pub(crate) fn core(&self) -> &Arc<carepass_core::CarePass> {
        &self.core
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl CarePass {
    /// Opens CarePass. Without a `key_store`, a software key sealed in the store is the
    /// device key (fine for tests; apps pass a hardware-backed one).
    #[uniffi::constructor]
    pub fn open(
        config: CarePassConfig,
        secret_store: Arc<dyn SecretStore>,
        key_store: Option<Arc<dyn DeviceKeyStore>>,
        logger: Option<Arc<dyn Logger>>,
    ) -> Result<Arc<Self>, CarePassError> {
        if let Some(logger) = logger {
            install_logger(logger);
        }
        let mut client = ClientOptions::default();
        if config.request_timeout_ms > 0 {
            client.timeout = Duration::from_millis(config.request_timeout_ms);
        }
        client.pinned_roots_pem = config.pinned_roots_pem;
        let core_config = carepass_core::Config {
            client,
            device_name: config.device_name,
            extension: config.extension,
            ..carepass_core::Config::new(config.server_url, PathBuf::from(config.data_dir), &config.platform)
        };
        let keys =
            key_store.map(|k| Arc::new(DeviceKeyAdapter(k)) as Arc<dyn carepass_core::domain::crypto::DeviceKeyStore>);
        let core =
            carepass_core::CarePass::open(core_config, &SecretStoreAdapter(secret_store), keys, Arc::new(SystemClock))?;
        Ok(Arc::new(CarePass { core }))
    }

    /// Asks the platform to text a verification code; returns its lifetime in seconds.
    pub async fn request_verification_code(&self, phone: String) -> Result<u32, CarePassError> {
        Ok(self.core.request_verification_code(&phone).await?)
    }

    /// Enrols this device for the person who owns `phone` and signs them in.
    pub async fn enrol(&self, phone: String, code: String) -> Result<Profile, CarePassError> {
        Ok(self.core.enrol(&phone, &code).await?.into())
    }

    /// Signs in again on a device already enrolled for `phone`.
    pub async fn login(&self, phone: String, code: String) -> Result<Profile, CarePassError> {
        Ok(self.core.login(&phone, &code).await?.into())
    }

    /// Enrols, or signs in again when already enrolled for `phone`.
    pub async fn sign_in(&self, phone: String, code: String) -> Result<Profile, CarePassError> {
        Ok(self.core.sign_in(&phone, &code).await?.into())
    }

    /// The signed-in person from the phone's store (no network), or null.
    pub fn current_profile(&self) -> Result<Option<Profile>, CarePassError> {
        Ok(self.core.current_profile()?.map(Into::into))
    }

    /// The signed-in person, fetched from the platform.
    pub async fn refresh_profile(&self) -> Result<Profile, CarePassError> {
        Ok(self.core.refresh_profile().await?.into())
    }

    /// Ends the session and wipes everything this device holds for the signed-in person.
    pub async fn logout(&self) -> Result<SignOutResult, CarePassError> {
        let out = self.core.logout().await?;
        Ok(SignOutResult { revoked_at_platform: out.revoked_at_platform })
    }

    /// The session state now (no network).
    pub fn session_state(&self) -> Result<SessionState, CarePassError> {
        Ok(self.core.session_state()?.into())
    }

    /// Hands `listener` the session state now and at every change (sign-in, sign-out, the
    /// platform ending the session), until cancelled or the client closes.
    pub fn watch_session(&self, listener: Arc<dyn SessionListener>) -> Arc<TaskHandle> {
        let on_error = listener.clone();
        forward(self.core.session_stream(), move |s| listener.on_state(s.into()), move |e| on_error.on_error(e))
    }

    /// Closes the client: every stream ends with `Closed`, every later call fails with it,
    /// and the database is released. Idempotent.
    pub fn close(&self) {
        self.core.close();
    }

    /// Server clock minus phone clock, in ms, from the last platform answer.
    pub fn server_clock_offset_ms(&self) -> i64 {
        self.core.clock_offset_ms()
    }
}
