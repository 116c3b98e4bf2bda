//! `carepass prescriptions` and `carepass orders`, and `order` without `--rx` taking the
//! newest prescription as `pharmacies` does — as processes against a real sandbox.

mod common;

use std::net::SocketAddr;

use carepass_sandbox::{start, SandboxConfig};
use common::{carepass, text};

#[tokio::test(flavor = "multi_thread")]
async fn prescriptions_are_listed_an_order_defaults_to_the_newest_and_orders_list_it() {
    let platform_dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = SandboxConfig {
        data_dir: platform_dir.path().into(),
        demo_seed: true,
        admin_token: Some("rx-admin".into()),
        durability: Default::default(),
        channel: Default::default(),
    };
    let sandbox = start(listen, config).await.unwrap();
    let url = sandbox.url();
    let phone = tempfile::tempdir().unwrap();
    let run = |args: Vec<&'static str>| {
        let (u, p) = (url.clone(), phone.path().to_path_buf());
        tokio::task::spawn_blocking(move || carepass(&u, &p, &args))
    };
    let out = run(vec!["login", "--phone", "13800000001", "--code", "123456"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(vec!["orders"]).await.unwrap();
    assert_eq!(text(&out.stdout).trim(), "no orders", "{}", text(&out.stderr));
    let out = run(vec!["prescriptions"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("rx_p1001_chronic"), "{}", text(&out.stdout));
    let out = run(vec!["prescriptions", "--json"]).await.unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let newest = listed[0]["rx_id"].as_str().expect("an id").to_string();

    let out = run(vec!["order", "--pharmacy", "PH0000237", "--pickup"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let order_id = text(&out.stdout).split_whitespace().next().unwrap().to_string();
    let out = run(vec!["orders", "--json"]).await.unwrap();
    let orders: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(orders.as_array().unwrap().len(), 1);
    assert_eq!(orders[0]["order_id"], order_id.as_str());
    assert_eq!(orders[0]["rx_id"], newest.as_str(), "the newest prescription was ordered");
    let out = run(vec!["orders"]).await.unwrap();
    assert!(text(&out.stdout).starts_with("accepted  order "), "{}", text(&out.stdout));
}
