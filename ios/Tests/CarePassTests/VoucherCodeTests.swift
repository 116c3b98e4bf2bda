// E-voucher codes through the Swift facade against the real sandbox: the current code, the
// codes stream (the core's rotation schedule and de-duplication), the offline profile, and
// how the stream ends.

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class VoucherCodeTests: SandboxTestCase {
    func testTheCodesStreamStartsWithTheCurrentCode() async throws {
        let client = try makeClient()
        try await client.enrol(phone: Sandbox.zhangWei, code: Sandbox.code)
        try await client.syncClock()

        let (first, current, next) = try await withTimeout(seconds: 40, "the first codes") { [client] () async throws -> (VoucherCode?, VoucherCode, VoucherCode?) in
            var codes = client.codes(purpose: .outpatientSettlement).makeAsyncIterator()
            let first = try await codes.next()
            let current = try client.currentCode(purpose: .outpatientSettlement)
            // A rotation between the two reads: the stream's next code is the new one.
            var next: VoucherCode? = nil
            if current.payload != first?.payload {
                next = try await codes.next()
            }
            return (first, current, next)
        }

        let code = try XCTUnwrap(first, "the stream ended before its first code")
        if let next {
            XCTAssertGreaterThan(current.validFromMs, code.validFromMs, "only a rotation separates the two reads")
            XCTAssertEqual(next.payload, current.payload, "the stream's next code is the current one")
        } else {
            XCTAssertEqual(code.payload, current.payload, "the same code within a period")
        }
        XCTAssertTrue(code.payload.hasPrefix("CP1:"))
        XCTAssertLessThanOrEqual(code.qrVersion, 7)
        XCTAssertEqual(code.qrModules.count, Int(code.qrSize) * Int(code.qrSize))
        XCTAssertTrue(code.isDark(x: 0, y: 0), "the top-left finder pattern is dark")
        XCTAssertTrue(try code.svg().hasPrefix("<svg"))
    }

    func testAnOfflineCodeFitsQRVersion10() async throws {
        let client = try makeClient()
        try await client.enrol(phone: Sandbox.zhangWei, code: Sandbox.code)

        let code = try client.currentCode(purpose: .pharmacyPurchase, offline: true)

        XCTAssertTrue(code.offline)
        XCTAssertLessThanOrEqual(code.qrVersion, 10)
    }

    func testClosingTheClientEndsItsCodesStreamWithClosed() async throws {
        let client = try makeClient()
        try await client.enrol(phone: Sandbox.zhangWei, code: Sandbox.code)

        let (sawCode, ended) = try await withTimeout(seconds: 20, "the codes stream to end") { [client] () async throws -> (Bool, String) in
            var codes = client.codes(purpose: .registration).makeAsyncIterator()
            let first = try await codes.next()
            client.close()
            let error = await drain(&codes)
            return (first != nil, caseName(error))
        }

        XCTAssertTrue(sawCode)
        XCTAssertEqual(ended, "Closed")
    }

    func testAfterLogoutCodesAreNotSignedIn() async throws {
        let client = try makeClient()
        try await client.enrol(phone: Sandbox.zhangWei, code: Sandbox.code)
        try await client.logout()

        await assertThrowsCarePassError("NotSignedIn") {
            try client.currentCode(purpose: .registration)
        }
        let ended = try await withTimeout(seconds: 20, "the codes stream to end") { [client] () async -> String in
            var codes = client.codes(purpose: .registration).makeAsyncIterator()
            let error = await drain(&codes)
            return caseName(error)
        }
        XCTAssertEqual(ended, "NotSignedIn")
    }
}
