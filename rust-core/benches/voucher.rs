//! E-voucher code costs against their primitives, in the same run:
//! - making one displayable code (`make_code`: sign, assemble, base45, QR with the standard's
//!   mask choice) vs its floor, the minimal work: one raw P-256 signature over the code's
//!   message plus one QR encoding of the same text with one fixed mask through the qrcode
//!   crate's canvas API (`floor_online`, `floor_offline`); online (130 characters, version 6)
//!   and offline (285 characters, version 10) profiles;
//! - verifying an online-profile code with the core's verifier vs one raw P-256 verification
//!   (`online_verification_vs_primitive`);
//! - verifying an offline-profile code (certificate + code: two signatures) vs one raw P-256
//!   verification (`offline_verification_vs_primitive`).
//!
//! For reference, the same run also times `encode_qr` alone and the crate's own encoder
//! (`QrCode::with_error_correction_level`, all eight masks scored by the crate).
//!
//! Each sample is timed as its fastest batch of a few calls (`support`), so other processes
//! on the shared machine do not decide the ratios. `scripts/bench-voucher.sh` runs this and
//! prints the ratios. `cargo bench` builds with the bench profile, which inherits the
//! workspace's release settings (what ships).

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
use criterion::{criterion_group, criterion_main, Criterion};
use qrcode::bits::encode_auto;
use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::ec::construct_codewords;
use qrcode::{Color, EcLevel, QrCode};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

mod support;

const NOW: i64 = 1_795_435_200_000;
const SETTLE: Purpose = Purpose::OutpatientSettlement;

/// The floor's QR half: the crate's canvas with one fixed mask, no mask search.
fn encode_one_mask(text: &str) -> Vec<Color> {
    let bits = encode_auto(text.as_bytes(), EcLevel::M).unwrap();
    let version = bits.version();
    let (data, ec) = construct_codewords(&bits.into_bytes(), version, EcLevel::M).unwrap();
    let mut canvas = Canvas::new(version, EcLevel::M);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    canvas.apply_mask(MaskPattern::Checkerboard);
    canvas.into_colors()
}

fn benches(c: &mut Criterion) {
    let issuer = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
    let (device, _) = SoftwareDeviceKey::generate().unwrap();
    let public_key = device.public_key().unwrap();
    let device_id = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
    let cert = issuer.certify(&device_id, &public_key, 2_000_000_000).unwrap();
    let source = CodeSource { keys: &device, device_id, certificate: Some(&cert), period_s: 30 };
    let online = make_code(&source, SETTLE, false, None, NOW, [1, 2, 3, 4]).unwrap();
    let offline = make_code(&source, SETTLE, true, None, NOW, [1, 2, 3, 5]).unwrap();
    assert_eq!((online.text.len(), online.qr.version), (130, 6));
    assert_eq!((offline.text.len(), offline.qr.version), (285, 10));
    let online_message = format::parse_text(&online.text).unwrap().body.message();
    let offline_message = format::parse_text(&offline.text).unwrap().body.message();
    let raw_signature = sign_fixed(&device, &online_message).unwrap();

    let mut group = c.benchmark_group("voucher");
    group.sample_size(60);
    let batch = support::BATCH;

    // Primitives and floors.
    group.bench_function("p256_sign", |b| {
        b.iter_custom(|n| support::fastest(n, batch, || sign_fixed(&device, black_box(&online_message)).unwrap()))
    });
    group.bench_function("floor_online", |b| {
        b.iter_custom(|n| {
            support::fastest(n, batch, || {
                (sign_fixed(&device, black_box(&online_message)).unwrap(), encode_one_mask(black_box(&online.text)))
            })
        })
    });
    group.bench_function("floor_offline", |b| {
        b.iter_custom(|n| {
            support::fastest(n, batch, || {
                (sign_fixed(&device, black_box(&offline_message)).unwrap(), encode_one_mask(black_box(&offline.text)))
            })
        })
    });
    let ring_key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key.clone());
    group.bench_function("p256_verify", |b| {
        b.iter_custom(|n| {
            support::fastest(n, batch, || {
                ring_key.verify(black_box(&online_message), black_box(&raw_signature)).unwrap()
            })
        })
    });

    // For reference: the QR step alone, with the fast chooser and with the crate's own search.
    group.bench_function("qr_encode_online", |b| {
        b.iter_custom(|n| support::fastest(n, batch, || encode_qr(black_box(&online.text)).unwrap()))
    });
    group.bench_function("qr_encode_offline", |b| {
        b.iter_custom(|n| support::fastest(n, batch, || encode_qr(black_box(&offline.text)).unwrap()))
    });
    group.bench_function("qr_crate_all_masks_online", |b| {
        b.iter_custom(|n| {
            support::fastest(n, batch, || {
                QrCode::with_error_correction_level(black_box(online.text.as_bytes()), EcLevel::M).unwrap()
            })
        })
    });

    // What the core does.
    let mut nonce = 0u32;
    group.bench_function("code_generation_online", |b| {
        b.iter_custom(|n| {
            support::fastest(n, batch, || {
                nonce = nonce.wrapping_add(1);
                make_code(&source, SETTLE, false, None, black_box(NOW), nonce.to_be_bytes()).unwrap()
            })
        })
    });
    group.bench_function("code_generation_offline", |b| {
        b.iter_custom(|n| {
            support::fastest(n, batch, || {
                nonce = nonce.wrapping_add(1);
                make_code(&source, SETTLE, true, None, black_box(NOW), nonce.to_be_bytes()).unwrap()
            })
        })
    });
    let directory = HashMap::from([(device_id, KnownDevice { public_key: public_key.clone(), revoked: false })]);
    let trust = HashMap::from([(1u16, issuer.public_key())]);
    // A fresh verifier (and replay cache) per call, made outside the timing, so every
    // verification is a first use.
    let fresh = || Verifier::new(trust.clone(), 0, Arc::new(MemoryReplayCache::default()));
    group.bench_function("verify_online", |b| {
        b.iter_custom(|n| {
            support::fastest_with_setup(n, batch, fresh, |v| {
                v.verify(black_box(&online.text), SETTLE, NOW, &directory).unwrap()
            })
        })
    });
    group.bench_function("verify_offline", |b| {
        b.iter_custom(|n| {
            support::fastest_with_setup(n, batch, fresh, |v| {
                v.verify(black_box(&offline.text), SETTLE, NOW, &NoDirectory).unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(voucher, benches);
criterion_main!(voucher);
