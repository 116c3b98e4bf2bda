//! The `carepass-sandbox` binary as a separate process: it prints its real address when
//! given port 0, serves the API with the server time on every answer, and serves an OpenAPI
//! document generated from the routes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use carepass_core::io::net::{ClientOptions, PlatformClient};
use carepass_core::wire::Health;
use carepass_core::SystemClock;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(data: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_carepass-sandbox"))
        .args(["serve", "--listen", "127.0.0.1:0", "--seed", "demo", "--admin-token", "t0k3n", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .spawn()
        .expect("sandbox binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url =
        line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line was {line:?}")).to_string();
    (Server(child), url)
}

#[tokio::test]
async fn prints_its_real_address_and_answers_with_server_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = spawn(dir.path());
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"), "{url}");
    let client = PlatformClient::new(&url, Arc::new(SystemClock), &ClientOptions::default()).unwrap();
    let health: Health = client.get("healthz", None).await.unwrap();
    assert_eq!(health.status, "ok");
    assert!(client.clock_offset_known());
    assert!(client.clock_offset_ms().abs() < 2_000);
}

#[tokio::test]
async fn serves_an_openapi_document_generated_from_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = spawn(dir.path());
    let client = PlatformClient::new(&url, Arc::new(SystemClock), &ClientOptions::default()).unwrap();
    let doc: serde_json::Value = client.get("openapi.json", None).await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/healthz", "/v1/enrolments", "/v1/sessions", "/v1/sessions/refresh", "/v1/me", "/admin/v1/clock"] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    assert!(doc["components"]["schemas"].get("SessionGrant").is_some());
    // Same document as the `openapi` subcommand prints.
    let printed = Command::new(env!("CARGO_BIN_EXE_carepass-sandbox")).arg("openapi").output().unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(printed, doc);
}

#[tokio::test]
async fn unknown_routes_and_bad_bodies_get_the_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = spawn(dir.path());
    let client = PlatformClient::new(&url, Arc::new(SystemClock), &ClientOptions::default()).unwrap();
    let err = client.get::<serde_json::Value>("v1/nowhere", None).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(carepass_core::wire::PlatformCode::NotFound));
    let err =
        client.post::<_, serde_json::Value>("v1/enrolments", &serde_json::json!({"phone": 1}), None).await.unwrap_err();
    assert_eq!(err.platform_code(), Some(carepass_core::wire::PlatformCode::InvalidRequest));
}

#[tokio::test]
async fn the_clinic_command_issues_a_bill_and_prints_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = spawn(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_carepass-sandbox"))
        .args(["clinic", "issue-bill", "--server", &url, "--admin-token", "t0k3n", "--phone", "13800000001"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(id.starts_with("bill_"), "{id}");
    // With --items FILE: exactly those items.
    let items = dir.path().join("items.json");
    std::fs::write(
        &items,
        r#"[{"item_code":"250102015","name":"HbA1c","category":"A","quantity":2,"unit_price_fen":6000}]"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_carepass-sandbox"))
        .args(["clinic", "issue-bill", "--server", &url, "--admin-token", "t0k3n", "--phone", "13800000003", "--items"])
        .arg(&items)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A wrong admin token is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_carepass-sandbox"))
        .args(["clinic", "issue-bill", "--server", &url, "--admin-token", "nope", "--phone", "13800000001"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"));
}
