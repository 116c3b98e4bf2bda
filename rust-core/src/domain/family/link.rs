//! The link record (`docs/family.md` § 2), its states and allowed moves (§ 3), and the one
//! authorisation check every act on a relative's behalf passes (§ 5).
//!
//! ```text
//!            consent (own device | SMS code | counter)
//!  pending ───────────────────────────────────────────▶ active ──period ends──▶ expired
//!     │  ▲                                            │   │                      │
//!     │  └────────── came of age (parental link) ─────┘   │        renew (principal only)
//!     │                                                   │                      │
//!     └──revoke (either side)──▶ revoked ◀──revoke────────┘◀─────────────────────┘
//! ```
//! `revoked` is final. Any other move is refused as [`Refusal::IllegalMove`] (HTTP 422, as
//! the NHS validated-relationships API answers an illegal status change).

use serde::{Deserialize, Serialize};

use super::rules::{BandName, ConsentPath, FamilyRules};
use crate::domain::money::Fen;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// What the principal is to the proxy (the proxy's parent, child, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    Spouse,
    Parent,
    Child,
    Sibling,
    Grandparent,
    Grandchild,
}

impl Relationship {
    pub const ALL: [Relationship; 6] = [
        Relationship::Spouse,
        Relationship::Parent,
        Relationship::Child,
        Relationship::Sibling,
        Relationship::Grandparent,
        Relationship::Grandchild,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Relationship::Spouse => "spouse",
            Relationship::Parent => "parent",
            Relationship::Child => "child",
            Relationship::Sibling => "sibling",
            Relationship::Grandparent => "grandparent",
            Relationship::Grandchild => "grandchild",
        }
    }

    /// Parses the wire form (`parent`, `child`, …).
    pub fn parse(text: &str) -> Option<Relationship> {
        Relationship::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// What a proxy may do for the principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    ShowCode,
    ViewBills,
    PayBills,
    OrderMedicine,
    ViewPrescriptions,
    ManageFamily,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::ShowCode,
        Scope::ViewBills,
        Scope::PayBills,
        Scope::OrderMedicine,
        Scope::ViewPrescriptions,
        Scope::ManageFamily,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ShowCode => "show_code",
            Scope::ViewBills => "view_bills",
            Scope::PayBills => "pay_bills",
            Scope::OrderMedicine => "order_medicine",
            Scope::ViewPrescriptions => "view_prescriptions",
            Scope::ManageFamily => "manage_family",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The legal basis a link rests on (FHIR Consent's policy basis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// A parent of a minor in the same household register: linked at once.
    ParentalResponsibility,
    /// The principal consented on their own device.
    PrincipalConsent,
    /// The principal read a code sent to their phone to the proxy (no smartphone).
    SmsCode,
    /// Verified in person at a service counter.
    CounterVerification,
}

impl LegalBasis {
    pub fn of(path: ConsentPath) -> LegalBasis {
        match path {
            ConsentPath::OwnDevice => LegalBasis::PrincipalConsent,
            ConsentPath::SmsCode => LegalBasis::SmsCode,
            ConsentPath::Counter => LegalBasis::CounterVerification,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    Pending,
    Active,
    Expired,
    Revoked,
}

/// Why a link is in its status (shown to both sides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    AwaitingConsent,
    ParentalResponsibility,
    Consented,
    Renewed,
    PeriodEnded,
    /// A child under a parental link turned adult: the link waits for their consent.
    CameOfAge,
    RevokedByPrincipal,
    RevokedByProxy,
}

/// Money limits on a proxy, in fen; none means no limit beyond the scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Limits {
    #[serde(default)]
    pub per_payment: Option<Fen>,
    #[serde(default)]
    pub per_month: Option<Fen>,
}

/// The link record (`docs/family.md` § 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FamilyLink {
    pub link_id: String,
    /// Whom the proxy acts for.
    pub principal: String,
    /// Who acts.
    pub proxy: String,
    /// What the principal is to the proxy.
    pub relationship: Relationship,
    /// How the link was verified; none while pending.
    #[serde(default)]
    pub basis: Option<LegalBasis>,
    /// The scopes asked for and granted (what the age band allows is applied on top).
    pub scopes: Vec<Scope>,
    /// Scopes a teen assented to on their own device.
    #[serde(default)]
    pub assented: Vec<Scope>,
    #[serde(default)]
    pub limits: Limits,
    pub status: LinkStatus,
    pub reason: StatusReason,
    /// The principal's age band when the link was last evaluated.
    pub band: BandName,
    pub created_at_ms: i64,
    /// When the current period began (the consent or renewal).
    #[serde(default)]
    pub valid_from_ms: Option<i64>,
    /// When the current period ends (adult-to-adult links); none for parental links.
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
    /// The rules version the link was last decided under.
    pub rules_version: u32,
}

