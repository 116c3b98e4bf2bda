//! [`CarePass`]: the core as the shells see it — one object per data directory that owns the
//! platform client, the encrypted store, the device key and the clock. One file per
//! capability's flow beside it: `account` (enrol, sign in, sign out), `session` (who acts,
//! for whom, and their tokens), `codes`, `bills` (with the phone's `inbox`), `pharmacy`; the
//! live streams they offer are `streams`.

mod account;
mod bills;
mod codes;
mod credit;
pub mod error;
mod family;
pub mod inbox;
mod payments;
mod pharmacy;
pub mod session;
pub mod streams;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::app::error::{CoreError, CoreResult};
use crate::domain::clock::Clock;
use crate::domain::crypto::DeviceKeyStore;
use crate::domain::person::InsuranceType;
use crate::io::net::{ClientOptions, PlatformClient};
use crate::io::secrets::SecretStore;
use crate::io::store::{Held, Store, StoreOptions};
use crate::wire;
use codes::CodeRotator;
use session::{SessionState, KEY_CLOCK_OFFSET};

pub use account::SignedOut;
pub use family::VerifiedAudit;
pub use inbox::InboxUpdate;
pub use payments::{crash_point, QuoteOptions, VerifiedReceipt};
pub use pharmacy::RankQuery;

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
    /// How long the database stays open after its last use, and how long to wait for another
    /// process of the app to release it.
    pub store: StoreOptions,
    /// A process that must never open the database (the iOS Notification Service
    /// Extension): pulled changes go to the spool for the app to apply.
    pub extension: bool,
}

impl Config {
    /// A config with the defaults for everything but the server and the data directory.
    pub fn new(server_url: impl Into<String>, data_dir: impl Into<PathBuf>, platform: &str) -> Config {
        Config {
            server_url: server_url.into(),
            data_dir: data_dir.into(),
            client: ClientOptions::default(),
            device_name: platform.to_string(),
            platform: platform.to_string(),
            store: StoreOptions::default(),
            extension: false,
        }
    }
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

/// The CarePass core.
pub struct CarePass {
    client: PlatformClient,
    store: Store,
    keys: Arc<dyn DeviceKeyStore>,
    clock: Arc<dyn Clock>,
    config: Config,
    /// Refreshes are serialised in this process (and across processes by the vault lock):
    /// refresh tokens are single use.
    refresh_lock: tokio::sync::Mutex<()>,
    /// Pulls and stream events are applied one at a time, so a change is announced once.
    inbox_lock: tokio::sync::Mutex<()>,
    /// Payments are started and resumed one at a time, so no bill gets two keys at once.
    payment_lock: tokio::sync::Mutex<()>,
    /// Who is signed in, for the session stream and to end live streams at once.
    session: tokio::sync::watch::Sender<SessionState>,
    /// The subjects whose bills may have changed (applied here, or seen on the live stream
    /// after another process applied them), with the bills when known: the inbox streams
    /// re-read those bills (or the whole list) and compare.
    inbox_touched: tokio::sync::broadcast::Sender<inbox::Touch>,
    /// The payments stored anew in this process (by id): the payment streams re-read.
    payment_touched: tokio::sync::broadcast::Sender<String>,
    /// Set by [`CarePass::close`]; every stream and call ends with [`CoreError::Closed`].
    closed: tokio::sync::watch::Sender<bool>,
    rotator: CodeRotator,
}

impl CarePass {
    /// Opens the core on `config.data_dir`: reads the vault only (no database, no network
    /// setup), so the first code can be drawn at once. With no `key_store`, a software P-256
    /// key kept sealed in the vault is the device key.
    pub fn open(
        config: Config,
        secrets: &dyn SecretStore,
        key_store: Option<Arc<dyn DeviceKeyStore>>,
        clock: Arc<dyn Clock>,
    ) -> CoreResult<Arc<CarePass>> {
        let client = PlatformClient::new(&config.server_url, clock.clone(), &config.client)?;
        let store = Store::open(&config.data_dir, secrets, config.store)?;
        let keys = match key_store {
            Some(k) => k,
            None => Arc::new(crate::io::keys::software_key(&store.vault)?),
        };
        if let Some(offset) = store.vault.get::<i64>(KEY_CLOCK_OFFSET)? {
            client.seed_clock_offset_ms(offset);
        }
        let core = CarePass {
            client,
            store,
            keys,
            clock,
            config,
            refresh_lock: tokio::sync::Mutex::new(()),
            inbox_lock: tokio::sync::Mutex::new(()),
            payment_lock: tokio::sync::Mutex::new(()),
            session: tokio::sync::watch::channel(SessionState::SignedOut).0,
            inbox_touched: tokio::sync::broadcast::channel(256).0,
            payment_touched: tokio::sync::broadcast::channel(256).0,
            closed: tokio::sync::watch::channel(false).0,
            rotator: CodeRotator::new(),
        };
        core.session.send_replace(core.read_session_state()?);
        Ok(Arc::new(core))
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

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The platform's time as the phone knows it (its clock corrected by the measured offset).
    pub fn platform_now_ms(&self) -> i64 {
        self.client.server_now_ms()
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
        self.check_open()?;
        let _: wire::Health = self.client.get("healthz", None).await?;
        self.remember_clock_offset()?;
        Ok(self.client.clock_offset_ms())
    }

    /// Keeps the last measured clock offset in the vault for the next start.
    fn remember_clock_offset(&self) -> CoreResult<()> {
        if self.client.clock_offset_known() {
            self.store.vault.put(KEY_CLOCK_OFFSET, &self.client.clock_offset_ms())?;
        }
        Ok(())
    }

    /// Closes the core: every live stream ends and every later call fails with
    /// [`CoreError::Closed`]. Idempotent. The database is released at once.
    pub fn close(&self) {
        self.closed.send_replace(true);
        let _ = self.store.bulk.release_now();
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    fn check_open(&self) -> CoreResult<()> {
        if self.is_closed() {
            Err(CoreError::Closed)
        } else {
            Ok(())
        }
    }

    /// Holds the database for a unit of work, first applying what another process left in
    /// the spool (a directory listing when there is nothing). Refused in an extension process.
    fn hold(&self) -> CoreResult<Held> {
        self.check_open()?;
        if self.config.extension {
            return Err(CoreError::NotInExtension);
        }
        let held = self.store.bulk.hold()?;
        self.apply_spool(&held)?;
        Ok(held)
    }
}
