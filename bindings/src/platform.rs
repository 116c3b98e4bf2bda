//! What the shells provide: the secret store (keystore / Keychain), the device key store
//! (hardware-backed signing) and a logger, as foreign traits; and the adapters that let the
//! core use them through its own traits.

use std::sync::{Arc, RwLock};

use carepass_core::domain::crypto::KeyError;
use carepass_core::io::secrets::SecretStoreError;

/// Failure reported by a platform component.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum PlatformError {
    #[error("{reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for PlatformError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        PlatformError::Failed { reason: e.reason }
    }
}

/// Keeps small secrets (the store's data key) in the platform keystore.
#[uniffi::export(with_foreign)]
pub trait SecretStore: Send + Sync {
    fn load(&self, name: String) -> Result<Option<Vec<u8>>, PlatformError>;
    fn save(&self, name: String, value: Vec<u8>) -> Result<(), PlatformError>;
}

/// The device's P-256 key, ideally in hardware (Android Keystore/StrongBox, Secure Enclave).
#[uniffi::export(with_foreign)]
pub trait DeviceKeyStore: Send + Sync {
    /// SEC1 uncompressed public key (65 bytes).
    fn public_key(&self) -> Result<Vec<u8>, PlatformError>;
    /// ECDSA P-256 with SHA-256 over `message` (the platform hashes); DER or raw r||s.
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, PlatformError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// Receives the core's log lines (which never contain personal data).
#[uniffi::export(with_foreign)]
pub trait Logger: Send + Sync {
    fn log(&self, level: LogLevel, target: String, message: String);
}

pub(crate) struct SecretStoreAdapter(pub Arc<dyn SecretStore>);

impl carepass_core::io::secrets::SecretStore for SecretStoreAdapter {
    fn load(&self, name: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        self.0.load(name.to_string()).map_err(|e| SecretStoreError(e.to_string()))
    }

    fn save(&self, name: &str, value: &[u8]) -> Result<(), SecretStoreError> {
        self.0.save(name.to_string(), value.to_vec()).map_err(|e| SecretStoreError(e.to_string()))
    }
}

pub(crate) struct DeviceKeyAdapter(pub Arc<dyn DeviceKeyStore>);

impl carepass_core::domain::crypto::DeviceKeyStore for DeviceKeyAdapter {
    fn public_key(&self) -> Result<Vec<u8>, KeyError> {
        self.0.public_key().map_err(|e| KeyError::Platform(e.to_string()))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.0.sign(message.to_vec()).map_err(|e| KeyError::Platform(e.to_string()))
    }
}

/// The process-wide logger the `log` facade forwards to (the last one installed wins).
static FOREIGN_LOGGER: RwLock<Option<Arc<dyn Logger>>> = RwLock::new(None);

struct Forwarder;

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target().starts_with("carepass")
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => LogLevel::Error,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Info => LogLevel::Info,
            log::Level::Debug | log::Level::Trace => LogLevel::Debug,
        };
        if let Ok(guard) = FOREIGN_LOGGER.read() {
            if let Some(logger) = guard.as_ref() {
                logger.log(level, record.target().to_string(), record.args().to_string());
            }
        }
    }

    fn flush(&self) {}
}

pub(crate) fn install_logger(logger: Arc<dyn Logger>) {
    static FORWARDER: Forwarder = Forwarder;
    if let Ok(mut guard) = FOREIGN_LOGGER.write() {
        *guard = Some(logger);
    }
    if log::set_logger(&FORWARDER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
