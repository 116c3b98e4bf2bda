//! The phone's cost of one payment confirmation against its primitive, in the same run:
//! checking a quote against the bill the phone holds (`check_quote`: the split's invariants,
//! every line, the legs, the parties, the state, the lifetime), building the consent under a
//! fresh idempotency key and signing it with the device key (`check_and_sign`), vs one raw
//! P-256 signature over the same consent bytes (`p256_sign`). The quote and the bill are the
//! first accepted case of `tests/vectors/payments/quote_checks.json` (fund, personal account
//! and card). `scripts/bench-payment.sh` runs this and prints the ratio (goal ≤ 1.5x).

use std::hint::black_box;

use carepass_core::domain::bills::Bill;
use carepass_core::domain::crypto::{sign_fixed, SoftwareDeviceKey};
use carepass_core::domain::payment::quote::{check_quote, Expected};
use carepass_core::domain::payment::Quote;
use criterion::{criterion_group, criterion_main, Criterion};

mod support;

fn benches(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/payments/quote_checks.json");
    let vectors: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let case = vectors["cases"].as_array().unwrap().iter().find(|c| c["expect"] == "ok").expect("an accepted case");
    let quote: Quote = serde_json::from_value(case["quote"].clone()).unwrap();
    let bill: Bill = serde_json::from_value(case["bill"].clone()).unwrap();
    let now = case["now_ms"].as_i64().unwrap();
    let e = &case["expected"];
    let (subject, actor, device_id) =
        (e["subject"].as_str().unwrap(), e["actor"].as_str().unwrap(), e["device_id"].as_str().unwrap());
    let expected = Expected { subject, actor, device_id };
    check_quote(&quote, &bill, &expected, now).expect("the case is accepted");
    let (device, _) = SoftwareDeviceKey::generate().unwrap();
    let key = "pay_00112233445566778899aabbccddeeff";
    let consent_bytes = quote.consent(key).signed_bytes().unwrap();

    let mut group = c.benchmark_group("payment");
    group.sample_size(60);
    let batch = support::BATCH;
    group.bench_function("p256_sign", |b| {
        b.iter_custom(|n| support::fastest(n, batch, || sign_fixed(&device, black_box(&consent_bytes)).unwrap()))
    });
    group.bench_function("check_and_sign", |b| {
        b.iter_custom(|n| {
            support::fastest(n, batch, || {
                check_quote(black_box(&quote), black_box(&bill), &expected, now).unwrap();
                let consent = quote.consent(black_box(key));
                consent.sign(&device).unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(payment, benches);
criterion_main!(payment);
