//! Family links at the platform (`docs/family.md`): asking, consenting (own device, an SMS
//! code read out, a service counter), assent, renewal, revocation, age transitions on platform
//! time, the acting check behind `x-carepass-subject`, and the principal's audit chain. The
//! decisions are the core's (`carepass_core::domain::family`); this module keeps the records.
//!
//! Trees: `family_links` (link id → link), `family_pairs` (`proxy\0principal` → link id, for
//! links not revoked), `family_people` (`person\0link id`, both sides), `family_audit`
//! (`principal\0seq` → record), `family_spent` (`link id\0YYYYMM` → fen moved this month).

use std::sync::Mutex;

use axum::http::StatusCode;
use carepass_core::domain::family::audit::{AuditAction, AuditEntry, AuditRecord};
use carepass_core::domain::family::link::Act;
use carepass_core::domain::family::rules::{ConsentPath, LinkRequest};
use carepass_core::domain::family::{FamilyLink, FamilyRules, LinkMove, LinkStatus, Refusal, Scope};
use carepass_core::domain::person::{china_date, parse_birth_date, PersonRecord};
use carepass_core::wire::{self, PlatformCode};
use carepass_core::Fen;

use crate::error::{ApiError, ApiResult};
use crate::platform::{Caller, Platform};
use crate::seed::SANDBOX_CODE;

/// Compound updates of links and the audit run one at a time.
#[derive(Default)]
pub struct FamilyLocks {
    links: Mutex<()>,
    audit: Mutex<()>,
}

/// The answer for a family refusal: its code first in the message.
pub fn refused(r: Refusal) -> ApiError {
    let status = match r {
        Refusal::NoLink
        | Refusal::LinkPending
        | Refusal::LinkRevoked
        | Refusal::LinkExpired
        | Refusal::ScopeMissing(_)
        | Refusal::OverPaymentLimit
        | Refusal::OverMonthlyLimit
        | Refusal::NotThePrincipal => StatusCode::FORBIDDEN,
        Refusal::AlreadyLinked => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, PlatformCode::FamilyRefused, format!("{}: {r}", r.code()))
}

fn lock(m: &Mutex<()>) -> ApiResult<std::sync::MutexGuard<'_, ()>> {
    m.lock().map_err(|_| ApiError::internal("family lock poisoned"))
}

/// `YYYYMM` in China time: the month a monthly limit counts in.
fn month_key(link_id: &str, now_ms: i64) -> String {
    format!("{link_id}\0{}", china_date(now_ms).format("%Y%m"))
}

impl Platform {
    /// The rules in force: the seeded demo rules unless an admin replaced them.
    pub fn family_rules(&self) -> ApiResult<FamilyRules> {
        match self.tree("meta")?.get("family_rules")? {
            Some(v) => FamilyRules::from_json(&String::from_utf8_lossy(&v))
                .map_err(|e| ApiError::internal(format!("stored {e}"))),
            None => Ok(FamilyRules::demo()),
        }
    }

    /// Admin: replaces the rules (a new version); every link is re-evaluated under them.
    pub fn set_family_rules(&self, rules: &FamilyRules) -> ApiResult<usize> {
        let text = serde_json::to_string(rules)?;
        FamilyRules::from_json(&text).map_err(|e| ApiError::bad_request(e.to_string()))?;
        self.tree("meta")?.insert("family_rules", text.as_bytes())?;
        self.sweep_family()
    }

