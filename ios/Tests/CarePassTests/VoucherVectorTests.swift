// The shared voucher-code vectors (tests/vectors/voucher/codes.json) through the core's
// `VoucherVerifier`, as a scanner terminal app runs it. Needs no server. The vectors are read
// from the repository (or $CAREPASS_VECTORS_DIR); a missing or truncated file fails the test.

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class VoucherVectorTests: XCTestCase {

    /// `tests/vectors/voucher/codes.json`; see its `how_to_run`.
    private struct Vectors: Decodable {
        struct Issuer: Decodable {
            let keyId: UInt16
            let publicKeyHex: String
        }

        struct Device: Decodable {
            let deviceId: String
            let publicKeyHex: String
        }

        struct Case: Decodable {
            let name: String
            let payload: String
            let purpose: String
            let nowMs: Int64
            let seenBefore: Bool?
            /// The payload to show first when `seenBefore` (the case's own payload if absent).
            let firstPayload: String?
            /// This case's skew allowance (the file's when absent).
            let skewMs: Int64?
            let expect: String
        }

        let issuers: [Issuer]
        let revokedDeviceIds: [String]
        let skewMs: Int64
        let directory: [Device]
        let caseCount: Int
        let cases: [Case]
    }

    private var vectors: Vectors!
    private var issuers: [IssuerKey] = []
    private var directory: [DirectoryDevice] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        try failingSetUp {
            try TestEnvironment.requireNativeLibrary()
            let url = try TestEnvironment.vectorFile("voucher/codes.json")
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            vectors = try decoder.decode(Vectors.self, from: Data(contentsOf: url))
            issuers = try vectors.issuers.map { IssuerKey(keyId: $0.keyId, publicKey: try Self.bytes(hex: $0.publicKeyHex)) }
            directory = try vectors.directory.map {
                DirectoryDevice(deviceId: $0.deviceId, publicKey: try Self.bytes(hex: $0.publicKeyHex), revoked: false)
            }
        }
    }

    func testEveryVectorGetsItsExpectedVerdictFromAFreshVerifier() throws {
        XCTAssertGreaterThan(vectors.caseCount, 0, "a vector file with no cases")
        XCTAssertEqual(vectors.cases.count, vectors.caseCount, "the file says \(vectors.caseCount) cases")
        XCTAssertTrue(vectors.cases.contains { $0.seenBefore == true }, "no replay case")

        var ran = 0
        for testCase in vectors.cases {
            guard let purpose = Self.purpose(testCase.purpose) else {
                // An unknown purpose name is refused before any check: no verdict at all.
                XCTAssertEqual(testCase.expect, "invalid_purpose", testCase.name)
                ran += 1
                continue
            }
            let verifier = try makeVerifier(skewMs: testCase.skewMs ?? vectors.skewMs)
            if testCase.seenBefore == true {
                let first = try verifier.verify(
                    payload: testCase.firstPayload ?? testCase.payload, purpose: purpose, nowMs: testCase.nowMs,
                    directory: directory
                )
                XCTAssertTrue(first.accepted, "\(testCase.name): first sight was \(Self.outcome(first))")
            }
            let verdict = try verifier.verify(
                payload: testCase.payload, purpose: purpose, nowMs: testCase.nowMs, directory: directory
            )
            XCTAssertEqual(Self.outcome(verdict), testCase.expect, testCase.name)
            if verdict.accepted {
                XCTAssertEqual(verdict.purpose, purpose, testCase.name)
                XCTAssertEqual(verdict.deviceId?.hasPrefix("dev_"), true, testCase.name)
            }
            ran += 1
        }
        XCTAssertEqual(ran, vectors.cases.count, "every case ran")
    }

    func testEachVerifierHasItsOwnReplayCacheAndRevocationList() throws {
        let valid = try XCTUnwrap(vectors.cases.first { $0.name == "valid online" })
        let purpose = try XCTUnwrap(Self.purpose(valid.purpose))

        let scanner = try makeVerifier()
        let accepted = try scanner.verify(payload: valid.payload, purpose: purpose, nowMs: valid.nowMs, directory: directory)
        XCTAssertTrue(accepted.accepted, Self.outcome(accepted))
        let again = try scanner.verify(payload: valid.payload, purpose: purpose, nowMs: valid.nowMs, directory: directory)
        XCTAssertEqual(again.reason, "replayed")

        let other = try makeVerifier()
        try other.setRevoked(deviceIds: [try XCTUnwrap(accepted.deviceId)])
        let revoked = try other.verify(payload: valid.payload, purpose: purpose, nowMs: valid.nowMs, directory: directory)
        XCTAssertEqual(revoked.reason, "revoked")
        try other.setRevoked(deviceIds: [])
        let fresh = try other.verify(payload: valid.payload, purpose: purpose, nowMs: valid.nowMs, directory: directory)
        XCTAssertTrue(fresh.accepted, "another verifier's replay cache: \(Self.outcome(fresh))")
    }

    // MARK: - Helpers

    private func makeVerifier(skewMs: Int64? = nil) throws -> VoucherVerifier {
        try VoucherVerifier(
            issuers: issuers, revokedDeviceIds: vectors.revokedDeviceIds, skewMs: skewMs ?? vectors.skewMs
        )
    }

    /// `accepted`, or the rejection reason, as the vectors' `expect` says it.
    private static func outcome(_ verdict: ScanVerdict) -> String {
        verdict.accepted ? "accepted" : (verdict.reason ?? "rejected without a reason")
    }

    /// The purpose a name stands for: the four names exactly as `docs/voucher-code.md` spells
    /// them; nil for any other string.
    private static func purpose(_ name: String) -> CodePurpose? {
        switch name {
        case "registration": return .registration
        case "outpatient_settlement": return .outpatientSettlement
        case "pharmacy_purchase": return .pharmacyPurchase
        case "prescription_download": return .prescriptionDownload
        default: return nil
        }
    }

    private static func bytes(hex: String) throws -> Data {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { throw VectorError.badHex(hex) }
        var data = Data(capacity: digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else {
                throw VectorError.badHex(hex)
            }
            data.append(high << 4 | low)
            index += 2
        }
        return data
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private enum VectorError: Error {
        case badHex(String)
    }
}
