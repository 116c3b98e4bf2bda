// E-voucher codes through the Swift facade against a running sandbox platform (see
// CarePassTests.swift for how to start it). Skipped when CAREPASS_SERVER is not set.

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class VoucherCodeTests: XCTestCase {
    /// Zhang Wei, person P1001 of the sandbox's demo seed.
    private static let phone = "13800000001"
    /// The sandbox accepts this code for every phone.
    private static let code = "123456"

    private var dataDir: URL!

    override func setUpWithError() throws {
        dataDir = FileManager.default.temporaryDirectory
            .appendingPathComponent("carepass-voucher-tests-\(UUID().uuidString)", isDirectory: true)
    }

    override func tearDownWithError() throws {
        if let dataDir {
            try? FileManager.default.removeItem(at: dataDir)
        }
    }

    func testCodesStreamStartsWithTheCurrentCode() async throws {
        let client = try makeClient()
        defer { client.close() }
        try await client.enrol(phone: Self.phone, code: Self.code)
        try await client.syncClock()

        var current = try client.currentCode(purpose: .outpatientSettlement)
        if current.secondsLeft < 3 {
            // Stay clear of a period boundary, so both reads fall in the same period.
            try await Task.sleep(nanoseconds: UInt64(current.secondsLeft + 1) * 1_000_000_000)
            current = try client.currentCode(purpose: .outpatientSettlement)
        }
        XCTAssertTrue(current.payload.hasPrefix("CP1:"))
        XCTAssertLessThanOrEqual(current.qrVersion, 7)

        var codes = client.codes(purpose: .outpatientSettlement).makeAsyncIterator()
        let first = try await codes.next()

        XCTAssertEqual(first?.payload, current.payload, "the same code within a period")
        XCTAssertEqual(first?.qrModules.count, Int(current.qrSize) * Int(current.qrSize))
        XCTAssertTrue(current.isDark(x: 0, y: 0), "the top-left finder pattern is dark")
        XCTAssertTrue(try current.svg().hasPrefix("<svg"))
    }

    func testOfflineCodeFitsQRVersion10() async throws {
        let client = try makeClient()
        defer { client.close() }
        try await client.enrol(phone: Self.phone, code: Self.code)

        let code = try client.currentCode(purpose: .pharmacyPurchase, offline: true)

        XCTAssertTrue(code.offline)
        XCTAssertLessThanOrEqual(code.qrVersion, 10)
    }

    func testClosingTheClientFinishesItsCodesStream() async throws {
        let client = try makeClient()
        try await client.enrol(phone: Self.phone, code: Self.code)
        var codes = client.codes(purpose: .registration).makeAsyncIterator()
        let first = try await codes.next()
        XCTAssertNotNil(first)

        client.close()

        var afterClose = try await codes.next()
        if afterClose != nil {
            afterClose = try await codes.next() // a rotation just before close() was buffered
        }
        XCTAssertNil(afterClose, "closing the client finishes the stream")
    }

    func testAfterLogoutCodesAreNotSignedIn() async throws {
        let client = try makeClient()
        defer { client.close() }
        try await client.enrol(phone: Self.phone, code: Self.code)
        try await client.logout()

        XCTAssertThrowsError(try client.currentCode(purpose: .registration)) { error in
            guard let carePassError = error as? CarePassError, case .NotSignedIn = carePassError else {
                return XCTFail("expected CarePassError.NotSignedIn, got \(error)")
            }
        }
        do {
            for try await _ in client.codes(purpose: .registration) {
                XCTFail("a code after logout")
            }
            XCTFail("the stream ended without an error")
        } catch CarePassError.NotSignedIn {
            // expected
        }
    }

    // MARK: - Helpers

    /// A client on the sandbox from CAREPASS_SERVER (or a skip), on this test's data
    /// directory, with a software device key and no logger.
    private func makeClient() throws -> CarePassClient {
        guard let server = ProcessInfo.processInfo.environment["CAREPASS_SERVER"], !server.isEmpty else {
            throw XCTSkip("CAREPASS_SERVER is not set: start the sandbox with the demo seed and set it to the sandbox's URL")
        }
        let config = CarePassConfig(
            serverUrl: server,
            dataDir: dataDir.path,
            deviceName: "VoucherCodeTests",
            platform: "ios",
            requestTimeoutMs: 10_000
        )
        return try CarePassClient(config: config, secretStore: MemorySecretStore(), keyStore: nil, logger: nil)
    }
}
