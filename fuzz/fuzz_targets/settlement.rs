//! Settlement from JSON, exactly as the FFI's `settle_json(policy_json, request_json)` does it
//! (`bindings/src/pharmacy.rs`): decode the policy, decode the request, validate the policy,
//! `domain::settlement::settle`, encode the result.
//!
//! Input: `policy JSON 0x00 request JSON`, or, with no `0x00`, the request JSON alone under
//! the demo policy of `tests/vectors/settlement/cases.json`. Both must be UTF-8 (they arrive
//! as strings through the FFI).
//!
//! Checked: nothing panics; an accepted settlement passes its own invariant check, splits
//! the total into fund + personal account + mutual aid + cash, encodes to JSON and decodes
//! back to itself, agrees with `settle_with_rule` under the rule it names, and never pays
//! from the account more than its balance.
#![no_main]

use carepass_core::domain::settlement::{settle, settle_with_rule, Settlement, SettlementPolicy, SettlementRequest};
use carepass_fuzz::DEMO_POLICY_JSON;
use libfuzzer_sys::fuzz_target;

/// `settle_json`'s steps, on the core's types.
fn settle_json(policy_json: &str, request_json: &str) -> Option<(SettlementPolicy, SettlementRequest, Settlement)> {
    let policy: SettlementPolicy = serde_json::from_str(policy_json).ok()?;
    let request: SettlementRequest = serde_json::from_str(request_json).ok()?;
    if let Err(e) = policy.validate() {
        let _ = (e.kind(), e.to_string());
        return None;
    }
    match settle(&policy, &request) {
        Ok(settlement) => Some((policy, request, settlement)),
        Err(e) => {
            let _ = (e.kind(), e.to_string());
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (policy_bytes, request_bytes) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (DEMO_POLICY_JSON.as_bytes(), data),
    };
    let (Ok(policy_json), Ok(request_json)) = (std::str::from_utf8(policy_bytes), std::str::from_utf8(request_bytes))
    else {
        return;
    };
    let Some((policy, request, s)) = settle_json(policy_json, request_json) else { return };

    assert_eq!(s.check(), Ok(()), "a returned settlement passes its own check");
    assert_eq!(s.lines.len(), request.items.len());
    assert_eq!(
        s.fund.0 as i128 + s.personal_account.0 as i128 + s.mutual_aid.0 as i128 + s.cash.0 as i128,
        s.total.0 as i128,
        "the sources sum to the total"
    );
    assert_eq!(s.patient_pays().0 as i128, s.total.0 as i128 - s.fund.0 as i128);
    assert!(s.personal_account <= request.patient.account_balance, "the account pays more than its balance");
    if !request.patient.use_account {
        assert_eq!(s.personal_account.0, 0, "the account pays when the patient said not to");
    }

    let json = serde_json::to_string(&s).expect("a settlement encodes");
    let back: Settlement = serde_json::from_str(&json).expect("an encoded settlement decodes");
    assert_eq!(back, s, "settlement JSON round trip");

    let rule = policy
        .rule(&request.patient.pooling_region, request.patient.insurance_type, request.visit_type)
        .expect("settle found a rule");
    assert_eq!(settle_with_rule(rule, &request.patient, &request.items).as_ref(), Ok(&s));
    let _ = s.year_to_date_after(request.patient.year_to_date);
});
