// Family proxies (亲情账户, docs/family.md) through the Swift facade against the real sandbox,
// with two phones (two clients, each on its own data directory and secret store) for a son and
// his father: the son links his father, the father consents on his own phone, the clinic bills
// the father, the son pays it as him from the father's personal account and his own card, the
// father reads it in his audit trail and revokes the link, and the son's phone stops at once.
// A stranger naming someone else is refused. The same journey as the Kotlin FamilyTest.

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class FamilyTests: SandboxTestCase {
    private static let sonId = "P1001"
    private static let father = "13800000002"
    private static let fatherId = "P1002"
    private static let stranger = "13800000007"
    private static let strangerId = "P3001"
    private static let card = "card:4242424242424242"

    /// The father's personal account: it pays a part of the demo bill, the son's card the rest.
    private static let fatherBalanceFen: Int64 = 5_000
    private static let sonBalanceFen: Int64 = 3_000

    private static let allScopes: Set<FamilyScope> = [
        .showCode, .viewBills, .payBills, .orderMedicine, .viewPrescriptions, .manageFamily,
    ]

    /// The son's phone and the father's, each enrolled.
    private func phones() async throws -> (son: CarePassClient, father: CarePassClient) {
        let son = try makeClient(directory: "son", secretStore: MemorySecretStore())
        let father = try makeClient(directory: "father", secretStore: MemorySecretStore())
        try await son.enrol(phone: Sandbox.zhangWei, code: Sandbox.code)
        try await father.enrol(phone: Self.father, code: Sandbox.code)
        return (son, father)
    }

    func testASonLinksHisFatherPaysHisBillAsHimAndStopsWhenTheFatherRevokes() async throws {
        let (son, father) = try await phones()
        let seen = ProfileLists()
        let following = Task { [son] in
            for await profiles in son.profiles() {
                seen.append(profiles.map(\.personId))
            }
        }
        defer { following.cancel() }
        try await waitUntil(seconds: 10, "the son's first profiles") { seen.changes == [[Self.sonId]] }
        let mine = await firstProfiles(son)
        let me = try XCTUnwrap(mine?.first)
        XCTAssertTrue(me.isSelf)
        XCTAssertNil(me.subject)

        // The son asks; the link waits for the father's consent.
        let asked = try await son.linkRelative(phone: Self.father, relationship: .parent)
        XCTAssertEqual(asked.status, .pending)
        XCTAssertEqual(asked.reason, .awaitingConsent)
        XCTAssertEqual(asked.principalId, Self.fatherId)
        XCTAssertEqual(asked.proxyId, Self.sonId)
        XCTAssertEqual(asked.relationship, .parent)
        XCTAssertNil(asked.basis)
        XCTAssertEqual(asked.band, .elderly)
        XCTAssertEqual(Set(asked.scopes), Self.allScopes, "all six when none are named")
        XCTAssertEqual(asked.effectiveScopes, [])
        XCTAssertTrue(asked.consentPaths.contains(.ownDevice), "\(asked.consentPaths)")
        XCTAssertEqual(try son.family().actingFor.map(\.linkId), [asked.linkId], "kept on the phone")
        XCTAssertEqual(try son.relatives(), [], "a pending link is nobody to act as")
        await assertFamilyRefused(.linkPending, "the father's bills before he consents") {
            try son.bills(subject: Self.fatherId)
        }

        // The father consents on his own phone.
        let requests = try await father.refreshFamily()
        let request = try XCTUnwrap(requests.actedForBy.first)
        XCTAssertEqual(requests.actedForBy.count, 1)
        XCTAssertEqual(request.linkId, asked.linkId)
        XCTAssertEqual(request.proxyId, Self.sonId)
        let approved = try await father.approveLink(linkId: asked.linkId)
        XCTAssertEqual(approved.status, .active)
        XCTAssertEqual(approved.reason, .consented)
        XCTAssertEqual(approved.basis, .principalConsent)
        XCTAssertNotNil(approved.expiresAtMs, "an adult's consent has an end")
        let fathers = await firstProfiles(father)
        XCTAssertEqual(fathers?.map(\.personId), [Self.fatherId], "nobody he acts for")

        // The son's phone learns it: the father is a profile to act as.
        try await son.refreshFamily()
        let relative = try XCTUnwrap(try son.relatives().first)
        XCTAssertEqual(relative.linkId, asked.linkId)
        XCTAssertTrue(relative.effectiveScopes.contains(.payBills), "\(relative.effectiveScopes)")
        try await waitUntil(seconds: 10, "the father among the son's profiles") {
            seen.lists.last == [Self.sonId, Self.fatherId]
        }
        let current = await firstProfiles(son)
        let profiles = try XCTUnwrap(current)
        XCTAssertEqual(profiles.map(\.personId), [Self.sonId, Self.fatherId])
        let fatherProfile = profiles[1]
        XCTAssertEqual(fatherProfile.subject, Self.fatherId)
        XCTAssertEqual(fatherProfile.relationship, .parent)
        XCTAssertEqual(fatherProfile.name, relative.principalName)
        XCTAssertEqual(fatherProfile.link, relative)

        // The clinic bills the father; the son's phone holds it under his subject.
        try await sandbox.setBalance(personId: Self.fatherId, fen: Self.fatherBalanceFen)
        let issued = try await sandbox.issueDemoBill(phone: Self.father)
        try await son.syncInbox()
        XCTAssertEqual(try son.bills(subject: fatherProfile.subject).map(\.billId), [issued.billId])
        XCTAssertFalse(try son.bills().contains { $0.billId == issued.billId }, "the father's bill is not the son's")
        let sonBalance = try await sandbox.balance(personId: Self.sonId)

        // The son pays it as his father: the father's account first, then the son's card.
        let quote = try await son.quote(
            billId: issued.billId,
            useAccount: true,
            channel: Self.card,
            subject: fatherProfile.subject
        )
        XCTAssertEqual(quote.subject, Self.fatherId)
        XCTAssertEqual(quote.totalFen, issued.totalFen)
        XCTAssertGreaterThan(quote.personalAccountFen, 0, "the father's personal account pays first")
        XCTAssertLessThanOrEqual(quote.personalAccountFen, Self.fatherBalanceFen)
        XCTAssertGreaterThan(quote.cashFen, 0, "the card pays the rest")
        let payment = try await son.pay(quoteId: quote.quoteId, subject: quote.subject)
        XCTAssertEqual(payment.status, .succeeded, "\(payment)")
        XCTAssertEqual(payment.subject, Self.fatherId)
        XCTAssertEqual(payment.actor, Self.sonId)
        XCTAssertEqual(payment.personalAccountFen, quote.personalAccountFen)
        let fatherBalance = try await sandbox.balance(personId: Self.fatherId)
        XCTAssertEqual(fatherBalance, Self.fatherBalanceFen - quote.personalAccountFen, "debited once")
        let sonAfter = try await sandbox.balance(personId: Self.sonId)
        XCTAssertEqual(sonAfter, sonBalance, "the son's own account is untouched")
        XCTAssertEqual(try son.payments(subject: Self.fatherId), [payment])
        XCTAssertEqual(try son.payments(), [], "not a payment for the son")

        // The father's audit trail holds the payment, made by his son, and verifies.
        let audit = try await father.familyAudit()
        XCTAssertFalse(audit.records.isEmpty)
        XCTAssertEqual(audit.records.map(\.seq), (0..<audit.records.count).map { UInt64($0 + 1) })
        XCTAssertEqual(audit.head, audit.records.last?.hash)
        XCTAssertTrue(audit.records.allSatisfy { $0.principal == Self.fatherId })
        let actions = audit.records.map(\.action)
        for expected: FamilyAuditAction in [.linkRequested, .linkActivated, .paymentMade] {
            XCTAssertTrue(actions.contains(expected), "\(expected) missing from \(actions)")
        }
        let paid = try XCTUnwrap(audit.records.first { $0.action == .paymentMade })
        XCTAssertEqual(paid.actor, Self.sonId)
        XCTAssertEqual(paid.linkId, asked.linkId)
        XCTAssertEqual(paid.reference, payment.paymentId)
        XCTAssertNotNil(paid.amountFen, "a payment names its amount")
        let sonsAudit = try await son.familyAudit()
        XCTAssertEqual(sonsAudit.records, [], "nobody acts for the son")

        // Family mutual aid (家庭共济): with the father's account empty, the son's own account
        // pays what is left of the father's share, in the same payment.
        try await sandbox.setBalance(personId: Self.fatherId, fen: 0)
        try await sandbox.setBalance(personId: Self.sonId, fen: Self.sonBalanceFen)
        let second = try await sandbox.issueDemoBill(phone: Self.father)
        try await son.syncInbox()
        let plain = try await son.quote(
            billId: second.billId, useAccount: true, channel: Self.card, subject: Self.fatherId)
        XCTAssertEqual(plain.mutualAidFen, 0, "no mutual aid unless asked for")
        let aided = try await son.quote(
            billId: second.billId, useAccount: true, channel: Self.card, subject: Self.fatherId, mutualAid: true)
        XCTAssertGreaterThan(aided.mutualAidFen, 0, "the son's account gives: \(aided)")
        XCTAssertEqual(aided.cashFen, plain.cashFen - aided.mutualAidFen, "the card pays only what is left")
        let aidedPayment = try await son.pay(quoteId: aided.quoteId, subject: aided.subject)
        XCTAssertEqual(aidedPayment.status, .succeeded, "\(aidedPayment)")
        let sonGave = try await sandbox.balance(personId: Self.sonId)
        XCTAssertEqual(sonGave, Self.sonBalanceFen - aided.mutualAidFen, "the giver's account, once")

        // The father revokes: final, and the son's phone drops him at its next sync.
        let revoked = try await father.revokeLink(linkId: asked.linkId)
        XCTAssertEqual(revoked.status, .revoked)
        XCTAssertEqual(revoked.reason, .revokedByPrincipal)
        XCTAssertEqual(revoked.effectiveScopes, [])
        let trail = try await father.familyAudit()
        XCTAssertEqual(trail.records.last?.action, .linkRevoked)
        XCTAssertEqual(trail.records.last?.actor, Self.fatherId)
        await assertFamilyRefused(.illegalMove, "consent to a revoked link") {
            try await father.approveLink(linkId: asked.linkId)
        }

        try await son.syncInbox()
        do {
            let bills = try son.bills(subject: Self.fatherId)
            XCTFail("the son still sees his father's bills after the revocation: \(bills)")
        } catch CarePassError.FamilyRefused(let kind, let reason) {
            XCTAssertEqual(kind, .linkRevoked, reason)
        } catch CarePassError.NotLinked {
            // Also a refusal: the link is gone from the phone.
        } catch {
            XCTFail("expected FamilyRefused(.linkRevoked) or NotLinked, got \(error)")
        }
        XCTAssertEqual(try son.relatives(), [])
        XCTAssertEqual(try son.family().actingFor.map(\.status), [.revoked])
        try await waitUntil(seconds: 10, "the son's profiles without his father") {
            seen.changes == [[Self.sonId], [Self.sonId, Self.fatherId], [Self.sonId]]
        }
    }

    func testAStrangerNamingSomeoneElseIsRefused() async throws {
        let stranger = try makeClient()
        try await stranger.enrol(phone: Self.stranger, code: Sandbox.code)

        await assertThrowsCarePassError("NotLinked", "a stranger reading P1001's bills") {
            try stranger.bills(subject: Self.sonId)
        }
        await assertThrowsCarePassError("NotLinked", "a stranger reading P1001's payments") {
            try stranger.payments(subject: Self.sonId)
        }
        await assertThrowsCarePassError("NotLinked", "a stranger showing P1001's code") {
            try stranger.currentCode(purpose: .outpatientSettlement, subject: Self.sonId)
        }
        let profiles = await firstProfiles(stranger)
        XCTAssertEqual(profiles?.map(\.personId), [Self.strangerId])
        XCTAssertEqual(try stranger.relatives(), [])

        await assertFamilyRefused(.relationshipNotVerified, "a parent the household register does not show") {
            try await stranger.linkRelative(phone: Self.father, relationship: .parent)
        }
        do {
            let link = try await stranger.linkRelative(phone: Sandbox.zhangWei, relationship: .sibling, perPaymentFen: 0)
            XCTFail("a limit of 0 fen was accepted: \(link)")
        } catch CarePassError.InvalidInput(let field, let reason) {
            XCTAssertEqual(field, .amount, reason)
        }
        do {
            let link = try await stranger.approveLink(linkId: "lnk/1")
            XCTFail("a malformed link id was accepted: \(link)")
        } catch CarePassError.InvalidInput(let field, let reason) {
            XCTAssertEqual(field, .linkId, reason)
        }
        XCTAssertEqual(try stranger.family().actingFor, [], "nothing was linked")
        let audit = try await stranger.familyAudit()
        XCTAssertEqual(audit.records, [])
    }
}

