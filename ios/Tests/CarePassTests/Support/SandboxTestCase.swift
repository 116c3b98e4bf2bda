// The base of the tests that talk to a platform: a fresh sandbox and a fresh data directory
// for every test, clients on them with an in-memory secret store and the core's software
// device key (an unsigned test runner has no Keychain access group), and the helpers the
// tests share: bounded waits, error-case checks, draining a stream.

import Foundation
import XCTest
import CarePass
import CarePassFFI

class SandboxTestCase: XCTestCase {
    /// This test's platform.
    private(set) var sandbox: Sandbox!
    /// This test's data directory.
    private(set) var dataDir: URL!
    /// The secret store of this test's clients (it holds the store's data key, so a client
    /// reopened on `dataDir` needs the same one).
    let secrets = MemorySecretStore()

    private var clients: [CarePassClient] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        dataDir = FileManager.default.temporaryDirectory
            .appendingPathComponent("carepass-swift-tests-\(UUID().uuidString)", isDirectory: true)
        try failingSetUp {
            sandbox = try Sandbox.start()
        }
    }

    override func tearDownWithError() throws {
        for client in clients {
            client.close()
        }
        clients.removeAll()
        sandbox?.stop()
        if let dataDir {
            try? FileManager.default.removeItem(at: dataDir)
        }
        try super.tearDownWithError()
    }

    /// A client on the sandbox and this test's data directory (closed in tearDown). A second
    /// phone passes its own `directory` (under this test's data directory, removed with it)
    /// and its own `secretStore`.
    func makeClient(
        inExtension: Bool = false,
        server: String? = nil,
        directory: String? = nil,
        secretStore: SecretStore? = nil
    ) throws -> CarePassClient {
        let config = CarePassConfig(
            serverUrl: server ?? sandbox.url,
            dataDir: directory.map { dataDir.appendingPathComponent($0, isDirectory: true).path } ?? dataDir.path,
            deviceName: "swift test",
            platform: "ios",
            requestTimeoutMs: 10_000,
            pinnedRootsPem: [],
            `extension`: inExtension
        )
        let client = try CarePassClient(config: config, secretStore: secretStore ?? secrets, keyStore: nil, logger: nil)
        clients.append(client)
        return client
    }

    /// Signs in as Zhang Wei, catches up with his inbox, and registers a fresh APNs token;
    /// returns the token.
    func signInWithPushToken(_ client: CarePassClient) async throws -> String {
        try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code)
        try await client.syncInbox()
        let token = "apns-token-\(UUID().uuidString)"
        try await client.registerPushToken(service: "apns", token: token)
        return token
    }
}

// MARK: - Helpers

/// The case name of a `CarePassError` (`"Closed"` for `.Closed(reason:)`), or a description
/// of what else `error` is.
func caseName(_ error: Error?) -> String {
    guard let error else { return "no error" }
    guard let carePassError = error as? CarePassError else { return "not a CarePassError: \(error)" }
    return Mirror(reflecting: carePassError).children.first?.label ?? "\(carePassError)"
}

/// Fails unless `body` throws the `CarePassError` case named `expected` (e.g. "Closed").
func assertThrowsCarePassError<T>(
    _ expected: String,
    _ message: String = "",
    file: StaticString = #filePath,
    line: UInt = #line,
    _ body: () async throws -> T
) async {
    do {
        let value = try await body()
        XCTFail("\(message): expected CarePassError.\(expected), got \(value)", file: file, line: line)
    } catch {
        XCTAssertEqual(caseName(error), expected, "\(message): \(error)", file: file, line: line)
    }
}

/// Reads `iterator` to its end: the error the stream ended with, or nil if it finished.
func drain<Iterator: AsyncIteratorProtocol>(_ iterator: inout Iterator) async -> Error? {
    do {
        while try await iterator.next() != nil {}
        return nil
    } catch {
        return error
    }
}

/// A wait that took too long.
struct TimedOut: Error, LocalizedError, CustomStringConvertible {
    let what: String
    let seconds: Double

    var description: String {
        "timed out after \(seconds) s waiting for \(what)"
    }

    var errorDescription: String? {
        description
    }
}

/// Carries a value that is not `Sendable` under every compiler (the generated records are
/// `Sendable` only with Swift 6) out of a child task.
struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
}

/// `body`'s result, or `TimedOut` after `seconds` (then `body`'s task is cancelled).
func withTimeout<T>(
    seconds: Double,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let result = try await withThrowingTaskGroup(of: Unchecked<T>.self, returning: Unchecked<T>.self) { group in
        group.addTask {
            let value = try await body()
            return Unchecked(value: value)
        }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
            throw TimedOut(what: what, seconds: seconds)
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else {
            throw TimedOut(what: what, seconds: seconds)
        }
        return first
    }
    return result.value
}

/// Returns once `condition` holds, checking every `interval` seconds; `TimedOut` after
/// `seconds`.
func waitUntil(
    seconds: Double,
    every interval: Double = 0.02,
    _ what: String,
    _ condition: () throws -> Bool
) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while try !condition() {
        guard Date() < deadline else {
            throw TimedOut(what: what, seconds: seconds)
        }
        try await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
    }
}

/// A session state as the tests compare it: `signedOut`, `signedIn(P1001)`, `ended`, or
/// `end` when the stream has no more values.
func describe(_ state: SessionState?) -> String {
    switch state {
    case nil:
        return "end"
    case .signedOut?:
        return "signedOut"
    case .signedIn(let profile)?:
        return "signedIn(\(profile.personId))"
    case .ended?:
        return "ended"
    }
}
