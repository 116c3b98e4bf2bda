//! What the docs and the shared vectors say the sandbox answers, checked against the sandbox:
//! the relay outbox page of `docs/bills.md` § 6 has the shape of the vector file's
//! `relay_outbox_example`, one record per token with the same signed data map.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use carepass_core::domain::bills::PushOutcome;
use carepass_core::io::secrets::MemorySecretStore;
use carepass_journeys::*;
use serde_json::Value;

/// The object keys at every level of `value` (arrays by their first element), as paths.
fn shape(value: &Value, at: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = format!("{at}/{key}");
                out.insert(path.clone());
                // A data map's keys are the doorbell's, checked by the doorbell vectors.
                if key != "data" {
                    shape(inner, &path, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                shape(first, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_relay_outbox_has_the_documented_shape() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/bills/doorbells.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let example = &doc["relay_outbox_example"];
    let mut documented = BTreeSet::new();
    shape(example, "", &mut documented);

    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    app.enrol(PATIENT, CODE).await.unwrap();
    app.register_push_token("fcm", "fcm-1").await.unwrap();
    app.register_push_token("huawei", "hw-1").await.unwrap();
    platform.issue_bill(PATIENT, None).await;

    let client = admin_client(&platform.url());
    let page: Value = client.get("admin/v1/push-outbox?after=0", Some(ADMIN_TOKEN)).await.unwrap();
    let mut served = BTreeSet::new();
    shape(&page, "", &mut served);
    assert_eq!(served, documented, "the outbox page and docs/bills.md § 6 disagree");

    // One record per token, the same data map in each, n ascending, cursor at the last.
    let pushes = page["pushes"].as_array().unwrap();
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[0]["push"]["data"], pushes[1]["push"]["data"]);
    let ns: Vec<u64> = pushes.iter().map(|p| p["n"].as_u64().unwrap()).collect();
    assert!(ns[0] < ns[1]);
    assert_eq!(page["cursor"].as_u64(), Some(ns[1]));
    let services: BTreeSet<&str> = pushes.iter().map(|p| p["push"]["service"].as_str().unwrap()).collect();
    assert_eq!(services, BTreeSet::from(["fcm", "huawei"]));
    let end: Value = client.get(&format!("admin/v1/push-outbox?after={}", ns[1]), Some(ADMIN_TOKEN)).await.unwrap();
    assert_eq!(end["pushes"].as_array().map(Vec::len), Some(0));
    assert_eq!(end["cursor"].as_u64(), Some(ns[1]), "the end of the outbox: no pushes, cursor = after");

    // The data map is what the app's push service hands the app, with the keys it adds.
    let mut data: HashMap<String, String> = serde_json::from_value(pushes[0]["push"]["data"].clone()).unwrap();
    data.insert("google.message_id".into(), "0:1".into());
    data.insert("from".into(), "264831917842".into());
    assert!(matches!(app.handle_push(&data).await.unwrap(), PushOutcome::Pulled(_)));
}
