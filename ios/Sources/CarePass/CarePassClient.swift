// `CarePassClient`: the app's handle on the CarePass core. Each method is one call into the
// core plus, at most, a conversion of its arguments; the four live streams (codes, inbox,
// session, payment) go through the one adapter in CoreStream.swift. The rules, the timers, the
// de-duplication and the signed-in state are the core's. The family calls and `profiles()`
// are in Family.swift.

import Foundation
import CarePassFFI

/// The CarePass core, opened for the app.
///
/// Open one per data directory and keep it for the life of the app. Every method is safe to
/// call from any thread or task; the network calls are `async` and run on the core's own
/// runtime.
///
/// ```swift
/// let client = try CarePassClient(config: .app(serverURL: "https://…", deviceName: "iPhone"))
/// _ = try await client.requestVerificationCode(phone: phone)
/// let profile = try await client.signIn(phone: phone, code: code)
/// for try await state in client.sessionStates() { … }   // .signedIn, .signedOut, .ended
/// ```
///
/// ## What the facade does after a failure
///
/// The same rule as the Kotlin shell (`android/carepass`), and nothing more:
///
/// 1. **A failed call throws, and the facade does nothing else.** The error is the core's
///    `CarePassError`, as the core typed it (`.Platform(code: .alreadyOrdered, …)`,
///    `.InvalidPush(kind: .forged, …)`, `.InvalidInput(field: .phone, …)`…). The facade does
///    not re-read anything, retry, or change any state of its own: it has none.
/// 2. **Who is signed in comes only from the session stream.** `sessionStates()` (and
///    `sessionState`, `profile`, `SessionObserver`, which read the same core state) say
///    `.signedIn`, `.signedOut` or `.ended`. A call that throws `.SessionExpired` does not
///    make the facade sign anyone out; the core, which dropped the session, tells the
///    session stream, and the stream says `.ended`.
/// 3. **A stream ends with the core's error, and nothing follows it.** `codes`, `inbox`,
///    `sessionStates` and `paymentUpdates` yield the core's values in order (the current
///    value first), then throw the error that ended the core's stream, once. Iterating
///    further returns nil.
/// 4. **Ending the iteration cancels the core's task.** Leaving the `for try await` loop,
///    cancelling the task that iterates, or dropping the stream cancels the core's
///    `TaskHandle`: the rotation timer or the live connection stops.
/// 5. **A closed client is `.Closed` everywhere.** After `close()`, every call throws
///    `CarePassError.Closed` and every stream ends with it. Both come from the core; the
///    facade makes no error of its own.
///
/// After a call that succeeds and may change whom the device acts as (signing in or out, a
/// family call, `syncInbox`, `handlePush`), the facade reads the profiles from the store again
/// for the `profiles()` streams; after a failed call it does not.
///
/// Every call about a person takes `subject`: nil is the signed-in person; a relative's person
/// id (`ActingProfile.subject`) acts for them under the link the signed-in person holds. The
/// core refuses a subject the device holds no link to with `.NotLinked`, and an act the link
/// does not allow with `.FamilyRefused(kind:)` (`.linkPending`, `.linkRevoked`,
/// `.scopeMissing`…); the platform checks the same again.
public final class CarePassClient: @unchecked Sendable {
    // @unchecked: every stored property is a `let` of a thread-safe type (the generated
    // `CarePass` is itself `Sendable`; `CarePassConfig` is a value; `ProfileFeed` locks).

    /// The configuration the core was opened with.
    public let config: CarePassConfig

    /// The generated core object. Internal: apps use the methods below; tests reach it with
    /// `@testable import CarePass`.
    let core: CarePassFFI.CarePass

    /// The readers of `profiles()`.
    let profileFeed = ProfileFeed()

