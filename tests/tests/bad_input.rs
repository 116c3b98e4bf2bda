//! Bad input from outside the core: a tampered or wrongly keyed store, insecure or invalid
//! server URLs, and servers that answer garbage or nothing. Each gets a typed error, and no
//! stored data is lost.

use std::time::Duration;

use carepass_core::io::net::{ClientOptions, NetError};
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::io::store::StoreError;
use carepass_core::{CoreError, SystemClock};
use carepass_journeys::*;
use std::sync::Arc;

/// Short enough for the test that waits for a timeout on purpose.
fn quick() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_millis(400),
        ..Default::default()
    }
}

/// Long enough that a server that does answer is never taken for one that hangs, however
/// loaded the machine (the tests that expect an answer use this).
fn patient() -> ClientOptions {
    ClientOptions { timeout: Duration::from_secs(10), connect_timeout: Duration::from_secs(10), ..Default::default() }
}

#[tokio::test]
async fn a_tampered_stored_value_is_an_error_not_garbage() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let app = phone(&platform.url(), dir.path(), &secrets);
    app.enrol(PATIENT, CODE).await.unwrap();

    // Flip one bit of the sealed person record on disk.
    let file = dir.path().join("vault/person.P1001.v");
    let mut sealed = std::fs::read(&file).unwrap();
    let original = sealed.clone();
    let last = sealed.len() - 20;
    sealed[last] ^= 0x01;
    std::fs::write(&file, sealed).unwrap();
    assert!(matches!(app.current_profile(), Err(CoreError::Store(StoreError::Tampered))));

    // Nothing else was lost: the session still works, and a fresh fetch repairs the record.
    assert_eq!(app.refresh_profile().await.unwrap().person_id, "P1001");
    assert_eq!(app.current_profile().unwrap().unwrap().person_id, "P1001");
    assert_ne!(std::fs::read(&file).unwrap(), original, "re-sealed with a fresh nonce");
}

#[tokio::test]
async fn a_wrong_data_key_is_refused_and_the_right_one_still_opens() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    {
        let app = phone(&platform.url(), dir.path(), &secrets);
        app.enrol(PATIENT, CODE).await.unwrap();
    }
    let wrong = MemorySecretStore::new();
    use carepass_core::io::secrets::SecretStore;
    wrong.save(carepass_core::io::store::DATA_KEY_NAME, &[7u8; 32]).unwrap();
    let err = phone_with(&platform.url(), dir.path(), &wrong, Arc::new(SystemClock), Default::default()).err();
    assert!(matches!(err, Some(CoreError::Store(StoreError::WrongDataKey))), "{err:?}");
    let missing =
        phone_with(&platform.url(), dir.path(), &MemorySecretStore::new(), Arc::new(SystemClock), Default::default())
            .err();
    assert!(matches!(missing, Some(CoreError::Store(StoreError::MissingDataKey))), "{missing:?}");

    let app = phone(&platform.url(), dir.path(), &secrets);
    assert_eq!(app.current_profile().unwrap().unwrap().person_id, "P1001");
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_host_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    for url in ["http://10.1.2.3:8080", "http://platform.example.cn", "http://localhost.example.cn"] {
        let err =
            phone_with(url, dir.path(), &MemorySecretStore::new(), Arc::new(SystemClock), Default::default()).err();
        assert!(matches!(err, Some(CoreError::Net(NetError::InsecureUrl))), "{url}: {err:?}");
    }
    let err =
        phone_with("gopher://x", dir.path(), &MemorySecretStore::new(), Arc::new(SystemClock), Default::default())
            .err();
    assert!(matches!(err, Some(CoreError::Net(NetError::InvalidUrl(_)))), "{err:?}");
}

#[tokio::test]
async fn a_server_that_answers_garbage_gives_an_undecodable_error() {
    let cases: [(&'static [u8], &str); 3] = [
        (b"HTTP/1.1 200 OK\r\nx-carepass-server-time: 1\r\ncontent-length: 9\r\n\r\nnot json!", "bad json"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", "no server time"),
        (b"HTTP/1.1 200 OK\r\nx-carepass-server-time: 1\r\ncontent-length: 13\r\n\r\n{\"status\":42}", "wrong shape"),
    ];
    for (answer, what) in cases {
        let addr = misbehaving_server(Some(answer)).await;
        let dir = tempfile::tempdir().unwrap();
        let app = phone_with(
            &format!("http://{addr}"),
            dir.path(),
            &MemorySecretStore::new(),
            Arc::new(SystemClock),
            patient(),
        )
        .unwrap();
        let err = app.request_verification_code(PATIENT).await.unwrap_err();
        assert!(matches!(err, CoreError::Net(NetError::Undecodable(_))), "{what}: {err:?}");
    }
}

#[tokio::test]
async fn a_server_that_speaks_no_http_gives_a_network_error() {
    let addr = misbehaving_server(Some(b"\x00\x01garbage garbage garbage\r\n\r\n")).await;
    let dir = tempfile::tempdir().unwrap();
    let app =
        phone_with(&format!("http://{addr}"), dir.path(), &MemorySecretStore::new(), Arc::new(SystemClock), patient())
            .unwrap();
    let err = app.enrol(PATIENT, CODE).await.unwrap_err();
    assert!(matches!(err, CoreError::Net(NetError::Network(_) | NetError::Undecodable(_))), "{err:?}");
    assert_eq!(app.current_profile().unwrap(), None);
}

#[tokio::test]
async fn an_error_answer_that_is_not_json_keeps_its_status() {
    let addr = misbehaving_server(Some(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 5\r\n\r\noops!")).await;
    let dir = tempfile::tempdir().unwrap();
    let app =
        phone_with(&format!("http://{addr}"), dir.path(), &MemorySecretStore::new(), Arc::new(SystemClock), patient())
            .unwrap();
    let err = app.request_verification_code(PATIENT).await.unwrap_err();
    match err {
        CoreError::Net(NetError::Platform { status, code, .. }) => {
            assert_eq!(status, 502);
            assert_eq!(code, carepass_core::wire::PlatformCode::Internal);
        }
        other => panic!("expected a platform error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_hangs_times_out() {
    let addr = misbehaving_server(None).await;
    let dir = tempfile::tempdir().unwrap();
    let app =
        phone_with(&format!("http://{addr}"), dir.path(), &MemorySecretStore::new(), Arc::new(SystemClock), quick())
            .unwrap();
    let started = std::time::Instant::now();
    let err = app.enrol(PATIENT, CODE).await.unwrap_err();
    assert!(matches!(err, CoreError::Net(NetError::Timeout)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_closed_port_is_a_network_error() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let app =
        phone_with(&format!("http://{addr}"), dir.path(), &MemorySecretStore::new(), Arc::new(SystemClock), patient())
            .unwrap();
    let err = app.request_verification_code(PATIENT).await.unwrap_err();
    assert!(matches!(err, CoreError::Net(NetError::Network(_))), "{err:?}");
}
