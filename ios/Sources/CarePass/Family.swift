// Family proxies (亲情账户, docs/family.md) through the facade: the links, the moves on a link,
// the audit trail the core verified, and `profiles()`, whom this device can act as. Each call
// is one call into the core; a link move is the core's one `familyAction` export, which the
// named methods build. Acting for a relative needs nothing new: every call about a person
// takes `subject`, and `ActingProfile.subject` is what to pass.

import Foundation
import CarePassFFI

/// Someone this device can act as (`CarePassClient.profiles()`): the signed-in person, or a
/// relative they hold an active link to. Pass `subject` to any call that takes one
/// (`bills(subject:)`, `quote(…, subject:)`, `codes(…, subject:)`…).
public struct ActingProfile: Equatable, Hashable {
    /// The person's id (`P…`).
    public let personId: String
    public let name: String
    /// The link the device acts under, with what it allows now (`effectiveScopes`); nil for
    /// the signed-in person.
    public let link: FamilyLinkView?

    public init(personId: String, name: String, link: FamilyLinkView?) {
        self.personId = personId
        self.name = name
        self.link = link
    }

    /// The `subject` of the calls about this person: nil for the signed-in person.
    public var subject: String? {
        link == nil ? nil : personId
    }

    /// Whether this is the signed-in person.
    public var isSelf: Bool {
        link == nil
    }

    /// What this person is to the signed-in person; nil for the signed-in person.
    public var relationship: FamilyRelationship? {
        link?.relationship
    }

    init(profile: Profile) {
        self.init(personId: profile.personId, name: profile.name, link: nil)
    }

    init(relative: FamilyLinkView) {
        self.init(personId: relative.principalId, name: relative.principalName, link: relative)
    }
}

#if compiler(>=6)
extension ActingProfile: Sendable {}
#endif

extension CarePassClient {
    // MARK: - Family proxies

    /// The signed-in person's links as last fetched (no network): `actingFor` (they act for
    /// a relative) and `actedForBy` (a relative acts for them, requests waiting for their
    /// consent included).
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.Storage`, `.StoreTampered`, `.Closed`.
    public func family() throws -> FamilyOverview {
        try core.family()
    }

    /// Fetches the links and the family rules from the platform and keeps them; `profiles()`
    /// follows.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.SessionExpired`, `.Network`, `.Timeout`,
    ///   `.Platform`, `.InvalidServerAnswer`, `.Storage`, `.Closed`.
    @discardableResult
    public func refreshFamily() async throws -> FamilyOverview {
        let overview = try await core.refreshFamily()
        publishProfiles()
        return overview
    }

    /// The relatives the signed-in person may act for now (active links that grant
    /// something, with the `effectiveScopes` the core worked out), as last fetched; no
    /// network. Pass `principalId` as `subject`.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.Storage`, `.StoreTampered`, `.Closed`.
    public func relatives() throws -> [FamilyLinkView] {
        try core.relatives()
    }

    /// Asks to act for the relative who owns `phone`, who is the signed-in person's
    /// `relationship` (`.parent`: their father or mother). A minor in the same household
    /// register is linked at once; any other link comes back `.pending` until the relative
    /// consents (`consentPaths`: on their own phone, `approveLink`; or by a code they read
    /// out, `sendLinkCode` then `confirmLinkCode`).
    ///
    /// - Parameters:
    ///   - scopes: what to ask for; nil: all six.
    ///   - perPaymentFen: the most one payment may move (positive); nil: no limit.
    ///   - perMonthFen: the most the proxy may move in a calendar month; nil: no limit.
    /// - Throws: `CarePassError`: `.InvalidInput(field: .phone or .amount, …)`,
    ///   `.FamilyRefused(kind: …)` (`.relationshipNotVerified`, `.minorNeedsParent`,
    ///   `.tooManyLinks`, `.selfLink`, `.alreadyLinked`), `.Platform` (`.notFound`: nobody
    ///   insured has that phone), `.NotSignedIn`, `.SessionExpired`, `.Network`, `.Timeout`,
    ///   `.Closed`.
    @discardableResult
    public func linkRelative(
        phone: String,
        relationship: FamilyRelationship,
        scopes: [FamilyScope]? = nil,
        perPaymentFen: Int64? = nil,
        perMonthFen: Int64? = nil
    ) async throws -> FamilyLinkView {
        try await familyAction(.link(
            phone: phone,
            relationship: relationship,
            scopes: scopes,
            perPaymentFen: perPaymentFen,
            perMonthFen: perMonthFen
        ))
    }

