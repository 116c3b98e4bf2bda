//! Family proxies across the FFI (`docs/family.md` § 8): the links where the signed-in person
//! acts for a relative and where a relative acts for them, the moves on a link (ask, consent
//! on one's own device or by a code the relative reads out, assent, renew, revoke), the
//! relatives the phone may act as now, and the audit trail the core verified. Converts types;
//! the rules are `carepass_core::domain::family` and the flow `carepass_core::app`.
//!
//! Every link move is one export, [`CarePass::family_action`], taking a [`FamilyAction`]: each
//! async export costs the release library 10 to 18 KB, and the moves share their answer.
//! Acting for a relative needs no export of its own: every call about a person takes
//! `subject`, and a linked relative's person id works there.

use carepass_core::domain::family as core_family;
use carepass_core::wire;
use carepass_core::Fen;

use crate::account::CarePass;
use crate::error::CarePassError;

/// What the principal is to the proxy (the proxy's parent, child, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum FamilyRelationship {
    Spouse,
    Parent,
    Child,
    Sibling,
    Grandparent,
    Grandchild,
}

/// What a proxy may do for the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum FamilyScope {
    ShowCode,
    ViewBills,
    PayBills,
    OrderMedicine,
    ViewPrescriptions,
    ManageFamily,
}

/// Where a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FamilyLinkStatus {
    /// Waits for the principal's consent.
    Pending,
    Active,
    /// The period ended; only the principal can renew it.
    Expired,
    /// Final.
    Revoked,
}

/// Why a link is in its status (shown to both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FamilyStatusReason {
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

/// The legal basis a link rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FamilyLegalBasis {
    /// A parent of a minor in the same household register: linked at once.
    ParentalResponsibility,
    /// The principal consented on their own device.
    PrincipalConsent,
    /// The principal read a code sent to their phone to the proxy.
    SmsCode,
    /// Verified in person at a service counter.
    CounterVerification,
}

/// The principal's age band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FamilyBand {
    Minor,
    Teen,
    Adult,
    Elderly,
}

/// How a principal may consent to a pending link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FamilyConsentPath {
    /// On their own signed-in device: `FamilyAction::Approve`.
    OwnDevice,
    /// A code sent to their phone (`send_link_code`), read out to the proxy:
    /// `FamilyAction::ConfirmCode`.
    SmsCode,
    /// In person at a service counter.
    Counter,
}

/// What an audit record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FamilyAuditAction {
    LinkRequested,
    LinkActivated,
    LinkRenewed,
    LinkRevoked,
    LinkExpired,
    /// The principal's age band changed and the link's scopes with it.
    LinkBandChanged,
    AssentChanged,
    CodeScanned,
    BillsViewed,
    PrescriptionsViewed,
    PaymentMade,
    OrderPlaced,
}

/// A link as one side sees it (amounts in fen, times in ms since the epoch, platform time).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FamilyLinkView {
    pub link_id: String,
    /// Whom the proxy acts for: the `subject` to pass when acting for them.
    pub principal_id: String,
    pub principal_name: String,
    /// Who acts.
    pub proxy_id: String,
    pub proxy_name: String,
    /// What the principal is to the proxy.
    pub relationship: FamilyRelationship,
    pub status: FamilyLinkStatus,
    pub reason: FamilyStatusReason,
    /// How the link was verified; null while pending.
    pub basis: Option<FamilyLegalBasis>,
    /// The principal's age band when the link was last evaluated.
    pub band: FamilyBand,
    /// The scopes asked for and granted.
    pub scopes: Vec<FamilyScope>,
    /// What the proxy may do now (age band, assent and status applied).
    pub effective_scopes: Vec<FamilyScope>,
    /// Scopes a teen assented to on their own device.
    pub assented: Vec<FamilyScope>,
    /// The most one payment may move; null: no limit beyond the scope.
    pub per_payment_fen: Option<i64>,
    /// The most the proxy may move in a calendar month; null: no limit.
    pub per_month_fen: Option<i64>,
    pub created_at_ms: i64,
    /// When the current period began (the consent or renewal).
    pub valid_from_ms: Option<i64>,
    /// When the current period ends (adult links); null for parental links.
    pub expires_at_ms: Option<i64>,
    /// How the principal may still consent while the link is pending; empty otherwise.
    pub consent_paths: Vec<FamilyConsentPath>,
}

