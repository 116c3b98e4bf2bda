// The shared settlement vectors (tests/vectors/settlement/cases.json) through the core's
// `settleJson`: each case settles `request` under `policies[policy]` and expects either the
// split (totals plus each line's deductible and fund) or a `Refused` error of the case's
// kind (the vectors' snake_case name of a `RefusalKind`). Needs no server. The vectors are
// read from the repository (or $CAREPASS_VECTORS_DIR); a missing or truncated file fails.

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class SettlementVectorTests: XCTestCase {

    /// Any JSON value, integers kept exact: amounts are Int64 fen, some at `Int64.max`, which
    /// a Double would round. Decoded with no key strategy, so the keys go back unchanged.
    private enum JSONValue: Codable, Equatable {
        case null
        case bool(Bool)
        case int(Int64)
        case double(Double)
        case string(String)
        case array([JSONValue])
        case object([String: JSONValue])

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Int64.self) {
                self = .int(value)
            } else if let value = try? container.decode(Double.self) {
                self = .double(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else if let value = try? container.decode([JSONValue].self) {
                self = .array(value)
            } else {
                self = .object(try container.decode([String: JSONValue].self))
            }
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .null: try container.encodeNil()
            case let .bool(value): try container.encode(value)
            case let .int(value): try container.encode(value)
            case let .double(value): try container.encode(value)
            case let .string(value): try container.encode(value)
            case let .array(value): try container.encode(value)
            case let .object(value): try container.encode(value)
            }
        }

        func json() throws -> String {
            String(decoding: try JSONEncoder().encode(self), as: UTF8.self)
        }
    }

    /// What a case checks, named as the vectors' `expect.settlement`.
    private struct Split: Decodable, Equatable {
        let total: Int64
        let fund: Int64
        let personalAccount: Int64
        let mutualAid: Int64
        let cash: Int64
        let firstSelfPay: Int64
        let outOfScope: Int64
        let eligible: Int64
        let deductibleApplied: Int64
        let capReached: Bool
        let lineDeductible: [Int64]
        let lineFund: [Int64]

        enum CodingKeys: String, CodingKey {
            case total, fund, cash, eligible
            case personalAccount = "personal_account"
            case mutualAid = "mutual_aid"
            case firstSelfPay = "first_self_pay"
            case outOfScope = "out_of_scope"
            case deductibleApplied = "deductible_applied"
            case capReached = "cap_reached"
            case lineDeductible = "line_deductible"
            case lineFund = "line_fund"
        }
    }

    /// The part of the `Settlement` JSON that `settleJson` returns which the vectors state.
    private struct Settlement: Decodable {
        struct Line: Decodable {
            let deductible: Int64
            let fund: Int64
        }

        let total: Int64
        let fund: Int64
        let personalAccount: Int64
        let mutualAid: Int64
        let cash: Int64
        let firstSelfPay: Int64
        let outOfScope: Int64
        let eligible: Int64
        let deductibleApplied: Int64
        let capReached: Bool
        let lines: [Line]

        enum CodingKeys: String, CodingKey {
            case total, fund, cash, eligible, lines
            case personalAccount = "personal_account"
            case mutualAid = "mutual_aid"
            case firstSelfPay = "first_self_pay"
            case outOfScope = "out_of_scope"
            case deductibleApplied = "deductible_applied"
            case capReached = "cap_reached"
        }

        var split: Split {
            Split(
                total: total, fund: fund, personalAccount: personalAccount, mutualAid: mutualAid,
                cash: cash, firstSelfPay: firstSelfPay, outOfScope: outOfScope, eligible: eligible,
                deductibleApplied: deductibleApplied, capReached: capReached,
                lineDeductible: lines.map(\.deductible), lineFund: lines.map(\.fund)
            )
        }
    }

    private struct Vectors: Decodable {
        struct Expect: Decodable {
            let settlement: Split?
            let error: String?
        }

        struct Case: Decodable {
            let name: String
            let policy: String
            let request: JSONValue
            let expect: Expect
        }

        let policies: [String: JSONValue]
        let caseCount: Int
        let cases: [Case]

        enum CodingKeys: String, CodingKey {
            case policies
            case caseCount = "case_count"
            case cases
        }
    }

    private var vectors: Vectors!

    override func setUpWithError() throws {
        try super.setUpWithError()
        try failingSetUp {
            try TestEnvironment.requireNativeLibrary()
            let url = try TestEnvironment.vectorFile("settlement/cases.json")
            vectors = try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
        }
    }

    /// `no_rule` → `noRule`: the vectors name a refusal kind as the wire does, the Swift enum
    /// in lowerCamelCase.
    private static func swiftCaseName(_ snakeCase: String) -> String {
        let words = snakeCase.split(separator: "_").map(String.init)
        guard let first = words.first else { return snakeCase }
        return first + words.dropFirst().map { $0.prefix(1).uppercased() + String($0.dropFirst()) }.joined()
    }

    func testEverySettlementVectorGetsItsSplitOrItsErrorKind() throws {
        XCTAssertGreaterThan(vectors.caseCount, 0, "a vector file with no cases")
        XCTAssertEqual(vectors.cases.count, vectors.caseCount, "the file says \(vectors.caseCount) cases")
        XCTAssertTrue(vectors.cases.contains { $0.expect.error != nil }, "no error case")

        var ran = 0
        for testCase in vectors.cases {
            let policy = try XCTUnwrap(vectors.policies[testCase.policy], "\(testCase.name): no policy \(testCase.policy)")
            let policyJson = try policy.json()
            let requestJson = try testCase.request.json()
            if let want = testCase.expect.settlement {
                do {
                    let answer = try settleJson(policyJson: policyJson, requestJson: requestJson)
                    let got = try JSONDecoder().decode(Settlement.self, from: Data(answer.utf8)).split
                    XCTAssertEqual(got, want, testCase.name)
                } catch let error as CarePassError {
                    XCTFail("\(testCase.name): refused (\(error)), expected a settlement")
                }
            } else if let kind = testCase.expect.error {
                do {
                    let answer = try settleJson(policyJson: policyJson, requestJson: requestJson)
                    XCTFail("\(testCase.name): settled as \(answer), expected \(kind)")
                } catch let CarePassError.Refused(got, reason) {
                    XCTAssertEqual(String(describing: got), Self.swiftCaseName(kind), "\(testCase.name): \(reason)")
                } catch let CarePassError.InvalidInput(field, reason) {
                    // A request or policy that does not decode (`docs/settlement.md` § 4).
                    XCTAssertEqual(kind, "malformed", "\(testCase.name): \(reason)")
                    XCTAssertEqual(field, .payload, testCase.name)
                } catch {
                    XCTFail("\(testCase.name): \(error), expected Refused(\(kind))")
                }
            } else {
                XCTFail("\(testCase.name): no expectation")
            }
            ran += 1
        }
        XCTAssertEqual(ran, vectors.cases.count, "every case ran")
        XCTAssertGreaterThanOrEqual(ran, 20)
    }

    func testTheVectorFilesDemoPolicyIsTheCoresDemoPolicy() throws {
        let demo = try JSONDecoder().decode(JSONValue.self, from: Data(demoSettlementPolicyJson().utf8))
        XCTAssertEqual(vectors.policies["demo"], demo)
    }

    func testJsonThatIsNotAPolicyOrARequestIsInvalidInput() throws {
        XCTAssertThrowsError(try settleJson(policyJson: "{}", requestJson: "{}")) { error in
            guard case CarePassError.InvalidInput(let field, _) = error else {
                return XCTFail("expected InvalidInput, got \(error)")
            }
            XCTAssertEqual(field, .payload)
        }
        XCTAssertThrowsError(try settleJson(policyJson: demoSettlementPolicyJson(), requestJson: "not json")) { error in
            guard case CarePassError.InvalidInput(let field, _) = error else {
                return XCTFail("expected InvalidInput, got \(error)")
            }
            XCTAssertEqual(field, .payload)
        }
    }
}
