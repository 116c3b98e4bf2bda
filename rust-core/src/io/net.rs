//! The platform client: JSON over HTTP with reqwest on rustls (ring provider only).
//!
//! - The base URL must be `https`, or `http` to a loopback address (the sandbox); anything
//!   else is refused before a request is made.
//! - Every answer carries the server time ([`wire::SERVER_TIME_HEADER`]); the client keeps
//!   the offset between the server's clock and the phone's, so codes can be made on
//!   platform time even when the phone's clock is wrong.
//! - Certificates: with pinned roots in [`ClientOptions`] only those roots are trusted
//!   (works on every platform with no extra setup); without, the OS verifier
//!   (rustls-platform-verifier). See `docs/adr/0002-certificate-verification.md`.
//! - Retries are not done here: a request is retried only by callers that hold an
//!   idempotency key.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::domain::clock::Clock;
use crate::wire::{self, ErrorBody, PlatformCode};

/// Largest answer body the client reads.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("not a valid server URL: {0}")]
    InvalidUrl(String),
    #[error("refusing plain http to a non-loopback host; use https")]
    InsecureUrl,
    #[error("network failure: {0}")]
    Network(String),
    #[error("the platform did not answer in time")]
    Timeout,
    #[error("{message} (platform code {code}, HTTP {status})")]
    Platform {
        status: u16,
        code: PlatformCode,
        message: String,
        /// The `Retry-After` seconds of a rate-limited answer.
        retry_after_s: Option<u64>,
    },
    #[error("the platform's answer could not be understood: {0}")]
    Undecodable(String),
}

impl NetError {
    /// The platform's error code, when the platform answered with one.
    pub fn platform_code(&self) -> Option<PlatformCode> {
        match self {
            NetError::Platform { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// PEM certificates of the only roots to trust (certificate pinning). Empty: the
    /// operating system's verifier.
    pub pinned_roots_pem: Vec<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            pinned_roots_pem: Vec::new(),
        }
    }
}

/// Installs ring as rustls's process-wide crypto provider (once; harmless if done already).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Checks a base URL: https anywhere, http only to loopback.
pub fn check_base_url(text: &str) -> Result<Url, NetError> {
    let trimmed = text.trim();
    // `127.0.0.1:8787` or `localhost:8787` (a host and port, no scheme) parse as odd URLs or
    // not at all: say what is missing.
    if !trimmed.contains("://") {
        return Err(NetError::InvalidUrl(format!(
            "{trimmed:?} has no scheme: write https://{trimmed} (or http://{trimmed} for a sandbox on this machine)"
        )));
    }
    let url = Url::parse(trimmed).map_err(|e| NetError::InvalidUrl(format!("{trimmed:?}: {e}")))?;
    if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
        return Err(NetError::InvalidUrl(format!("{trimmed:?}: a server URL has no query or fragment")));
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            if !loopback {
                return Err(NetError::InsecureUrl);
            }
        }
        other => return Err(NetError::InvalidUrl(format!("{trimmed:?}: the scheme {other:?} is not https or http"))),
    }
    if url.host().is_none() {
        return Err(NetError::InvalidUrl(format!("{trimmed:?} names no host")));
    }
    Ok(url)
}

/// The HTTP client of the platform API. The underlying reqwest client (which reads the OS
/// certificate store, a few ms) is built on the first request, not at construction, so
/// opening the core and making a code need no network setup at all.
#[derive(Debug)]
pub struct PlatformClient {
    base: Url,
    options: ClientOptions,
    http: OnceLock<Result<reqwest::Client, NetError>>,
    clock: Arc<dyn Clock>,
    offset_ms: AtomicI64,
    offset_known: AtomicBool,
}

/// Who a request speaks for: the session's bearer token, and the person it is about when that
/// is not the token's own person (`docs/api.md` § Actor and subject).
#[derive(Debug, Clone, Copy, Default)]
pub struct Auth<'a> {
    pub bearer: Option<&'a str>,
    pub subject: Option<&'a str>,
    /// Sent as `Idempotency-Key` (the pay, cash-due and repayment requests).
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Auth<'a> {
    pub const NONE: Auth<'static> = Auth { bearer: None, subject: None, idempotency_key: None };

    pub fn bearer(token: &'a str) -> Self {
        Auth { bearer: Some(token), subject: None, idempotency_key: None }
    }
}