/// The signed-in person's links: where they act for a relative, and where a relative acts
/// for them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FamilyOverview {
    pub acting_for: Vec<FamilyLinkView>,
    pub acted_for_by: Vec<FamilyLinkView>,
}

/// One record of the audit trail: an act done for the principal, or a change to a link.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FamilyAuditRecord {
    /// 1 for the principal's first record, then one more each time.
    pub seq: u64,
    pub at_ms: i64,
    pub principal: String,
    /// Who did it (the proxy, or the principal for their own link moves).
    pub actor: String,
    pub link_id: String,
    pub action: FamilyAuditAction,
    /// The amount moved (payments, orders).
    pub amount_fen: Option<i64>,
    /// The bill, payment, order or code the act was about; empty when none.
    pub reference: String,
    pub hash: String,
}

/// The signed-in person's audit trail, verified by the core as a chain and against the head
/// it verified before.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FamilyAudit {
    pub records: Vec<FamilyAuditRecord>,
    /// The hash of the last record (64 zeros for an empty trail).
    pub head: String,
}

/// A move on a link, for [`CarePass::family_action`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum FamilyAction {
    /// The signed-in person (the proxy) asks to act for the relative with `phone`, who is
    /// their `relationship`. A minor in the same household register is linked at once; other
    /// links wait for the relative's consent. `scopes`: all when null. Limits in fen,
    /// positive; null: none.
    Link {
        phone: String,
        relationship: FamilyRelationship,
        scopes: Option<Vec<FamilyScope>>,
        per_payment_fen: Option<i64>,
        per_month_fen: Option<i64>,
    },
    /// The principal consents on their own device.
    Approve { link_id: String },
    /// The proxy enters the code the principal read out to them (`send_link_code`).
    ConfirmCode { link_id: String, code: String },
    /// Either side ends the link, at once (final).
    Revoke { link_id: String },
    /// The principal renews an adult link for another period.
    Renew { link_id: String },
    /// The principal (a teen) sets the scopes they assent to; the list replaces the earlier
    /// one (empty withdraws assent).
    Assent { link_id: String, scopes: Vec<FamilyScope> },
}

impl From<FamilyRelationship> for core_family::Relationship {
    fn from(r: FamilyRelationship) -> Self {
        match r {
            FamilyRelationship::Spouse => core_family::Relationship::Spouse,
            FamilyRelationship::Parent => core_family::Relationship::Parent,
            FamilyRelationship::Child => core_family::Relationship::Child,
            FamilyRelationship::Sibling => core_family::Relationship::Sibling,
            FamilyRelationship::Grandparent => core_family::Relationship::Grandparent,
            FamilyRelationship::Grandchild => core_family::Relationship::Grandchild,
        }
    }
}

impl From<core_family::Relationship> for FamilyRelationship {
    fn from(r: core_family::Relationship) -> Self {
        match r {
            core_family::Relationship::Spouse => FamilyRelationship::Spouse,
            core_family::Relationship::Parent => FamilyRelationship::Parent,
            core_family::Relationship::Child => FamilyRelationship::Child,
            core_family::Relationship::Sibling => FamilyRelationship::Sibling,
            core_family::Relationship::Grandparent => FamilyRelationship::Grandparent,
            core_family::Relationship::Grandchild => FamilyRelationship::Grandchild,
        }
    }
}

impl From<FamilyScope> for core_family::Scope {
    fn from(s: FamilyScope) -> Self {
        match s {
            FamilyScope::ShowCode => core_family::Scope::ShowCode,
            FamilyScope::ViewBills => core_family::Scope::ViewBills,
            FamilyScope::PayBills => core_family::Scope::PayBills,
            FamilyScope::OrderMedicine => core_family::Scope::OrderMedicine,
            FamilyScope::ViewPrescriptions => core_family::Scope::ViewPrescriptions,
            FamilyScope::ManageFamily => core_family::Scope::ManageFamily,
        }
    }
}

impl From<core_family::Scope> for FamilyScope {
    fn from(s: core_family::Scope) -> Self {
        match s {
            core_family::Scope::ShowCode => FamilyScope::ShowCode,
            core_family::Scope::ViewBills => FamilyScope::ViewBills,
            core_family::Scope::PayBills => FamilyScope::PayBills,
            core_family::Scope::OrderMedicine => FamilyScope::OrderMedicine,
            core_family::Scope::ViewPrescriptions => FamilyScope::ViewPrescriptions,
            core_family::Scope::ManageFamily => FamilyScope::ManageFamily,
        }
    }
}

