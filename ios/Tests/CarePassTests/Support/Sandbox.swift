// The real sandbox platform (`carepass-sandbox serve`) for one test: a free loopback port, a
// temporary data directory, the demo seed, and an admin token for the routes that play the
// clinic, the push relay and the platform's operator. Started with Foundation's `Process`,
// as android/carepass/src/test/kotlin/app/carepass/Sandbox.kt starts it with ProcessBuilder.

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class Sandbox: @unchecked Sendable {
    // @unchecked: every stored property is a `let`; `Process` is only touched by `stop()`.

    /// Zhang Wei, person P1001 of the demo seed (`docs/sandbox.md`).
    static let zhangWei = "13800000001"
    /// The verification code the sandbox accepts for every phone.
    static let code = "123456"
    /// Zhang Wei's chronic prescription in the demo seed.
    static let zhangWeiPrescription = "rx_p1001_chronic"
    /// Near Zhang Wei's home in the demo city.
    static let homeLat = 30.5952
    static let homeLon = 114.2999

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    let url: String

    private let process: Process
    private let directory: URL
    private let adminToken: String

    private init(process: Process, directory: URL, url: String, adminToken: String) {
        self.process = process
        self.directory = directory
        self.url = url
        self.adminToken = adminToken
    }

    /// Starts a sandbox and waits (at most 30 s) for its "listening on" line. Fails, saying
    /// where it looked, when the core library or the sandbox binary is missing.
    static func start() throws -> Sandbox {
        try TestEnvironment.requireNativeLibrary()
        let binary = try TestEnvironment.sandboxBinary()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("carepass-sandbox-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let log = directory.appendingPathComponent("sandbox.log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
            throw SetupFailure("cannot create \(log.path)")
        }
        let adminToken = UUID().uuidString

        let process = Process()
        process.executableURL = binary
        process.arguments = [
            "serve",
            "--listen", "127.0.0.1:0",
            "--data", directory.appendingPathComponent("platform", isDirectory: true).path,
            "--seed", "demo",
            "--admin-token", adminToken,
        ]
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "CAREPASS_ADMIN_TOKEN")
        process.environment = environment
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardInput = FileHandle.nullDevice
        try process.run()

        let firstLine = FirstLineReader(stdout.fileHandleForReading)
        let prefix = "listening on "
        guard let line = firstLine.wait(seconds: 30), line.hasPrefix(prefix + "http://") else {
            let sandbox = Sandbox(process: process, directory: directory, url: "", adminToken: adminToken)
            let logText = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            sandbox.stop()
            throw SetupFailure("the sandbox \(binary.path) did not start (first line: \(firstLine.line ?? "none")); its log:\n\(logText)")
        }
        var url = String(line.dropFirst(prefix.count)).trimmingCharacters(in: .whitespacesAndNewlines)
        while url.hasSuffix("/") {
            url.removeLast()
        }
        return Sandbox(process: process, directory: directory, url: url, adminToken: adminToken)
    }

    /// Stops the sandbox (SIGTERM, then SIGKILL after 5 s) and removes its directory.
    func stop() {
        if process.isRunning {
            process.terminate()
        }
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        if process.isRunning {
            _ = kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: - Admin routes

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

    private struct Revoked: Decodable {
        let revoked: Bool
    }

    /// A person's personal account as the admin route answers it.
    private struct Account: Decodable {
        let balanceFen: Int64

        enum CodingKeys: String, CodingKey {
            case balanceFen = "account_balance_fen"
        }
    }

    /// Issues a bill to the patient who owns `phone` as the clinic: `POST /admin/v1/bills`
    /// (one A-category line of 25 yuan).
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
        let data = try await send("POST", "/admin/v1/bills", json: body)
        return try JSONDecoder().decode(IssuedBill.self, from: data)
    }

    /// Issues the demo seed's bill to the patient who owns `phone` as the clinic: a
    /// chronic-disease follow-up (`chronic_outpatient`, no deductible) of seven lines in the
    /// three categories, 511.20 yuan, so that the pooled fund, the personal account and the
    /// cash all pay a part of it (`sandbox/src/seed.rs`, `demo_bill_items`).
    func issueDemoBill(phone: String) async throws -> IssuedBill {
        let body: [String: Any] = [
            "phone": phone,
            "hospital": "示例市第一人民医院 Demo City First People's Hospital",
            "department": "心血管内科 Cardiology",
            "doctor": "王医生 Dr Wang",
            "visit_type": "chronic_outpatient",
            "items": [
                Self.item("110200001", "普通门诊诊查费 Outpatient consultation", "A", 1, 2_500),
                Self.item("250102015", "糖化血红蛋白测定 HbA1c test", "A", 1, 6_000),
                Self.item("250301001", "血清总胆固醇测定 Serum cholesterol", "A", 1, 1_500),
                Self.item("XC08CAA010A001010100981", "苯磺酸氨氯地平片 5mg Amlodipine (28 tablets)", "A", 2, 1_680),
                Self.item("XA10BAD024A001010104402", "盐酸二甲双胍缓释片 0.5g Metformin XR (30 tablets)", "A", 2, 2_350),
                Self.item("XC10AAA150A001010100264", "阿托伐他汀钙片 20mg Atorvastatin (7 tablets)", "B", 4, 3_290),
                Self.item("ZZ0000000001", "血压计 Home blood-pressure monitor", "C", 1, 19_900),
            ],
        ]
        let data = try await send("POST", "/admin/v1/bills", json: body)
        return try JSONDecoder().decode(IssuedBill.self, from: data)
    }

    /// One line of a bill to issue, as `POST /admin/v1/bills` takes it.
    private static func item(
        _ code: String,
        _ name: String,
        _ category: String,
        _ quantity: Int,
        _ unitPriceFen: Int
    ) -> [String: Any] {
        ["item_code": code, "name": name, "category": category, "quantity": quantity, "unit_price_fen": unitPriceFen]
    }

    /// Sets a person's personal account balance (`POST /admin/v1/accounts/{person_id}`).
    func setBalance(personId: String, fen: Int64) async throws {
        let data = try await send("POST", "/admin/v1/accounts/\(personId)", json: ["balance_fen": Int(fen)])
        let account = try JSONDecoder().decode(Account.self, from: data)
        guard account.balanceFen == fen else {
            throw SetupFailure("the sandbox set \(personId)'s balance to \(account.balanceFen), not \(fen)")
        }
    }

    /// A person's personal account balance in fen (`GET /admin/v1/accounts/{person_id}`).
    func balance(personId: String) async throws -> Int64 {
        let data = try await send("GET", "/admin/v1/accounts/\(personId)", json: nil)
        return try JSONDecoder().decode(Account.self, from: data).balanceFen
    }

    /// The relay outbox after entry `after`: `GET /admin/v1/push-outbox`.
    func outbox(after: UInt64) async throws -> OutboxPage {
        let data = try await send("GET", "/admin/v1/push-outbox?after=\(after)", json: nil)
        return try JSONDecoder().decode(OutboxPage.self, from: data)
    }

    /// Issues a bill to `phone` and returns it with the data map of its one doorbell to
    /// `token`, as the push service would deliver it.
    func issueAndRing(phone: String, token: String) async throws -> (IssuedBill, [String: String]) {
        let before = try await outbox(after: 0).cursor
        let issued = try await issueBill(phone: phone)
        let pushes = try await outbox(after: before).pushes.filter { $0.push.token == token }
        guard pushes.count == 1, let push = pushes.first?.push else {
            throw SetupFailure("expected one doorbell to \(token), the relay has \(pushes.count)")
        }
        guard push.service == "apns" else {
            throw SetupFailure("the doorbell went to \(push.service), not apns")
        }
        return (issued, push.data)
    }

    /// Revokes a device as the platform's operator (`POST /admin/v1/devices/{id}/revoke`):
    /// its sessions end at the platform, and the phone learns it at its next call.
    func revokeDevice(_ deviceId: String) async throws {
        let data = try await send("POST", "/admin/v1/devices/\(deviceId)/revoke", json: nil)
        let answer = try JSONDecoder().decode(Revoked.self, from: data)
        guard answer.revoked else {
            throw SetupFailure("the sandbox did not revoke \(deviceId)")
        }
    }

    /// A request with the admin token; the body of a 200 answer.
    private func send(_ method: String, _ path: String, json: Any?) async throws -> Data {
        guard let url = URL(string: self.url + path) else {
            throw SetupFailure("not a URL: \(self.url + path)")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 10
        request.setValue("Bearer \(adminToken)", forHTTPHeaderField: "Authorization")
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, status) = try await Self.perform(request)
        guard status == 200 else {
            throw SetupFailure("\(method) \(path) answered \(status): \(String(decoding: data, as: UTF8.self))")
        }
        return data
    }

    /// One HTTP exchange (the completion-handler API, which swift-corelibs-foundation has on
    /// every version).
    private static func perform(_ request: URLRequest) async throws -> (Data, Int) {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(Data, Int), Error>) in
            let task = URLSession.shared.dataTask(with: request) { data, response, error in
                if let error {
                    continuation.resume(throwing: error)
                    return
                }
                let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                continuation.resume(returning: (data ?? Data(), status))
            }
            task.resume()
        }
    }
}