    fn load_link(&self, link_id: &str) -> ApiResult<Option<FamilyLink>> {
        match self.tree("family_links")?.get(link_id)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    fn save_link(&self, link: &FamilyLink) -> ApiResult<()> {
        self.tree("family_links")?.insert(link.link_id.as_bytes(), serde_json::to_vec(link)?)?;
        let pair = format!("{}\0{}", link.proxy, link.principal);
        if link.status == LinkStatus::Revoked {
            self.tree("family_pairs")?.remove(pair.as_bytes())?;
        } else {
            self.tree("family_pairs")?.insert(pair.as_bytes(), link.link_id.as_bytes())?;
        }
        for person in [&link.proxy, &link.principal] {
            self.tree("family_people")?.insert(format!("{person}\0{}", link.link_id).as_bytes(), &[])?;
        }
        Ok(())
    }

    /// Appends to a principal's audit chain.
    pub(crate) fn audit(&self, entry: AuditEntry) -> ApiResult<AuditRecord> {
        let _a = lock(&self.family.audit)?;
        let tree = self.tree("family_audit")?;
        let prefix = format!("{}\0", entry.principal);
        let last: Option<AuditRecord> = match tree.scan_prefix(prefix.as_bytes()).next_back() {
            Some(item) => Some(serde_json::from_slice(&item?.1)?),
            None => None,
        };
        let record = AuditRecord::chain(last.as_ref(), entry);
        let mut key = prefix.into_bytes();
        key.extend_from_slice(&record.seq.to_be_bytes());
        tree.insert(key, serde_json::to_vec(&record)?)?;
        Ok(record)
    }

    fn audit_link(&self, link: &FamilyLink, actor: &str, action: AuditAction) -> ApiResult<()> {
        self.audit(AuditEntry {
            at_ms: self.now_ms(),
            principal: link.principal.clone(),
            actor: actor.into(),
            link_id: link.link_id.clone(),
            action,
            amount: None,
            reference: String::new(),
        })?;
        Ok(())
    }

    /// Records an act a proxy did for the principal (nothing when acting for oneself).
    pub(crate) fn audit_act(
        &self,
        caller: &Caller,
        action: AuditAction,
        amount: Option<Fen>,
        reference: &str,
    ) -> ApiResult<()> {
        if let Some(link) = caller.link() {
            self.audit(AuditEntry {
                at_ms: self.now_ms(),
                principal: link.principal.clone(),
                actor: caller.person_id.clone(),
                link_id: link.link_id.clone(),
                action,
                amount,
                reference: reference.into(),
            })?;
        }
        Ok(())
    }

    /// Applies what platform time did to a link (age band, end of period), saving and
    /// auditing any change. The links lock is held by the caller.
    fn brought_up_to_date(&self, link: FamilyLink, rules: &FamilyRules) -> ApiResult<FamilyLink> {
        let now = self.now_ms();
        let mut link = link;
        if link.status == LinkStatus::Revoked {
            return Ok(link);
        }
        if let Some(principal) = self.person(&link.principal)? {
            let birth = parse_birth_date(&principal.birth_date).map_err(|e| ApiError::internal(e.to_string()))?;
            let band = rules.band_on(birth, now);
            if band != link.band {
                if let Ok(next) = link.apply(LinkMove::BandChanged(band), rules, now) {
                    link = next;
                    self.save_link(&link)?;
                    self.audit_link(&link, "platform", AuditAction::LinkBandChanged)?;
                }
            }
        }
        if let Ok(next) = link.apply(LinkMove::Expire, rules, now) {
            link = next;
            self.save_link(&link)?;
            self.audit_link(&link, "platform", AuditAction::LinkExpired)?;
        }
        Ok(link)
    }

    /// Re-evaluates every link on platform time (after a clock move or a rules change).
    pub fn sweep_family(&self) -> ApiResult<usize> {
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let mut changed = 0;
        for item in self.tree("family_links")?.iter() {
            let link: FamilyLink = serde_json::from_slice(&item?.1)?;
            let before = link.clone();
            if self.brought_up_to_date(link, &rules)? != before {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// The link `actor` acts for `subject` under, brought up to date; refused when there is
    /// none that is active.
    pub(crate) fn acting_link(&self, actor: &str, subject: &str) -> ApiResult<(FamilyLink, Vec<Scope>)> {
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let pair = format!("{actor}\0{subject}");
        let Some(id) = self.tree("family_pairs")?.get(pair.as_bytes())? else {
            return Err(refused(Refusal::NoLink));
        };
        let link = self
            .load_link(&String::from_utf8_lossy(&id))?
            .ok_or_else(|| ApiError::internal("indexed link vanished"))?;
        let link = self.brought_up_to_date(link, &rules)?;
        let probe = Act { scope: Scope::ShowCode, amount: None, spent_this_month: Fen::ZERO };
        match FamilyLink::authorize(Some(&link), &rules, self.now_ms(), probe) {
            Ok(()) | Err(Refusal::ScopeMissing(_)) => {}
            Err(e) => return Err(refused(e)),
        }
        let scopes = link.effective_scopes(&rules, self.now_ms());
        Ok((link, scopes))
    }

    /// The link a proxy code names, if the presenting device's owner is its proxy and may
    /// show the principal's code now; otherwise the scan's rejection reason.
    pub(crate) fn link_for_scan(&self, link_id: &str, presenter: &str) -> ApiResult<Result<FamilyLink, &'static str>> {
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let Some(link) = self.load_link(link_id)? else { return Ok(Err("unknown_link")) };
        if link.proxy != presenter {
            // The proxy flag and a link id forged onto one's own code, or a stolen link id.
            return Ok(Err("not_the_proxy"));
        }
        let link = self.brought_up_to_date(link, &rules)?;
        let act = Act { scope: Scope::ShowCode, amount: None, spent_this_month: Fen::ZERO };
        Ok(match FamilyLink::authorize(Some(&link), &rules, self.now_ms(), act) {
            Ok(()) => Ok(link),
            Err(r) => Err(r.code()),
        })
    }

    /// Checks a payment of `amount` against the link's limits and counts it in the month,
    /// in one step (two proxies or two devices paying at once cannot pass a limit together).
    pub(crate) fn spend_under_link(&self, caller: &Caller, amount: Fen) -> ApiResult<()> {
        let Some(link) = caller.link() else { return Ok(()) };
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let now = self.now_ms();
        let key = month_key(&link.link_id, now);
        let tree = self.tree("family_spent")?;
        let spent =
            tree.get(key.as_bytes())?.and_then(|v| v.as_ref().try_into().ok()).map(i64::from_be_bytes).unwrap_or(0);
        let act = Act { scope: Scope::PayBills, amount: Some(amount), spent_this_month: Fen(spent) };
        FamilyLink::authorize(Some(link), &rules, now, act).map_err(refused)?;
        tree.insert(key.as_bytes(), &spent.saturating_add(amount.0).to_be_bytes())?;
        Ok(())
    }

    /// Gives back what [`Platform::spend_under_link`] counted when the payment was refused.
    pub(crate) fn unspend_under_link(&self, caller: &Caller, amount: Fen) -> ApiResult<()> {
        let Some(link) = caller.link() else { return Ok(()) };
        let _l = lock(&self.family.links)?;
        let key = month_key(&link.link_id, self.now_ms());
        let tree = self.tree("family_spent")?;
        let spent =
            tree.get(key.as_bytes())?.and_then(|v| v.as_ref().try_into().ok()).map(i64::from_be_bytes).unwrap_or(0);
        tree.insert(key.as_bytes(), &spent.saturating_sub(amount.0).max(0).to_be_bytes())?;
        Ok(())
    }

    /// The proxies (with their links) that may see `principal`'s bills now: their devices
    /// get the principal's doorbells.
    pub(crate) fn bill_watchers(&self, principal: &str) -> ApiResult<Vec<String>> {
        let rules = self.family_rules()?;
        let now = self.now_ms();
        let mut out = Vec::new();
        for link in self.links_of(principal)? {
            if link.principal == principal && link.effective_scopes(&rules, now).contains(&Scope::ViewBills) {
                out.push(link.proxy);
            }
        }
        Ok(out)
    }

    /// The push tokens a doorbell for `principal`'s inbox goes to: theirs, and those of
    /// every proxy who may see their bills now.
    pub(crate) fn doorbell_tokens(&self, principal: &str) -> ApiResult<Vec<(String, String)>> {
        let mut tokens = self.push_tokens(principal)?;
        for proxy in self.bill_watchers(principal)? {
            tokens.extend(self.push_tokens(&proxy)?);
        }
        Ok(tokens)
    }

    fn links_of(&self, person: &str) -> ApiResult<Vec<FamilyLink>> {
        let mut out = Vec::new();
        for item in self.tree("family_people")?.scan_prefix(format!("{person}\0").as_bytes()) {
            let (k, _) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            if let Some(id) = key.split('\0').nth(1) {
                if let Some(link) = self.load_link(id)? {
                    out.push(link);
                }
            }
        }
        Ok(out)
    }

    fn view(&self, link: FamilyLink, rules: &FamilyRules) -> ApiResult<wire::LinkView> {
        let name = |id: &str| -> ApiResult<String> { Ok(self.person(id)?.map(|p| p.name).unwrap_or_default()) };
        let consent_paths = if link.status == LinkStatus::Pending {
            rules.consent_paths(link.band, link.relationship)
        } else {
            Vec::new()
        };
        Ok(wire::LinkView {
            principal_name: name(&link.principal)?,
            proxy_name: name(&link.proxy)?,
            effective_scopes: link.effective_scopes(rules, self.now_ms()),
            consent_paths,
            link,
        })
    }

    /// Both sides of the actor's links, brought up to date.
    pub fn family_overview(&self, person: &str) -> ApiResult<wire::FamilyOverview> {
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let mut out = wire::FamilyOverview::default();
        for link in self.links_of(person)? {
            let link = self.brought_up_to_date(link, &rules)?;
            let acting = link.proxy == person;
            let view = self.view(link, &rules)?;
            if acting {
                out.acting_for.push(view);
            } else {
                out.acted_for_by.push(view);
            }
        }
        for list in [&mut out.acting_for, &mut out.acted_for_by] {
            list.sort_by_key(|v| std::cmp::Reverse(v.link.created_at_ms));
        }
        Ok(out)
    }

    /// A proxy asks to act for a relative (by phone): refused, linked at once, or pending.
    pub fn ask_link(&self, caller: &Caller, ask: &wire::LinkAsk) -> ApiResult<wire::LinkView> {
        carepass_core::domain::account::check_phone(&ask.principal_phone)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if caller.link().is_some() {
            // A proxy of a proxy: links are made by a person for themselves only.
            return Err(refused(Refusal::NotThePrincipal));
        }
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let principal: PersonRecord = self.person_by_phone(&ask.principal_phone)?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no insured person has that phone")
        })?;
        let proxy = self.person(&caller.person_id)?.ok_or_else(|| ApiError::internal("caller vanished"))?;
        let birth = parse_birth_date(&principal.birth_date).map_err(|e| ApiError::internal(e.to_string()))?;
        let mine = self.links_of(&caller.person_id)?;
        let open = mine.iter().filter(|l| l.proxy == caller.person_id && l.status != LinkStatus::Revoked);
        let proxy_links_open = open.clone().count() as u32;
        let already_linked = open.clone().any(|l| l.principal == principal.person_id);
        let link_id = format!("lnk_{}", self.random_hex(8)?);
        let req = LinkRequest {
            link_id: &link_id,
            principal: &principal.person_id,
            proxy: &caller.person_id,
            relationship: ask.relationship,
            scopes: ask.scopes.clone().unwrap_or_else(|| Scope::ALL.to_vec()),
            limits: ask.limits,
            principal_birth: birth,
            same_household: principal.household_id == proxy.household_id,
            proxy_links_open,
            already_linked,
        };
        let link = rules.start_link(req, self.now_ms()).map_err(refused)?;
        self.save_link(&link)?;
        self.audit_link(&link, &caller.person_id, AuditAction::LinkRequested)?;
        if link.status == LinkStatus::Active {
            self.audit_link(&link, &caller.person_id, AuditAction::LinkActivated)?;
        }
        self.view(link, &rules)
    }

    /// One link as the caller may see it: only its two sides (others are told it does not
    /// exist), brought up to date.
    fn link_for(&self, caller: &Caller, link_id: &str, rules: &FamilyRules) -> ApiResult<FamilyLink> {
        let unknown = || ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such link");
        let link = self.load_link(link_id)?.ok_or_else(unknown)?;
        if link.proxy != caller.person_id && link.principal != caller.person_id {
            return Err(unknown());
        }
        self.brought_up_to_date(link, rules)
    }

    fn moved(
        &self,
        caller: &Caller,
        link: &FamilyLink,
        step: LinkMove,
        rules: &FamilyRules,
        action: AuditAction,
    ) -> ApiResult<wire::LinkView> {
        let next = link.apply(step, rules, self.now_ms()).map_err(refused)?;
        self.save_link(&next)?;
        self.audit_link(&next, &caller.person_id, action)?;
        // Live streams a proxy holds on the principal's inbox re-check the link.
        self.wake_streams(&next.principal);
        self.view(next, rules)
    }

    /// The principal consents on their own device, or the proxy enters the SMS code the
    /// principal read out to them.
    pub fn consent_link(
        &self,
        caller: &Caller,
        link_id: &str,
        consent: &wire::LinkConsent,
    ) -> ApiResult<wire::LinkView> {
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let link = self.link_for(caller, link_id, &rules)?;
        match consent.via {
            ConsentPath::OwnDevice if caller.person_id != link.principal => {
                return Err(refused(Refusal::NotThePrincipal))
            }
            ConsentPath::OwnDevice => {}
            ConsentPath::SmsCode => {
                let keys = [format!("link-code/{link_id}")];
                let now = self.now_ms();
                self.limits().code_allowed(&keys, now)?;
                if consent.code.as_deref() != Some(SANDBOX_CODE) {
                    self.limits().wrong_code(&keys, now)?;
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        PlatformCode::WrongVerificationCode,
                        "that is not the code sent to the relative's phone",
                    ));
                }
                self.limits().right_code(&keys)?;
            }
            ConsentPath::Counter => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    PlatformCode::Forbidden,
                    "counter verification is recorded by the service counter (admin role)",
                ))
            }
        }
        self.moved(caller, &link, LinkMove::Consent(consent.via), &rules, AuditAction::LinkActivated)
    }

    /// Sends the consent code to the principal's phone (the sandbox's code is always
    /// `123456`), spaced like sign-in codes.
    pub fn send_link_code(&self, caller: &Caller, link_id: &str) -> ApiResult<u32> {
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let link = self.link_for(caller, link_id, &rules)?;
        if link.status != LinkStatus::Pending {
            return Err(refused(Refusal::IllegalMove));
        }
        if !rules.consent_paths(link.band, link.relationship).contains(&ConsentPath::SmsCode) {
            return Err(refused(Refusal::ConsentPathNotAllowed));
        }
        self.limits().spaced(
            &format!("link-sms/{link_id}"),
            30_000,
            self.now_ms(),
            "a code was sent less than 30 s ago",
        )?;
        Ok(crate::platform::CODE_TTL_S)
    }

    /// The service counter verified the relationship and the principal in person.
    pub fn counter_consent(&self, link_id: &str) -> ApiResult<wire::LinkView> {
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let unknown = || ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such link");
        let link = self.brought_up_to_date(self.load_link(link_id)?.ok_or_else(unknown)?, &rules)?;
        let next = link.apply(LinkMove::Consent(ConsentPath::Counter), &rules, self.now_ms()).map_err(refused)?;
        self.save_link(&next)?;
        self.audit_link(&next, "service_counter", AuditAction::LinkActivated)?;
        self.view(next, &rules)
    }

    /// Either side ends the link at once.
    pub fn revoke_link(&self, caller: &Caller, link_id: &str) -> ApiResult<wire::LinkView> {
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let link = self.link_for(caller, link_id, &rules)?;
        let by_principal = caller.person_id == link.principal;
        self.moved(caller, &link, LinkMove::Revoke { by_principal }, &rules, AuditAction::LinkRevoked)
    }

    /// The principal renews an adult link for another period.
    pub fn renew_link(&self, caller: &Caller, link_id: &str) -> ApiResult<wire::LinkView> {
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let link = self.link_for(caller, link_id, &rules)?;
        if caller.person_id != link.principal {
            return Err(refused(Refusal::NotThePrincipal));
        }
        self.moved(caller, &link, LinkMove::Renew, &rules, AuditAction::LinkRenewed)
    }

    /// The principal (a teen) sets the scopes they assent to.
    pub fn assent_link(&self, caller: &Caller, link_id: &str, assent: &wire::LinkAssent) -> ApiResult<wire::LinkView> {
        let _l = lock(&self.family.links)?;
        let rules = self.family_rules()?;
        let link = self.link_for(caller, link_id, &rules)?;
        if caller.person_id != link.principal {
            return Err(refused(Refusal::NotThePrincipal));
        }
        self.moved(caller, &link, LinkMove::Assent(assent.scopes.clone()), &rules, AuditAction::AssentChanged)
    }

    /// The caller's own audit chain (as principal), from record 1.
    pub fn audit_trail(&self, principal: &str) -> ApiResult<wire::AuditTrail> {
        let mut records = Vec::new();
        for item in self.tree("family_audit")?.scan_prefix(format!("{principal}\0").as_bytes()) {
            records.push(serde_json::from_slice(&item?.1)?);
        }
        Ok(wire::AuditTrail { principal: principal.into(), records })
    }

    /// Admin (test fixture): overwrite one audit record, to show the phone detects it.
    pub fn tamper_audit(&self, principal: &str, seq: u64, amount: Option<Fen>) -> ApiResult<()> {
        let _a = lock(&self.family.audit)?;
        let tree = self.tree("family_audit")?;
        let mut key = format!("{principal}\0").into_bytes();
        key.extend_from_slice(&seq.to_be_bytes());
        let unknown = || ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such audit record");
        let mut record: AuditRecord = serde_json::from_slice(&tree.get(&key)?.ok_or_else(unknown)?)?;
        record.amount = amount;
        tree.insert(key, serde_json::to_vec(&record)?)?;
        Ok(())
    }
}