/// A move on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkMove {
    /// The principal consented by `path`.
    Consent(ConsentPath),
    /// The principal renewed an active or expired adult link.
    Renew,
    /// One side revoked.
    Revoke { by_principal: bool },
    /// The period ended on platform time.
    Expire,
    /// The principal's age band changed on platform time.
    BandChanged(BandName),
    /// The principal (a teen) assented to these scopes of the band's `assent_scopes`; the
    /// list replaces the earlier one (an empty list withdraws assent).
    Assent(Vec<Scope>),
}

/// Why an act or a move is refused. Each has a stable code (`docs/family.md` § 6).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the actor holds no link to that person")]
    NoLink,
    #[error("the link waits for the principal's consent")]
    LinkPending,
    #[error("the link was revoked")]
    LinkRevoked,
    #[error("the link's period has ended; only the principal can renew it")]
    LinkExpired,
    #[error("the link does not grant {}", .0.as_str())]
    ScopeMissing(Scope),
    #[error("the amount is over the link's limit per payment")]
    OverPaymentLimit,
    #[error("the amount would pass the link's limit this month")]
    OverMonthlyLimit,
    #[error("the household register does not show that relationship")]
    RelationshipNotVerified,
    #[error("a minor is linked by a parent in the same household register")]
    MinorNeedsParent,
    #[error("the proxy already holds the most links the rules allow")]
    TooManyLinks,
    #[error("a person cannot link themselves")]
    SelfLink,
    #[error("that person is already linked to the proxy")]
    AlreadyLinked,
    #[error("the rules do not allow that consent path for the principal's age band or relationship")]
    ConsentPathNotAllowed,
    #[error("only the principal may do that")]
    NotThePrincipal,
    #[error("that move is not allowed from the link's status")]
    IllegalMove,
    #[error("mutual aid does not cover that relationship on that date")]
    MutualAidRelationship,
    #[error("mutual aid does not reach that region on that date")]
    MutualAidRegion,
    #[error("the giver's scheme has no personal account to give from")]
    MutualAidScheme,
}

impl Refusal {
    /// Every refusal with a fixed code (`ScopeMissing` stands for any scope).
    const CODED: [Refusal; 18] = [
        Refusal::NoLink,
        Refusal::LinkPending,
        Refusal::LinkRevoked,
        Refusal::LinkExpired,
        Refusal::ScopeMissing(Scope::ShowCode),
        Refusal::OverPaymentLimit,
        Refusal::OverMonthlyLimit,
        Refusal::RelationshipNotVerified,
        Refusal::MinorNeedsParent,
        Refusal::TooManyLinks,
        Refusal::SelfLink,
        Refusal::AlreadyLinked,
        Refusal::ConsentPathNotAllowed,
        Refusal::NotThePrincipal,
        Refusal::IllegalMove,
        Refusal::MutualAidRelationship,
        Refusal::MutualAidRegion,
        Refusal::MutualAidScheme,
    ];

    /// Reads a refusal from the platform's message, `<code>: <sentence>` (the scope of
    /// `scope_missing` is the one the sentence names).
    pub fn from_message(message: &str) -> Option<Refusal> {
        let (code, sentence) = message.split_once(':')?;
        let found = Refusal::CODED.into_iter().find(|r| r.code() == code.trim())?;
        Some(match found {
            Refusal::ScopeMissing(_) => {
                let named = sentence.split_whitespace().rev().find_map(Scope::parse)?;
                Refusal::ScopeMissing(named)
            }
            other => other,
        })
    }

    /// The stable code on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoLink => "no_link",
            Refusal::LinkPending => "link_pending",
            Refusal::LinkRevoked => "link_revoked",
            Refusal::LinkExpired => "link_expired",
            Refusal::ScopeMissing(_) => "scope_missing",
            Refusal::OverPaymentLimit => "over_payment_limit",
            Refusal::OverMonthlyLimit => "over_monthly_limit",
            Refusal::RelationshipNotVerified => "relationship_not_verified",
            Refusal::MinorNeedsParent => "minor_needs_parent",
            Refusal::TooManyLinks => "too_many_links",
            Refusal::SelfLink => "self_link",
            Refusal::AlreadyLinked => "already_linked",
            Refusal::ConsentPathNotAllowed => "consent_path_not_allowed",
            Refusal::NotThePrincipal => "not_the_principal",
            Refusal::IllegalMove => "illegal_move",
            Refusal::MutualAidRelationship => "mutual_aid_relationship",
            Refusal::MutualAidRegion => "mutual_aid_region",
            Refusal::MutualAidScheme => "mutual_aid_scheme",
        }
    }
}

/// What the actor is about to do, for [`FamilyLink::authorize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Act {
    pub scope: Scope,
    /// The amount moved, for payments and orders.
    pub amount: Option<Fen>,
    /// What the proxy already moved under this link this calendar month (China time).
    pub spent_this_month: Fen,
}

