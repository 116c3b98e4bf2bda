//! The CarePass sandbox: the platform side (national insurance system) as a real HTTP server
//! with sled persistence, for tests and the demo. It reuses the core's wire types and pure
//! rules, never its client.

pub mod api;
pub mod bills;
pub mod channel;
pub mod durable;
pub mod error;
pub mod family;
pub mod limits;
pub mod payments;
pub mod pharmacy;
pub mod platform;
pub mod seed;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use platform::Platform;

/// How to run the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub data_dir: PathBuf,
    pub demo_seed: bool,
    /// Enables the admin routes (clinic, pharmacy, test-fixture roles) for this bearer token.
    pub admin_token: Option<String>,
    /// How writes are made durable before they are answered.
    pub durability: durable::DurabilityMode,
    /// The payment channel the platform uses.
    pub channel: ChannelSetup,
}

/// Where the payment channel is and how long the platform waits for it.
#[derive(Debug, Clone)]
pub struct ChannelSetup {
    /// A channel server's URL; none: an embedded one is started beside the platform, its
    /// database in `<data>/channel`.
    pub url: Option<String>,
    /// How long the platform waits for the channel's answer before the outcome is unknown.
    pub timeout: std::time::Duration,
    /// How long an embedded channel keeps the "times out" test cards waiting.
    pub hang: std::time::Duration,
    /// How often the payment driver looks for payments to move on.
    pub drive_every: std::time::Duration,
}

impl Default for ChannelSetup {
    fn default() -> Self {
        ChannelSetup {
            url: None,
            timeout: std::time::Duration::from_millis(1_000),
            hang: std::time::Duration::from_millis(2_000),
            drive_every: std::time::Duration::from_millis(500),
        }
    }
}

/// The router and the generated OpenAPI document.
pub fn app(platform: Arc<Platform>) -> Router {
    let (router, openapi) = api::router().split_for_parts();
    let openapi = Arc::new(openapi);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                carepass_core::wire::PlatformCode::NotFound,
                "no such route",
            )
        })
        .layer(axum::middleware::map_response_with_state(platform.clone(), api::stamp_server_time))
        .with_state(platform)
}

/// The OpenAPI document as JSON text.
pub fn openapi_json() -> String {
    let (_, openapi) = api::router().split_for_parts();
    openapi.to_pretty_json().unwrap_or_default()
}

/// A sandbox running in this process (for the demo and tests).
pub struct RunningSandbox {
    pub addr: SocketAddr,
    pub platform: Arc<Platform>,
    /// The embedded payment channel, when the platform started its own.
    pub channel: Option<channel::RunningChannel>,
    pub channel_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSandbox {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits until the server (and its hold on the database) is gone.
    pub async fn stop(mut self) {
        // Live streams end first: the server then has no open response to wait for.
        self.platform.shut_down();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(channel) = self.channel.take() {
            channel.stop().await;
        }
    }
}

/// Binds `listen` (port 0 picks a free port) and serves in the background.
pub async fn start(listen: SocketAddr, config: SandboxConfig) -> std::io::Result<RunningSandbox> {
    let platform = Arc::new(
        Platform::open(&config.data_dir, config.demo_seed, config.admin_token.as_deref(), config.durability)
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    );
    let (channel, channel_url) = match &config.channel.url {
        Some(url) => (None, url.clone()),
        None => {
            let dir = config.data_dir.join("channel");
            let running = channel::start_channel(SocketAddr::new(listen.ip(), 0), &dir, config.channel.hang).await?;
            let url = running.url();
            (Some(running), url)
        }
    };
    platform
        .set_channel(channel::ChannelClient::new(&channel_url, config.channel.timeout).map_err(std::io::Error::other)?);
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let router = app(platform.clone());
    // The payment driver: resumes what a crash or a timeout left (at start, then every tick).
    let driver = {
        let platform = Arc::downgrade(&platform);
        let every = config.channel.drive_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(platform) = platform.upgrade() else { return };
                if let Err(e) = platform.drive_open().await {
                    log::warn!("payment driver: {}", e.message);
                }
            }
        })
    };
    // Pruning, every minute, off the request path.
    let pruner = {
        let platform = Arc::downgrade(&platform);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            every.tick().await;
            loop {
                every.tick().await;
                let Some(platform) = platform.upgrade() else { return };
                match tokio::task::spawn_blocking(move || platform.prune()).await {
                    Ok(Ok(report)) => log::info!("pruned {report:?}"),
                    Ok(Err(e)) => log::warn!("pruning failed: {}", e.message),
                    Err(_) => return,
                }
            }
        })
    };
    let task = tokio::spawn(async move {
        let _pruner = AbortOnDrop(pruner);
        let _driver = AbortOnDrop(driver);
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(RunningSandbox { addr, platform, channel, channel_url, stop: Some(stop), task: Some(task) })
}

/// Aborts a background task when the server it belongs to stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
