//! Every code the phone draws decodes with an independent reader: hundreds of codes made by
//! `make_code` (online and offline profiles, random nonces, purposes and periods: 130- and
//! 285-character payloads) and random base45 texts of QR versions 1–10, rendered to grayscale
//! PGM images and decoded by zxing-cpp through python3 (`tests/qr/decode_batch.py`, one
//! process for all). The decoded text must equal the payload. python3 with zxingcpp and
//! Pillow is required: scripts/test-all.sh installs them, and this test fails without them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use carepass_core::domain::crypto::{DeviceKeyStore, SoftwareDeviceKey};
use carepass_core::domain::voucher::cert::Issuer;
use carepass_core::domain::voucher::qr_mask::{mask_number, Unmasked};
use carepass_core::domain::voucher::render::{encode_qr, to_bitmap, QrMatrix};
use carepass_core::domain::voucher::rotator::{make_code, CodeSource};
use carepass_core::domain::voucher::Purpose;
use qrcode::EcLevel;

const NOW: i64 = 1_795_440_000_000;
const BASE45: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// SplitMix64: deterministic choices for nonces, purposes and texts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A binary PGM (P5) of the matrix, 4 pixels a module, four-module quiet zone.
fn pgm(qr: &QrMatrix) -> Vec<u8> {
    let (side, pixels) = to_bitmap(qr, 4);
    let mut out = format!("P5\n{side} {side}\n255\n").into_bytes();
    out.extend_from_slice(&pixels);
    out
}

#[test]
fn every_rendered_code_decodes_to_its_payload_with_zxing_cpp() {
    let issuer = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
    let (key, _) = SoftwareDeviceKey::generate().unwrap();
    let device_id = [0x21, 0x43, 0x65, 0x87, 0xA9, 0xCB, 0xED, 0x0F];
    let cert = issuer.certify(&device_id, &key.public_key().unwrap(), 2_000_000_000).unwrap();
    let source = CodeSource { keys: &key, device_id, certificate: Some(&cert), period_s: 30 };
    let mut rng = Rng(0x0DEC_0DE5);

    // (payload, matrix) of everything to decode.
    let mut codes: Vec<(String, QrMatrix)> = Vec::new();
    for i in 0..260 {
        let offline = i % 2 == 1;
        let purpose = Purpose::ALL[rng.below(Purpose::ALL.len())];
        let proxy = rng.below(2) == 1;
        let link = proxy.then(|| (rng.next()).to_be_bytes());
        let now = NOW + 30_000 * i as i64 + rng.below(30_000) as i64;
        let nonce = (rng.next() as u32).to_be_bytes();
        let code = make_code(&source, purpose, offline, link, now, nonce).unwrap();
        // A proxy code carries its link id (8 bytes more: 12 more base45 characters).
        let expected = if offline { 285 } else { 130 } + if proxy { 12 } else { 0 };
        assert_eq!(code.text.len(), expected, "{}", code.text);
        codes.push((code.text, code.qr));
    }
    for _ in 0..60 {
        let len = 1 + rng.below(311);
        let text: String = (0..len).map(|_| BASE45[rng.below(45)] as char).collect();
        let qr = encode_qr(&text).unwrap();
        codes.push((text, qr));
    }

    let dir = tempfile::tempdir().unwrap();
    let mut masks = [0usize; 8];
    let mut versions = BTreeMap::new();
    for (i, (text, qr)) in codes.iter().enumerate() {
        std::fs::write(dir.path().join(format!("code-{i:04}.pgm")), pgm(qr)).unwrap();
        let mask = Unmasked::encode(text.as_bytes(), EcLevel::M).unwrap().best_mask();
        masks[mask_number(mask) as usize] += 1;
        *versions.entry(qr.version).or_insert(0) += 1;
    }

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/qr/decode_batch.py");
    let out = Command::new("python3").arg(&script).arg(dir.path()).output().unwrap_or_else(|e| {
        panic!("python3 must run (zxing-cpp is the independent reader; scripts/test-all.sh installs it): {e}")
    });
    assert!(
        out.status.success(),
        "decode_batch.py failed (is `python3 -m pip install zxing-cpp pillow` done?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), codes.len(), "one result per image");
    for (i, ((text, qr), line)) in codes.iter().zip(&lines).enumerate() {
        assert_eq!(line["file"], format!("code-{i:04}.pgm"));
        let decoded: Vec<&str> = line["texts"].as_array().unwrap().iter().filter_map(|t| t.as_str()).collect();
        assert_eq!(decoded, vec![text.as_str()], "code {i} (version {}) decodes to its payload", qr.version);
    }
    // The codes exercised every mask and the two code versions.
    assert!(masks.iter().all(|n| *n > 0), "masks chosen {masks:?}");
    assert!(versions.get(&6).copied().unwrap_or(0) >= 130 && versions.get(&10).copied().unwrap_or(0) >= 130);
    eprintln!("{} codes decoded; masks chosen {masks:?}; versions {versions:?}", codes.len());
}
