// The account flows through the Swift facade against the real sandbox: enrolment, reopening
// the store, the session stream, a wrong verification code, and the insecure-URL check.

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class AccountTests: SandboxTestCase {
    func testEnrolThenReopenFindsTheProfile() async throws {
        let client = try makeClient()
        XCTAssertEqual(try client.sessionState, .signedOut)
        XCTAssertNil(try client.profile)

        let profile = try await client.enrol(phone: Sandbox.zhangWei, code: Sandbox.code)

        XCTAssertEqual(profile.personId, "P1001")
        XCTAssertEqual(profile.phoneMasked, "138****0001")
        XCTAssertEqual(profile.insuranceType, .employeeActive)
        XCTAssertTrue(profile.deviceId.hasPrefix("dev_"))
        XCTAssertEqual(try client.sessionState, .signedIn(profile: profile))
        XCTAssertEqual(try client.profile, profile)
        client.close()

        // Same data directory, same secret store (it holds the store's data key).
        let reopened = try makeClient()
        XCTAssertEqual(try reopened.profile?.personId, profile.personId)
        let stored = try XCTUnwrap(try reopened.currentProfile())
        XCTAssertEqual(stored.personId, profile.personId)
        XCTAssertEqual(stored.deviceId, profile.deviceId)
        XCTAssertEqual(stored.name, profile.name)
    }

    func testTheSessionStreamStartsWithTheCurrentStateAndFollowsSignInAndLogout() async throws {
        let client = try makeClient()
        let states = try await withTimeout(seconds: 20, "the session states") { [client] () async throws -> [String] in
            var seen: [String] = []
            var iterator = client.sessionStates().makeAsyncIterator()
            let first = try await iterator.next()
            seen.append(describe(first))
            _ = try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code)
            let signedIn = try await iterator.next()
            seen.append(describe(signedIn))
            let signedOut = try await client.logout()
            seen.append(signedOut.revokedAtPlatform ? "revoked at the platform" : "not revoked")
            let afterLogout = try await iterator.next()
            seen.append(describe(afterLogout))
            client.close()
            let ended = await drain(&iterator)
            seen.append(caseName(ended))
            let afterError = try await iterator.next()
            seen.append(describe(afterError))
            return seen
        }

        XCTAssertEqual(states, [
            "signedOut", // the current value first
            "signedIn(P1001)",
            "revoked at the platform",
            "signedOut",
            "Closed", // the core's error ends the stream
            "end", // and nothing follows it
        ])
        await assertThrowsCarePassError("Closed") { try client.currentProfile() }
    }

    func testAWrongVerificationCodeIsRefused() async throws {
        let client = try makeClient()

        await assertThrowsCarePassError("WrongVerificationCode") {
            try await client.enrol(phone: Sandbox.zhangWei, code: "000000")
        }

        XCTAssertEqual(try client.sessionState, .signedOut)
        XCTAssertNil(try client.currentProfile())
    }

    func testAnInvalidPhoneIsInvalidInputNamingTheField() async throws {
        let client = try makeClient()

        do {
            _ = try await client.requestVerificationCode(phone: "12")
            XCTFail("a two-digit phone was accepted")
        } catch let CarePassError.InvalidInput(field, reason) {
            XCTAssertEqual(field, .phone, reason)
        }
    }

    func testPlainHttpToAnotherHostIsRefused() throws {
        XCTAssertThrowsError(try makeClient(server: "http://example.com")) { error in
            XCTAssertEqual(caseName(error), "InsecureServerUrl", "\(error)")
        }
    }
}