impl PlatformClient {
    pub fn new(base_url: &str, clock: Arc<dyn Clock>, options: &ClientOptions) -> Result<Self, NetError> {
        let mut base = check_base_url(base_url)?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        for pem in &options.pinned_roots_pem {
            reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| NetError::InvalidUrl(format!("bad pinned root certificate: {e}")))?;
        }
        Ok(PlatformClient {
            base,
            options: options.clone(),
            http: OnceLock::new(),
            clock,
            offset_ms: AtomicI64::new(0),
            offset_known: AtomicBool::new(false),
        })
    }

    fn http(&self) -> Result<&reqwest::Client, NetError> {
        self.http
            .get_or_init(|| {
                install_crypto_provider();
                build_http(&self.options)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The platform's origin (`scheme://host:port`), which a session is bound to.
    pub fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }

    /// Server clock minus phone clock, in ms, from the last answer (0 before any).
    pub fn clock_offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    /// Starts from an offset remembered from an earlier run, until an answer says better.
    pub fn seed_clock_offset_ms(&self, offset_ms: i64) {
        if !self.clock_offset_known() {
            self.offset_ms.store(offset_ms, Ordering::SeqCst);
        }
    }

    /// Whether any answer has told the server time yet.
    pub fn clock_offset_known(&self) -> bool {
        self.offset_known.load(Ordering::SeqCst)
    }

    /// The platform's time as best known: the phone's clock corrected by the offset.
    pub fn server_now_ms(&self) -> i64 {
        self.clock.now_ms().saturating_add(self.clock_offset_ms())
    }

    pub async fn get<Resp: DeserializeOwned>(&self, path: &str, bearer: Option<&str>) -> Result<Resp, NetError> {
        self.call::<(), Resp>(Method::GET, path, None, Auth { bearer, subject: None, idempotency_key: None }).await
    }

    pub async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
        bearer: Option<&str>,
    ) -> Result<Resp, NetError> {
        self.call(Method::POST, path, Some(body), Auth { bearer, subject: None, idempotency_key: None }).await
    }

    pub async fn delete<Resp: DeserializeOwned>(&self, path: &str, bearer: Option<&str>) -> Result<Resp, NetError> {
        self.call::<(), Resp>(Method::DELETE, path, None, Auth { bearer, subject: None, idempotency_key: None }).await
    }

    fn request(&self, method: Method, path: &str, auth: Auth<'_>) -> Result<reqwest::RequestBuilder, NetError> {
        let url = self.base.join(path.trim_start_matches('/')).map_err(|e| NetError::InvalidUrl(e.to_string()))?;
        let mut request = self.http()?.request(method, url);
        if let Some(token) = auth.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(subject) = auth.subject {
            request = request.header(wire::SUBJECT_HEADER, subject);
        }
        if let Some(key) = auth.idempotency_key {
            request = request.header(wire::IDEMPOTENCY_HEADER, key);
        }
        Ok(request)
    }

    /// Opens a long-lived GET (the live inbox stream) and returns the response once its
    /// headers say success; the caller reads the body with its own idle timeout.
    pub async fn open_stream(&self, path: &str, auth: Auth<'_>) -> Result<reqwest::Response, NetError> {
        let request = self.request(Method::GET, path, auth)?.header("accept", "text/event-stream");
        let sent_ms = self.clock.now_ms();
        let response = request.send().await.map_err(map_reqwest)?;
        self.note_server_time(&response, sent_ms);
        let status = response.status();
        if !status.is_success() {
            let retry = retry_after(&response);
            let bytes = read_capped(response).await?;
            return Err(platform_error(status, retry, &bytes));
        }
        Ok(response)
    }

    fn note_server_time(&self, response: &reqwest::Response, sent_ms: i64) -> Option<i64> {
        let received_ms = self.clock.now_ms();
        let server_ms = response
            .headers()
            .get(wire::SERVER_TIME_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())?;
        let midpoint = sent_ms.saturating_add(received_ms.saturating_sub(sent_ms) / 2);
        self.offset_ms.store(server_ms.saturating_sub(midpoint), Ordering::SeqCst);
        self.offset_known.store(true, Ordering::SeqCst);
        Some(server_ms)
    }

    /// One request; the answer's server time updates the clock offset, success or not.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Req>,
        auth: Auth<'_>,
    ) -> Result<Resp, NetError> {
        let mut request =
            self.request(method, path, auth)?.header("accept", "application/json").timeout(self.options.timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let sent_ms = self.clock.now_ms();
        let response = request.send().await.map_err(map_reqwest)?;
        let server_ms = self.note_server_time(&response, sent_ms);
        let status = response.status();
        let retry = retry_after(&response);
        let bytes = read_capped(response).await?;
        if !status.is_success() {
            return Err(platform_error(status, retry, &bytes));
        }
        if server_ms.is_none() {
            return Err(NetError::Undecodable(format!("answer without the {} header", wire::SERVER_TIME_HEADER)));
        }
        serde_json::from_slice(&bytes).map_err(|e| NetError::Undecodable(e.to_string()))
    }
}

