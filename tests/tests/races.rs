//! State moves under concurrency: a cancel, a move to paying and an expiry race on many bills
//! at once. The platform checks and applies each move in one transaction, so for every bill
//! exactly one racer wins, the others are told `409 conflict`, only moves the state machine
//! allows are ever logged, and the phone ends with each bill in the winner's state.

use std::collections::HashMap;

use carepass_core::domain::bills::state::can_transition;
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::{Bill, BillState, PlatformCode};
use carepass_journeys::*;

const BILLS: usize = 40;

/// The clinic (cancel) or a test fixture (any other state) moves a bill.
async fn move_bill(url: &str, bill_id: &str, to: BillState) -> Result<Bill, PlatformCode> {
    let client = admin_client(url);
    let answer: Result<Bill, _> = match to {
        BillState::Cancelled => {
            client.post(&format!("admin/v1/bills/{bill_id}/cancel"), &serde_json::json!({}), Some(ADMIN_TOKEN)).await
        }
        other => {
            client
                .post(
                    &format!("admin/v1/bills/{bill_id}/state"),
                    &serde_json::json!({ "state": other }),
                    Some(ADMIN_TOKEN),
                )
                .await
        }
    };
    answer.map_err(|e| e.platform_code().unwrap_or(PlatformCode::Unknown))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_three_racing_moves_exactly_one_wins_and_only_allowed_moves_are_logged() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    app.enrol(PATIENT, CODE).await.unwrap();
    let mut bills = Vec::new();
    for _ in 0..BILLS {
        bills.push(platform.issue_bill(PATIENT, None).await.bill_id);
    }
    let mut winners: HashMap<String, BillState> = HashMap::new();
    for round in bills.chunks(10) {
        let mut racers = Vec::new();
        for bill_id in round {
            for to in [BillState::Cancelled, BillState::Paying, BillState::Expired] {
                let (url, bill_id) = (platform.url(), bill_id.clone());
                racers.push(tokio::spawn(async move {
                    let outcome = move_bill(&url, &bill_id, to).await;
                    (bill_id, to, outcome)
                }));
            }
        }
        for racer in racers {
            let (bill_id, to, outcome) = racer.await.unwrap();
            match outcome {
                Ok(bill) => {
                    assert_eq!(bill.state, to);
                    assert!(winners.insert(bill_id.clone(), to).is_none(), "{bill_id}: two racers won");
                }
                Err(code) => assert_eq!(code, PlatformCode::Conflict, "{bill_id} → {to:?}: refused with {code:?}"),
            }
        }
    }
    assert_eq!(winners.len(), BILLS, "every bill had exactly one winner");

    // The log holds only allowed moves: replay it from a fresh phone, bill by bill.
    let page: carepass_core::wire::InboxPage = admin_client(&platform.url())
        .get("v1/inbox?after=0&limit=500", Some(&stored_tokens(&app, "P1001").access_token))
        .await
        .unwrap();
    let mut last: HashMap<String, BillState> = HashMap::new();
    for entry in &page.entries {
        let bill = &entry.bill;
        if let Some(before) = last.insert(bill.bill_id.clone(), bill.state) {
            assert!(can_transition(before, bill.state), "{}: logged {before:?} → {:?}", bill.bill_id, bill.state);
        } else {
            assert_eq!(bill.state, BillState::Pending, "{}: first logged as {:?}", bill.bill_id, bill.state);
        }
    }
    assert_eq!(page.entries.len(), 2 * BILLS, "issued, then one move each");
    // And the phone agrees.
    app.sync_inbox().await.unwrap();
    for bill in app.bills(None).unwrap() {
        assert_eq!(Some(&bill.state), winners.get(&bill.bill_id), "{}", bill.bill_id);
    }
}

#[tokio::test]
async fn a_move_the_state_machine_forbids_is_refused_whatever_the_order() {
    let platform = TestPlatform::start().await;
    let bill = platform.issue_bill(PATIENT, None).await.bill_id;
    assert!(move_bill(&platform.url(), &bill, BillState::Cancelled).await.is_ok());
    for to in [BillState::Paying, BillState::Paid, BillState::Pending, BillState::Expired, BillState::Refunded] {
        assert_eq!(
            move_bill(&platform.url(), &bill, to).await.err(),
            Some(PlatformCode::Conflict),
            "cancelled → {to:?}"
        );
    }
    assert_eq!(
        move_bill(&platform.url(), "bill_0000000000000000", BillState::Paying).await.err(),
        Some(PlatformCode::NotFound)
    );
}