fn scopes_in(scopes: Vec<FamilyScope>) -> Vec<core_family::Scope> {
    scopes.into_iter().map(Into::into).collect()
}

fn scopes_out(scopes: Vec<core_family::Scope>) -> Vec<FamilyScope> {
    scopes.into_iter().map(Into::into).collect()
}

fn status(s: core_family::LinkStatus) -> FamilyLinkStatus {
    match s {
        core_family::LinkStatus::Pending => FamilyLinkStatus::Pending,
        core_family::LinkStatus::Active => FamilyLinkStatus::Active,
        core_family::LinkStatus::Expired => FamilyLinkStatus::Expired,
        core_family::LinkStatus::Revoked => FamilyLinkStatus::Revoked,
    }
}

fn reason(r: core_family::StatusReason) -> FamilyStatusReason {
    match r {
        core_family::StatusReason::AwaitingConsent => FamilyStatusReason::AwaitingConsent,
        core_family::StatusReason::ParentalResponsibility => FamilyStatusReason::ParentalResponsibility,
        core_family::StatusReason::Consented => FamilyStatusReason::Consented,
        core_family::StatusReason::Renewed => FamilyStatusReason::Renewed,
        core_family::StatusReason::PeriodEnded => FamilyStatusReason::PeriodEnded,
        core_family::StatusReason::CameOfAge => FamilyStatusReason::CameOfAge,
        core_family::StatusReason::RevokedByPrincipal => FamilyStatusReason::RevokedByPrincipal,
        core_family::StatusReason::RevokedByProxy => FamilyStatusReason::RevokedByProxy,
    }
}

fn basis(b: core_family::LegalBasis) -> FamilyLegalBasis {
    match b {
        core_family::LegalBasis::ParentalResponsibility => FamilyLegalBasis::ParentalResponsibility,
        core_family::LegalBasis::PrincipalConsent => FamilyLegalBasis::PrincipalConsent,
        core_family::LegalBasis::SmsCode => FamilyLegalBasis::SmsCode,
        core_family::LegalBasis::CounterVerification => FamilyLegalBasis::CounterVerification,
    }
}

fn band(b: core_family::BandName) -> FamilyBand {
    match b {
        core_family::BandName::Minor => FamilyBand::Minor,
        core_family::BandName::Teen => FamilyBand::Teen,
        core_family::BandName::Adult => FamilyBand::Adult,
        core_family::BandName::Elderly => FamilyBand::Elderly,
    }
}

fn consent_path(p: core_family::ConsentPath) -> FamilyConsentPath {
    match p {
        core_family::ConsentPath::OwnDevice => FamilyConsentPath::OwnDevice,
        core_family::ConsentPath::SmsCode => FamilyConsentPath::SmsCode,
        core_family::ConsentPath::Counter => FamilyConsentPath::Counter,
    }
}

fn audit_action(a: wire::AuditAction) -> FamilyAuditAction {
    match a {
        wire::AuditAction::LinkRequested => FamilyAuditAction::LinkRequested,
        wire::AuditAction::LinkActivated => FamilyAuditAction::LinkActivated,
        wire::AuditAction::LinkRenewed => FamilyAuditAction::LinkRenewed,
        wire::AuditAction::LinkRevoked => FamilyAuditAction::LinkRevoked,
        wire::AuditAction::LinkExpired => FamilyAuditAction::LinkExpired,
        wire::AuditAction::LinkBandChanged => FamilyAuditAction::LinkBandChanged,
        wire::AuditAction::AssentChanged => FamilyAuditAction::AssentChanged,
        wire::AuditAction::CodeScanned => FamilyAuditAction::CodeScanned,
        wire::AuditAction::BillsViewed => FamilyAuditAction::BillsViewed,
        wire::AuditAction::PrescriptionsViewed => FamilyAuditAction::PrescriptionsViewed,
        wire::AuditAction::PaymentMade => FamilyAuditAction::PaymentMade,
        wire::AuditAction::OrderPlaced => FamilyAuditAction::OrderPlaced,
    }
}