/// The one reqwest client: pinned roots or the OS verifier, no redirects. No whole-request
/// timeout here (the live stream is long-lived): each ordinary call sets its own.
fn build_http(options: &ClientOptions) -> Result<reqwest::Client, NetError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .user_agent(concat!("carepass-core/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none());
    if !options.pinned_roots_pem.is_empty() {
        let mut roots = Vec::new();
        for pem in &options.pinned_roots_pem {
            roots.push(
                reqwest::Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| NetError::InvalidUrl(format!("bad pinned root certificate: {e}")))?,
            );
        }
        builder = builder.tls_certs_only(roots);
    }
    builder.build().map_err(|e| NetError::Network(format!("client setup: {e}")))
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, NetError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(map_reqwest)? {
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(NetError::Undecodable(format!("answer larger than {MAX_BODY_BYTES} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn platform_error(status: StatusCode, retry_after_s: Option<u64>, bytes: &[u8]) -> NetError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => {
            NetError::Platform { status: status.as_u16(), code: body.code, message: body.message, retry_after_s }
        }
        Err(_) => NetError::Platform {
            status: status.as_u16(),
            // Not the platform's own error body (a proxy, a portal): only what the status
            // says for sure, so a stray 401 page never ends the session.
            code: match status.as_u16() {
                429 => PlatformCode::RateLimited,
                500..=599 => PlatformCode::Internal,
                _ => PlatformCode::Unknown,
            },
            message: status.canonical_reason().unwrap_or("unexpected status").to_string(),
            retry_after_s,
        },
    }
}

/// Whether a connection failed in TLS (not in TCP): some error in its chain comes from rustls.
fn tls_failure(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        let text = format!("{err:?}");
        if text.contains("rustls") || text.contains("InvalidContentType") || text.contains("CorruptMessage") {
            return true;
        }
        source = err.source();
    }
    false
}

/// `Retry-After` in whole seconds (the delay form; an HTTP date is ignored).
fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

pub(crate) fn map_reqwest(e: reqwest::Error) -> NetError {
    let at = e.url().map(|u| format!("{}://{}", u.scheme(), u.authority())).unwrap_or_default();
    if e.is_timeout() {
        NetError::Timeout
    } else if e.is_connect() && e.url().is_some_and(|u| u.scheme() == "https") && tls_failure(&e) {
        NetError::Network(format!(
            "the TLS handshake with {at} failed: is it a plain http server? (the sandbox speaks http on loopback)"
        ))
    } else if e.is_connect() {
        NetError::Network(format!("cannot connect to the platform at {at}"))
    } else if e.is_decode() || e.is_body() {
        NetError::Undecodable(e.to_string())
    } else {
        NetError::Network(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        for ok in [
            "https://platform.example.cn",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9/",
            "http://127.8.9.10",
        ] {
            assert!(check_base_url(ok).is_ok(), "{ok}");
        }
        for insecure in
            ["http://10.0.0.1", "http://platform.example.cn", "http://192.168.1.2:80", "http://localhost.evil.com"]
        {
            assert_eq!(check_base_url(insecure), Err(NetError::InsecureUrl), "{insecure}");
        }
        for invalid in ["ftp://x", "not a url", "https://x/?q=1", "file:///tmp", "mailto:a@b"] {
            assert!(matches!(check_base_url(invalid), Err(NetError::InvalidUrl(_))), "{invalid}");
        }
    }
}
