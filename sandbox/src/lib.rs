//! The CarePass sandbox: the platform side (national insurance system) as a real HTTP server
//! with sled persistence, for tests and the demo. It reuses the core's wire types and pure
//! rules, never its client.

pub mod api;
pub mod bills;
pub mod durable;
pub mod error;
pub mod limits;
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
    }
}

/// Binds `listen` (port 0 picks a free port) and serves in the background.
pub async fn start(listen: SocketAddr, config: SandboxConfig) -> std::io::Result<RunningSandbox> {
    let platform = Arc::new(
        Platform::open(&config.data_dir, config.demo_seed, config.admin_token.as_deref(), config.durability)
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    );
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let router = app(platform.clone());
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
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(RunningSandbox { addr, platform, stop: Some(stop), task: Some(task) })
}

/// Aborts a background task when the server it belongs to stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
