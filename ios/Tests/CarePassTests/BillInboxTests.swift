// Pending bills through the Swift facade against the real sandbox, whose admin routes play
// the clinic (issue a bill) and the push relay (its outbox holds the data map APNs would
// deliver): the push hand-over, refused doorbells, and the inbox stream.

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class BillInboxTests: SandboxTestCase {
    func testABillReachesTheAppThroughThePushRelay() async throws {
        let client = try makeClient()
        let token = try await signInWithPushToken(client)

        let (issued, data) = try await sandbox.issueAndRing(phone: Sandbox.zhangWei, token: token)

        // The doorbell says who and which change, signed: nothing about the bill itself.
        XCTAssertEqual(Set(data.keys), ["v", "k", "r", "s", "t", "g"])
        XCTAssertEqual(data["r"], "P1001")
        XCTAssertFalse(data.values.contains { $0.contains(issued.billId) })
        XCTAssertTrue(CarePassClient.isCarePassPush(data))

        let result = try await client.handlePush(data)

        guard case .pulled(let changes) = result else {
            return XCTFail("expected .pulled, got \(result)")
        }
        XCTAssertEqual(changes.map(\.bill.billId), [issued.billId])
        XCTAssertEqual(changes.first?.kind, .added)
        XCTAssertEqual(changes.first?.bill.totalFen, issued.totalFen)
        XCTAssertEqual(changes.first?.bill.state, .pending)
        XCTAssertEqual(changes.first?.bill.items.map(\.category), [.a], "category A on the wire")
        XCTAssertFalse(try client.pullOwed())

        let again = try await client.handlePush(data)
        XCTAssertEqual(again, .alreadySeen, "APNs may deliver twice")

        // The same doorbell as an APNs userInfo, next to `aps`.
        var userInfo: [AnyHashable: Any] = ["aps": ["content-available": 1]]
        for (key, value) in data {
            userInfo[key] = value
        }
        XCTAssertTrue(CarePassClient.isCarePassPush(userInfo: userInfo))
        let fromUserInfo = try await client.handlePush(userInfo: userInfo)
        XCTAssertEqual(fromUserInfo, .alreadySeen)
        XCTAssertEqual(try client.bills().filter { $0.billId == issued.billId }.count, 1)
    }

    func testAForgedOrMalformedDoorbellIsInvalidPushOfItsKindAndAddsNothing() async throws {
        let client = try makeClient()
        let token = try await signInWithPushToken(client)
        let (issued, genuine) = try await sandbox.issueAndRing(phone: Sandbox.zhangWei, token: token)

        var otherSequence = genuine
        otherSequence["s"] = String((UInt64(genuine["s"] ?? "") ?? 0) + 1)
        let refused: [(String, [String: String], PushRefusal)] = [
            ("another sequence", otherSequence, .forged),
            ("not a doorbell", ["title": "hello"], .malformed),
            ("empty", [:], .malformed),
        ]
        for (what, data, kind) in refused {
            do {
                let result = try await client.handlePush(data)
                XCTFail("\(what): accepted as \(result)")
            } catch let CarePassError.InvalidPush(got, reason) {
                XCTAssertEqual(got, kind, "\(what): \(reason)")
            }
        }

        XCTAssertFalse(try client.bills().contains { $0.billId == issued.billId })
        XCTAssertFalse(try client.pullOwed(), "a refused doorbell is not remembered")
        let result = try await client.handlePush(genuine)
        guard case .pulled(let changes) = result else {
            return XCTFail("the genuine doorbell: expected .pulled, got \(result)")
        }
        XCTAssertEqual(changes.map(\.bill.billId), [issued.billId])
    }

    func testTheInboxStreamStartsWithTheStoredBillsThenBringsANewBill() async throws {
        let client = try makeClient()
        try await client.enrol(phone: Sandbox.zhangWei, code: Sandbox.code)
        try await client.syncInbox()
        let stored = try client.bills()
        let sandbox = self.sandbox!

        let (first, issued, update) = try await withTimeout(seconds: 20, "the new bill on the inbox stream") { [client, sandbox] () async throws -> (InboxUpdate?, Sandbox.IssuedBill, InboxUpdate?) in
            var updates = client.inbox().makeAsyncIterator()
            let first = try await updates.next()
            // Not pulled by anyone: the live connection brings it.
            let issued = try await sandbox.issueBill(phone: Sandbox.zhangWei)
            while let update = try await updates.next() {
                if update.changes.contains(where: { $0.bill.billId == issued.billId }) {
                    return (first, issued, update)
                }
            }
            return (first, issued, nil)
        }

        XCTAssertEqual(first?.subject, "P1001")
        XCTAssertEqual(first?.bills, stored, "the current value first: the stored bills")
        XCTAssertEqual(first?.changes, [], "the first update has no changes")
        let got = try XCTUnwrap(update, "the stream ended without the bill")
        let change = try XCTUnwrap(got.changes.first { $0.bill.billId == issued.billId })
        XCTAssertEqual(change.kind, .added)
        XCTAssertEqual(change.bill.totalFen, issued.totalFen)
        XCTAssertEqual(change.bill.personId, "P1001")
        XCTAssertEqual(got.bills.filter { $0.billId == issued.billId }, [change.bill], "the update lists it once")
        // Committed to the store before it was yielded.
        XCTAssertEqual(try client.bills().filter { $0.billId == issued.billId }, [change.bill])
        let newer = try await client.syncInbox()
        XCTAssertEqual(newer, [])
    }
}