    /// Opens the core on `config.dataDir`.
    ///
    /// - Parameters:
    ///   - config: where the platform is and where the data lives; see `CarePassConfig.app(…)`.
    ///   - secretStore: keeps the store's data key (`KeychainSecretStore` in an app).
    ///   - keyStore: the device's signing key (`SecureEnclaveDeviceKey` in an app). `nil`
    ///     makes the core use a software key sealed in its own store (tests, desktop).
    ///   - logger: receives the core's log lines (`OSLogLogger` in an app), or `nil`.
    /// - Throws: `CarePassError`, e.g. `.InsecureServerUrl` for `http://` to anything but
    ///   loopback, `.MissingDataKey` when the store has data but the secret store no longer
    ///   holds its key (a store restored onto another device).
    public init(
        config: CarePassConfig,
        secretStore: SecretStore,
        keyStore: DeviceKeyStore?,
        logger: CarePassFFI.Logger?
    ) throws {
        self.core = try CarePassFFI.CarePass.open(
            config: config,
            secretStore: secretStore,
            keyStore: keyStore,
            logger: logger
        )
        self.config = config
    }

    // MARK: - Session

    /// Who is signed in now, as the core's session stream last said (no store read, no
    /// network). Throws `CarePassError.Closed` on a closed client.
    public var sessionState: SessionState {
        get throws { try core.sessionState() }
    }

    /// The signed-in person, when `sessionState` is `.signedIn`; otherwise nil. Throws
    /// `CarePassError.Closed` on a closed client.
    public var profile: Profile? {
        get throws {
            guard case .signedIn(let profile) = try core.sessionState() else { return nil }
            return profile
        }
    }

    /// The session state now, then at every change (sign-in, sign-out, the platform ending
    /// the session), as the core tells it. Throws `CarePassError.Closed` once the client is
    /// closed. Each call starts its own core stream; ending the iteration cancels it.
    public func sessionStates() -> AsyncThrowingStream<SessionState, Error> {
        let core = self.core
        return Self.coreStream(of: SessionState.self) { relay in
            core.watchSession(listener: relay)
        }
    }

    // MARK: - Account flows

