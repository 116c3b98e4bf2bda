// The failure rule of the facade (CarePassClient's documentation, "What the facade does
// after a failure"), one test per point, against the real core and sandbox:
//
//   1. a failed call throws the core's typed error and the facade does nothing else;
//   2. who is signed in comes only from the session stream;
//   3. a stream ends with the core's error, and nothing follows it;
//   4. ending the iteration cancels the core's task;
//   5. a closed client is .Closed everywhere.

import Foundation
import XCTest
@testable import CarePass
import CarePassFFI

final class FailureRuleTests: SandboxTestCase {
    // MARK: 1. A failed call throws, and nothing else happens

    func testAFailedCallThrowsTheCoresErrorAndTheNextSessionValueIsTheNextRealChange() async throws {
        let client = try makeClient()

        let seen = try await withTimeout(seconds: 20, "the session states") { [client] () async throws -> [String] in
            var seen: [String] = []
            var states = client.sessionStates().makeAsyncIterator()
            let first = try await states.next()
            seen.append(describe(first))
            do {
                _ = try await client.enrol(phone: Sandbox.zhangWei, code: "000000")
                seen.append("enrolled with a wrong code")
            } catch {
                seen.append(caseName(error))
            }
            seen.append(describe(try client.sessionState))
            // Had the failure published anything, it would come next; the sign-in's state does.
            _ = try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code)
            let next = try await states.next()
            seen.append(describe(next))
            return seen
        }

