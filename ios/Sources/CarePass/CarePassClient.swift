// `CarePassClient`: the app's one handle on the CarePass core. It opens the core on a data
// directory with the platform adapters (Keychain, Secure Enclave, os.Logger), runs the
// account flows, publishes the signed-in profile as an `AsyncStream`, and closes the core.

import Foundation
import CarePassFFI

/// The CarePass core, opened for the app.
///
/// Open one per data directory and keep it for the life of the app (or of the signed-in
/// screen): the core's store is locked while it is open. Every method is safe to call from
/// any thread or task; the network calls are `async` and run on the core's own runtime.
///
/// ```swift
/// let client = try CarePassClient(config: .app(serverURL: "https://…", deviceName: "iPhone"))
/// _ = try await client.requestVerificationCode(phone: phone)
/// let profile = try await client.signIn(phone: phone, code: code)
/// for await profile in client.profiles { … }   // nil once signed out
/// ```
public final class CarePassClient: @unchecked Sendable {
    // @unchecked: the mutable state below is only touched with `lock` held.

    /// The configuration the core was opened with.
    public let config: CarePassConfig

    private let lock = NSLock()
    private var core: CarePassFFI.CarePass?
    private var latestProfile: Profile?
    private var subscribers: [UUID: AsyncStream<Profile?>.Continuation] = [:]

    /// Opens the core.
    ///
    /// - Parameters:
    ///   - config: where the platform is and where the data lives; see `CarePassConfig.app(…)`.
    ///   - secretStore: keeps the store's data key; the Keychain by default.
    ///   - keyStore: the device's signing key; the Secure Enclave by default. `nil` makes the
    ///     core use a software key sealed in its own store (tests only).
    ///   - logger: receives the core's log lines; `os.Logger` by default, `nil` for none.
    /// - Throws: `CarePassError`, e.g. `.InsecureServerUrl` for `http://` to anything but
    ///   loopback, `.MissingDataKey` when the store has data but the Keychain no longer
    ///   holds its key (e.g. a store restored onto another device).
    public init(
        config: CarePassConfig,
        secretStore: SecretStore = KeychainSecretStore(),
        keyStore: DeviceKeyStore? = SecureEnclaveDeviceKey(),
        logger: CarePassFFI.Logger? = OSLogLogger()
    ) throws {
        let core = try CarePassFFI.CarePass.open(
            config: config,
            secretStore: secretStore,
            keyStore: keyStore,
            logger: logger
        )
        self.config = config
        self.core = core
        self.latestProfile = try core.currentProfile()
    }

    deinit {
        // Nobody else holds `self` here, so no lock. The core itself is released with us.
        for continuation in subscribers.values {
            continuation.finish()
        }
    }

    // MARK: - State

    /// The signed-in person as last seen by this client (no store read), or nil.
    public var profile: Profile? {
        withLock { self.latestProfile }
    }

    /// The signed-in person: the current value at once, then every change (sign-in,
    /// refresh, sign-out, session expiry). Finishes when the client is closed. Each call
    /// returns a new stream; a slow reader only ever sees the newest value.
    public var profiles: AsyncStream<Profile?> {
        AsyncStream<Profile?>(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let id = UUID()
            continuation.onTermination = { [weak self] _ in
                self?.unsubscribe(id)
            }
            let registered: Bool = self.withLock {
                continuation.yield(self.latestProfile)
                guard self.core != nil else { return false }
                self.subscribers[id] = continuation
                return true
            }
            if !registered {
                continuation.finish()
            }
        }
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool {
        withLock { self.core == nil }
    }

    // MARK: - Account flows

    /// Asks the platform to text a verification code to `phone`; returns how many seconds
    /// the code stays valid.
    public func requestVerificationCode(phone: String) async throws -> UInt32 {
        try await run { core in
            try await core.requestVerificationCode(phone: phone)
        }
    }

    /// Enrols this device for the person who owns `phone` and signs them in.
    @discardableResult
    public func enrol(phone: String, code: String) async throws -> Profile {
        let profile = try await run { core in
            try await core.enrol(phone: phone, code: code)
        }
        publish(profile)
        return profile
    }

    /// Signs in again on a device already enrolled for `phone`.
    @discardableResult
    public func login(phone: String, code: String) async throws -> Profile {
        let profile = try await run { core in
            try await core.login(phone: phone, code: code)
        }
        publish(profile)
        return profile
    }

    /// Enrols, or signs in again when this device is already enrolled for `phone`: what a
    /// sign-in screen calls.
    @discardableResult
    public func signIn(phone: String, code: String) async throws -> Profile {
        let profile = try await run { core in
            try await core.signIn(phone: phone, code: code)
        }
        publish(profile)
        return profile
    }

    /// Fetches the signed-in person from the platform.
    @discardableResult
    public func refreshProfile() async throws -> Profile {
        let profile = try await run { core in
            try await core.refreshProfile()
        }
        publish(profile)
        return profile
    }

    /// Ends the session and wipes the person's data from this device. The device stays
    /// enrolled, so the next sign-in for the same phone is a login.
    public func logout() async throws {
        try await run { core in
            try await core.logout()
        }
        publish(nil)
    }

    /// The signed-in person from the device's store (no network), or nil.
    public func currentProfile() throws -> Profile? {
        let profile = try openCore().currentProfile()
        publish(profile)
        return profile
    }

    /// Platform clock minus device clock, in milliseconds, from the last platform answer.
    public func serverClockOffsetMs() throws -> Int64 {
        try openCore().serverClockOffsetMs()
    }

    // MARK: - Closing

    /// Releases the core (its store is closed once calls still running have returned) and
    /// finishes every `profiles` stream. Later calls throw `CarePassError.Internal`.
    /// Calling it twice is harmless; dropping the last reference to the client also closes.
    public func close() {
        let (released, continuations): (CarePassFFI.CarePass?, [AsyncStream<Profile?>.Continuation]) = withLock {
            let taken = (self.core, Array(self.subscribers.values))
            self.core = nil
            self.subscribers.removeAll()
            return taken
        }
        // Outside the lock: finishing runs the streams' onTermination handlers, which lock.
        for continuation in continuations {
            continuation.finish()
        }
        // The last Swift reference to the core goes here, which frees the Rust object.
        withExtendedLifetime(released) {}
    }

    // MARK: - Internals

    private func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private func openCore() throws -> CarePassFFI.CarePass {
        guard let core = withLock({ self.core }) else {
            throw CarePassError.Internal(reason: "this CarePassClient is closed")
        }
        return core
    }

    /// Runs one call on the core. When the call says the session is over, the stored
    /// profile is gone too: publish that.
    private func run<T>(_ call: (CarePassFFI.CarePass) async throws -> T) async throws -> T {
        let core = try openCore()
        do {
            return try await call(core)
        } catch let error as CarePassError {
            if Self.endsSession(error) {
                publish(try? core.currentProfile())
            }
            throw error
        }
    }

    private static func endsSession(_ error: CarePassError) -> Bool {
        switch error {
        case .SessionExpired, .NotSignedIn:
            return true
        default:
            return false
        }
    }

    private func publish(_ profile: Profile?) {
        withLock {
            guard self.core != nil, profile != self.latestProfile else { return }
            self.latestProfile = profile
            for continuation in self.subscribers.values {
                continuation.yield(profile)
            }
        }
    }

    private func unsubscribe(_ id: UUID) {
        withLock {
            _ = self.subscribers.removeValue(forKey: id)
        }
    }
}