/// Reads a process's standard output on its own thread: hands over the first line, then
/// keeps draining, so the process never blocks on a full pipe.
private final class FirstLineReader: @unchecked Sendable {
    // @unchecked: `first` and `done` are only touched with `lock` held.

    private let lock = NSLock()
    private let ready = DispatchSemaphore(value: 0)
    private var first: String?
    private var done = false

    init(_ handle: FileHandle) {
        let thread = Thread { [self] in
            self.drain(handle)
        }
        thread.start()
    }

    /// The first line, or nil if none came within `seconds` (or the output ended first).
    func wait(seconds: Double) -> String? {
        _ = ready.wait(timeout: .now() + seconds)
        return line
    }

    /// The first line, if it has come.
    var line: String? {
        lock.lock()
        defer { lock.unlock() }
        return first
    }

    private func drain(_ handle: FileHandle) {
        var buffer = Data()
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty {
                break // end of output: the process has exited
            }
            if isDone {
                continue
            }
            buffer.append(chunk)
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                announce(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                buffer = Data()
            }
        }
        if !isDone {
            announce(buffer.isEmpty ? nil : String(decoding: buffer, as: UTF8.self))
        }
    }

    private var isDone: Bool {
        lock.lock()
        defer { lock.unlock() }
        return done
    }

    private func announce(_ line: String?) {
        lock.lock()
        first = line
        done = true
        lock.unlock()
        ready.signal()
    }
}