impl FamilyLink {
    /// The scopes the proxy holds now: none unless active and inside its period; the age
    /// band's `proxy_scopes`, plus its `assent_scopes` the principal assented to, within
    /// what the link granted.
    pub fn effective_scopes(&self, rules: &FamilyRules, now_ms: i64) -> Vec<Scope> {
        if self.status != LinkStatus::Active || self.expires_at_ms.is_some_and(|end| end <= now_ms) {
            return Vec::new();
        }
        let Some(band) = rules.band_named(self.band) else { return Vec::new() };
        self.scopes
            .iter()
            .copied()
            .filter(|s| band.proxy_scopes.contains(s) || (band.assent_scopes.contains(s) && self.assented.contains(s)))
            .collect()
    }

    /// The one check every act on the principal's behalf passes, at the platform and in the
    /// core. `link` is the actor's link to the subject, if any.
    pub fn authorize(link: Option<&FamilyLink>, rules: &FamilyRules, now_ms: i64, act: Act) -> Result<(), Refusal> {
        let link = link.ok_or(Refusal::NoLink)?;
        match link.status {
            LinkStatus::Pending => return Err(Refusal::LinkPending),
            LinkStatus::Revoked => return Err(Refusal::LinkRevoked),
            LinkStatus::Expired => return Err(Refusal::LinkExpired),
            LinkStatus::Active if link.expires_at_ms.is_some_and(|end| end <= now_ms) => {
                return Err(Refusal::LinkExpired)
            }
            LinkStatus::Active => {}
        }
        if !link.effective_scopes(rules, now_ms).contains(&act.scope) {
            return Err(Refusal::ScopeMissing(act.scope));
        }
        if let Some(amount) = act.amount {
            if link.limits.per_payment.is_some_and(|cap| amount > cap) {
                return Err(Refusal::OverPaymentLimit);
            }
            if let Some(cap) = link.limits.per_month {
                let after = act.spent_this_month.checked_add(amount).map_err(|_| Refusal::OverMonthlyLimit)?;
                if after > cap {
                    return Err(Refusal::OverMonthlyLimit);
                }
            }
        }
        Ok(())
    }

    /// Applies `step` at `now_ms`, or refuses it. The caller has already checked who asks
    /// (the principal for consent, assent and renewal; either side for revocation).
    pub fn apply(&self, step: LinkMove, rules: &FamilyRules, now_ms: i64) -> Result<FamilyLink, Refusal> {
        use LinkStatus::*;
        let mut next = self.clone();
        next.rules_version = rules.version;
        match (self.status, step) {
            (Pending, LinkMove::Consent(path)) => {
                if !rules.consent_paths(self.band, self.relationship).contains(&path) {
                    return Err(Refusal::ConsentPathNotAllowed);
                }
                next.status = Active;
                next.reason = StatusReason::Consented;
                next.basis = Some(LegalBasis::of(path));
                next.start_period(rules, now_ms);
            }
            (Active | Expired, LinkMove::Renew) if self.basis != Some(LegalBasis::ParentalResponsibility) => {
                next.status = Active;
                next.reason = StatusReason::Renewed;
                next.start_period(rules, now_ms);
            }
            (Pending | Active | Expired, LinkMove::Revoke { by_principal }) => {
                next.status = Revoked;
                next.reason =
                    if by_principal { StatusReason::RevokedByPrincipal } else { StatusReason::RevokedByProxy };
                next.expires_at_ms = Some(now_ms);
            }
            (Active, LinkMove::Expire) if self.expires_at_ms.is_some_and(|end| end <= now_ms) => {
                next.status = Expired;
                next.reason = StatusReason::PeriodEnded;
            }
            (Pending | Active | Expired, LinkMove::BandChanged(band)) if band != self.band => {
                next.band = band;
                let parental_before = rules.band_named(self.band).is_some_and(|b| b.parental);
                let parental_now = rules.band_named(band).is_some_and(|b| b.parental);
                if self.basis == Some(LegalBasis::ParentalResponsibility) && parental_before && !parental_now {
                    next.status = Pending;
                    next.reason = StatusReason::CameOfAge;
                    next.basis = None;
                    next.assented.clear();
                }
            }
            (Active, LinkMove::Assent(scopes)) => {
                let band = rules.band_named(self.band).ok_or(Refusal::IllegalMove)?;
                let mut assented: Vec<Scope> = scopes.into_iter().filter(|s| band.assent_scopes.contains(s)).collect();
                assented.sort();
                assented.dedup();
                next.assented = assented;
            }
            _ => return Err(Refusal::IllegalMove),
        }
        Ok(next)
    }

    /// A new period from `now_ms`: parental links have no end; others end after the rules'
    /// proxy period (18 months by the demo rules).
    fn start_period(&mut self, rules: &FamilyRules, now_ms: i64) {
        self.valid_from_ms = Some(now_ms);
        self.expires_at_ms = if self.basis == Some(LegalBasis::ParentalResponsibility) {
            None
        } else {
            Some(rules.proxy_period_end(now_ms))
        };
    }
}