impl From<wire::LinkView> for FamilyLinkView {
    fn from(v: wire::LinkView) -> Self {
        let l = v.link;
        FamilyLinkView {
            link_id: l.link_id,
            principal_id: l.principal,
            principal_name: v.principal_name,
            proxy_id: l.proxy,
            proxy_name: v.proxy_name,
            relationship: l.relationship.into(),
            status: status(l.status),
            reason: reason(l.reason),
            basis: l.basis.map(basis),
            band: band(l.band),
            scopes: scopes_out(l.scopes),
            effective_scopes: scopes_out(v.effective_scopes),
            assented: scopes_out(l.assented),
            per_payment_fen: l.limits.per_payment.map(|f| f.0),
            per_month_fen: l.limits.per_month.map(|f| f.0),
            created_at_ms: l.created_at_ms,
            valid_from_ms: l.valid_from_ms,
            expires_at_ms: l.expires_at_ms,
            consent_paths: v.consent_paths.into_iter().map(consent_path).collect(),
        }
    }
}

fn views(list: Vec<wire::LinkView>) -> Vec<FamilyLinkView> {
    list.into_iter().map(Into::into).collect()
}

impl From<wire::FamilyOverview> for FamilyOverview {
    fn from(o: wire::FamilyOverview) -> Self {
        FamilyOverview { acting_for: views(o.acting_for), acted_for_by: views(o.acted_for_by) }
    }
}

impl From<wire::AuditRecord> for FamilyAuditRecord {
    fn from(r: wire::AuditRecord) -> Self {
        FamilyAuditRecord {
            seq: r.seq,
            at_ms: r.at_ms,
            principal: r.principal,
            actor: r.actor,
            link_id: r.link_id,
            action: audit_action(r.action),
            amount_fen: r.amount.map(|f| f.0),
            reference: r.reference,
            hash: r.hash,
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl CarePass {
    /// The links as last fetched (no network).
    pub fn family(&self) -> Result<FamilyOverview, CarePassError> {
        Ok(self.core().family()?.into())
    }

    /// Fetches the links and the family rules from the platform, and keeps them.
    pub async fn refresh_family(&self) -> Result<FamilyOverview, CarePassError> {
        Ok(self.core().refresh_family().await?.into())
    }

    /// The relatives the signed-in person may act for now (active links that grant
    /// something), each with what it allows; no network. Pass `principal_id` as `subject`.
    pub fn relatives(&self) -> Result<Vec<FamilyLinkView>, CarePassError> {
        Ok(views(self.core().relatives()?))
    }

    /// A move on a link; answers the link as it now is, after the core fetched the links
    /// again. A family rule's refusal is `FamilyRefused` with its kind.
    pub async fn family_action(&self, action: FamilyAction) -> Result<FamilyLinkView, CarePassError> {
        let core = self.core();
        let view = match action {
            FamilyAction::Link { phone, relationship, scopes, per_payment_fen, per_month_fen } => {
                let limits = wire::Limits { per_payment: per_payment_fen.map(Fen), per_month: per_month_fen.map(Fen) };
                core.link_relative(&phone, relationship.into(), scopes.map(scopes_in), limits).await?
            }
            FamilyAction::Approve { link_id } => core.approve_link(&link_id).await?,
            FamilyAction::ConfirmCode { link_id, code } => core.confirm_link_code(&link_id, &code).await?,
            FamilyAction::Revoke { link_id } => core.revoke_link(&link_id).await?,
            FamilyAction::Renew { link_id } => core.renew_link(&link_id).await?,
            FamilyAction::Assent { link_id, scopes } => core.assent_link(&link_id, scopes_in(scopes)).await?,
        };
        Ok(view.into())
    }

    /// The proxy has the platform text a consent code to the relative's phone; returns how
    /// many seconds the code lives.
    pub async fn send_link_code(&self, link_id: String) -> Result<u32, CarePassError> {
        Ok(self.core().send_link_code(&link_id).await?)
    }

    /// The signed-in person's audit trail: every act done for them and every change to their
    /// links, verified by the core (a record changed, dropped or reordered, or the trail cut
    /// short, is `AuditTampered`).
    pub async fn family_audit(&self) -> Result<FamilyAudit, CarePassError> {
        let audit = self.core().family_audit().await?;
        Ok(FamilyAudit { records: audit.records.into_iter().map(Into::into).collect(), head: audit.head })
    }
}