/// The first list a fresh `profiles()` stream yields (the profiles now).
private func firstProfiles(_ client: CarePassClient) async -> [ActingProfile]? {
    for await profiles in client.profiles() {
        return profiles
    }
    return nil
}

/// Fails unless `body` throws `CarePassError.FamilyRefused` with `kind`.
private func assertFamilyRefused<T>(
    _ kind: FamilyProblem,
    _ message: String,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ body: () async throws -> T
) async {
    do {
        let value = try await body()
        XCTFail("\(message): expected CarePassError.FamilyRefused(kind: \(kind)), got \(value)", file: file, line: line)
    } catch let CarePassError.FamilyRefused(got, reason) {
        XCTAssertEqual(got, kind, "\(message): \(reason)", file: file, line: line)
    } catch {
        XCTFail("\(message): expected CarePassError.FamilyRefused(kind: \(kind)), got \(error)", file: file, line: line)
    }
}

/// The person ids of every list a `profiles()` stream yielded, in order. (A list differs from
/// the one before it, but may name the same people: a link of theirs changed.)
private final class ProfileLists: @unchecked Sendable {
    // @unchecked: `stored` is only touched with `lock` held.

    private let lock = NSLock()
    private var stored: [[String]] = []

    func append(_ list: [String]) {
        lock.lock()
        defer { lock.unlock() }
        stored.append(list)
    }

    var lists: [[String]] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    /// `lists` without a list that names the same people as the one before it.
    var changes: [[String]] {
        var out: [[String]] = []
        for list in lists where out.last != list {
            out.append(list)
        }
        return out
    }
}
