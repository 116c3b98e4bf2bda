//! The family rules as data (`docs/family.md` § 4): versioned JSON the platform is seeded with
//! and the vectors carry. Age bands with their thresholds and what a proxy may do in each;
//! which relationships the household register verifies; which relationships and regions
//! mutual aid reaches from which date; how many links a proxy holds; how long an adult's
//! consent lasts. Changing the data changes the behaviour; no code knows a threshold.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use super::link::{FamilyLink, LegalBasis, LinkStatus, Refusal, Relationship, Scope, StatusReason};
use crate::domain::person::{age_on, china_date, InsuranceType};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The named age bands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BandName {
    Minor,
    Teen,
    Adult,
    Elderly,
}

/// How a principal may consent to a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConsentPath {
    /// On their own signed-in device.
    OwnDevice,
    /// A code sent by SMS to their phone, read out to the proxy.
    SmsCode,
    /// In person at a service counter.
    Counter,
}

/// One age band: from which age it applies, and what a proxy may do in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AgeBand {
    pub band: BandName,
    /// The first age (whole years) of the band; bands are in rising order from 0.
    pub from_age: u32,
    /// Whether a parent acts under parental responsibility (linked at once, no consent).
    pub parental: bool,
    /// What a proxy may do without the principal's assent.
    pub proxy_scopes: Vec<Scope>,
    /// What a proxy may do only once the principal assented on their own device.
    #[serde(default)]
    pub assent_scopes: Vec<Scope>,
    /// How a principal of this band consents to a link.
    #[serde(default)]
    pub consent_paths: Vec<ConsentPath>,
}

/// How a relationship is verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// The household register shows it (same household): refused otherwise.
    HouseholdRegister,
    /// Nothing vouches for it: only the principal on their own device (or a counter) can.
    PrincipalOnly,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RelationshipRule {
    pub relationship: Relationship,
    pub verified_by: Verification,
}

