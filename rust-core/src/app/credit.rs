//! Credit pay-later (信用就医) on the phone (`docs/payments.md` § 9): the patient's credit line,
//! signing the agreement (the device's signature over its terms), and repaying from a card.
//!
//! A repayment moves money, so it follows the payment rule: its idempotency key and exact
//! body are stored durably before the request leaves, and a request without an answer is
//! sent again with the same key (before any new repayment) until the platform answers. The
//! credit line is the actor's own: a relative's line is never drawn or repaid from here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::session::Actor;
use super::CarePass;
use crate::app::error::{CoreError, CoreResult};
use crate::domain::money::Fen;
use crate::domain::payment::credit::{self, CreditTerms, TERM_DAYS};
use crate::domain::payment::Channel;
use crate::domain::{Field, InvalidInput};
use crate::io::net::NetError;
use crate::wire::{CreditAgreementRequest, CreditLine, CreditRepayRequest};

/// The one repayment that may be waiting for an answer, in the actor's section.
const REPAY_INTENT: &str = "credit/repay-intent";

/// A repayment stored before it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RepayIntent {
    key: String,
    body: CreditRepayRequest,
}

impl CarePass {
    /// The signed-in person's credit line as the platform has it (limit, used, draws due).
    pub async fn credit_line(&self) -> CoreResult<CreditLine> {
        let actor = self.actor()?;
        self.authed(&actor, &actor.person_id, Method::GET, "v1/credit", None::<&()>).await
    }

    /// Signs the credit agreement for `limit` (¥0.01 to ¥5,000, 30-day terms) with the device
    /// key, on platform time. Signing again changes the limit (not below what is used).
    pub async fn sign_credit_agreement(&self, limit: Fen) -> CoreResult<CreditLine> {
        let actor = self.actor()?;
        credit::check_limit(limit)
            .map_err(|_| InvalidInput::new(Field::CreditLimit, "a credit limit is ¥0.01 to ¥5,000.00"))?;
        let terms = CreditTerms {
            person_id: actor.person_id.clone(),
            device_id: actor.device_id.clone(),
            limit,
            term_days: TERM_DAYS,
            signed_at_ms: self.client.server_now_ms(),
        };
        let signature = terms.sign(self.keys.as_ref())?;
        let body = CreditAgreementRequest {
            limit_fen: limit,
            term_days: terms.term_days,
            signed_at_ms: terms.signed_at_ms,
            signature: B64.encode(signature),
        };
        self.authed(&actor, &actor.person_id, Method::POST, "v1/credit/agreement", Some(&body)).await
    }

    /// Repays `amount` of the credit line from a card (oldest draw first), exactly once: an
    /// earlier repayment still waiting for an answer is sent again first; no answer is
    /// [`CoreError::PaymentOutcomeUnknown`] (with the bill id `credit`), and the next call
    /// resolves it before anything new is sent.
    pub async fn repay_credit(&self, channel: &Channel, amount: Fen) -> CoreResult<CreditLine> {
        let actor = self.actor()?;
        if !matches!(channel, Channel::Card(_)) {
            return Err(InvalidInput::new(Field::PaymentChannel, "credit is repaid with a card (card:<number>)").into());
        }
        if amount.0 <= 0 {
            return Err(InvalidInput::new(Field::Amount, "a repayment is at least ¥0.01").into());
        }
        let _serial = self.payment_lock.lock().await;
        if let Some(open) = self.repay_intent(&actor)? {
            self.send_repayment(&actor, &open).await?;
        }
        let intent = RepayIntent {
            key: super::payments::new_key("rep_")?,
            body: CreditRepayRequest { channel: channel.wire(), amount_fen: amount },
        };
        self.put_repay_intent(&actor, Some(&intent))?;
        super::payments::crash_point("repay:key-stored");
        self.send_repayment(&actor, &intent).await
    }

    /// Sends a stored repayment: an answer or a refusal settles it; no answer leaves it.
    async fn send_repayment(&self, actor: &Actor, intent: &RepayIntent) -> CoreResult<CreditLine> {
        let answer: CoreResult<CreditLine> = self
            .authed_keyed(
                actor,
                &actor.person_id,
                Method::POST,
                "v1/credit/repayments",
                Some(&intent.body),
                Some(&intent.key),
            )
            .await;
        match answer {
            Ok(line) => {
                self.put_repay_intent(actor, None)?;
                Ok(line)
            }
            Err(e) if super::payments::outcome_unknown(&e) => {
                log::info!(target: "carepass::payments", "a credit repayment's outcome is unknown: {e}");
                Err(CoreError::PaymentOutcomeUnknown { bill_id: "credit".into() })
            }
            Err(e @ (CoreError::Net(NetError::Platform { .. }) | CoreError::Family(_))) => {
                self.put_repay_intent(actor, None)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn repay_intent(&self, actor: &Actor) -> CoreResult<Option<RepayIntent>> {
        Ok(self.hold()?.section(&Self::actor_section_name(actor))?.get(REPAY_INTENT)?)
    }

    fn put_repay_intent(&self, actor: &Actor, intent: Option<&RepayIntent>) -> CoreResult<()> {
        let held = self.hold()?;
        let section = held.section(&Self::actor_section_name(actor))?;
        match intent {
            Some(i) => section.put(REPAY_INTENT, i)?,
            None => section.remove(REPAY_INTENT)?,
        }
        held.flush()?;
        Ok(())
    }
}
