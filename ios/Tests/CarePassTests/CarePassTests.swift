// The Swift facade against a running sandbox platform: enrolment, reopening the store,
// the profile stream, a wrong verification code; and the insecure-URL check, which needs no
// server. Run on a Mac (see ios/README.md):
//
//     carepass-sandbox serve --listen 127.0.0.1:8787 --data /tmp/carepass-sandbox --seed demo
//     CAREPASS_SERVER=http://127.0.0.1:8787 swift test
//
// Tests that need the sandbox are skipped when CAREPASS_SERVER is not set.

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class CarePassTests: XCTestCase {
    /// Zhang Wei, person P1001 of the sandbox's demo seed.
    private static let phone = "13800000001"
    /// The sandbox accepts this code for every phone.
    private static let code = "123456"

    private var dataDir: URL!

    override func setUpWithError() throws {
        dataDir = FileManager.default.temporaryDirectory
            .appendingPathComponent("carepass-tests-\(UUID().uuidString)", isDirectory: true)
    }

    override func tearDownWithError() throws {
        if let dataDir {
            try? FileManager.default.removeItem(at: dataDir)
        }
    }

    // MARK: - Against the sandbox

    func testEnrolThenReopenFindsTheProfile() async throws {
        let server = try sandboxURL()
        let secrets = MemorySecretStore()

        let client = try makeClient(server: server, secrets: secrets)
        XCTAssertNil(client.profile)
        let profile = try await client.enrol(phone: Self.phone, code: Self.code)
        XCTAssertEqual(profile.personId, "P1001")
        XCTAssertEqual(profile.phoneMasked, "138****0001")
        XCTAssertEqual(profile.insuranceType, .employeeActive)
        XCTAssertFalse(profile.deviceId.isEmpty)
        XCTAssertEqual(client.profile, profile)
        client.close()
        XCTAssertTrue(client.isClosed)

        // Same data directory, same secret store (it holds the store's data key).
        let reopened = try makeClient(server: server, secrets: secrets)
        defer { reopened.close() }
        XCTAssertEqual(reopened.profile?.personId, profile.personId)
        let stored = try XCTUnwrap(try reopened.currentProfile())
        XCTAssertEqual(stored.personId, profile.personId)
        XCTAssertEqual(stored.deviceId, profile.deviceId)
        XCTAssertEqual(stored.name, profile.name)
    }

    func testProfilesStreamFollowsSignInAndLogout() async throws {
        let server = try sandboxURL()
        let client = try makeClient(server: server, secrets: MemorySecretStore())
        defer { client.close() }

        var updates = client.profiles.makeAsyncIterator()
        let initial: Profile?? = await updates.next()
        XCTAssertEqual(initial, .some(nil), "the stream starts with the current value: signed out")

        let profile = try await client.signIn(phone: Self.phone, code: Self.code)
        let signedIn: Profile?? = await updates.next()
        XCTAssertEqual(signedIn, .some(profile))

        try await client.logout()
        let signedOut: Profile?? = await updates.next()
        XCTAssertEqual(signedOut, .some(nil))
        XCTAssertNil(try client.currentProfile())

        client.close()
        let finished: Profile?? = await updates.next()
        XCTAssertEqual(finished, .none, "closing the client finishes the stream")
    }

    func testWrongVerificationCodeIsRefused() async throws {
        let server = try sandboxURL()
        let client = try makeClient(server: server, secrets: MemorySecretStore())
        defer { client.close() }

        do {
            _ = try await client.enrol(phone: Self.phone, code: "000000")
            XCTFail("enrolling with a wrong verification code succeeded")
        } catch CarePassError.WrongVerificationCode {
            // expected
        }
        XCTAssertNil(client.profile)
    }

    // MARK: - Without a server

    func testPlainHttpToAnotherHostIsRefused() throws {
        XCTAssertThrowsError(try self.makeClient(server: "http://example.com", secrets: MemorySecretStore())) { error in
            guard let carePassError = error as? CarePassError, case .InsecureServerUrl = carePassError else {
                return XCTFail("expected CarePassError.InsecureServerUrl, got \(error)")
            }
        }
    }

    // MARK: - Helpers

    /// The sandbox's base URL from CAREPASS_SERVER, or a skip.
    private func sandboxURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["CAREPASS_SERVER"], !url.isEmpty else {
            throw XCTSkip("CAREPASS_SERVER is not set: start the sandbox with the demo seed and set it to the sandbox's URL")
        }
        return url
    }

    /// A client on this test's data directory, with a software device key (no Secure Enclave
    /// or Keychain in an unsigned test runner) and no logger.
    private func makeClient(server: String, secrets: SecretStore) throws -> CarePassClient {
        let config = CarePassConfig(
            serverUrl: server,
            dataDir: dataDir.path,
            deviceName: "CarePassTests",
            platform: "ios",
            requestTimeoutMs: 10_000
        )
        return try CarePassClient(config: config, secretStore: secrets, keyStore: nil, logger: nil)
    }
}
