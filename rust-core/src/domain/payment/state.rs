//! The payment state machine (`docs/payments.md` § 5), a saga whose pivot is the insurance
//! settlement: before it a step is compensated (the cash hold released), after it a step is
//! only retried (the capture) or, when it cannot succeed, the payment waits in `cash_due` for
//! the patient to pay the rest another way. Never a silent partial payment.
//!
//! ```text
//!            ┌──────────── cash leg 0 ─────────────┐
//! created ──►┤ authorise the hold                  ▼
//!            ├─► unknown (timeout) ─► query ─┐  settled ──► succeeded ──► partly_refunded
//!            ├─► requires_action ─► confirm ─┤   │  ▲  pivot      │              │
//!            ├─► authorised ◄────────────────┘   │  │            └─► refunded ◄─┘
//!            │      └──────────── settle ─────────┘  │
//!            │      └─► releasing ─► failed          │ capture fails
//!            └─► failed (declined; insurance refused with no hold)   cash_due ──► succeeded
//! ```

use serde::{Deserialize, Serialize};

use crate::domain::bills::BillState;

/// Where the platform is in a payment. Persisted; every step but `succeeded`, `failed` and
/// `refunded` is resumed after a crash as [`resume`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Written with the idempotency record and the bill's move to paying; nothing asked of
    /// the channel yet (or asked, with no answer seen).
    Created,
    /// The channel's answer to the hold did not come (a timeout): resolved by querying with
    /// the same key, never by a new one.
    Unknown,
    /// The channel wants a second confirmation from the patient (a bank's SMS code).
    RequiresAction,
    /// The cash is held.
    Authorised,
    /// The insurance leg settled: the pivot. Only forward from here.
    Settled,
    /// The insurance leg was refused after a hold: the hold is being released.
    Releasing,
    /// The insurance settled but the cash could not be captured: the patient pays the rest
    /// with another channel.
    CashDue,
    Succeeded,
    Failed,
    PartlyRefunded,
    Refunded,
}

/// What a patient sees of a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Processing,
    RequiresAction,
    Succeeded,
    Failed,
    CashDue,
    PartlyRefunded,
    Refunded,
}

/// The insurance leg's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InsuranceLegState {
    /// Nothing for the insurance to pay (no insurance part).
    None,
    Pending,
    Settled,
    /// The payment failed before the pivot: nothing was settled.
    Void,
    PartlyRefunded,
    Refunded,
}

/// The cash leg's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CashLegState {
    /// No self-pay part.
    None,
    Pending,
    Unknown,
    RequiresAction,
    Authorised,
    Captured,
    /// The channel refused the hold: nothing was charged.
    Declined,
    /// The hold was released: nothing was charged.
    Released,
    /// Still owed after the pivot.
    Due,
    PartlyRefunded,
    Refunded,
}

/// Whether the platform may move a payment from `from` to `to`.
pub fn can_move(from: Step, to: Step) -> bool {
    use Step::*;
    matches!(
        (from, to),
        (Created, Unknown | RequiresAction | Authorised | Settled | Failed)
            | (Unknown, RequiresAction | Authorised | Failed)
            | (RequiresAction, Authorised | Failed | Unknown)
            | (Authorised, Settled | Releasing)
            | (Releasing, Failed)
            | (Settled, Succeeded | CashDue)
            | (CashDue, Succeeded)
            | (Succeeded, PartlyRefunded | Refunded)
            | (PartlyRefunded, PartlyRefunded | Refunded)
    )
}

/// Whether no step follows (refunds aside: a succeeded payment can still be refunded).
pub fn is_final(step: Step) -> bool {
    matches!(step, Step::Succeeded | Step::Failed | Step::Refunded)
}

/// Whether the pivot has passed: from here nothing is released, only retried or refunded.
pub fn past_pivot(step: Step) -> bool {
    matches!(step, Step::Settled | Step::CashDue | Step::Succeeded | Step::PartlyRefunded | Step::Refunded)
}

/// What a platform that restarts does with a payment left at `step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Ask the channel for the hold again with the same key (it answers what it did).
    Authorise,
    /// Query the channel by the same key.
    Query,
    /// Settle the insurance leg (the pivot).
    Settle,
    /// Capture the held cash with the same key.
    Capture,
    /// Release the hold with the same key.
    Release,
    /// Wait for the patient (a second confirmation, or the cash still due).
    WaitForPatient,
    /// Nothing to do.
    Nothing,
}

