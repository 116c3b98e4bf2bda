// The Notification Service Extension's path: a second CarePass on the same data directory,
// opened with `extension = true`, handles a doorbell while the app's client is open. The
// extension never opens the database; it leaves its pull in the sealed spool, and the app
// applies it the next time it opens its database. Two `CarePass` objects in one test process
// stand for the two processes: they share nothing but the data directory and the secret
// store (on a phone, the app group's container and the shared keychain access group).

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class NotificationExtensionTests: SandboxTestCase {
    func testAnExtensionHandlesADoorbellWhileTheAppIsOpenAndTheAppShowsTheBillOnce() async throws {
        let app = try makeClient()
        let token = try await signInWithPushToken(app)
        let nse = try makeClient(inExtension: true)
        XCTAssertEqual(try nse.profile?.personId, "P1001", "the extension reads the session from the vault")
        await assertThrowsCarePassError("NotInExtension", "the extension's database") {
            try nse.bills()
        }

        let (issued, data) = try await sandbox.issueAndRing(phone: Sandbox.zhangWei, token: token)
        let result = try await nse.handlePush(data)

        // What the extension words its notification from.
        guard case .pulled(let changes) = result else {
            return XCTFail("expected .pulled, got \(result)")
        }
        XCTAssertEqual(changes.map(\.bill.billId), [issued.billId])
        XCTAssertEqual(changes.first?.kind, .added)
        XCTAssertEqual(changes.first?.bill.totalFen, issued.totalFen)
        nse.close()

        // The app lists the bill once it next opens its database, which applies the spool.
        // `bills()` is a store read with no network, so the bill can only come from the
        // extension's spool. The database stays open for a short linger (300 ms) after each
        // use, so the condition is checked every second: each check opens it afresh.
        try await waitUntil(seconds: 10, every: 1, "the app to list the extension's bill") {
            try app.bills().contains { $0.billId == issued.billId }
        }
        XCTAssertEqual(try app.bills().filter { $0.billId == issued.billId }.count, 1)
        XCTAssertFalse(try app.pullOwed(), "the spool carried the rung doorbell and its change")

        // Nothing is pulled or listed twice afterwards.
        let newer = try await app.syncInbox()
        XCTAssertEqual(newer, [])
        let again = try await app.handlePush(data)
        XCTAssertEqual(again, .alreadySeen)
        XCTAssertEqual(try app.bills().filter { $0.billId == issued.billId }.count, 1)
    }
}
