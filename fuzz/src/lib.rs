//! What the fuzz targets share: the fixed trust sets, read once from the shared test vectors
//! (`tests/vectors/`, compiled in), so a target verifies against the same keys the vectors'
//! valid inputs were signed with and the seed corpora reach past the signature checks.

use std::collections::HashMap;
use std::sync::LazyLock;

use carepass_core::domain::voucher::format::device_id_to_bytes;
use carepass_core::domain::voucher::verify::KnownDevice;
use serde_json::Value;

const VOUCHER_CODES: &str = include_str!("../../tests/vectors/voucher/codes.json");
const DOORBELLS: &str = include_str!("../../tests/vectors/bills/doorbells.json");
const RECEIPTS: &str = include_str!("../../tests/vectors/payments/receipts.json");
const CONSENT: &str = include_str!("../../tests/vectors/payments/consent.json");
const SETTLEMENT: &str = include_str!("../../tests/vectors/settlement/cases.json");

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("a test vector file is JSON")
}

/// Lowercase or uppercase hex to bytes (vector files only: panics on bad hex).
pub fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("vector field {key} is a string"))
}

/// `key_id → public_key_hex` lists (`issuers`, `push_keys`, `receipt_keys`).
fn key_table(list: &Value) -> HashMap<u16, Vec<u8>> {
    list.as_array()
        .expect("a key list")
        .iter()
        .map(|k| (k["key_id"].as_u64().expect("key_id") as u16, hex(str_of(k, "public_key_hex"))))
        .collect()
}

/// The scanner's setup of `tests/vectors/voucher/codes.json`.
pub struct VoucherSetup {
    /// Trusted certificate issuers (key id → uncompressed key).
    pub issuers: HashMap<u16, Vec<u8>>,
    /// The platform's device directory (online profile).
    pub directory: HashMap<[u8; 8], KnownDevice>,
    /// The scanner's revocation list.
    pub revoked: Vec<[u8; 8]>,
    pub skew_ms: i64,
    /// The time most cases are verified at.
    pub now_ms: i64,
}

pub static VOUCHER: LazyLock<VoucherSetup> = LazyLock::new(|| {
    let v = json(VOUCHER_CODES);
    let directory = v["directory"]
        .as_array()
        .expect("directory")
        .iter()
        .map(|d| {
            let id = device_id_to_bytes(str_of(d, "device_id")).expect("device id");
            (id, KnownDevice { public_key: hex(str_of(d, "public_key_hex")), revoked: false })
        })
        .collect();
    let revoked = v["revoked_device_ids"]
        .as_array()
        .expect("revoked_device_ids")
        .iter()
        .map(|d| device_id_to_bytes(d.as_str().expect("id")).expect("device id"))
        .collect();
    VoucherSetup {
        issuers: key_table(&v["issuers"]),
        directory,
        revoked,
        skew_ms: v["skew_ms"].as_i64().expect("skew_ms"),
        now_ms: v["cases"][0]["now_ms"].as_i64().expect("now_ms"),
    }
});

/// The valid offline-profile code of the vectors, and the time it is valid at: what a
/// scanner with a freshly verified revocation list is shown.
pub static VALID_OFFLINE_CODE: LazyLock<(String, i64)> = LazyLock::new(|| {
    let v = json(VOUCHER_CODES);
    let case = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == "valid offline")
        .expect("a `valid offline` case");
    (str_of(case, "payload").to_string(), case["now_ms"].as_i64().expect("now_ms"))
});

/// The phone's setup of `tests/vectors/bills/doorbells.json`.
pub struct DoorbellSetup {
    pub keys: HashMap<u16, Vec<u8>>,
    pub recipient: String,
    pub now_ms: i64,
}

pub static DOORBELL: LazyLock<DoorbellSetup> = LazyLock::new(|| {
    let v = json(DOORBELLS);
    DoorbellSetup {
        keys: key_table(&v["push_keys"]),
        recipient: str_of(&v, "recipient").to_string(),
        now_ms: v["now_ms"].as_i64().expect("now_ms"),
    }
});

/// The receipt keys of `tests/vectors/payments/receipts.json`, plus key id 7 with the same
/// key (the vectors' "known but not the signer's" case).
pub static RECEIPT_KEYS: LazyLock<HashMap<u16, Vec<u8>>> = LazyLock::new(|| {
    let mut keys = key_table(&json(RECEIPTS)["receipt_keys"]);
    let first = keys.values().next().expect("a receipt key").clone();
    keys.entry(7).or_insert(first);
    keys
});

/// The device key the consent vectors are signed with, and the idempotency key of the pay
/// request example.
pub static CONSENT_SETUP: LazyLock<(Vec<u8>, String)> = LazyLock::new(|| {
    let v = json(CONSENT);
    (hex(str_of(&v, "public_key_hex")), str_of(&v["pay_request_example"], "idempotency_key_header").to_string())
});

/// The demo settlement policy as the vectors spell it (JSON text).
pub static DEMO_POLICY_JSON: LazyLock<String> =
    LazyLock::new(|| serde_json::to_string(&json(SETTLEMENT)["policies"]["demo"]).expect("policy JSON"));

/// A small deterministic generator for splitting an input into chunks (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}
