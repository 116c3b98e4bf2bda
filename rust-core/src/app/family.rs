//! The family flow on the phone (`docs/family.md` § 8): ask to act for a relative, consent
//! (on one's own device, or by the code a relative without a smartphone reads out), assent,
//! renew, revoke; the profiles the phone acts as; and the audit trail, verified as a chain
//! and held to the head the phone verified before (so a trail cut short is noticed too).
//!
//! The links and the rules are kept in the vault (`family.<actor>`, `family.rules`) after
//! each fetch, so the core refuses an act outside a link offline, before the platform does.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::session::Actor;
use super::CarePass;
use crate::app::error::CoreResult;
use crate::domain::family::audit::{verify_chain, ChainError};
use crate::domain::family::{FamilyLink, FamilyRules, LinkStatus, Scope};
use crate::domain::{account, check_id, Field};
use crate::wire::{self, AuditRecord, FamilyOverview, LinkView};

pub(crate) fn key_family(actor: &str) -> String {
    format!("family.{actor}")
}

pub(crate) fn key_audit_head(actor: &str) -> String {
    format!("family.audit.{actor}")
}

const KEY_RULES: &str = "family.rules";

/// The last audit record the phone verified: a later trail must still hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AuditHead {
    seq: u64,
    hash: String,
}

/// An audit trail that verified: every record, and the chain's head hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAudit {
    pub records: Vec<AuditRecord>,
    pub head: String,
}

fn json_body<T: Serialize>(body: &T) -> CoreResult<serde_json::Value> {
    serde_json::to_value(body).map_err(|e| crate::io::net::NetError::Undecodable(e.to_string()).into())
}

impl CarePass {
    /// The links as last fetched (no network): where the signed-in person acts for a
    /// relative, and where a relative acts for them.
    pub fn family(&self) -> CoreResult<FamilyOverview> {
        let actor = self.actor()?;
        Ok(self.store.vault.get(&key_family(&actor.person_id))?.unwrap_or_default())
    }

    /// Fetches the links and the rules, and keeps them.
    pub async fn refresh_family(&self) -> CoreResult<FamilyOverview> {
        let actor = self.actor()?;
        let rules: FamilyRules = self.client.get("v1/family/rules", None).await?;
        self.store.vault.put(KEY_RULES, &rules)?;
        let overview: FamilyOverview =
            self.authed(&actor, &actor.person_id, Method::GET, "v1/family/links", None::<&()>).await?;
        self.store.vault.put(&key_family(&actor.person_id), &overview)?;
        Ok(overview)
    }

    /// The rules as last fetched; the demo rules before the first fetch.
    pub(crate) fn family_rules_cached(&self) -> CoreResult<FamilyRules> {
        Ok(self.store.vault.get(KEY_RULES)?.unwrap_or_else(FamilyRules::demo))
    }

    /// The actor's link to `principal` as last fetched.
    pub(crate) fn link_for(&self, actor: &Actor, principal: &str) -> CoreResult<Option<FamilyLink>> {
        let overview: FamilyOverview = self.store.vault.get(&key_family(&actor.person_id))?.unwrap_or_default();
        Ok(overview.acting_for.into_iter().map(|v| v.link).find(|l| l.principal == principal))
    }

    /// Whether the actor asked to act for, or acts for, anyone (links not revoked).
    pub(crate) fn acts_for_anyone(&self) -> CoreResult<bool> {
        Ok(self.family()?.acting_for.iter().any(|v| v.link.status != LinkStatus::Revoked))
    }

    /// The relatives the actor may act for now (active links), with what each allows.
    pub fn relatives(&self) -> CoreResult<Vec<LinkView>> {
        let rules = self.family_rules_cached()?;
        let now = self.client.server_now_ms();
        Ok(self
            .family()?
            .acting_for
            .into_iter()
            .filter(|v| v.link.status == LinkStatus::Active)
            .map(|mut v| {
                v.effective_scopes = v.link.effective_scopes(&rules, now);
                v
            })
            .filter(|v| !v.effective_scopes.is_empty())
            .collect())
    }

    /// A platform call about a link, then a fresh copy of the links; a family refusal from
    /// the platform comes back as [`CoreError::Family`].
    async fn link_call(&self, path: &str, body: serde_json::Value) -> CoreResult<LinkView> {
        // One body type for every move: one copy of the request code in the library.
        let actor = self.actor()?;
        let answer: CoreResult<LinkView> = self.authed(&actor, &actor.person_id, Method::POST, path, Some(&body)).await;
        if answer.is_ok() {
            self.refresh_family().await?;
        }
        answer
    }

