//! Family proxy accounts (亲情账户) and mutual aid (家庭共济), `docs/family.md`: the link between
//! a principal and a proxy, its states and moves, the scopes and limits a proxy acts within,
//! the age and relationship rules that are data ([`rules::FamilyRules`]), and the audit chain
//! the principal reads ([`audit`]). Pure: the platform and the core both decide with these
//! functions, so a forged client cannot step outside them.

pub mod audit;
pub mod link;
pub mod rules;

pub use link::{FamilyLink, LegalBasis, LinkMove, LinkStatus, Refusal, Relationship, Scope, StatusReason};
pub use rules::{AgeBand, BandName, ConsentPath, FamilyRules};
