package app.carepass

// Family proxies (亲情账户, `docs/family.md`): the bindings' family types under `app.carepass`,
// and the one facade type of its own, [ActingProfile], what [CarePassClient.profiles] lists.

/**
 * A link as one side sees it ([CarePassClient.family], [CarePassClient.relatives], the
 * answer of every link move): `linkId`, the principal (whom the proxy acts for:
 * `principalId`, `principalName`) and the proxy (`proxyId`, `proxyName`), what the principal
 * is to the proxy ([FamilyRelationship]), its [FamilyLinkStatus] and [FamilyStatusReason],
 * its [FamilyLegalBasis] (null while pending), the principal's [FamilyBand], the scopes
 * granted, the `effectiveScopes` the proxy holds now (age band, assent and status applied by
 * the core), the scopes a teen `assented` to, the limits (`perPaymentFen`, `perMonthFen`,
 * null: none), its times (ms, platform time; `expiresAtMs` null for parental links) and, while
 * pending, the `consentPaths` the principal may still use.
 */
typealias FamilyLinkView = app.carepass.ffi.FamilyLinkView

/** The signed-in person's links: `actingFor` (they are the proxy) and `actedForBy` (they are the principal). */
typealias FamilyOverview = app.carepass.ffi.FamilyOverview

/**
 * A move on a link, for [CarePassClient.familyAction]: `Link`, `Approve`, `ConfirmCode`,
 * `Revoke`, `Renew`, `Assent`. The named calls ([CarePassClient.linkRelative],
 * [CarePassClient.approveLink]…) build it. Code that builds one by hand imports
 * `app.carepass.ffi.FamilyAction` (a typealias cannot reach its nested classes).
 */
typealias FamilyAction = app.carepass.ffi.FamilyAction

/** What the principal is to the proxy: spouse, parent, child, sibling, grandparent, grandchild. */
typealias FamilyRelationship = app.carepass.ffi.FamilyRelationship

/** What a proxy may do for the principal: show their code, view and pay their bills, order medicine, view prescriptions, manage their family. */
typealias FamilyScope = app.carepass.ffi.FamilyScope

/** Where a [FamilyLinkView] is: `PENDING` (waits for consent), `ACTIVE`, `EXPIRED` (only the principal can renew), `REVOKED` (final). */
typealias FamilyLinkStatus = app.carepass.ffi.FamilyLinkStatus

/** Why a link is in its status: awaiting consent, parental responsibility, consented, renewed, period ended, came of age, revoked by the principal or the proxy. */
typealias FamilyStatusReason = app.carepass.ffi.FamilyStatusReason

/** The legal basis of a link: parental responsibility, the principal's consent on their device, an SMS code, a counter. */
typealias FamilyLegalBasis = app.carepass.ffi.FamilyLegalBasis

/** The principal's age band: minor, teen, adult, elderly. */
typealias FamilyBand = app.carepass.ffi.FamilyBand

/** How a principal may consent to a pending link: `OWN_DEVICE` ([CarePassClient.approveLink]), `SMS_CODE` ([CarePassClient.sendLinkCode] then [CarePassClient.confirmLinkCode]), `COUNTER`. */
typealias FamilyConsentPath = app.carepass.ffi.FamilyConsentPath

/** The signed-in person's audit trail as the core verified it: the records, oldest first, and the chain's `head` hash. */
typealias FamilyAudit = app.carepass.ffi.FamilyAudit

/** One record of a [FamilyAudit]: `seq`, `atMs`, the principal, the `actor`, the link, the [FamilyAuditAction], the amount (fen, payments and orders), the `reference` (bill, payment, order or code) and its hash. */
typealias FamilyAuditRecord = app.carepass.ffi.FamilyAuditRecord

/** What a [FamilyAuditRecord] is about: a link requested, activated, renewed, revoked, expired or re-banded, an assent changed, a code scanned, bills or prescriptions viewed, a payment made, an order placed. */
typealias FamilyAuditAction = app.carepass.ffi.FamilyAuditAction

/** Which family rule a [CarePassException] `FamilyRefused` applied (`NO_LINK`, `LINK_REVOKED`, `SCOPE_MISSING`, `OVER_PAYMENT_LIMIT`, `RELATIONSHIP_NOT_VERIFIED`…). */
typealias FamilyProblem = app.carepass.ffi.FamilyProblem

/**
 * Someone this phone can act as ([CarePassClient.profiles]): the signed-in person, or a
 * relative they hold an active link to. Pass [subject] to any call that takes one
 * (`bills(subject)`, `quote(…, subject)`, `codes(…, subject)`…).
 */
data class ActingProfile(
    /** The person's id (`P…`). */
    val personId: String,
    val name: String,
    /**
     * The link the phone acts under, with what it allows now (`effectiveScopes`); `null` for
     * the signed-in person.
     */
    val link: FamilyLinkView?,
) {
    /** The `subject` of the calls about this person: `null` for the signed-in person. */
    val subject: String?
        get() = if (link == null) null else personId

    /** Whether this is the signed-in person. */
    val isSelf: Boolean
        get() = link == null

    /** What this person is to the signed-in person; `null` for the signed-in person. */
    val relationship: FamilyRelationship?
        get() = link?.relationship

    internal companion object {
        fun of(profile: Profile) = ActingProfile(profile.personId, profile.name, null)

        fun of(link: FamilyLinkView) = ActingProfile(link.principalId, link.principalName, link)
    }
}