    /// Asks to act for the relative with `phone`, who is the actor's `relationship`. A minor
    /// child in the same household register is linked at once; other links wait for the
    /// relative's consent. `scopes`: all when `None`.
    pub async fn link_relative(
        &self,
        phone: &str,
        relationship: wire::Relationship,
        scopes: Option<Vec<Scope>>,
        limits: wire::Limits,
    ) -> CoreResult<LinkView> {
        self.check_open()?;
        account::check_phone(phone)?;
        for cap in [limits.per_payment, limits.per_month].into_iter().flatten() {
            if cap.0 <= 0 {
                return Err(crate::domain::InvalidInput::new(Field::Amount, "a limit is a positive amount").into());
            }
        }
        let ask = wire::LinkAsk { principal_phone: phone.into(), relationship, scopes, limits };
        self.link_call("v1/family/links", json_body(&ask)?).await
    }

    /// The principal consents, on their own device, to a link a relative asked for.
    pub async fn approve_link(&self, link_id: &str) -> CoreResult<LinkView> {
        check_id(Field::LinkId, link_id)?;
        let body = wire::LinkConsent { via: wire::ConsentPath::OwnDevice, code: None };
        self.link_call(&format!("v1/family/links/{link_id}/consent"), json_body(&body)?).await
    }

    /// The proxy has the platform send a consent code to the relative's phone.
    pub async fn send_link_code(&self, link_id: &str) -> CoreResult<u32> {
        check_id(Field::LinkId, link_id)?;
        let actor = self.actor()?;
        let path = format!("v1/family/links/{link_id}/code");
        let sent: wire::VerificationCodeSent =
            self.authed(&actor, &actor.person_id, Method::POST, &path, Some(&serde_json::json!({}))).await?;
        Ok(sent.expires_in_s)
    }

    /// The proxy enters the code the relative read out to them.
    pub async fn confirm_link_code(&self, link_id: &str, code: &str) -> CoreResult<LinkView> {
        check_id(Field::LinkId, link_id)?;
        account::check_verification_code(code)?;
        let body = wire::LinkConsent { via: wire::ConsentPath::SmsCode, code: Some(code.into()) };
        self.link_call(&format!("v1/family/links/{link_id}/consent"), json_body(&body)?).await
    }

    /// Either side ends a link, at once.
    pub async fn revoke_link(&self, link_id: &str) -> CoreResult<LinkView> {
        check_id(Field::LinkId, link_id)?;
        let view =
            self.link_call(&format!("v1/family/links/{link_id}/revoke"), json_body(&serde_json::json!({}))?).await?;
        // The relative's bills leave this phone with the link.
        let actor = self.actor()?;
        if view.link.proxy == actor.person_id && !self.config.extension {
            let held = self.hold()?;
            held.drop_sections(&CarePass::section_name(&actor, &view.link.principal))?;
            held.flush()?;
        }
        Ok(view)
    }

    /// The principal renews an adult link for another period.
    pub async fn renew_link(&self, link_id: &str) -> CoreResult<LinkView> {
        check_id(Field::LinkId, link_id)?;
        self.link_call(&format!("v1/family/links/{link_id}/renew"), json_body(&serde_json::json!({}))?).await
    }

    /// The principal (a teen) sets what they assent to.
    pub async fn assent_link(&self, link_id: &str, scopes: Vec<Scope>) -> CoreResult<LinkView> {
        check_id(Field::LinkId, link_id)?;
        self.link_call(&format!("v1/family/links/{link_id}/assent"), json_body(&wire::LinkAssent { scopes })?).await
    }

    /// The signed-in person's audit trail: every act done for them and every change to their
    /// links, verified as a chain and against the head verified last time (a record changed,
    /// dropped, reordered, or the trail cut short is refused with what is wrong).
    pub async fn family_audit(&self) -> CoreResult<VerifiedAudit> {
        let actor = self.actor()?;
        let trail: wire::AuditTrail =
            self.authed(&actor, &actor.person_id, Method::GET, "v1/family/audit", None::<&()>).await?;
        let head = verify_chain(&actor.person_id, &trail.records)?;
        let key = key_audit_head(&actor.person_id);
        if let Some(known) = self.store.vault.get::<AuditHead>(&key)? {
            match trail.records.get(known.seq.saturating_sub(1) as usize) {
                Some(r) if r.seq == known.seq && r.hash == known.hash => {}
                Some(r) => return Err(ChainError::Tampered(r.seq).into()),
                None => return Err(ChainError::Sequence(trail.records.len() as u64 + 1).into()),
            }
        }
        if let Some(last) = trail.records.last() {
            self.store.vault.put(&key, &AuditHead { seq: last.seq, hash: last.hash.clone() })?;
        }
        Ok(VerifiedAudit { records: trail.records, head })
    }
}