        XCTAssertEqual(seen, ["signedOut", "WrongVerificationCode", "signedOut", "signedIn(P1001)"])
    }

    func testARefusedSecondOrderIsThePlatformsTypedCodeAndLeavesOneOrder() async throws {
        let client = try makeClient()
        try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code)
        let ranking = try await client.rankPharmacies(RankRequest(
            rxId: Sandbox.zhangWeiPrescription, lat: Sandbox.homeLat, lon: Sandbox.homeLon
        ))
        let best = try XCTUnwrap(ranking.quotes.first { $0.complete }, "no pharmacy near home fills the prescription")
        let placed = try await client.placeOrder(rxId: Sandbox.zhangWeiPrescription, pharmacyId: best.pharmacyId)
        XCTAssertEqual(placed.status, .accepted)

        do {
            let second = try await client.placeOrder(rxId: Sandbox.zhangWeiPrescription, pharmacyId: best.pharmacyId)
            XCTFail("a second order for one prescription was placed: \(second.orderId)")
        } catch let CarePassError.Platform(code, _, _, reason) {
            XCTAssertEqual(code, .alreadyOrdered, reason)
        }

        let orders = try await client.orders()
        XCTAssertEqual(orders.map(\.orderId), [placed.orderId], "the refused order left nothing behind")
        XCTAssertEqual(try client.profile?.personId, "P1001", "a refusal does not touch the session")
    }

    // MARK: 2. Signed-in state only from the session stream

    func testWhenThePlatformEndsTheSessionTheCallThrowsAndTheSessionStreamSaysEnded() async throws {
        let client = try makeClient()
        let deviceId = try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code).deviceId
        let sandbox = self.sandbox!

        let seen = try await withTimeout(seconds: 20, "the session states") { [client, sandbox] () async throws -> [String] in
            var seen: [String] = []
            var states = client.sessionStates().makeAsyncIterator()
            let first = try await states.next()
            seen.append(describe(first))
            try await sandbox.revokeDevice(deviceId)
            // The platform ended the session; the device does not know yet.
            seen.append(describe(try client.sessionState))
            do {
                _ = try await client.refreshProfile()
                seen.append("refreshed")
            } catch {
                seen.append(caseName(error))
            }
            // The core dropped the session and told the stream; the facade inferred nothing.
            let next = try await states.next()
            seen.append(describe(next))
            seen.append(describe(try client.sessionState))
            return seen
        }

        XCTAssertEqual(seen, ["signedIn(P1001)", "signedIn(P1001)", "SessionExpired", "ended", "ended"])
        XCTAssertNil(try client.profile)
    }

    // MARK: 3. A stream ends with the core's error, and nothing follows

    func testAfterLogoutTheCodesAndInboxStreamsEndWithNotSignedInAndNothingFollows() async throws {
        let client = try makeClient()
        try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code)

        let seen = try await withTimeout(seconds: 20, "the streams to end") { [client] () async throws -> [String] in
            var codes = client.codes(purpose: .registration).makeAsyncIterator()
            var inbox = client.inbox().makeAsyncIterator()
            let firstCode = try await codes.next()
            let firstInbox = try await inbox.next()
            try await client.logout()
            let codesError = await drain(&codes)
            let codesAfter = try await codes.next()
            let inboxError = await drain(&inbox)
            let inboxAfter = try await inbox.next()
            return [
                firstCode == nil ? "no code" : "code",
                firstInbox == nil ? "no inbox" : "inbox",
                caseName(codesError),
                codesAfter == nil ? "end" : "a code after the error",
                caseName(inboxError),
                inboxAfter == nil ? "end" : "an update after the error",
            ]
        }

        XCTAssertEqual(seen, ["code", "inbox", "NotSignedIn", "end", "NotSignedIn", "end"])
    }

    // MARK: 4. Ending the iteration cancels the core's task

    func testLeavingTheLoopCancelsTheCoresCodeTask() async throws {
        let client = try makeClient()
        try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code)
        let probe = HandleProbe()

        let runningWhileIterated = try await withTimeout(seconds: 20, "the first code") { [client, probe] () async throws -> Bool in
            let stream = CarePassClient.coreStream(of: VoucherCode.self) { relay in
                probe.keep(client.core.watchCodes(purpose: .registration, offline: false, listener: relay, subject: nil))
            }
            var running = false
            for try await _ in stream {
                running = probe.isRunning
                break
            }
            return running
        }

        XCTAssertTrue(runningWhileIterated, "the core's task runs while the stream is read")
        try await waitUntil(seconds: 5, "the core's code task to end") { probe.isFinished }
    }

    func testCancellingTheReadingTaskCancelsTheCoresInboxTask() async throws {
        let client = try makeClient()
        try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code)
        let probe = HandleProbe()

        let reader = Task { [client, probe] in
            let stream = CarePassClient.coreStream(of: InboxUpdate.self) { relay in
                probe.keep(client.core.watchInbox(listener: relay, subject: nil))
            }
            for try await _ in stream {
                probe.sawValue()
            }
        }
        try await waitUntil(seconds: 10, "the inbox stream's first update") { probe.values > 0 }
        XCTAssertTrue(probe.isRunning, "the core's task runs while the stream is read")

        reader.cancel()

        try await waitUntil(seconds: 5, "the core's inbox task to end") { probe.isFinished }
        _ = try? await reader.value
    }

    func testDroppingTheStreamCancelsTheCoresSessionTask() async throws {
        let client = try makeClient()
        let probe = HandleProbe()

        let first = try await withTimeout(seconds: 20, "the first session state") { [client, probe] () async throws -> String in
            let stream = CarePassClient.coreStream(of: SessionState.self) { relay in
                probe.keep(client.core.watchSession(listener: relay))
            }
            var iterator = stream.makeAsyncIterator()
            let state = try await iterator.next()
            return describe(state)
            // `stream` and `iterator` are dropped here, unfinished.
        }

        XCTAssertEqual(first, "signedOut")
        try await waitUntil(seconds: 5, "the core's session task to end") { probe.isFinished }
    }

    // MARK: 5. A closed client is .Closed everywhere

    func testAClosedClientThrowsClosedFromEveryCallAndEndsEveryStreamWithIt() async throws {
        let client = try makeClient()
        let profile = try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code)
        client.close()
        client.close() // twice is harmless

        let doorbell = ["v": "1", "k": "1", "r": "P1001", "s": "1", "t": "0", "g": "AA"]
        let calls: [(String, () async throws -> Void)] = [
            ("currentProfile", { _ = try client.currentProfile() }),
            ("requestVerificationCode", { _ = try await client.requestVerificationCode(phone: Sandbox.zhangWei) }),
            ("enrol", { _ = try await client.enrol(phone: Sandbox.zhangWei, code: Sandbox.code) }),
            ("login", { _ = try await client.login(phone: Sandbox.zhangWei, code: Sandbox.code) }),
            ("signIn", { _ = try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code) }),
            ("refreshProfile", { _ = try await client.refreshProfile() }),
            ("logout", { _ = try await client.logout() }),
            ("syncClock", { _ = try await client.syncClock() }),
            ("revokeDevice", { try await client.revokeDevice(deviceId: profile.deviceId) }),
            ("currentCode", { _ = try client.currentCode(purpose: .registration) }),
            ("bills", { _ = try client.bills() }),
            ("syncInbox", { _ = try await client.syncInbox() }),
            ("handlePush", { _ = try await client.handlePush(doorbell) }),
            ("pullOwed", { _ = try client.pullOwed() }),
            ("registerPushToken", { try await client.registerPushToken(service: "apns", token: "apns-token") }),
            ("prescriptions", { _ = try await client.prescriptions() }),
            ("rankPharmacies", { _ = try await client.rankPharmacies(RankRequest(lat: Sandbox.homeLat, lon: Sandbox.homeLon)) }),
            ("placeOrder", { _ = try await client.placeOrder(rxId: Sandbox.zhangWeiPrescription, pharmacyId: "ph_0001") }),
            ("orders", { _ = try await client.orders() }),
            ("order", { _ = try await client.order(orderId: "ord_0001") }),
            ("cancelOrder", { _ = try await client.cancelOrder(orderId: "ord_0001") }),
            ("quote", { _ = try await client.quote(billId: "bill_00112233aabbccdd", useAccount: true, channel: "card:4242424242424242") }),
            ("pay", { _ = try await client.pay(quoteId: "q_0011223344556677") }),
            ("confirmPayment", { _ = try await client.confirmPayment(paymentId: "pay_0011223344556677", code: "123456") }),
            ("payCashDue", { _ = try await client.payCashDue(paymentId: "pay_0011223344556677", channel: "card:4242424242424242") }),
            ("payment", { _ = try await client.payment(paymentId: "pay_0011223344556677") }),
            ("payments", { _ = try client.payments() }),
            ("resumePayments", { _ = try await client.resumePayments() }),
            ("paymentsUnresolved", { _ = try client.paymentsUnresolved() }),
            ("receipts", { _ = try await client.receipts() }),
        ]
        for (name, call) in calls {
            await assertThrowsCarePassError("Closed", name) {
                try await call()
            }
        }

        let ended = try await withTimeout(seconds: 20, "the streams of a closed client") { [client] () async -> [String] in
            var codes = client.codes(purpose: .registration).makeAsyncIterator()
            var inbox = client.inbox().makeAsyncIterator()
            var states = client.sessionStates().makeAsyncIterator()
            var payment = client.paymentUpdates(paymentId: "pay_0011223344556677").makeAsyncIterator()
            let codesError = await drain(&codes)
            let inboxError = await drain(&inbox)
            let statesError = await drain(&states)
            let paymentError = await drain(&payment)
            return [caseName(codesError), caseName(inboxError), caseName(statesError), caseName(paymentError)]
        }
        XCTAssertEqual(ended, ["Closed", "Closed", "Closed", "Closed"])
    }
}

/// Keeps the `TaskHandle` a core stream started (in addition to the stream's own reference),
/// so a test can ask whether the core's task still runs.
private final class HandleProbe: @unchecked Sendable {
    // @unchecked: every stored property is only touched with `lock` held.

    private let lock = NSLock()
    private var handle: TaskHandle?
    private var seen = 0

    func keep(_ handle: TaskHandle) -> TaskHandle {
        lock.lock()
        self.handle = handle
        lock.unlock()
        return handle
    }

    func sawValue() {
        lock.lock()
        seen += 1
        lock.unlock()
    }

    var values: Int {
        lock.lock()
        defer { lock.unlock() }
        return seen
    }

    private var current: TaskHandle? {
        lock.lock()
        defer { lock.unlock() }
        return handle
    }

    /// Started and not finished.
    var isRunning: Bool {
        current.map { !$0.isFinished() } ?? false
    }

    /// Started and finished (its stream failed or completed, or it was cancelled).
    var isFinished: Bool {
        current?.isFinished() ?? false
    }
}
