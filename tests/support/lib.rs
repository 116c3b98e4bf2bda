//! Test support for the cross-process journeys: a sandbox platform on a free loopback port
//! with its own data dir, phones (core instances) with their own stores, an admin client for
//! the test-fixture role, and misbehaving servers (garbage, silence).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use carepass_core::domain::clock::Clock;
use carepass_core::io::net::{ClientOptions, PlatformClient};
use carepass_core::io::secrets::SecretStore;
use carepass_core::wire::{ClockAdvance, ClockState};
use carepass_core::{CarePass, Config, SystemClock};
use carepass_sandbox::{start, RunningSandbox, SandboxConfig};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const ADMIN_TOKEN: &str = "journey-admin-token";
pub const PATIENT: &str = "13800000001";
pub const PARENT: &str = "13800000002";
pub const CHILD: &str = "13800000003";
pub const CODE: &str = "123456";

/// A sandbox platform serving on loopback from a data dir that outlives restarts.
pub struct TestPlatform {
    pub sandbox: Option<RunningSandbox>,
    pub dir: TempDir,
    admin: std::sync::OnceLock<PlatformClient>,
}

impl TestPlatform {
    pub async fn start() -> TestPlatform {
        let dir = tempfile::tempdir().expect("temp dir");
        let sandbox = Some(serve(dir.path(), "127.0.0.1:0".parse().unwrap()).await);
        TestPlatform { sandbox, dir, admin: std::sync::OnceLock::new() }
    }

    pub fn url(&self) -> String {
        self.sandbox.as_ref().expect("running").url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.sandbox.as_ref().expect("running").addr
    }

    /// Stops the server and starts it again on the same port and data dir.
    pub async fn restart(&mut self) {
        let addr = self.stop().await;
        self.resume(addr).await;
    }

    /// Stops the server (the platform is unreachable until [`TestPlatform::resume`]); returns
    /// the address to resume on.
    pub async fn stop(&mut self) -> SocketAddr {
        let addr = self.addr();
        self.sandbox.take().expect("running").stop().await;
        addr
    }

    /// Serves again on `addr` from the same data dir.
    pub async fn resume(&mut self, addr: SocketAddr) {
        self.sandbox = Some(serve(self.dir.path(), addr).await);
        self.admin = std::sync::OnceLock::new();
    }

    /// One kept-alive client for the admin routes.
    pub fn admin(&self) -> &PlatformClient {
        self.admin.get_or_init(|| admin_client(&self.url()))
    }

    /// Moves platform time forward (test-fixture role).
    pub async fn advance_clock(&self, ms: i64) -> ClockState {
        admin_client(&self.url())
            .post("admin/v1/clock", &ClockAdvance { advance_ms: ms }, Some(ADMIN_TOKEN))
            .await
            .expect("advance clock")
    }
}

async fn serve(dir: &Path, addr: SocketAddr) -> RunningSandbox {
    let config = SandboxConfig {
        data_dir: dir.join("platform"),
        demo_seed: true,
        admin_token: Some(ADMIN_TOKEN.into()),
        durability: Default::default(),
        channel: Default::default(),
    };
    start(addr, config).await.expect("sandbox starts")
}

impl TestPlatform {
    /// Clinic role: issues the demo bill (or `items`) to `phone`.
    pub async fn issue_bill(&self, phone: &str, readable_after_ms: Option<u32>) -> carepass_core::wire::Bill {
        let request = carepass_core::wire::IssueBillRequest {
            readable_after_ms,
            ..carepass_sandbox::seed::demo_bill_request(phone, carepass_sandbox::seed::demo_bill_items())
        };
        self.admin().post("admin/v1/bills", &request, Some(ADMIN_TOKEN)).await.expect("bill issued")
    }

    /// Ends every open live stream.
    pub async fn cut_streams(&self) {
        let _: serde_json::Value = admin_client(&self.url())
            .post("admin/v1/streams/cut", &serde_json::json!({}), Some(ADMIN_TOKEN))
            .await
            .expect("cut");
    }

