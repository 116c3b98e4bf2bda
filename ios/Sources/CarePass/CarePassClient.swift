// `CarePassClient`: the app's one handle on the CarePass core. It opens the core on a data
// directory with the platform adapters (Keychain, Secure Enclave, os.Logger), runs the
// account flows, publishes the signed-in profile as an `AsyncStream`, hands out e-voucher
// codes (one, or an `AsyncThrowingStream` that follows their rotation), keeps the pending
// bills inbox (sync, push hand-over, the live stream as an `AsyncThrowingStream`), and closes
// the core.

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
    private var codeStreams: [ObjectIdentifier: CodeStreamListener] = [:]
    private var inboxStreams: [ObjectIdentifier: InboxStreamListener] = [:]

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
        // A running watch would keep the core, and its store, alive.
        for stream in codeStreams.values {
            stream.end()
        }
        for stream in inboxStreams.values {
            stream.end()
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

    // MARK: - E-voucher codes

    /// The code to show now for `purpose`, made on this device with no network and signed
    /// by the device key, on platform time (the device clock corrected by the offset learned
    /// from the platform; see `syncClock()`). The same code comes back until its period
    /// (30 s) ends, as long as nothing asks for another purpose or profile in between.
    /// Reads the store and may sign: a few milliseconds, not for every frame.
    ///
    /// - Parameter offline: the offline profile: carries the device certificate, so scanners
    ///   with no network verify it; a larger QR code.
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.NoOfflineCertificate` (offline, and the
    ///   platform issued no certificate), `.KeyStore`, `.Storage`, `.StoreTampered`.
    public func currentCode(purpose: CodePurpose, offline: Bool = false) throws -> VoucherCode {
        try openCore().currentCode(purpose: purpose, offline: offline)
    }

    /// The codes to show for `purpose`: the current one at once, then a new one at each
    /// rotation (every 30 s, at `refreshAtMs` platform time), until the reader stops. Each
    /// call starts its own watch in the core; ending the iteration (leaving the loop,
    /// cancelling its task, dropping the stream) stops it.
    ///
    /// Each code comes once; a slow reader skips to the newest code, never an outdated one.
    /// The stream throws the `CarePassError` that stopped the watch: `.NotSignedIn` (also
    /// after `logout()`), `.NoOfflineCertificate`, `.KeyStore`, `.Storage`, `.StoreTampered`;
    /// on a closed client, `.Internal`. It finishes when the client is closed.
    ///
    /// ```swift
    /// for try await code in client.codes(purpose: .outpatientSettlement) {
    ///     image = QRImage(size: code.qrSize, modules: code.qrModules)
    /// }
    /// ```
    public func codes(purpose: CodePurpose, offline: Bool = false) -> AsyncThrowingStream<VoucherCode, Error> {
        AsyncThrowingStream(VoucherCode.self, bufferingPolicy: .bufferingNewest(1)) { continuation in
            let listener = CodeStreamListener(continuation: continuation)
            let id = ObjectIdentifier(listener)
            let core: CarePassFFI.CarePass? = self.withLock {
                guard let core = self.core else { return nil }
                self.codeStreams[id] = listener
                return core
            }
            guard let core else {
                continuation.finish(throwing: CarePassError.Internal(reason: "this CarePassClient is closed"))
                return
            }
            continuation.onTermination = { [weak self] _ in
                listener.stop()
                self?.removeCodeStream(id)
            }
            // If close() ended the stream in between, `started` cancels the new watch at once.
            listener.started(core.watchCodes(purpose: purpose, offline: offline, listener: listener))
        }
    }

    /// Learns the platform's time (one small request) and remembers the offset in the store,
    /// so codes made later with no network are on platform time. Every platform answer
    /// updates the offset too; call this when the app comes to the foreground before
    /// showing codes. Returns the new offset (platform minus device clock) in milliseconds.
    @discardableResult
    public func syncClock() async throws -> Int64 {
        try await run { core in
            try await core.syncClock()
        }
    }

    /// Revokes one of the signed-in person's devices (a lost phone): its codes and sessions
    /// stop working on the platform at once.
    ///
    /// Revoking this device itself ends its session here too: `profiles` yields nil, and the
    /// calls that need a session (`currentCode`, `refreshProfile`, `bills`…) throw
    /// `.NotSignedIn`; codes it showed before are rejected by scanners as `revoked`. A device
    /// revoked from another phone learns it at its next call that needs the session: that
    /// call throws `.SessionExpired` and `profiles` yields nil.
    ///
    /// - Parameter deviceId: `dev_` and 16 hex digits, e.g. `Profile.deviceId`.
    public func revokeDevice(deviceId: String) async throws {
        let profile = try await run { core -> Profile? in
            try await core.revokeDevice(deviceId: deviceId)
            return try core.currentProfile()
        }
        publish(profile)
    }

    // MARK: - Pending bills

    /// The signed-in person's bills from the device's store, newest first, with expiry
    /// applied on platform time (a pending bill past its due time is `.expired`). No network:
    /// what `syncInbox()`, `handlePush(_:)` and `inboxChanges()` brought in. A store read.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.Storage`, `.StoreTampered`.
    public func bills() throws -> [Bill] {
        try openCore().bills()
    }

    /// Pulls every change after the device's cursor from the platform and commits it to the
    /// store. Call it when the app starts or comes to the foreground (in any case when
    /// `pullOwed()` is true), and on pull-to-refresh. Returns the changes new to the device:
    /// each bill once, `.added` when first seen, `.updated` when its state or content changed.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.SessionExpired`, `.Network`, `.Timeout`,
    ///   `.Platform`, `.InvalidServerAnswer`, `.Storage`, `.StoreTampered`.
    @discardableResult
    public func syncInbox() async throws -> [InboxChange] {
        try await run { core in
            try await core.syncInbox()
        }
    }

    /// Hands over a push: the doorbell's data map (`v`, `k`, `r`, `s`, `t`, `g`, all strings)
    /// as the push arrived. The push is only a signed doorbell ("something new for you"); the
    /// core verifies it (platform signature, recipient, age), then pulls the change over the
    /// authenticated API. A verified doorbell is remembered before the pull, so if the pull
    /// fails (or the app is killed) `pullOwed()` is true until a `syncInbox()` brings it in.
    ///
    /// From APNs, the doorbell fields are top-level keys of the notification's `userInfo`
    /// (next to `aps`); `handlePush(userInfo:)` picks them out:
    ///
    /// ```swift
    /// // UIApplicationDelegate, for a background (content-available) push:
    /// func application(_ application: UIApplication,
    ///                  didReceiveRemoteNotification userInfo: [AnyHashable: Any]) async -> UIBackgroundFetchResult {
    ///     do {
    ///         switch try await client.handlePush(userInfo: userInfo) {
    ///         case .pulled(let changes): notifyNewBills(changes); return .newData
    ///         case .alreadySeen, .notYetReadable: return .noData
    ///         }
    ///     } catch CarePassError.InvalidPush {
    ///         return .noData   // not a doorbell of this platform for this person
    ///     } catch {
    ///         return .failed   // network and the like: the doorbell is remembered (pullOwed)
    ///     }
    /// }
    ///
    /// // UNUserNotificationCenterDelegate, for a push shown while the app is open:
    /// func userNotificationCenter(_ center: UNUserNotificationCenter,
    ///                             willPresent notification: UNNotification) async -> UNNotificationPresentationOptions {
    ///     _ = try? await client.handlePush(userInfo: notification.request.content.userInfo)
    ///     return [.banner, .list]
    /// }
    /// ```
    ///
    /// - Returns: `.pulled(changes:)` with the changes new to the device; `.alreadySeen` for
    ///   a duplicate or late doorbell (its change is already in the store, e.g. the live
    ///   stream was first); `.notYetReadable` when the platform does not serve the announced
    ///   change yet after a few short retries (then `pullOwed()` is true and the next
    ///   `syncInbox()` brings it).
    /// - Throws: `CarePassError`: `.InvalidPush` (forged, stale, for another person, or not
    ///   a CarePass doorbell at all; nothing is pulled), `.NotSignedIn`, `.SessionExpired`,
    ///   `.Network`, `.Timeout`, `.Platform`, `.InvalidServerAnswer`, `.Storage`,
    ///   `.StoreTampered`.
    @discardableResult
    public func handlePush(_ userInfo: [String: String]) async throws -> PushResult {
        try await run { core in
            try await core.handlePush(data: userInfo)
        }
    }

    /// `handlePush(_:)` for a notification's `userInfo` as APNs delivers it: keeps the
    /// entries whose key and value are strings (the doorbell's fields) and ignores the rest
    /// (`aps`).
    @discardableResult
    public func handlePush(userInfo: [AnyHashable: Any]) async throws -> PushResult {
        var data: [String: String] = [:]
        for (key, value) in userInfo {
            if let key = key.base as? String, let value = value as? String {
                data[key] = value
            }
        }
        return try await handlePush(data)
    }

    /// Whether a verified doorbell announced a change that is not in the store yet (the pull
    /// failed, or the app was killed in between). Check it when the app starts: if true,
    /// call `syncInbox()`. A store read.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.Storage`, `.StoreTampered`.
    public func pullOwed() throws -> Bool {
        try openCore().pullOwed()
    }

    /// Registers this app's push token for the signed-in person, so the platform rings their
    /// doorbell through it. Call it after each sign-in and whenever the push service hands a
    /// new token; registering the same token again is harmless.
    ///
    /// - Parameters:
    ///   - service: `apns` (also `fcm`, `huawei`, `xiaomi`).
    ///   - token: the push service's token, 1 to 4096 characters; for APNs see
    ///     `registerPushToken(apnsDeviceToken:)`.
    /// - Throws: `CarePassError`: `.InvalidInput` (another service, or an empty or too long
    ///   token), `.NotSignedIn`, `.SessionExpired`, `.Network`, `.Timeout`, `.Platform`,
    ///   `.InvalidServerAnswer`, `.Storage`.
    public func registerPushToken(service: String, token: String) async throws {
        try await run { core in
            try await core.registerPushToken(service: service, token: token)
        }
    }

    /// Registers the APNs device token (from
    /// `application(_:didRegisterForRemoteNotificationsWithDeviceToken:)`) as lowercase hex,
    /// the form APNs providers send to.
    public func registerPushToken(apnsDeviceToken deviceToken: Data) async throws {
        let hex = deviceToken.map { String(format: "%02x", $0) }.joined()
        try await registerPushToken(service: "apns", token: hex)
    }

    /// The changes to the signed-in person's bills as they happen, over the platform's live
    /// stream: iterate it while the app is in the foreground, and rely on `handlePush` in the
    /// background. Each call opens its own stream; ending the iteration (leaving the loop,
    /// cancelling its task, dropping the stream) closes it.
    ///
    /// The stream starts from the device's cursor, so changes the device missed come first.
    /// Each change is committed to the store before it is yielded (so `bills()` already
    /// lists it), and comes once, even across reconnections and alongside `syncInbox()` or
    /// `handlePush`. Buffered without limit: a slow reader gets every change, in order.
    ///
    /// When the connection drops, the core reconnects by itself with backoff (200 ms to 10 s)
    /// and resyncs from the cursor; the stream does not throw for network trouble. It throws
    /// the `CarePassError` that ended the session: `.SessionExpired` or `.NotSignedIn` (at
    /// once when `profiles` yields nil: `logout()`, this device revoked, a session the
    /// platform ended); on a closed client, `.Internal`. It finishes when the client is
    /// closed.
    ///
    /// ```swift
    /// for try await change in client.inboxChanges() {
    ///     bills = try client.bills()
    ///     if change.kind == .added { showBanner(change.bill) }
    /// }
    /// ```
    public func inboxChanges() -> AsyncThrowingStream<InboxChange, Error> {
        AsyncThrowingStream(InboxChange.self, bufferingPolicy: .unbounded) { continuation in
            let listener = InboxStreamListener(continuation: continuation)
            let id = ObjectIdentifier(listener)
            let core: CarePassFFI.CarePass? = self.withLock {
                guard let core = self.core else { return nil }
                self.inboxStreams[id] = listener
                return core
            }
            guard let core else {
                continuation.finish(throwing: CarePassError.Internal(reason: "this CarePassClient is closed"))
                return
            }
            continuation.onTermination = { [weak self] _ in
                listener.stop()
                self?.removeInboxStream(id)
            }
            // If close() ended the stream in between, `started` cancels the new watch at once.
            listener.started(core.watchInbox(listener: listener))
        }
    }

    // MARK: - Prescriptions and pharmacies

    /// The signed-in person's prescriptions from the platform, newest first (each valid for
    /// 90 days after it was issued: `validUntilMs`).
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.SessionExpired`, `.Network`, `.Timeout`,
    ///   `.Platform`, `.InvalidServerAnswer`, `.Storage`.
    public func prescriptions() async throws -> [Prescription] {
        try await run { core in
            try await core.prescriptions()
        }
    }

    /// Nearby pharmacies ranked by what the patient pays for the prescription after
    /// insurance, with the signed-in person's coverage: pharmacies that fill every item
    /// first, then by `netCostFen` (list cost − fund + delivery fee), then by delivery time,
    /// distance and id. When no pharmacy has everything, `bestPair` is the cheapest pair that
    /// does together.
    ///
    /// ```swift
    /// let ranking = try await client.rankPharmacies(lat: 30.5952, lon: 114.2999, delivery: true)
    /// if let best = ranking.quotes.first, best.complete { show(best) }
    /// ```
    ///
    /// - Parameters:
    ///   - lat: where the patient is, or the delivery address (WGS-84 degrees).
    ///   - lon: see `lat`.
    ///   - rxId: the prescription (`Prescription.rxId`); nil ranks the newest one.
    ///   - delivery: home delivery to (`lat`, `lon`): only pharmacies that deliver there,
    ///     their fee included and `deliveryMinutes` set; otherwise pickup.
    ///   - maxDistanceM: at most this far, in metres (nil: 5 km).
    ///   - openNow: only pharmacies open now (platform time).
    ///   - limit: how many quotes at most, 1 to 200 (nil: 20).
    /// - Throws: `CarePassError`: `.InvalidInput` (coordinates out of range, or no
    ///   prescription at all), `.NotSignedIn`, `.SessionExpired`, `.Platform` (`not_found`:
    ///   no such prescription of this person; `invalid_request`: options out of range, e.g.
    ///   `limit`), `.Network`, `.Timeout`, `.InvalidServerAnswer`, `.Storage`.
    public func rankPharmacies(
        lat: Double,
        lon: Double,
        rxId: String? = nil,
        delivery: Bool = false,
        maxDistanceM: UInt32? = nil,
        openNow: Bool = false,
        limit: UInt32? = nil
    ) async throws -> PharmacyRanking {
        let request = RankRequest(
            rxId: rxId, lat: lat, lon: lon, delivery: delivery, maxDistanceM: maxDistanceM,
            openNow: openNow, limit: limit
        )
        return try await run { core in
            try await core.rankPharmacies(request: request)
        }
    }

    /// Orders prescription `rxId` from pharmacy `pharmacyId` (a `PharmacyQuote.pharmacyId` of
    /// `rankPharmacies`) at the platform's quote now, kept in the order's `quote`. The order
    /// starts `.accepted`; the pharmacy moves it on (`.ready` then `.completed` for pickup,
    /// `.outForDelivery` then `.completed` for delivery): read it with `order(orderId:)`.
    ///
    /// - Parameter delivery: where to deliver (address 4 to 200 characters, an 11-digit
    ///   contact phone); nil for pickup at the pharmacy.
    /// - Throws: `CarePassError`: `.InvalidInput` (a bad address or phone), `.NotSignedIn`,
    ///   `.SessionExpired`, `.Platform` (`not_found`: no such prescription or pharmacy;
    ///   `invalid_request`: the pharmacy does not fill the whole prescription, or does not
    ///   deliver there), `.Network`, `.Timeout`, `.InvalidServerAnswer`, `.Storage`.
    public func placeOrder(rxId: String, pharmacyId: String, delivery: DeliveryDetails? = nil) async throws -> PharmacyOrder {
        try await run { core in
            try await core.placeOrder(rxId: rxId, pharmacyId: pharmacyId, delivery: delivery)
        }
    }

    /// One of the signed-in person's orders as the platform has it now.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.SessionExpired`, `.Platform`
    ///   (`not_found`: no such order of this person), `.Network`, `.Timeout`,
    ///   `.InvalidServerAnswer`, `.Storage`.
    public func order(orderId: String) async throws -> PharmacyOrder {
        try await run { core in
            try await core.order(orderId: orderId)
        }
    }

    /// Cancels an order while it is `.accepted` (the pharmacy has not prepared it); returns
    /// the order, now `.cancelled`.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.SessionExpired`, `.Platform`
    ///   (`not_found`: no such order of this person; `invalid_request`: the pharmacy moved it
    ///   on already), `.Network`, `.Timeout`, `.InvalidServerAnswer`, `.Storage`.
    @discardableResult
    public func cancelOrder(orderId: String) async throws -> PharmacyOrder {
        try await run { core in
            try await core.cancelOrder(orderId: orderId)
        }
    }

    // MARK: - Closing

    /// Releases the core (its store is closed once calls still running have returned) and
    /// finishes every `profiles`, `codes` and `inboxChanges` stream (the core's watches stop
    /// within milliseconds; until then they too keep the store open). Later calls throw
    /// `CarePassError.Internal`. Calling it twice is harmless; dropping the last reference to
    /// the client also closes.
    public func close() {
        let (released, continuations, streams, inboxes): (
            CarePassFFI.CarePass?, [AsyncStream<Profile?>.Continuation], [CodeStreamListener],
            [InboxStreamListener]
        ) = withLock {
            let taken = (
                self.core, Array(self.subscribers.values), Array(self.codeStreams.values),
                Array(self.inboxStreams.values)
            )
            self.core = nil
            self.subscribers.removeAll()
            self.codeStreams.removeAll()
            self.inboxStreams.removeAll()
            return taken
        }
        // Outside the lock: finishing runs the streams' onTermination handlers, which lock.
        for continuation in continuations {
            continuation.finish()
        }
        for stream in streams {
            stream.end()
        }
        for stream in inboxes {
            stream.end()
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

    /// Publishes `profile`; when nobody is signed in any more, also ends the `inboxChanges()`
    /// streams with `.NotSignedIn` (the core would keep their connection open until the next
    /// event or reconnection, although the session, and after `logout()` the bills, are gone).
    private func publish(_ profile: Profile?) {
        let signedOut: [InboxStreamListener] = withLock {
            guard self.core != nil, profile != self.latestProfile else { return [] }
            self.latestProfile = profile
            for continuation in self.subscribers.values {
                continuation.yield(profile)
            }
            guard profile == nil else { return [] }
            let streams = Array(self.inboxStreams.values)
            self.inboxStreams.removeAll()
            return streams
        }
        // Outside the lock: finishing runs the streams' onTermination handlers, which lock.
        for stream in signedOut {
            stream.end(throwing: CarePassError.NotSignedIn(reason: "no one is signed in"))
        }
    }

    private func unsubscribe(_ id: UUID) {
        withLock {
            _ = self.subscribers.removeValue(forKey: id)
        }
    }

    private func removeCodeStream(_ id: ObjectIdentifier) {
        withLock {
            _ = self.codeStreams.removeValue(forKey: id)
        }
    }

    private func removeInboxStream(_ id: ObjectIdentifier) {
        withLock {
            _ = self.inboxStreams.removeValue(forKey: id)
        }
    }
}

/// Feeds one `codes(purpose:offline:)` stream from the core's code watch, and cancels the
/// watch when the stream ends. The core calls it on its own background thread.
private final class CodeStreamListener: CodeListener, @unchecked Sendable {
    // @unchecked: the mutable state below is only touched with `lock` held.

    private let continuation: AsyncThrowingStream<VoucherCode, Error>.Continuation
    private let lock = NSLock()
    private var watch: CodeWatch?
    private var stopped = false
    private var lastPayload: String?

    init(continuation: AsyncThrowingStream<VoucherCode, Error>.Continuation) {
        self.continuation = continuation
    }

    /// Keeps the running watch, or cancels it at once if the stream has already ended.
    func started(_ watch: CodeWatch) {
        let cancelNow: Bool = withLock {
            if self.stopped { return true }
            self.watch = watch
            return false
        }
        if cancelNow {
            watch.cancel()
        }
    }

    /// The stream ended (the reader stopped, or the watch failed): stop the watch. The core
    /// then drops this listener.
    func stop() {
        let watch: CodeWatch? = withLock {
            self.stopped = true
            let running = self.watch
            self.watch = nil
            return running
        }
        watch?.cancel()
    }

    /// The client is closing: stop the watch and finish the stream.
    func end() {
        stop()
        continuation.finish()
    }

    func onCode(code: VoucherCode) {
        // The core may hand the same code again when the device clock is adjusted.
        let fresh: Bool = withLock {
            guard !self.stopped, code.payload != self.lastPayload else { return false }
            self.lastPayload = code.payload
            return true
        }
        if fresh {
            continuation.yield(code)
        }
    }

    func onError(error: CarePassError) {
        continuation.finish(throwing: error)
    }

    private func withLock<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
}

/// Feeds one `inboxChanges()` stream from the core's live-stream watch, and cancels the watch
/// when the stream ends. The core calls it on its own background thread, after committing
/// each change to the store.
private final class InboxStreamListener: InboxListener, @unchecked Sendable {
    // @unchecked: the mutable state below is only touched with `lock` held.

    private let continuation: AsyncThrowingStream<InboxChange, Error>.Continuation
    private let lock = NSLock()
    private var watch: InboxWatch?
    private var stopped = false

    init(continuation: AsyncThrowingStream<InboxChange, Error>.Continuation) {
        self.continuation = continuation
    }

    /// Keeps the running watch, or cancels it at once if the stream has already ended.
    func started(_ watch: InboxWatch) {
        let cancelNow: Bool = withLock {
            if self.stopped { return true }
            self.watch = watch
            return false
        }
        if cancelNow {
            watch.cancel()
        }
    }

    /// The stream ended (the reader stopped, or the session ended): close the live stream.
    /// The core then drops this listener.
    func stop() {
        let watch: InboxWatch? = withLock {
            self.stopped = true
            let running = self.watch
            self.watch = nil
            return running
        }
        watch?.cancel()
    }

    /// The client is closing (`error` nil), or nobody is signed in any more: stop the watch
    /// and finish the stream.
    func end(throwing error: Error? = nil) {
        stop()
        continuation.finish(throwing: error)
    }

    func onChange(change: InboxChange) {
        // Unbounded buffering: every change is kept for the reader, in order.
        continuation.yield(change)
    }

    func onError(error: CarePassError) {
        continuation.finish(throwing: error)
    }

    private func withLock<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
}