pub fn resume(step: Step) -> Resume {
    match step {
        Step::Created => Resume::Authorise,
        Step::Unknown => Resume::Query,
        Step::RequiresAction | Step::CashDue => Resume::WaitForPatient,
        Step::Authorised => Resume::Settle,
        Step::Settled => Resume::Capture,
        Step::Releasing => Resume::Release,
        Step::Succeeded | Step::Failed | Step::PartlyRefunded | Step::Refunded => Resume::Nothing,
    }
}

pub fn status(step: Step) -> PaymentStatus {
    match step {
        Step::Created | Step::Unknown | Step::Authorised | Step::Settled | Step::Releasing => PaymentStatus::Processing,
        Step::RequiresAction => PaymentStatus::RequiresAction,
        Step::CashDue => PaymentStatus::CashDue,
        Step::Succeeded => PaymentStatus::Succeeded,
        Step::Failed => PaymentStatus::Failed,
        Step::PartlyRefunded => PaymentStatus::PartlyRefunded,
        Step::Refunded => PaymentStatus::Refunded,
    }
}

/// The legs' states at `step`, given whether each leg has an amount and, for a failed
/// payment, whether a hold had been placed (then released) or the channel declined.
pub fn legs(step: Step, has_insurance: bool, has_cash: bool, hold_released: bool) -> (InsuranceLegState, CashLegState) {
    use CashLegState as C;
    use InsuranceLegState as I;
    let insurance = if !has_insurance {
        I::None
    } else {
        match step {
            Step::Created | Step::Unknown | Step::RequiresAction | Step::Authorised | Step::Releasing => I::Pending,
            Step::Settled | Step::CashDue | Step::Succeeded => I::Settled,
            Step::Failed => I::Void,
            Step::PartlyRefunded => I::PartlyRefunded,
            Step::Refunded => I::Refunded,
        }
    };
    let cash = if !has_cash {
        C::None
    } else {
        match step {
            Step::Created => C::Pending,
            Step::Unknown => C::Unknown,
            Step::RequiresAction => C::RequiresAction,
            Step::Authorised | Step::Settled | Step::Releasing => C::Authorised,
            Step::CashDue => C::Due,
            Step::Succeeded => C::Captured,
            Step::Failed if hold_released => C::Released,
            Step::Failed => C::Declined,
            Step::PartlyRefunded => C::PartlyRefunded,
            Step::Refunded => C::Refunded,
        }
    };
    (insurance, cash)
}

/// The bill's state while its payment is at `step` (`docs/payments.md` § 5.3): paying until
/// an outcome, back to pending on failure (the reason kept), cash due, paid, refunded.
pub fn bill_state(step: Step) -> BillState {
    match step {
        Step::Created | Step::Unknown | Step::RequiresAction | Step::Authorised | Step::Settled | Step::Releasing => {
            BillState::Paying
        }
        Step::CashDue => BillState::CashDue,
        Step::Succeeded => BillState::Paid,
        Step::Failed => BillState::Pending,
        Step::PartlyRefunded => BillState::PartlyRefunded,
        Step::Refunded => BillState::Refunded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Step::*;

    pub const ALL: [Step; 11] = [
        Created,
        Unknown,
        RequiresAction,
        Authorised,
        Settled,
        Releasing,
        CashDue,
        Succeeded,
        Failed,
        PartlyRefunded,
        Refunded,
    ];

    #[test]
    fn nothing_before_the_pivot_follows_it_and_nothing_after_it_goes_back() {
        for from in ALL {
            for to in ALL {
                if can_move(from, to) && past_pivot(from) {
                    assert!(past_pivot(to), "{from:?} → {to:?} leaves the pivot behind");
                    assert_ne!(to, Failed, "{from:?} → failed after the pivot");
                }
            }
        }
        assert!(ALL.iter().all(|&to| !can_move(Failed, to) && !can_move(Refunded, to)));
        // Every step the bill can show moves only as the bill's state machine allows.
        for from in ALL {
            for to in ALL {
                let (a, b) = (bill_state(from), bill_state(to));
                if can_move(from, to) && a != b {
                    assert!(
                        crate::domain::bills::state::can_transition(a, b),
                        "payment {from:?} → {to:?} moves the bill {a:?} → {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_step_that_is_not_final_resumes_to_something() {
        for step in ALL {
            let r = resume(step);
            assert_eq!(r == Resume::Nothing, is_final(step) || step == PartlyRefunded, "{step:?}");
        }
    }
}