    /// The relay outbox after `after` (what FCM/APNs would have been handed).
    pub async fn outbox(&self, after: u64) -> carepass_sandbox::bills::OutboxPage {
        admin_client(&self.url())
            .get(&format!("admin/v1/push-outbox?after={after}"), Some(ADMIN_TOKEN))
            .await
            .expect("outbox")
    }
}

/// A small deterministic random sequence (xorshift) for tests that cut and shuffle.
pub struct TestRng(pub u64);

impl TestRng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A plain client of the platform API (for requests the app would never make).
pub fn admin_client(url: &str) -> PlatformClient {
    PlatformClient::new(url, Arc::new(SystemClock), &ClientOptions::default()).expect("client")
}

/// A phone: the core on its own data dir.
pub fn phone(url: &str, data_dir: &Path, secrets: &dyn SecretStore) -> Arc<CarePass> {
    phone_with(url, data_dir, secrets, Arc::new(SystemClock), ClientOptions::default()).expect("core opens")
}

pub fn phone_with(
    url: &str,
    data_dir: &Path,
    secrets: &dyn SecretStore,
    clock: Arc<dyn Clock>,
    client: ClientOptions,
) -> carepass_core::CoreResult<Arc<CarePass>> {
    let config =
        Config { client, device_name: "journey test".into(), ..Config::new(url, PathBuf::from(data_dir), "terminal") };
    CarePass::open(config, secrets, None, clock)
}

/// A server on loopback that answers every connection with `answer` (raw bytes), or says
/// nothing at all when `answer` is `None`. Stops with the test's runtime.
pub async fn misbehaving_server(answer: Option<&'static [u8]>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                match answer {
                    Some(bytes) => {
                        let _ = socket.write_all(bytes).await;
                        let _ = socket.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    addr
}

/// The session tokens a phone keeps in its vault (for tests that play an attacker with them).
pub fn stored_tokens(app: &CarePass, person_id: &str) -> carepass_core::wire::SessionTokens {
    let stored: serde_json::Value =
        app.store().vault.get(&format!("session.{person_id}")).expect("vault readable").expect("a session is stored");
    serde_json::from_value(stored["tokens"].clone()).expect("tokens")
}

/// Shared vector files (`tests/vectors/`): every file is built by the code; a normal run
/// holds the committed file to what the code builds, and `CAREPASS_WRITE_VECTORS=1` writes it.
pub mod vectors {
    use std::path::Path;

    use serde_json::{json, Value};

    pub fn writing() -> bool {
        std::env::var("CAREPASS_WRITE_VECTORS").is_ok_and(|v| v == "1")
    }

    /// Adds `case_count` (the number of cases, which every reader checks).
    pub fn with_count(mut doc: Value) -> Value {
        let count = doc["cases"].as_array().map(Vec::len).expect("a vector file has cases");
        doc["case_count"] = json!(count);
        doc
    }

    /// The cases of a vector file, which must be as many as the file says and at least one.
    pub fn cases(doc: &Value) -> &Vec<Value> {
        let cases = doc["cases"].as_array().expect("a vector file has a cases array");
        let stated = doc["case_count"].as_u64().expect("a vector file states its case_count");
        assert!(stated > 0, "a vector file with no cases");
        assert_eq!(cases.len() as u64, stated, "the file holds {} cases but says {stated}", cases.len());
        cases
    }

    /// Writes the built document when asked, then holds the committed file to it: the file
    /// must exist, and the code must build exactly it.
    pub fn committed(dir: &Path, name: &str, built: Value) -> Value {
        let path = dir.join(name);
        if writing() {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(&path, serde_json::to_string_pretty(&built).unwrap() + "\n").unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (write it with CAREPASS_WRITE_VECTORS=1)", path.display());
        });
        let doc: Value = serde_json::from_str(&text).unwrap();
        if doc != built {
            let (a, b) = (doc["cases"].as_array(), built["cases"].as_array());
            if let (Some(a), Some(b)) = (a, b) {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert_eq!(x, y, "{name}: case {i} ({}) differs from what the code gives", x["name"]);
                }
            }
            panic!(
                "{name} differs from what the code gives (regenerate with CAREPASS_WRITE_VECTORS=1 and review the diff)"
            );
        }
        doc
    }
}
