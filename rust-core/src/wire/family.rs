//! Family links and the audit (`docs/family.md` § 8): what the phone sends to link, consent,
//! assent, renew and revoke, and what the platform answers. The link record, the rules and
//! the audit record travel as the domain defines them.

use serde::{Deserialize, Serialize};

pub use crate::domain::family::audit::{AuditAction, AuditRecord};
pub use crate::domain::family::link::Limits;
pub use crate::domain::family::rules::{ConsentPath, FamilyRules};
pub use crate::domain::family::{BandName, FamilyLink, LegalBasis, LinkStatus, Relationship, Scope, StatusReason};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// `POST /v1/family/links`: the actor (the proxy) asks to act for a relative, named by
/// phone number, saying what the relative is to them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LinkAsk {
    /// The relative's phone number (11 digits).
    pub principal_phone: String,
    pub relationship: Relationship,
    /// The scopes asked for; all six when absent.
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
    #[serde(default)]
    pub limits: Limits,
}

/// A link as one side sees it: the record, what the proxy may do now, the other side's
/// name, and how the principal may still consent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LinkView {
    pub link: FamilyLink,
    pub principal_name: String,
    pub proxy_name: String,
    /// What the proxy may do now (age band, assent and status applied).
    pub effective_scopes: Vec<Scope>,
    /// How the principal may consent while the link is pending; empty otherwise.
    pub consent_paths: Vec<ConsentPath>,
}

/// `GET /v1/family/links`: the links where the actor is the proxy, and where they are the
/// principal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FamilyOverview {
    pub acting_for: Vec<LinkView>,
    pub acted_for_by: Vec<LinkView>,
}

/// `POST /v1/family/links/{link_id}/consent`: how the principal consents. `own_device` comes
/// from the principal's session; `sms_code` from the proxy's, with the code the principal
/// read out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LinkConsent {
    pub via: ConsentPath,
    #[serde(default)]
    pub code: Option<String>,
}

/// `POST /v1/family/links/{link_id}/assent`: the scopes the principal (a teen) assents to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LinkAssent {
    pub scopes: Vec<Scope>,
}

/// `GET /v1/family/audit`: the actor's own audit chain, from record 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditTrail {
    pub principal: String,
    pub records: Vec<AuditRecord>,
}
