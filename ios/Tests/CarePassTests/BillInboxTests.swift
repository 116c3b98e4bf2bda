// Pending bills through the Swift facade against a running sandbox platform, whose admin
// routes play the clinic (issue a bill) and the push relay (the outbox holds the data map
// APNs would deliver). Run on a Mac with the admin routes on:
//
//     export CAREPASS_ADMIN_TOKEN=test-admin-token
//     carepass-sandbox serve --listen 127.0.0.1:8787 --data /tmp/carepass-sandbox --seed demo
//     CAREPASS_SERVER=http://127.0.0.1:8787 swift test --filter BillInboxTests
//
// Skipped when CAREPASS_SERVER or CAREPASS_ADMIN_TOKEN is not set.

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class BillInboxTests: XCTestCase {
    /// Zhang Wei, person P1001 of the sandbox's demo seed.
    private static let phone = "13800000001"
    /// The sandbox accepts this code for every phone.
    private static let code = "123456"

    private var dataDir: URL!

    override func setUpWithError() throws {
        dataDir = FileManager.default.temporaryDirectory
            .appendingPathComponent("carepass-bill-tests-\(UUID().uuidString)", isDirectory: true)
    }

    override func tearDownWithError() throws {
        if let dataDir {
            try? FileManager.default.removeItem(at: dataDir)
        }
    }

    func testABillReachesTheAppThroughThePushRelay() async throws {
        let admin = try SandboxAdmin.fromEnvironment()
        let client = try makeClient(server: admin.server)
        defer { client.close() }
        let token = try await signInWithPushToken(client)

        let (issued, data) = try await admin.issueAndRing(phone: Self.phone, token: token)

        // The doorbell says who and which change, signed: nothing about the bill itself.
        XCTAssertEqual(Set(data.keys), ["v", "k", "r", "s", "t", "g"])
        XCTAssertEqual(data["r"], "P1001")
        XCTAssertFalse(data.values.contains { $0.contains(issued.billId) })

        let result = try await client.handlePush(data)

        guard case .pulled(let changes) = result else {
            return XCTFail("expected .pulled, got \(result)")
        }
        XCTAssertEqual(changes.map(\.bill.billId), [issued.billId])
        XCTAssertEqual(changes.first?.kind, .added)
        XCTAssertEqual(changes.first?.bill.totalFen, issued.totalFen)
        XCTAssertEqual(changes.first?.bill.state, .pending)
        XCTAssertFalse(try client.pullOwed())

        let again = try await client.handlePush(data)
        XCTAssertEqual(again, .alreadySeen, "APNs may deliver twice")

        // The same doorbell as an APNs userInfo, next to `aps`.
        var userInfo: [AnyHashable: Any] = ["aps": ["content-available": 1]]
        for (key, value) in data {
            userInfo[key] = value
        }
        let fromUserInfo = try await client.handlePush(userInfo: userInfo)
        XCTAssertEqual(fromUserInfo, .alreadySeen)
        XCTAssertEqual(try client.bills().filter { $0.billId == issued.billId }.count, 1)
    }

    func testAForgedOrEmptyDoorbellIsInvalidPushAndAddsNothing() async throws {
        let admin = try SandboxAdmin.fromEnvironment()
        let client = try makeClient(server: admin.server)
        defer { client.close() }
        let token = try await signInWithPushToken(client)
        let (issued, genuine) = try await admin.issueAndRing(phone: Self.phone, token: token)

        var otherSequence = genuine
        otherSequence["s"] = String((UInt64(genuine["s"] ?? "") ?? 0) + 1)
        let refused: [(String, [String: String])] = [
            ("another sequence", otherSequence),
            ("not a doorbell", ["title": "hello"]),
            ("empty", [:]),
        ]
        for (what, data) in refused {
            do {
                let result = try await client.handlePush(data)
                XCTFail("\(what): accepted as \(result)")
            } catch CarePassError.InvalidPush {
                // expected
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

    func testABillReachesTheInboxChangesStream() async throws {
        let admin = try SandboxAdmin.fromEnvironment()
        let client = try makeClient(server: admin.server)
        defer { client.close() }
        try await client.enrol(phone: Self.phone, code: Self.code)
        try await client.syncInbox()

        // Not pulled by anyone: the stream starts from the cursor, so it brings it.
        let issued = try await admin.issueBill(phone: Self.phone)
        let billId = issued.billId
        let change = try await Self.withTimeout(seconds: 10) { () async throws -> InboxChange in
            for try await change in client.inboxChanges() where change.bill.billId == billId {
                return change
            }
            throw StreamEnded()
        }

        XCTAssertEqual(change.kind, .added)
        XCTAssertEqual(change.bill.totalFen, issued.totalFen)
        XCTAssertEqual(change.bill.personId, "P1001")
        // Committed to the store before it was yielded.
        XCTAssertEqual(try client.bills().filter { $0.billId == billId }, [change.bill])
        let newer = try await client.syncInbox()
        XCTAssertEqual(newer, [])
    }

    // MARK: - Helpers

    private struct StreamEnded: Error {}

    private struct TimedOut: Error {
        let seconds: UInt64
    }

    /// Enrols as Zhang Wei, catches up with the bills earlier tests issued to him, and
    /// registers a fresh APNs token; returns it.
    private func signInWithPushToken(_ client: CarePassClient) async throws -> String {
        try await client.enrol(phone: Self.phone, code: Self.code)
        try await client.syncInbox()
        let token = "apns-token-\(UUID().uuidString)"
        try await client.registerPushToken(service: "apns", token: token)
        return token
    }

    /// A client on the sandbox, on this test's data directory, with a software device key
    /// and no logger.
    private func makeClient(server: String) throws -> CarePassClient {
        let config = CarePassConfig(
            serverUrl: server,
            dataDir: dataDir.path,
            deviceName: "BillInboxTests",
            platform: "ios",
            requestTimeoutMs: 10_000
        )
        return try CarePassClient(config: config, secretStore: MemorySecretStore(), keyStore: nil, logger: nil)
    }

    /// `body`'s result, or `TimedOut` after `seconds` (then `body` is cancelled).
    private static func withTimeout<T: Sendable>(
        seconds: UInt64,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask {
                try await body()
            }
            group.addTask {
                try await Task.sleep(nanoseconds: seconds * 1_000_000_000)
                throw TimedOut(seconds: seconds)
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else {
                throw TimedOut(seconds: seconds)
            }
            return first
        }
    }
}

/// The sandbox's admin routes, with the admin token: the clinic issues bills, and the relay
/// outbox holds each doorbell the platform handed a push service.
private struct SandboxAdmin {
    /// The sandbox's URL, without a trailing slash.
    let server: String
    let token: String

    struct IssuedBill: Decodable {
        let billId: String
        let totalFen: Int64

        enum CodingKeys: String, CodingKey {
            case billId = "bill_id"
            case totalFen = "total_fen"
        }
    }

    struct OutboxPage: Decodable {
        let pushes: [Item]
        let cursor: UInt64

        struct Item: Decodable {
            let push: Push
        }

        struct Push: Decodable {
            let service: String
            let token: String
            /// The data map the push service delivers to the app.
            let data: [String: String]
        }
    }

    static func fromEnvironment() throws -> SandboxAdmin {
        let environment = ProcessInfo.processInfo.environment
        guard var server = environment["CAREPASS_SERVER"], !server.isEmpty else {
            throw XCTSkip("CAREPASS_SERVER is not set: start the sandbox with the demo seed and set it to the sandbox's URL")
        }
        guard let token = environment["CAREPASS_ADMIN_TOKEN"], !token.isEmpty else {
            throw XCTSkip("CAREPASS_ADMIN_TOKEN is not set: start the sandbox with --admin-token and set it to that token")
        }
        while server.hasSuffix("/") {
            server.removeLast()
        }
        return SandboxAdmin(server: server, token: token)
    }

    /// Issues a bill to the patient who owns `phone`: `POST /admin/v1/bills`.
    func issueBill(phone: String) async throws -> IssuedBill {
        let body: [String: Any] = [
            "phone": phone,
            "hospital": "市第一人民医院",
            "department": "内科",
            "doctor": "李医生",
            "items": [
                ["item_code": "110200001", "name": "普通门诊诊查费", "category": "A", "quantity": 1, "unit_price_fen": 2500],
            ],
        ]
        return try await send("POST", "/admin/v1/bills", body: try JSONSerialization.data(withJSONObject: body))
    }

    /// The relay outbox after entry `after`: `GET /admin/v1/push-outbox`.
    func outbox(after: UInt64) async throws -> OutboxPage {
        try await send("GET", "/admin/v1/push-outbox?after=\(after)", body: nil)
    }

    /// Issues a bill to `phone` and returns it with the data map of its doorbell to `token`.
    func issueAndRing(phone: String, token: String) async throws -> (IssuedBill, [String: String]) {
        let before = try await outbox(after: 0).cursor
        let issued = try await issueBill(phone: phone)
        let pushes = try await outbox(after: before).pushes.filter { $0.push.token == token }
        XCTAssertEqual(pushes.count, 1, "one doorbell per registered token")
        let push = try XCTUnwrap(pushes.first).push
        XCTAssertEqual(push.service, "apns")
        return (issued, push.data)
    }

    private func send<T: Decodable>(_ method: String, _ path: String, body: Data?) async throws -> T {
        guard let url = URL(string: server + path) else {
            throw URLError(.badURL)
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 10
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            throw NSError(
                domain: "SandboxAdmin",
                code: status,
                userInfo: [NSLocalizedDescriptionKey: "\(method) \(path) answered \(status): \(String(decoding: data, as: UTF8.self))"]
            )
        }
        return try JSONDecoder().decode(T.self, from: data)
    }
}
