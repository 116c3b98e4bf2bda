//! The bill state machine (pure):
//!
//! ```text
//! pending ──► paying ──► paid ──► partly_refunded ──► refunded
//!    │  ▲        │         └──────────────────────────► refunded
//!    │  └────────┤ (the payment failed: back to pending with its reason)
//!    │           ├─► cash_due ──► paid  (insurance paid; the rest paid another way)
//!    │           └─► failed ──► paying (retry)
//!    ├──► expired   (due time passed unpaid)
//!    └──► cancelled (by the clinic)
//! ```
//!
//! `failed → paying` lets the patient retry; `paying → pending` is a payment that failed
//! before its pivot (nothing charged). `partly_refunded → partly_refunded` is a further
//! partial refund. Everything else is refused (`docs/payments.md` § 5.3).

use super::{Bill, BillState};

/// Whether the platform may move a bill from `from` to `to`.
pub fn can_transition(from: BillState, to: BillState) -> bool {
    use BillState::*;
    matches!(
        (from, to),
        (Pending, Paying)
            | (Pending, Expired)
            | (Pending, Cancelled)
            | (Paying, Paid)
            | (Paying, Failed)
            | (Paying, Pending)
            | (Failed, Paying)
            | (Failed, Cancelled)
            | (Paid, Refunded)
            | (Paying, CashDue)
            | (CashDue, Paid)
            | (Paid, PartlyRefunded)
            | (PartlyRefunded, PartlyRefunded)
            | (PartlyRefunded, Refunded)
    )
}

/// The state to show at time `now_ms`: a pending bill past its due time is expired even
/// before the platform says so.
pub fn effective_state(bill: &Bill, now_ms: i64) -> BillState {
    if bill.state == BillState::Pending && now_ms >= bill.due_at_ms {
        BillState::Expired
    } else {
        bill.state
    }
}

/// Whether a state can still change (anything but expired, cancelled, refunded).
pub fn is_final(state: BillState) -> bool {
    matches!(state, BillState::Expired | BillState::Cancelled | BillState::Refunded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use BillState::*;

    const ALL: [BillState; 9] = [Pending, Paying, Paid, Failed, Expired, Cancelled, Refunded, CashDue, PartlyRefunded];

    #[test]
    fn only_the_documented_transitions_are_allowed() {
        let allowed: Vec<(BillState, BillState)> =
            ALL.iter().flat_map(|&a| ALL.iter().map(move |&b| (a, b))).filter(|&(a, b)| can_transition(a, b)).collect();
        assert_eq!(
            allowed,
            vec![
                (Pending, Paying),
                (Pending, Expired),
                (Pending, Cancelled),
                (Paying, Pending),
                (Paying, Paid),
                (Paying, Failed),
                (Paying, CashDue),
                (Paid, Refunded),
                (Paid, PartlyRefunded),
                (Failed, Paying),
                (Failed, Cancelled),
                (CashDue, Paid),
                (PartlyRefunded, Refunded),
                (PartlyRefunded, PartlyRefunded),
            ]
        );
        for s in ALL {
            if is_final(s) {
                assert!(ALL.iter().all(|&t| !can_transition(s, t)), "{s:?} is final");
            }
        }
    }

    #[test]
    fn a_pending_bill_past_due_shows_as_expired() {
        let bill = Bill {
            bill_id: "b".into(),
            person_id: "p".into(),
            visit_id: "v".into(),
            hospital: "h".into(),
            department: "d".into(),
            doctor: "doc".into(),
            items: vec![],
            total_fen: crate::domain::money::Fen(0),
            created_at_ms: 0,
            due_at_ms: 1_000,
            state: Pending,
            updated_at_ms: 0,
            visit_type: Default::default(),
            payment: None,
            counter: None,
        };
        assert_eq!(effective_state(&bill, 999), Pending);
        assert_eq!(effective_state(&bill, 1_000), Expired);
        let paid = Bill { state: Paid, ..bill };
        assert_eq!(effective_state(&paid, 5_000), Paid);
    }
}
