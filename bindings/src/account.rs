//! The `CarePass` object and the account flows: open, enrol, log in, current profile,
//! log out. Converts types and errors; the flows themselves are `carepass_core::CarePass`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use carepass_core::io::net::ClientOptions;
use carepass_core::wire;
use carepass_core::SystemClock;

use crate::error::CarePassError;
use crate::platform::{install_logger, DeviceKeyAdapter, DeviceKeyStore, Logger, SecretStore, SecretStoreAdapter};

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

/// The CarePass core, opened on the app's data directory.
#[derive(uniffi::Object)]
pub struct CarePass {
    core: carepass_core::CarePass,
}

impl CarePass {
    pub(crate) fn core(&self) -> &carepass_core::CarePass {
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
            server_url: config.server_url,
            data_dir: PathBuf::from(config.data_dir),
            client,
            device_name: config.device_name,
            platform: config.platform,
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

    /// Ends the session and wipes the profile's local data.
    pub async fn logout(&self) -> Result<(), CarePassError> {
        Ok(self.core.logout().await?)
    }

    /// Server clock minus phone clock, in ms, from the last platform answer.
    pub fn server_clock_offset_ms(&self) -> i64 {
        self.core.clock_offset_ms()
    }
}