/// How far a region may be from the giver's for mutual aid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// The same city (the first four digits of the pooling region code).
    City,
    /// The same province (the first two digits).
    Province,
    Nation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DatedRelationship {
    pub relationship: Relationship,
    /// `YYYY-MM-DD`, the first day it applies.
    pub from: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DatedReach {
    pub reach: Reach,
    pub from: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MutualAidRules {
    /// Schemes with a personal account to give from.
    pub giver_schemes: Vec<InsuranceType>,
    pub relationships: Vec<DatedRelationship>,
    pub regions: Vec<DatedReach>,
}

/// The whole rule set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FamilyRules {
    pub version: u32,
    /// Links a proxy may hold (pending or active) at once: 5 for 亲情账户.
    pub max_links_per_proxy: u32,
    /// How long an adult's consent lasts before the principal must renew it.
    pub adult_proxy_months: u32,
    pub age_bands: Vec<AgeBand>,
    pub relationships: Vec<RelationshipRule>,
    pub mutual_aid: MutualAidRules,
}

/// Rules that cannot be used, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("family rules: {0}")]
pub struct RulesError(pub &'static str);

/// The demo rules the sandbox is seeded with (`tests/vectors/family/rules.json`).
pub const DEMO_RULES_JSON: &str = include_str!("demo-rules.json");

/// A new link's start, as [`FamilyRules::start_link`] decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRequest<'a> {
    pub link_id: &'a str,
    pub principal: &'a str,
    pub proxy: &'a str,
    pub relationship: Relationship,
    pub scopes: Vec<Scope>,
    pub limits: super::link::Limits,
    pub principal_birth: NaiveDate,
    /// Whether the household register has both in one household.
    pub same_household: bool,
    /// Links the proxy already holds that are pending or active.
    pub proxy_links_open: u32,
    /// Whether the proxy already holds an open link to this principal.
    pub already_linked: bool,
}

impl FamilyRules {
    /// Parses and checks rules: bands from age 0 in rising order, each band once, dates valid.
    pub fn from_json(text: &str) -> Result<FamilyRules, RulesError> {
        let rules: FamilyRules = serde_json::from_str(text).map_err(|_| RulesError("not a valid rules document"))?;
        rules.check()?;
        Ok(rules)
    }

    pub fn demo() -> FamilyRules {
        // The demo rules are a committed, tested constant.
        FamilyRules::from_json(DEMO_RULES_JSON).unwrap_or_else(|_| unreachable!("demo rules are checked by tests"))
    }

    fn check(&self) -> Result<(), RulesError> {
        let first = self.age_bands.first().ok_or(RulesError("no age bands"))?;
        if first.from_age != 0 {
            return Err(RulesError("the first age band starts at 0"));
        }
        if self.age_bands.windows(2).any(|w| w[0].from_age >= w[1].from_age) {
            return Err(RulesError("age bands are in rising order"));
        }
        for (i, band) in self.age_bands.iter().enumerate() {
            if self.age_bands[..i].iter().any(|b| b.band == band.band) {
                return Err(RulesError("an age band appears twice"));
            }
        }
        if self.max_links_per_proxy == 0 || self.adult_proxy_months == 0 {
            return Err(RulesError("limits are positive"));
        }
        let dates = self
            .mutual_aid
            .relationships
            .iter()
            .map(|r| &r.from)
            .chain(self.mutual_aid.regions.iter().map(|r| &r.from));
        for date in dates {
            NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| RulesError("a date is YYYY-MM-DD"))?;
        }
        Ok(())
    }

    /// The band of a principal aged `age`.
    pub fn band_for(&self, age: u32) -> &AgeBand {
        self.age_bands.iter().rev().find(|b| b.from_age <= age).unwrap_or(&self.age_bands[0])
    }

    /// The band of a principal born on `birth`, on platform time `now_ms` (China date).
    pub fn band_on(&self, birth: NaiveDate, now_ms: i64) -> BandName {
        self.band_for(age_on(birth, china_date(now_ms))).band
    }

    pub fn band_named(&self, name: BandName) -> Option<&AgeBand> {
        self.age_bands.iter().find(|b| b.band == name)
    }

    fn verification(&self, relationship: Relationship) -> Verification {
        self.relationships
            .iter()
            .find(|r| r.relationship == relationship)
            .map(|r| r.verified_by)
            .unwrap_or(Verification::PrincipalOnly)
    }

    /// How a principal of `band` may consent to a link of `relationship`: the band's paths,
    /// but a relationship nothing vouches for allows only the principal's own device or a
    /// counter (an SMS code proves the phone, not the relationship).
    pub fn consent_paths(&self, band: BandName, relationship: Relationship) -> Vec<ConsentPath> {
        let paths = self.band_named(band).map(|b| b.consent_paths.clone()).unwrap_or_default();
        match self.verification(relationship) {
            Verification::HouseholdRegister => paths,
            Verification::PrincipalOnly => paths.into_iter().filter(|p| *p != ConsentPath::SmsCode).collect(),
        }
    }

    /// When a period that starts at `now_ms` ends.
    pub fn proxy_period_end(&self, now_ms: i64) -> i64 {
        chrono::DateTime::from_timestamp_millis(now_ms)
            .and_then(|t| t.checked_add_months(Months::new(self.adult_proxy_months)))
            .map(|t| t.timestamp_millis())
            .unwrap_or(i64::MAX)
    }

    /// Decides a request to link: refused, active at once (a parent of a minor in the same
    /// household), or pending the principal's consent.
    pub fn start_link(&self, req: LinkRequest<'_>, now_ms: i64) -> Result<FamilyLink, Refusal> {
        if req.principal == req.proxy {
            return Err(Refusal::SelfLink);
        }
        if req.already_linked {
            return Err(Refusal::AlreadyLinked);
        }
        if req.proxy_links_open >= self.max_links_per_proxy {
            return Err(Refusal::TooManyLinks);
        }
        if self.verification(req.relationship) == Verification::HouseholdRegister && !req.same_household {
            return Err(Refusal::RelationshipNotVerified);
        }
        let band = self.band_for(age_on(req.principal_birth, china_date(now_ms)));
        let mut scopes = req.scopes.clone();
        scopes.sort();
        scopes.dedup();
        let mut link = FamilyLink {
            link_id: req.link_id.into(),
            principal: req.principal.into(),
            proxy: req.proxy.into(),
            relationship: req.relationship,
            basis: None,
            scopes,
            assented: Vec::new(),
            limits: req.limits,
            status: LinkStatus::Pending,
            reason: StatusReason::AwaitingConsent,
            band: band.band,
            created_at_ms: now_ms,
            valid_from_ms: None,
            expires_at_ms: None,
            rules_version: self.version,
        };
        if band.parental {
            if req.relationship != Relationship::Child || !req.same_household {
                return Err(Refusal::MinorNeedsParent);
            }
            link.status = LinkStatus::Active;
            link.reason = StatusReason::ParentalResponsibility;
            link.basis = Some(LegalBasis::ParentalResponsibility);
            link.valid_from_ms = Some(now_ms);
        }
        Ok(link)
    }

    /// Whether a giver's personal account may pay a relative's share (家庭共济) on platform
    /// time `now_ms`: the giver's scheme, the relationship from its date, the regions' reach
    /// from its date.
    pub fn mutual_aid(
        &self,
        relationship: Relationship,
        giver_scheme: InsuranceType,
        giver_region: &str,
        receiver_region: &str,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        let today = china_date(now_ms);
        let started = |from: &str| NaiveDate::parse_from_str(from, "%Y-%m-%d").is_ok_and(|d| d <= today);
        if !self.mutual_aid.giver_schemes.contains(&giver_scheme) {
            return Err(Refusal::MutualAidScheme);
        }
        if !self.mutual_aid.relationships.iter().any(|r| r.relationship == relationship && started(&r.from)) {
            return Err(Refusal::MutualAidRelationship);
        }
        let needed = reach_between(giver_region, receiver_region);
        if !self.mutual_aid.regions.iter().any(|r| r.reach >= needed && started(&r.from)) {
            return Err(Refusal::MutualAidRegion);
        }
        Ok(())
    }
}

/// How far apart two pooling regions are.
pub fn reach_between(a: &str, b: &str) -> Reach {
    let prefix = |s: &str, n: usize| s.get(..n).map(str::to_owned);
    if prefix(a, 4).is_some() && prefix(a, 4) == prefix(b, 4) {
        Reach::City
    } else if prefix(a, 2).is_some() && prefix(a, 2) == prefix(b, 2) {
        Reach::Province
    } else {
        Reach::Nation
    }
}