    /// The principal consents, on their own device, to a link a relative asked for; the
    /// link comes back `.active`.
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .linkId, …)`, `.FamilyRefused`
    ///   (`.notThePrincipal`, `.illegalMove`, `.consentPathNotAllowed`), `.Platform`
    ///   (`.notFound`), `.NotSignedIn`, `.SessionExpired`, `.Network`, `.Timeout`, `.Closed`.
    @discardableResult
    public func approveLink(linkId: String) async throws -> FamilyLinkView {
        try await familyAction(.approve(linkId: linkId))
    }

    /// The proxy has the platform text a consent code to the relative's phone (a relative
    /// without a smartphone, when the rules allow it); returns how many seconds it lives.
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .linkId, …)`, `.FamilyRefused`
    ///   (`.consentPathNotAllowed`, `.illegalMove`), `.Platform` (`.notFound`,
    ///   `.rateLimited`), `.NotSignedIn`, `.SessionExpired`, `.Network`, `.Timeout`, `.Closed`.
    @discardableResult
    public func sendLinkCode(linkId: String) async throws -> UInt32 {
        let seconds = try await core.sendLinkCode(linkId: linkId)
        publishProfiles()
        return seconds
    }

    /// The proxy enters the code the relative read out; the link comes back `.active`.
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .linkId or .verificationCode, …)`,
    ///   `.Platform` (`.wrongVerificationCode`), `.FamilyRefused`, `.NotSignedIn`,
    ///   `.SessionExpired`, `.Network`, `.Timeout`, `.Closed`.
    @discardableResult
    public func confirmLinkCode(linkId: String, code: String) async throws -> FamilyLinkView {
        try await familyAction(.confirmCode(linkId: linkId, code: code))
    }

    /// Ends a link at once, from either side (final). The proxy's next step under it is
    /// refused at the platform; the proxy's device learns it at its next `refreshFamily()` or
    /// `syncInbox()`, and the relative's bills leave it.
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .linkId, …)`, `.FamilyRefused`
    ///   (`.illegalMove`: already revoked), `.Platform` (`.notFound`), `.NotSignedIn`,
    ///   `.SessionExpired`, `.Network`, `.Timeout`, `.Closed`.
    @discardableResult
    public func revokeLink(linkId: String) async throws -> FamilyLinkView {
        try await familyAction(.revoke(linkId: linkId))
    }

    /// The principal renews an adult link (active or expired) for another period.
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .linkId, …)`, `.FamilyRefused`
    ///   (`.notThePrincipal`, `.illegalMove`), `.Platform` (`.notFound`), `.NotSignedIn`,
    ///   `.SessionExpired`, `.Network`, `.Timeout`, `.Closed`.
    @discardableResult
    public func renewLink(linkId: String) async throws -> FamilyLinkView {
        try await familyAction(.renew(linkId: linkId))
    }

    /// The principal (a teen) sets the scopes they assent to; the list replaces the earlier
    /// one (empty withdraws assent).
    ///
    /// - Throws: `CarePassError`: as `renewLink`.
    @discardableResult
    public func assentLink(linkId: String, scopes: [FamilyScope]) async throws -> FamilyLinkView {
        try await familyAction(.assent(linkId: linkId, scopes: scopes))
    }

    /// Any move on a link (the named methods above build it): the link as it now is, after
    /// the core fetched the links again; `profiles()` follows.
    ///
    /// - Throws: `CarePassError`: as the named methods.
    @discardableResult
    public func familyAction(_ action: FamilyAction) async throws -> FamilyLinkView {
        let view = try await core.familyAction(action: action)
        publishProfiles()
        return view
    }

    /// The signed-in person's audit trail, oldest first: every act a relative did for them
    /// and every change to their links, verified by the core as a hash chain and against the
    /// head it verified last time.
    ///
    /// - Throws: `CarePassError`: `.AuditTampered` (a record changed, dropped, reordered, or
    ///   the trail cut short: show none of it as valid), `.NotSignedIn`, `.SessionExpired`,
    ///   `.Network`, `.Timeout`, `.Platform`, `.Closed`.
    public func familyAudit() async throws -> FamilyAudit {
        let audit = try await core.familyAudit()
        publishProfiles()
        return audit
    }

    // MARK: - Profiles

    /// Whom this device can act as: the signed-in person first, then each relative the core
    /// says they may act for now (`relatives()`), as the store holds them (no network); empty
    /// when nobody is signed in. The current list at once, then a new list whenever it
    /// changes: read again after every family call and `refreshFamily()`, after `syncInbox()`
    /// and `handlePush` (which may learn that a link ended), after signing in or out, and at
    /// every change of the session stream. A read that fails yields nothing. The stream
    /// finishes when the client closes; ending the iteration stops it.
    ///
    /// ```swift
    /// for await profiles in client.profiles() {
    ///     picker.options = profiles.map(\.name)       // pass picked.subject to bills(subject:) …
    /// }
    /// ```
    public func profiles() -> AsyncStream<[ActingProfile]> {
        let core = self.core
        let feed = self.profileFeed
        let states = sessionStates()
        return AsyncStream([ActingProfile].self, bufferingPolicy: .unbounded) { continuation in
            let reader = feed.add(continuation)
            let follower = Task {
                // The session stream's first value is the state now; every later one may
                // change who is signed in. It ends (with `.Closed`) when the client closes.
                do {
                    for try await _ in states {
                        feed.publish(to: reader) { CarePassClient.readProfiles(core) }
                    }
                } catch {}
                feed.finish(reader)
            }
            continuation.onTermination = { _ in
                follower.cancel()
                feed.remove(reader)
            }
            feed.publish(to: reader) { CarePassClient.readProfiles(core) }
        }
    }

    /// Reads the profiles again for every `profiles()` stream.
    func publishProfiles() {
        let core = self.core
        profileFeed.publish { CarePassClient.readProfiles(core) }
    }

    /// The signed-in person and their relatives from the store; empty when nobody is signed
    /// in; nil when the store could not be read.
    static func readProfiles(_ core: CarePassFFI.CarePass) -> [ActingProfile]? {
        do {
            guard let me = try core.currentProfile() else { return [] }
            return [ActingProfile(profile: me)] + (try core.relatives()).map { ActingProfile(relative: $0) }
        } catch CarePassError.NotSignedIn {
            return []
        } catch CarePassError.SessionExpired {
            return []
        } catch {
            return nil
        }
    }
}