    /// Asks the platform to text a verification code to `phone`; returns how many seconds
    /// the code stays valid.
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .phone, …)`, `.Network`, `.Timeout`,
    ///   `.Platform` (`.rateLimited` with `retryAfterS`), `.Closed`.
    public func requestVerificationCode(phone: String) async throws -> UInt32 {
        try await core.requestVerificationCode(phone: phone)
    }

    /// Enrols this device for the person who owns `phone` and signs them in.
    ///
    /// - Throws: `CarePassError`: `.InvalidInput`, `.WrongVerificationCode`, `.Network`,
    ///   `.Timeout`, `.Platform`, `.KeyStore`, `.Storage`, `.Closed`.
    @discardableResult
    public func enrol(phone: String, code: String) async throws -> Profile {
        let profile = try await core.enrol(phone: phone, code: code)
        publishProfiles()
        return profile
    }

    /// Signs in again on a device already enrolled for `phone` (the device key signs a
    /// platform challenge).
    ///
    /// - Throws: `CarePassError`: `.NotEnrolled`, `.WrongVerificationCode`, and as `enrol`.
    @discardableResult
    public func login(phone: String, code: String) async throws -> Profile {
        let profile = try await core.login(phone: phone, code: code)
        publishProfiles()
        return profile
    }

    /// Enrols, or signs in again when this device is already enrolled for `phone`: what a
    /// sign-in screen calls.
    @discardableResult
    public func signIn(phone: String, code: String) async throws -> Profile {
        let profile = try await core.signIn(phone: phone, code: code)
        publishProfiles()
        return profile
    }

    /// Fetches the signed-in person from the platform and keeps it.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.SessionExpired` (the platform ended the
    ///   session: the session stream says `.ended`), `.Network`, `.Timeout`, `.Platform`,
    ///   `.Closed`.
    @discardableResult
    public func refreshProfile() async throws -> Profile {
        let profile = try await core.refreshProfile()
        publishProfiles()
        return profile
    }

    /// Signs out and wipes everything this device holds for the signed-in person. The device
    /// stays enrolled, so the next sign-in for the same phone is a login.
    ///
    /// - Returns: whether the platform confirmed the session is revoked (`false` with no
    ///   network: the tokens are gone from this device, the platform session lives until it
    ///   expires).
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.Storage`, `.Closed`.
    @discardableResult
    public func logout() async throws -> SignOutResult {
        let result = try await core.logout()
        publishProfiles()
        return result
    }

    /// The signed-in person from the device's store (no network), or nil.
    ///
    /// - Throws: `CarePassError`: `.Storage`, `.StoreTampered`, `.Closed`.
    public func currentProfile() throws -> Profile? {
        try core.currentProfile()
    }

    /// Platform clock minus device clock, in milliseconds, from the last platform answer
    /// (a memory read; it does not throw, also not on a closed client).
    public var serverClockOffsetMs: Int64 {
        core.serverClockOffsetMs()
    }

    /// Learns the platform's time (one small request) and remembers the offset, so codes
    /// made later with no network are on platform time. Call it when the app comes to the
    /// foreground. Returns the new offset in milliseconds.
    @discardableResult
    public func syncClock() async throws -> Int64 {
        try await core.syncClock()
    }

    /// Revokes one of the signed-in person's devices (a lost phone): its codes and sessions
    /// stop working on the platform at once. Revoking this device itself ends its session
    /// here too (the session stream says so).
    ///
    /// - Parameter deviceId: `dev_` and 16 hex digits, e.g. `Profile.deviceId`.
    /// - Throws: `CarePassError`: `.InvalidInput(field: .deviceId, …)`, `.NotSignedIn`,
    ///   `.SessionExpired`, `.Platform` (`.notFound`), `.Network`, `.Timeout`, `.Closed`.
    public func revokeDevice(deviceId: String) async throws {
        try await core.revokeDevice(deviceId: deviceId)
    }

    // MARK: - E-voucher codes

    /// The code to show now for `purpose`, made on this device with no network, on platform
    /// time. The same code comes back until its period ends.
    ///
    /// - Parameters:
    ///   - offline: the offline profile: carries the device certificate, so scanners with no
    ///     network verify it; a larger QR code.
    ///   - subject: the person the code is for; nil is the signed-in person.
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.NotLinked` (a subject this device does not
    ///   act for), `.NoOfflineCertificate`, `.KeyStore`, `.Storage`, `.Closed`.
    public func currentCode(purpose: CodePurpose, offline: Bool = false, subject: String? = nil) throws -> VoucherCode {
        try core.currentCode(purpose: purpose, offline: offline, subject: subject)
    }

    /// The codes to show for `purpose`: the current one at once, then each new one at its
    /// rotation, each once (the core's schedule and de-duplication). Throws the error that
    /// ended the core's stream: `.NotSignedIn` or `.SessionExpired` when the session ends,
    /// `.Closed` when the client closes. Ending the iteration cancels the core's stream.
    ///
    /// ```swift
    /// for try await code in client.codes(purpose: .outpatientSettlement) {
    ///     image = QRImage(size: code.qrSize, modules: code.qrModules)
    /// }
    /// ```
    public func codes(purpose: CodePurpose, offline: Bool = false, subject: String? = nil) -> AsyncThrowingStream<VoucherCode, Error> {
        let core = self.core
        return Self.coreStream(of: VoucherCode.self) { relay in
            core.watchCodes(purpose: purpose, offline: offline, listener: relay, subject: subject)
        }
    }

    // MARK: - Pending bills

    /// A subject's bills from the device's store (nil: the signed-in person), newest first,
    /// expiry applied on platform time. No network.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.NotLinked`, `.StoreBusy`, `.Storage`,
    ///   `.StoreTampered`, `.NotInExtension` (in a Notification Service Extension), `.Closed`.
    public func bills(subject: String? = nil) throws -> [Bill] {
        try core.bills(subject: subject)
    }

    /// Pulls every change after the device's cursor and commits it to the store; returns
    /// the changes new to the device. Call it when the app starts or comes to the foreground
    /// (in any case when `pullOwed()` is true), and on pull-to-refresh.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.SessionExpired`, `.Network`, `.Timeout`,
    ///   `.Platform`, `.InvalidServerAnswer`, `.StoreBusy`, `.Storage`, `.Closed`.
    @discardableResult
    public func syncInbox() async throws -> [InboxChange] {
        let changes = try await core.syncInbox()
        publishProfiles()
        return changes
    }

    /// Hands over a push: the doorbell's data map (`v`, `k`, `r`, `s`, `t`, `g`, all strings)
    /// as it arrived. The core verifies the doorbell, then pulls the change. In a
    /// Notification Service Extension (`config.extension`), the pull is left in the store's
    /// spool for the app, which applies it the next time it uses its database.
    ///
    /// - Returns: `.pulled(changes:)` with the changes new to the device; `.alreadySeen` for a
    ///   duplicate or late doorbell; `.notYetReadable` when the platform does not serve the
    ///   change yet (then `pullOwed()` is true and the next `syncInbox()` brings it).
    /// - Throws: `CarePassError`: `.InvalidPush(kind: …)` (forged, stale, for another person,
    ///   malformed; nothing is remembered), `.NotSignedIn`, `.SessionExpired`, `.Network`,
    ///   `.Timeout`, `.Platform`, `.Storage`, `.Closed`.
    @discardableResult
    public func handlePush(_ data: [String: String]) async throws -> PushResult {
        let result = try await core.handlePush(data: data)
        publishProfiles()
        return result
    }

    /// `handlePush(_:)` for a notification's `userInfo` as APNs delivers it: the doorbell's
    /// fields are top-level string entries next to `aps`.
    ///
    /// ```swift
    /// func application(_ application: UIApplication,
    ///                  didReceiveRemoteNotification userInfo: [AnyHashable: Any]) async -> UIBackgroundFetchResult {
    ///     do {
    ///         switch try await client.handlePush(userInfo: userInfo) {
    ///         case .pulled: return .newData
    ///         case .alreadySeen, .notYetReadable: return .noData
    ///         }
    ///     } catch {
    ///         return .failed
    ///     }
    /// }
    /// ```
    @discardableResult
    public func handlePush(userInfo: [AnyHashable: Any]) async throws -> PushResult {
        try await handlePush(Self.pushData(userInfo))
    }

    /// Whether a push's data map is a CarePass doorbell, to route it to `handlePush`. It says
    /// nothing about authenticity, which `handlePush` checks.
    public static func isCarePassPush(_ data: [String: String]) -> Bool {
        CarePassFFI.isCarepassPush(data: data)
    }

    /// `isCarePassPush(_:)` for a notification's `userInfo`.
    public static func isCarePassPush(userInfo: [AnyHashable: Any]) -> Bool {
        CarePassFFI.isCarepassPush(data: pushData(userInfo))
    }

    /// Whether a verified doorbell announced a change that is not in the store yet. Check it
    /// when the app starts: if true, call `syncInbox()`.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.StoreBusy`, `.Storage`, `.Closed`.
    public func pullOwed() throws -> Bool {
        try core.pullOwed()
    }

    /// Registers the push service's token for the signed-in person, so the platform rings
    /// their doorbell through it.
    ///
    /// - Parameters:
    ///   - service: `apns` (also `fcm`, `huawei`, `xiaomi`).
    ///   - token: the push service's token; for APNs see `registerPushToken(apnsDeviceToken:)`.
    /// - Throws: `CarePassError`: `.InvalidInput(field: .pushService or .pushToken, …)`,
    ///   `.NotSignedIn`, `.SessionExpired`, `.Network`, `.Timeout`, `.Platform`, `.Closed`.
    public func registerPushToken(service: String, token: String) async throws {
        try await core.registerPushToken(service: service, token: token)
    }

    /// Registers the APNs device token (from
    /// `application(_:didRegisterForRemoteNotificationsWithDeviceToken:)`) as lowercase hex,
    /// the form APNs providers send to.
    public func registerPushToken(apnsDeviceToken deviceToken: Data) async throws {
        let hex = deviceToken.map { String(format: "%02x", $0) }.joined()
        try await core.registerPushToken(service: "apns", token: hex)
    }

    /// A subject's inbox (nil: the signed-in person): the bills now (`changes` empty), then
    /// the bills again after every change with the changes that led there. While it is
    /// iterated, the core keeps a live connection to the platform (reconnecting and resyncing
    /// by itself); each change is committed to the store before it is yielded. Throws the
    /// error that ended the core's stream: `.NotSignedIn` or `.SessionExpired` when the
    /// session ends, `.Closed` when the client closes. Ending the iteration closes the
    /// connection.
    ///
    /// ```swift
    /// for try await update in client.inbox() {
    ///     bills = update.bills
    ///     for change in update.changes where change.kind == .added { showBanner(change.bill) }
    /// }
    /// ```
    public func inbox(subject: String? = nil) -> AsyncThrowingStream<InboxUpdate, Error> {
        let core = self.core
        return Self.coreStream(of: InboxUpdate.self) { relay in
            core.watchInbox(listener: relay, subject: subject)
        }
    }

    // MARK: - Paying a bill

    /// Pre-settles a bill (医保预结算): what each source would pay — the pooled fund, the
    /// personal account, family mutual aid and the cash through `channel` — to show before
    /// the patient confirms. The core checks the platform's answer against the bill on the
    /// phone (pulling the inbox once when the phone has not seen the bill or is behind) and
    /// keeps the quote for `pay(quoteId:)`. A quote lives a few minutes.
    ///
    /// ```swift
    /// let quote = try await client.quote(billId: bill.billId, useAccount: true, channel: "card:4242424242424242")
    /// // show quote.fundFen, quote.personalAccountFen, quote.mutualAidFen, quote.cashFen, quote.channel
    /// let payment = try await client.pay(quoteId: quote.quoteId)
    /// ```
    ///
    /// - Parameters:
    ///   - billId: the bill, e.g. `Bill.billId`.
    ///   - useAccount: whether the personal account (个人账户) may pay its share.
    ///   - channel: the cash channel as text: `none`, `card:<number>` or `credit`.
    ///   - subject: the patient the bill is for; nil is the signed-in person.
    ///   - mutualAid: family mutual aid (家庭共济): the signed-in person's own personal account
    ///     pays what is left of `subject`'s share after the fund and their account
    ///     (`mutualAidFen`), where the family rules allow it for the link; otherwise
    ///     `.FamilyRefused(kind: .mutualAidRelationship, …)`, and `.Platform(code: .invalidRequest, …)` for oneself.
    /// - Throws: `CarePassError`: `.InvalidInput(field: .paymentChannel or .billId, …)`,
    ///   `.QuoteRefused(kind: …)` (the quote does not match the bill, the parties or the
    ///   time: nothing to show), `.Platform` (`.billNotPayable`, `.notFound`,
    ///   `.creditLimitExceeded`, `.invalidRequest` for cash with channel `none`, `.conflict`,
    ///   `.rateLimited`), `.NotSignedIn`, `.NotLinked`, `.SessionExpired`, `.Network`,
    ///   `.Timeout`, `.Storage`, `.Closed`.
    public func quote(
        billId: String,
        useAccount: Bool,
        channel: String,
        subject: String? = nil,
        mutualAid: Bool = false
    ) async throws -> PaymentQuote {
        try await core.quoteBill(
            billId: billId, useAccount: useAccount, channelText: channel, subject: subject, mutualAid: mutualAid)
    }

    /// Pays a quote from every source at once, exactly once: the core signs the patient's
    /// consent with the device key, stores the request durably, then sends it. The answer is
    /// the payment as far as the platform could take it without the patient: `.succeeded`,
    /// `.failed` (a declined card: nothing charged, `failureCode` says why; quote and pay
    /// again), `.requiresAction` (`confirmPayment`), `.cashDue` (`payCashDue`) or
    /// `.processing` (`paymentUpdates` follows it).
    ///
    /// - Throws: `CarePassError`: `.PaymentOutcomeUnknown(billId:, …)` when no answer came
    ///   (the core sends the same request again — `resumePayments()`, the next inbox sync —
    ///   and refuses another payment of the bill until it is answered; nothing is paid twice:
    ///   show "checking"), `.InvalidInput(field: .quoteId, …)` (no such quote on this phone),
    ///   `.QuoteRefused(kind: .expired, …)`, `.Platform` (`.quoteUsed`, `.quoteExpired`,
    ///   `.consentMismatch`, `.billNotPayable`, `.signatureInvalid`, `.rateLimited`),
    ///   `.KeyStore`, `.NotSignedIn`, `.NotLinked`, `.SessionExpired`, `.Storage`, `.Closed`.
    public func pay(quoteId: String, subject: String? = nil) async throws -> Payment {
        try await core.pay(quoteId: quoteId, subject: subject)
    }

    /// Passes the bank's second confirmation (the code it sent the patient) for a payment
    /// that is `.requiresAction`; returns the payment: `.succeeded` for the right code, still
    /// `.requiresAction` for a wrong one, `.failed` after too many wrong codes.
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .paymentId or .verificationCode, …)`,
    ///   `.Platform` (`.notFound`), `.NotSignedIn`, `.NotLinked`, `.SessionExpired`,
    ///   `.Network`, `.Timeout`, `.Storage`, `.Closed`.
    @discardableResult
    public func confirmPayment(paymentId: String, code: String, subject: String? = nil) async throws -> Payment {
        try await core.confirmPayment(paymentId: paymentId, code: code, subject: subject)
    }

    /// Pays the cash still due on a `.cashDue` payment (the insurance paid; the card was
    /// declined at capture) with another card, under a new request stored before it is sent.
    /// Returns the payment: `.succeeded`, or still `.cashDue` with `failureCode` when this card
    /// is declined too.
    ///
    /// - Parameter channel: `card:<number>` (the cash still due is paid with a card).
    /// - Throws: `CarePassError`: `.InvalidInput(field: .paymentChannel or .paymentId, …)`,
    ///   `.PaymentOutcomeUnknown(billId:, …)` (as `pay`), `.Platform` (`.billNotPayable`: no
    ///   cash is due; `.consentMismatch`, `.quoteExpired`, `.notFound`), `.KeyStore`,
    ///   `.NotSignedIn`, `.NotLinked`, `.SessionExpired`, `.Network`, `.Timeout`, `.Storage`,
    ///   `.Closed`.
    @discardableResult
    public func payCashDue(paymentId: String, channel: String, subject: String? = nil) async throws -> Payment {
        try await core.payCashDue(paymentId: paymentId, channelText: channel, subject: subject)
    }

    /// A payment as the platform has it now (kept on the phone).
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .paymentId, …)`, `.Platform`
    ///   (`.notFound`), `.NotSignedIn`, `.NotLinked`, `.SessionExpired`, `.Network`,
    ///   `.Timeout`, `.Storage`, `.Closed`.
    public func payment(paymentId: String, subject: String? = nil) async throws -> Payment {
        try await core.payment(paymentId: paymentId, subject: subject)
    }

    /// The payments the phone knows of for a subject (nil: the signed-in person), newest
    /// first. No network.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.NotLinked`, `.Storage`, `.StoreTampered`,
    ///   `.NotInExtension`, `.Closed`.
    public func payments(subject: String? = nil) throws -> [Payment] {
        try core.payments(subject: subject)
    }

    /// Sends again, with the same key and bytes, every payment request whose answer was
    /// lost (a timeout, a crash, a dropped connection); returns the payments that got an
    /// answer. Call it when the app starts and when the network returns (in any case when
    /// `paymentsUnresolved()` is not 0). Requests that still get no answer stay stored for
    /// the next try.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.SessionExpired`, `.Storage`, `.Closed`.
    @discardableResult
    public func resumePayments() async throws -> [Payment] {
        try await core.resumePayments()
    }

    /// How many payment requests still wait for an answer (no network).
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.Storage`, `.NotInExtension`, `.Closed`.
    public func paymentsUnresolved() throws -> UInt32 {
        try core.paymentsUnresolved()
    }

    /// A subject's electronic receipts (医疗收费电子票据), newest first, each verified by the
    /// core against the platform's receipt key (signature, check code, amounts; the key is
    /// fetched once, then this works offline). `svg` is a wallet-style card to show.
    ///
    /// - Throws: `CarePassError`: `.InvalidReceipt(kind: …)` (a receipt that does not verify
    ///   is never shown as valid), `.NotSignedIn`, `.NotLinked`, `.Network`, `.Timeout` (the
    ///   first fetch of the key), `.Storage`, `.Closed`.
    public func receipts(subject: String? = nil) async throws -> [VerifiedReceipt] {
        try await core.receipts(subject: subject)
    }

    /// The signed-in person's credit pay-later line (信用就医): limit, used, available and each
    /// use with its due date. Credit is always the actor's own.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.SessionExpired`, `.Network`, `.Timeout`,
    ///   `.Platform`, `.InvalidServerAnswer`, `.Closed`.
    public func creditLine() async throws -> CreditLine {
        try await core.creditLine()
    }

    /// Signs the credit agreement for `limitFen` (1 to 500000 fen, uses due in 30 days) with the
    /// device key; signing again changes the limit (not below what is used).
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .creditLimit, …)`, `.NotSignedIn`,
    ///   `.KeyStore`, `.Network`, `.Timeout`, `.Platform` (`.creditLimitExceeded`), `.Closed`.
    public func signCreditAgreement(limitFen: Int64) async throws -> CreditLine {
        try await core.signCreditAgreement(limitFen: limitFen)
    }

    /// Repays `amountFen` of the credit line from a card (`card:<number>`), oldest use first,
    /// exactly once: the request is stored before it is sent, and one without an answer is
    /// sent again by the next call before anything new.
    ///
    /// - Throws: `CarePassError`: `.InvalidInput` (`.paymentChannel`: not a card; `.amount`),
    ///   `.PaymentOutcomeUnknown(billId: "credit")` (call again to resolve it), `.NotSignedIn`,
    ///   `.Network`, `.Timeout`, `.Platform` (`.conflict`: more than is owed, or declined),
    ///   `.Storage`, `.Closed`.
    public func repayCredit(channel: String, amountFen: Int64) async throws -> CreditLine {
        try await core.repayCredit(channelText: channel, amountFen: amountFen)
    }

    /// A payment now (as stored on the phone, or from the platform when the phone has none),
    /// then again at every change: stored by a call here (`pay`, `confirmPayment`,
    /// `payCashDue`, `resumePayments`, `payment`), or moved at the platform and announced by
    /// the live connection or a doorbell. No polling. Throws the error that ended the core's
    /// stream: `.InvalidInput(field: .paymentId, …)` for a malformed id, `.NotSignedIn` or
    /// `.SessionExpired` when the session ends, `.Closed` when the client closes. Leave the
    /// loop once the state waited for has come: ending the iteration cancels the core's
    /// stream.
    ///
    /// ```swift
    /// for try await payment in client.paymentUpdates(paymentId: payment.paymentId) {
    ///     show(payment)
    ///     if payment.status != .processing { break }
    /// }
    /// ```
    public func paymentUpdates(paymentId: String, subject: String? = nil) -> AsyncThrowingStream<Payment, Error> {
        let core = self.core
        return Self.coreStream(of: Payment.self) { relay in
            core.watchPayment(paymentId: paymentId, listener: relay, subject: subject)
        }
    }

    // MARK: - Prescriptions and pharmacies

    /// A subject's prescriptions (nil: the signed-in person), newest first.
    ///
    /// - Throws: `CarePassError`: `.NotSignedIn`, `.NotLinked`, `.SessionExpired`, `.Network`,
    ///   `.Timeout`, `.Platform`, `.Closed`.
    public func prescriptions(subject: String? = nil) async throws -> [Prescription] {
        try await core.prescriptions(subject: subject)
    }

    /// Nearby pharmacies ranked by what the patient pays after insurance. The core resolves
    /// the request's defaults (the newest prescription, 5 km, 20 quotes, "open now" on
    /// platform time).
    ///
    /// ```swift
    /// let ranking = try await client.rankPharmacies(RankRequest(lat: 30.5952, lon: 114.2999, delivery: true))
    /// if let best = ranking.quotes.first, best.complete { show(best) }
    /// ```
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .location, .searchRadius, .limit…)`,
    ///   `.NoPrescription`, `.NotSignedIn`, `.SessionExpired`, `.Platform` (`.notFound`),
    ///   `.Network`, `.Timeout`, `.Closed`.
    public func rankPharmacies(_ request: RankRequest, subject: String? = nil) async throws -> PharmacyRanking {
        try await core.rankPharmacies(request: request, subject: subject)
    }

    /// Orders prescription `rxId` from pharmacy `pharmacyId` (a `PharmacyQuote.pharmacyId`):
    /// for delivery to `delivery`, or for pickup when it is nil.
    ///
    /// - Throws: `CarePassError`: `.InvalidInput(field: .deliveryAddress, .contactPhone…)`,
    ///   `.Platform` with `.incompleteQuote` (the pharmacy does not fill the whole
    ///   prescription), `.alreadyOrdered` (a live order exists for it), `.expired` (the
    ///   prescription), `.notFound`; `.NotSignedIn`, `.SessionExpired`, `.Network`,
    ///   `.Timeout`, `.Closed`.
    public func placeOrder(
        rxId: String,
        pharmacyId: String,
        delivery: DeliveryDetails? = nil,
        subject: String? = nil
    ) async throws -> PharmacyOrder {
        try await core.placeOrder(rxId: rxId, pharmacyId: pharmacyId, delivery: delivery, subject: subject)
    }

    /// A subject's orders, newest first.
    public func orders(subject: String? = nil) async throws -> [PharmacyOrder] {
        try await core.orders(subject: subject)
    }

    /// One order as the platform has it now.
    ///
    /// - Throws: `CarePassError`: `.Platform` (`.notFound`), and as `orders`.
    public func order(orderId: String, subject: String? = nil) async throws -> PharmacyOrder {
        try await core.order(orderId: orderId, subject: subject)
    }

    /// Cancels an order the pharmacy has not prepared yet; returns it, now `.cancelled`.
    ///
    /// - Throws: `CarePassError`: `.Platform` with `.conflict` (the pharmacy moved it on
    ///   already) or `.notFound`, and as `orders`.
    @discardableResult
    public func cancelOrder(orderId: String, subject: String? = nil) async throws -> PharmacyOrder {
        try await core.cancelOrder(orderId: orderId, subject: subject)
    }

    // MARK: - Closing

    /// Closes the core: every stream ends with `CarePassError.Closed`, every later call
    /// throws it, and the database is released. Calling it twice is harmless.
    public func close() {
        core.close()
    }

    // MARK: - Conversions

    /// The string entries of a notification's `userInfo` (the doorbell's fields), without
    /// `aps` and anything else that is not a string.
    static func pushData(_ userInfo: [AnyHashable: Any]) -> [String: String] {
        var data: [String: String] = [:]
        for (key, value) in userInfo {
            if let key = key.base as? String, let value = value as? String {
                data[key] = value
            }
        }
        return data
    }
}
