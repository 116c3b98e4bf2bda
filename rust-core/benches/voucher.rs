//! E-voucher code costs against their primitives, in the same run:
//! - making one displayable code vs one raw P-256 signature plus one QR encoding of the same
//!   text (`code_generation_vs_primitives`);
//! - verifying an online-profile code with the core's verifier vs one raw P-256 verification
//!   (`online_verification_vs_primitive`);
//! - verifying an offline-profile code (certificate + code: two signatures) vs one raw P-256
//!   verification (`offline_verification_vs_primitive`).
//!
//! `scripts/bench-voucher.sh` runs this and prints the ratios.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use carepass_core::domain::crypto::{sign_fixed, DeviceKeyStore, SoftwareDeviceKey};
use carepass_core::domain::voucher::cert::Issuer;
use carepass_core::domain::voucher::format;
use carepass_core::domain::voucher::render::encode_qr;
use carepass_core::domain::voucher::rotator::{make_code, CodeSource};
use carepass_core::domain::voucher::verify::{KnownDevice, MemoryReplayCache, NoDirectory, Verifier};
use carepass_core::domain::voucher::Purpose;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

const NOW: i64 = 1_795_435_200_000;
const SETTLE: Purpose = Purpose::OutpatientSettlement;

fn benches(c: &mut Criterion) {
    let issuer = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
    let (device, _) = SoftwareDeviceKey::generate().unwrap();
    let public_key = device.public_key().unwrap();
    let device_id = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
    let cert = issuer.certify(&device_id, &public_key, 2_000_000_000).unwrap();
    let source = CodeSource { keys: &device, device_id, certificate: Some(&cert), period_s: 30 };
    let online = make_code(&source, SETTLE, false, false, NOW, [1, 2, 3, 4]).unwrap();
    let offline = make_code(&source, SETTLE, true, false, NOW, [1, 2, 3, 5]).unwrap();
    let online_message = format::parse_text(&online.text).unwrap().body.message();
    let raw_signature = sign_fixed(&device, &online_message).unwrap();

    let mut group = c.benchmark_group("voucher");
    group.sample_size(60);

    // Primitives.
    group.bench_function("p256_sign", |b| b.iter(|| sign_fixed(&device, black_box(&online_message)).unwrap()));
    group.bench_function("qr_encode", |b| b.iter(|| encode_qr(black_box(&online.text)).unwrap()));
    let ring_key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key.clone());
    group.bench_function("p256_verify", |b| {
        b.iter(|| ring_key.verify(black_box(&online_message), black_box(&raw_signature)).unwrap())
    });

    // What the core does.
    let mut nonce = 0u32;
    group.bench_function("code_generation", |b| {
        b.iter(|| {
            nonce = nonce.wrapping_add(1);
            make_code(&source, SETTLE, false, false, black_box(NOW), nonce.to_be_bytes()).unwrap()
        })
    });
    let directory = HashMap::from([(device_id, KnownDevice { public_key: public_key.clone(), revoked: false })]);
    let trust = HashMap::from([(1u16, issuer.public_key())]);
    // A fresh verifier (and replay cache) per iteration, so every verification is a first use.
    let fresh = || Verifier::new(trust.clone(), 0, Arc::new(MemoryReplayCache::default()));
    group.bench_function("verify_online", |b| {
        b.iter_batched(
            fresh,
            |v| v.verify(black_box(&online.text), SETTLE, NOW, &directory).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("verify_offline", |b| {
        b.iter_batched(
            fresh,
            |v| v.verify(black_box(&offline.text), SETTLE, NOW, &NoDirectory).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(voucher, benches);
criterion_main!(voucher);