/// The readers of `CarePassClient.profiles()`: each stream's continuation and the last list
/// it was given, so a reader sees a list only when it differs from the one before.
final class ProfileFeed: @unchecked Sendable {
    // @unchecked: `readers` and `nextId` are only touched with `lock` held.

    private struct Reader {
        let continuation: AsyncStream<[ActingProfile]>.Continuation
        var last: [ActingProfile]?
    }

    private let lock = NSLock()
    private var readers: [Int: Reader] = [:]
    private var nextId = 0

    /// Adds a reader; returns its id.
    func add(_ continuation: AsyncStream<[ActingProfile]>.Continuation) -> Int {
        lock.lock()
        defer { lock.unlock() }
        nextId += 1
        readers[nextId] = Reader(continuation: continuation, last: nil)
        return nextId
    }

    /// Forgets a reader whose stream terminated.
    func remove(_ id: Int) {
        lock.lock()
        defer { lock.unlock() }
        readers[id] = nil
    }

    /// Ends one reader's stream.
    func finish(_ id: Int) {
        lock.lock()
        let reader = readers.removeValue(forKey: id)
        lock.unlock()
        reader?.continuation.finish()
    }

    /// Reads the list with `read` (under the lock, so the last read is the last one handed
    /// over) and hands it to reader `id`, or to every reader when `id` is nil, unless it is
    /// the list that reader already has. A failed read (nil) hands over nothing.
    func publish(to id: Int? = nil, _ read: () -> [ActingProfile]?) {
        lock.lock()
        defer { lock.unlock() }
        let targets = id.map { [$0] } ?? Array(readers.keys)
        // Nobody to hand it to: no read.
        guard targets.contains(where: { readers[$0] != nil }), let profiles = read() else { return }
        for key in targets {
            guard var reader = readers[key], reader.last != profiles else { continue }
            reader.last = profiles
            readers[key] = reader
            reader.continuation.yield(profiles)
        }
    }
}
