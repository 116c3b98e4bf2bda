package app.carepass

import app.carepass.ffi.CarePass
import app.carepass.ffi.CarePassException
import app.carepass.ffi.CodeListener
import app.carepass.ffi.InboxListener
import app.carepass.ffi.PaymentListener
import app.carepass.ffi.SessionListener
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.catch
import kotlinx.coroutines.flow.stateIn
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * The CarePass core for a Kotlin app: one per data directory, opened with [open], closed
 * with [close]. Every rule (validation, sessions, storage, signing, code rotation, the live
 * inbox, session-end detection, payment splits, paying exactly once) is in the Rust core;
 * each method here is one core call plus a type conversion, and each live value is one of
 * the core's streams as a [Flow].
 *
 * Network calls are `suspend` and never block the caller's thread (the core runs them on its
 * own runtime); calls that read the phone's store run on the IO dispatcher.
 *
 * ## What the shell does after a failure
 *
 * One rule, the same in the Swift shell (`docs/architecture.md` § Streams and failures):
 * 1. A failed call throws its typed [CarePassException] (a sealed class: the subclass is the
 *    kind, and its enums say precisely what, e.g. [CarePassException.Platform.code] is a
 *    [PlatformErrorCode]). The facade does nothing else: no re-read, no retry, no state change.
 * 2. Who is signed in comes only from the core's session stream: [sessionState] and
 *    [session]. A call that finds the session over throws `SessionExpired` after the core
 *    has already published [SessionState.Ended]; the stream brings it to [sessionState]
 *    within moments.
 * 3. A [Flow] of this class ends with the error the core sent ([codes], [inbox] and
 *    [paymentUpdates] with `NotSignedIn` or `SessionExpired` when the session ends, every
 *    one with `Closed` when the client closes), and nothing follows it.
 * 4. Stopping a collection cancels the core task behind it.
 * 5. After [close], every call and every new [Flow] fails with [CarePassException.Closed].
 *
 * Every call that is about a person takes `subject`: `null` is the signed-in person; a
 * relative's person id acts for them under the link the signed-in person holds (see
 * [profiles] and [ActingProfile.subject]). The core refuses a subject the phone holds no link
 * to with `NotLinked`, and an act the link does not allow with `FamilyRefused` (its
 * [FamilyProblem] `kind`: `LINK_PENDING`, `LINK_REVOKED`, `SCOPE_MISSING`…); the platform
 * checks the same again.
 *
 * Errors every call may throw besides those listed: `Closed` (after [close]), `Internal`.
 */
class CarePassClient private constructor(
    private val core: CarePass,
    private val io: CoroutineDispatcher,
) : AutoCloseable {

    /** Collects the core's session stream into [sessionState]; cancelled by [close]. */
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    /**
     * Who is signed in: [SessionState.SignedOut], [SessionState.SignedIn] with the profile,
     * or [SessionState.Ended] (the platform ended the session: sign in again). Starts from
     * the core's state at [open] and follows the core's session stream ([session]); nothing
     * else sets it. It follows the stream asynchronously: just after a call that signs in or
     * out returns, it may show the previous state for a moment, so collect it rather than
     * reading it once. After [close] it keeps the last state.
     */
    val sessionState: StateFlow<SessionState> = session()
        // The stream ends only when the client closes; the last state stays.
        .catch { }
        .stateIn(scope, SharingStarted.Eagerly, core.sessionState())

    /**
     * The core's session stream: the state now, then each change (sign-in, sign-out, the
     * platform ending the session), until the client closes; then it fails with `Closed`.
     * [sessionState] is this stream as a [StateFlow].
     */
    fun session(): Flow<SessionState> = coreFlow { onValue, onError ->
        core.watchSession(object : SessionListener {
            override fun onState(state: SessionState) = onValue(state)
            override fun onError(error: CarePassException) = onError(error)
        })
    }

    /** Serialises reading the profiles and publishing them, so the last read published wins. */
    private val profilesLock = Mutex()

    private val mutableProfiles = MutableStateFlow(readProfiles() ?: emptyList())

    /**
     * Whom this phone can act as: the signed-in person first, then each relative the core
     * says they may act for now ([relatives]: active links that grant something), as the
     * store holds them (no network). Empty when nobody is signed in. Read again after every
     * family call and [refreshFamily], after [syncInbox] and [handlePush] (which may learn
     * that a link ended), after signing in or out and [refreshProfile], and at every
     * [sessionState] change; a read that fails keeps the last list.
     * Switching profiles is passing [ActingProfile.subject] to the calls.
     */
    val profiles: StateFlow<List<ActingProfile>> = mutableProfiles.asStateFlow()

    init {
        scope.launch { sessionState.collect { publishProfiles() } }
    }

    /**
     * The signed-in person and their relatives from the store; empty when nobody is signed
     * in; `null` when the store could not be read (the list then stays as it was).
     */
    private fun readProfiles(): List<ActingProfile>? = try {
        val me = core.currentProfile()
        if (me == null) emptyList() else listOf(ActingProfile.of(me)) + core.relatives().map { ActingProfile.of(it) }
    } catch (e: CarePassException.NotSignedIn) {
        emptyList()
    } catch (e: CarePassException.SessionExpired) {
        emptyList()
    } catch (e: CarePassException) {
        null
    }

    private suspend fun publishProfiles() {
        profilesLock.withLock {
            val next = withContext(io) { readProfiles() } ?: return
            mutableProfiles.value = next
        }
    }

    // ---- Account ------------------------------------------------------------------------

    /**
     * Asks the platform to text a verification code to [phone] (11 digits starting with 1).
     *
     * @return how long the code stays valid.
     * @throws CarePassException `InvalidInput` (field `PHONE`), `Network`, `Timeout`,
     *   `Platform` (e.g. `RATE_LIMITED` with `retryAfterS`), `InvalidServerAnswer`.
     */
    suspend fun requestVerificationCode(phone: String): Duration =
        core.requestVerificationCode(phone).toLong().seconds

    /**
     * Enrols this device for the person who owns [phone] (registers the device key) and
     * signs them in.
     *
     * @param code the 6-digit verification code.
     * @throws CarePassException `InvalidInput` (`PHONE`, `VERIFICATION_CODE`),
     *   `WrongVerificationCode`, `Network`, `Timeout`, `Platform`, `InvalidServerAnswer`,
     *   `KeyStore` (the device key failed), `Storage`, `StoreBusy`.
     */
    suspend fun enrol(phone: String, code: String): Profile = core.enrol(phone, code).also { publishProfiles() }

    /**
     * Signs in again on a device already enrolled for [phone] (this data directory), proving
     * the device with a signature by its key; works after [logout].
     *
     * @throws CarePassException `NotEnrolled` (this directory, or the platform, does not know
     *   the device), `InvalidInput`, `WrongVerificationCode`, `KeyStore`, `Network`,
     *   `Timeout`, `Platform`, `InvalidServerAnswer`, `Storage`, `StoreBusy`.
     */
    suspend fun login(phone: String, code: String): Profile = core.login(phone, code).also { publishProfiles() }

    /**
     * [login] when this device is enrolled for [phone], [enrol] otherwise (also when the
     * platform no longer knows the device).
     *
     * @throws CarePassException as [enrol] and [login].
     */
    suspend fun signIn(phone: String, code: String): Profile = core.signIn(phone, code).also { publishProfiles() }

    /**
     * Fetches the signed-in person from the platform (refreshing the session if needed) and
     * keeps it; [sessionState] follows.
     *
     * @throws CarePassException `NotSignedIn`, `SessionExpired` (sign in again), `Network`,
     *   `Timeout`, `Platform`, `InvalidServerAnswer`, `OtherPlatform`, `Storage`.
     */
    suspend fun refreshProfile(): Profile = core.refreshProfile().also { publishProfiles() }

    /**
     * The signed-in person from the phone's store, without network; `null` when nobody is
     * signed in or the session ended.
     *
     * @throws CarePassException `Storage`, `StoreTampered`.
     */
    suspend fun currentProfile(): Profile? = withContext(io) { core.currentProfile() }

    /**
     * Signs out: the platform revokes the session (best effort, so this also works offline)
     * and everything this device holds for the person is wiped. The device stays enrolled,
     * so [login] works next.
     *
     * @return whether the platform confirmed the revocation.
     * @throws CarePassException `NotSignedIn`, `Storage`, `StoreBusy`.
     */
    suspend fun logout(): SignOutResult = core.logout().also { publishProfiles() }

    /**
     * Revokes one of the signed-in person's devices (a lost phone): its codes and sessions
     * stop working on the platform at once. Revoking this device itself ends its session
     * here too ([sessionState] becomes [SessionState.Ended]).
     *
     * @param deviceId `dev_` and 16 hex digits, e.g. [Profile.deviceId].
     * @throws CarePassException `InvalidInput` (`DEVICE_ID`), `NotSignedIn`,
     *   `SessionExpired`, `Platform` (`UNKNOWN_DEVICE`: not one of this person's devices),
     *   `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun revokeDevice(deviceId: String) {
        core.revokeDevice(deviceId)
    }

    // ---- E-voucher codes ----------------------------------------------------------------

    /**
     * The e-voucher code to show now for [purpose], made on this device with no network and
     * signed by the device key, on platform time (see [syncClock]). The same code comes back
     * until its period ends.
     *
     * @param offline the offline profile: carries the device certificate, so scanners without
     *   a network verify it; a larger QR code.
     * @throws CarePassException `NotSignedIn`, `NotLinked`, `NoOfflineCertificate`,
     *   `KeyStore`, `Storage`, `StoreTampered`.
     */
    suspend fun currentCode(purpose: CodePurpose, offline: Boolean = false, subject: String? = null): VoucherCode =
        withContext(io) { core.currentCode(purpose, offline, subject) }

    /**
     * The codes to show for [purpose], from the core's code stream: the current one at once,
     * then each new one at its rotation (platform time), each once. Cold: each collection
     * runs its own core stream, and stopping the collection stops it. Buffered, not
     * conflated: apply `conflate()` to skip to the newest code on a slow collector.
     *
     * Fails with `NotSignedIn` or `SessionExpired` when the session ends, `Closed` when the
     * client closes, or the error that stopped making codes (`NoOfflineCertificate`,
     * `KeyStore`, `Storage`…).
     *
     * @param offline as in [currentCode].
     */
    fun codes(purpose: CodePurpose, offline: Boolean = false, subject: String? = null): Flow<VoucherCode> =
        coreFlow { onValue, onError ->
            core.watchCodes(
                purpose,
                offline,
                object : CodeListener {
                    override fun onCode(code: VoucherCode) = onValue(code)
                    override fun onError(error: CarePassException) = onError(error)
                },
                subject,
            )
        }

    /**
     * Learns the platform's time (one small request) and remembers the offset, so codes made
     * later with no network are on platform time. Call it when the app comes to the
     * foreground before showing codes.
     *
     * @return the new [serverClockOffset].
     * @throws CarePassException `Network`, `Timeout`, `Platform`, `InvalidServerAnswer`,
     *   `Storage`.
     */
    suspend fun syncClock(): Duration = core.syncClock().milliseconds

    /** Server clock minus phone clock, from the last platform answer (zero before any). */
    val serverClockOffset: Duration
        get() = core.serverClockOffsetMs().milliseconds

    // ---- Pending bills ------------------------------------------------------------------

    /**
     * The subject's bills from the phone's store, newest first, with expiry applied on
     * platform time. No network: what [syncInbox], [handlePush] and [inbox] brought in.
     *
     * @throws CarePassException `NotSignedIn`, `NotLinked`, `Storage`, `StoreBusy`,
     *   `StoreTampered`.
     */
    suspend fun bills(subject: String? = null): List<Bill> = withContext(io) { core.bills(subject) }

    /**
     * Pulls every change after the phone's cursor from the platform and commits it. Call it
     * when the app starts or comes to the foreground (in any case when [pullOwed] is true),
     * and on pull-to-refresh.
     *
     * @return the changes new to the phone; empty if none.
     * @throws CarePassException `NotSignedIn`, `SessionExpired`, `Network`, `Timeout`,
     *   `Platform`, `InvalidServerAnswer`, `Storage`, `StoreBusy`, `StoreTampered`.
     */
    suspend fun syncInbox(): List<InboxChange> = core.syncInbox().also { publishProfiles() }

    /**
     * Hands over a push: the data map exactly as the push service delivered it. The push is
     * only a signed doorbell; the core verifies it (platform signature, recipient, age), then
     * pulls the change over the authenticated API.
     *
     * On Android, the push services' callbacks call `CarePassPush.onMessageReceived`, which
     * routes the map here and turns the outcome into a value. By hand, from Firebase Cloud
     * Messaging, in the app's `FirebaseMessagingService`:
     * ```
     * override fun onMessageReceived(message: RemoteMessage) {
     *     if (!isCarePassPush(message.data)) return
     *     runBlocking {
     *         try {
     *             when (val result = client.handlePush(message.data)) {
     *                 is PushResult.Pulled -> notifyNewBills(result.changes)
     *                 PushResult.AlreadySeen, PushResult.NotYetReadable -> Unit
     *             }
     *         } catch (e: CarePassException) {
     *             // InvalidPush (e.kind says why): not for this phone. Anything else: the
     *             // doorbell is remembered, and pullOwed() says to sync at the next start.
     *         }
     *     }
     * }
     * ```
     * Huawei Push Kit and Mi Push deliver the same map; pass it the same way.
     *
     * @return [PushResult.Pulled] with the changes new to the phone; [PushResult.AlreadySeen]
     *   for a duplicate or late doorbell; [PushResult.NotYetReadable] when the platform does
     *   not serve the announced change yet (then [pullOwed] is true).
     * @throws CarePassException `InvalidPush` (its [PushRefusal] `kind`: forged, stale,
     *   misdirected, malformed; nothing is pulled), `NotSignedIn`, `SessionExpired`,
     *   `Network`, `Timeout`, `Platform`, `InvalidServerAnswer`, `Storage`, `StoreBusy`.
     */
    suspend fun handlePush(data: Map<String, String>): PushResult = core.handlePush(data).also { publishProfiles() }

    /**
     * Whether a verified doorbell announced a change not in the store yet (the pull failed,
     * or the app was killed in between). Check it when the app starts: if true, [syncInbox].
     *
     * @throws CarePassException `NotSignedIn`, `Storage`, `StoreBusy`, `StoreTampered`.
     */
    suspend fun pullOwed(): Boolean = withContext(io) { core.pullOwed() }

    /**
     * Registers this app's push token for the signed-in person. Call it after each sign-in
     * and whenever the push service hands a new token (FCM's `onNewToken`).
     *
     * @param service `fcm`, `apns`, `huawei` or `xiaomi`.
     * @throws CarePassException `InvalidInput` (`PUSH_SERVICE`, `PUSH_TOKEN`), `NotSignedIn`,
     *   `SessionExpired`, `Network`, `Timeout`, `Platform`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun registerPushToken(service: String, token: String) {
        core.registerPushToken(service, token)
    }

    /**
     * The subject's inbox from the core's inbox stream: first the bills now (newest first,
     * expiry applied; [InboxUpdate.changes] empty), then the whole list again after every
     * change with the changes that led there, each committed to the store before it is
     * handed over. The core keeps the platform's live connection open meanwhile
     * (reconnecting and resyncing by itself); changes pulled by [syncInbox] or [handlePush]
     * arrive here too. Collect it while the app is in the foreground and rely on
     * [handlePush] in the background. Cold, buffered, in order.
     *
     * Fails with `NotSignedIn` or `SessionExpired` when the session ends, `Closed` when the
     * client closes (network trouble never ends it).
     */
    fun inbox(subject: String? = null): Flow<InboxUpdate> = coreFlow { onValue, onError ->
        core.watchInbox(
            object : InboxListener {
                override fun onUpdate(update: InboxUpdate) = onValue(update)
                override fun onError(error: CarePassException) = onError(error)
            },
            subject,
        )
    }

    // ---- Prescriptions and pharmacies ---------------------------------------------------

    /**
     * The subject's prescriptions from the platform, newest first.
     *
     * @throws CarePassException `NotSignedIn`, `NotLinked`, `SessionExpired`, `Network`,
     *   `Timeout`, `Platform`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun prescriptions(subject: String? = null): List<Prescription> = core.prescriptions(subject)

    /**
     * Nearby pharmacies ranked by what the patient pays after insurance, with the subject's
     * coverage. The core fills in the defaults of [request] (5 km, 20 quotes, the newest
     * prescription) and "open now" on platform time.
     *
     * @throws CarePassException `InvalidInput` (`LOCATION`, `SEARCH_RADIUS`, `LIMIT`,
     *   `PRESCRIPTION_ID`), `NoPrescription` (no `rxId` and none to rank), `NotSignedIn`,
     *   `SessionExpired`, `Platform` (`NOT_FOUND`: no such prescription of the subject;
     *   `EXPIRED`: the prescription expired), `Network`, `Timeout`, `InvalidServerAnswer`,
     *   `Storage`.
     */
    suspend fun rankPharmacies(request: RankRequest, subject: String? = null): PharmacyRanking =
        core.rankPharmacies(request, subject)

    /**
     * Orders prescription [rxId] from pharmacy [pharmacyId] at the platform's quote now,
     * kept in [PharmacyOrder.quote]. The order starts [OrderStatus.ACCEPTED].
     *
     * @param delivery where to deliver; `null` for pickup at the pharmacy.
     * @throws CarePassException `InvalidInput` (`DELIVERY_ADDRESS`, `CONTACT_PHONE`,
     *   `LOCATION`…), `NotSignedIn`, `SessionExpired`, `Platform` (`INCOMPLETE_QUOTE`: the
     *   pharmacy does not fill the whole prescription; `ALREADY_ORDERED`: the prescription
     *   has a live or completed order; `EXPIRED`; `NOT_FOUND`; `CONFLICT`: the pharmacy does
     *   not deliver there), `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun placeOrder(
        rxId: String,
        pharmacyId: String,
        delivery: DeliveryDetails? = null,
        subject: String? = null,
    ): PharmacyOrder = core.placeOrder(rxId, pharmacyId, delivery, subject)

    /**
     * The subject's orders, newest first.
     *
     * @throws CarePassException as [order].
     */
    suspend fun orders(subject: String? = null): List<PharmacyOrder> = core.orders(subject)

    /**
     * One of the subject's orders as the platform has it now.
     *
     * @throws CarePassException `InvalidInput` (`ORDER_ID`), `NotSignedIn`, `SessionExpired`,
     *   `Platform` (`NOT_FOUND`), `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun order(orderId: String, subject: String? = null): PharmacyOrder = core.order(orderId, subject)

    /**
     * Cancels an order while it is [OrderStatus.ACCEPTED].
     *
     * @return the order, now [OrderStatus.CANCELLED].
     * @throws CarePassException as [order], and `Platform` `CONFLICT` once the pharmacy
     *   moved it on.
     */
    suspend fun cancelOrder(orderId: String, subject: String? = null): PharmacyOrder =
        core.cancelOrder(orderId, subject)

    // ---- Mixed payment ------------------------------------------------------------------

    /**
     * Pre-settles bill [billId] (预结算) with the subject's live coverage and checks the
     * platform's answer against the bill on the phone (syncing the inbox once when the phone's
     * copy is behind) before anyone sees it. The core keeps the quote for [pay]; it lives
     * five minutes.
     *
     * @param useAccount whether the personal account (个人账户) may pay the patient's share.
     * @param channel the cash channel as text: `none`, `card:<number>` (12 to 19 digits
     *   passing the Luhn check) or `credit`; ignored (the quote says `none`) when nothing is
     *   left for cash.
     * @param subject the patient the bill is for; null is the signed-in person.
     * @param mutualAid family mutual aid (家庭共济): when true, the signed-in person's own
     *   personal account pays what is left of [subject]'s share after the fund and their
     *   account (`mutualAidFen`), where the family rules allow it for the link; refused with
     *   `FamilyRefused` (`MUTUAL_AID_RELATIONSHIP`) otherwise, and `Platform` (`INVALID_REQUEST`) for oneself.
     * @throws CarePassException `InvalidInput` (`PAYMENT_CHANNEL`: not a channel; `BILL_ID`:
     *   not an id, or no such bill of the subject even after a sync), `QuoteRefused` (its
     *   [QuoteProblem] `kind`: the answer does not match the bill, adds up wrong, is for
     *   someone else, not payable or expired), `NotSignedIn`, `NotLinked`, `SessionExpired`,
     *   `Platform` (`BILL_NOT_PAYABLE`: paid, being paid, cash due, expired or cancelled;
     *   `INVALID_REQUEST`: cash is due and [channel] is `none`; `CREDIT_LIMIT_EXCEEDED`;
     *   `CONFLICT`: no settlement rule for the visit; `NOT_FOUND`; `RATE_LIMITED`),
     *   `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`, `StoreBusy`.
     */
    suspend fun quote(
        billId: String,
        useAccount: Boolean = true,
        channel: String = "none",
        subject: String? = null,
        mutualAid: Boolean = false,
    ): PaymentQuote = core.quoteBill(billId, useAccount, channel, subject, mutualAid)

    /**
     * Pays quote [quoteId] with one confirmation: the core signs the consent to exactly the
     * quote's amounts with the device key, stores the request durably under a new
     * idempotency key, then sends it. A declined card is no exception: the payment comes
     * back [PaymentStatus.FAILED] (nothing charged; `failureCode` says why, the bill can be
     * paid with a new quote) or [PaymentStatus.CASH_DUE] (the insurance paid: [payCashDue]).
     * [PaymentStatus.REQUIRES_ACTION] asks for [confirmPayment]; [PaymentStatus.PROCESSING]
     * is still under way: follow it with [paymentUpdates].
     *
     * @throws CarePassException `PaymentOutcomeUnknown` (no answer came, or an earlier
     *   payment of the bill still has none: the core re-sends the same request by itself,
     *   see [resumePayments]; never pay the bill again meanwhile), `InvalidInput`
     *   (`QUOTE_ID`: no such quote on this phone), `QuoteRefused` (`EXPIRED`: ask for a new
     *   quote), `Platform` (`QUOTE_USED`: the quote was already paid; `BILL_NOT_PAYABLE`;
     *   `QUOTE_EXPIRED`; `CONSENT_MISMATCH`; `SIGNATURE_INVALID`; `NOT_FOUND`), `NotSignedIn`,
     *   `NotLinked`, `SessionExpired`, `KeyStore`, `Storage`, `StoreBusy`.
     */
    suspend fun pay(quoteId: String, subject: String? = null): Payment = core.pay(quoteId, subject)

    /**
     * [pay] of [quote], for its subject.
     *
     * @throws CarePassException as [pay].
     */
    suspend fun pay(quote: PaymentQuote): Payment = core.pay(quote.quoteId, quote.subject)

    /**
     * Gives the bank's second confirmation of a [PaymentStatus.REQUIRES_ACTION] payment: the
     * code the bank sent the patient. The right code moves the payment on (it comes back
     * settled, usually [PaymentStatus.SUCCEEDED]); a wrong one leaves it
     * [PaymentStatus.REQUIRES_ACTION], and the third wrong one fails it
     * (`authentication_failed`). A payment no longer waiting comes back as it is.
     *
     * @throws CarePassException `InvalidInput` (`PAYMENT_ID`; `VERIFICATION_CODE`: not 1 to
     *   12 digits), `NotSignedIn`, `NotLinked`, `SessionExpired`, `Platform` (`NOT_FOUND`:
     *   not a payment this person made), `Network`, `Timeout`, `InvalidServerAnswer`,
     *   `Storage`.
     */
    suspend fun confirmPayment(paymentId: String, code: String, subject: String? = null): Payment =
        core.confirmPayment(paymentId, code, subject)

    /**
     * Pays the cash still due on a [PaymentStatus.CASH_DUE] payment (the insurance paid; the
     * card was declined at capture) with another card, signed and under a new idempotency
     * key stored before sending. A declined card leaves it [PaymentStatus.CASH_DUE], ready
     * for another.
     *
     * @param channel `card:<number>` (not `credit`, not `none`).
     * @throws CarePassException `InvalidInput` (`PAYMENT_CHANNEL`: not a card; `PAYMENT_ID`),
     *   `PaymentOutcomeUnknown` (as in [pay]), `Platform` (`BILL_NOT_PAYABLE`: no cash is due
     *   now; `NOT_FOUND`; `CONSENT_MISMATCH`; `QUOTE_EXPIRED`; `SIGNATURE_INVALID`),
     *   `NotSignedIn`, `NotLinked`, `SessionExpired`, `KeyStore`, `Network`, `Timeout`,
     *   `InvalidServerAnswer`, `Storage`, `StoreBusy`.
     */
    suspend fun payCashDue(paymentId: String, channel: String, subject: String? = null): Payment =
        core.payCashDue(paymentId, channel, subject)

    /**
     * One of the subject's payments as the platform has it now (kept on the phone, so
     * [payments] and [receipts] follow), refunds by the clinic included.
     *
     * @throws CarePassException `InvalidInput` (`PAYMENT_ID`), `NotSignedIn`, `NotLinked`,
     *   `SessionExpired`, `Platform` (`NOT_FOUND`), `Network`, `Timeout`,
     *   `InvalidServerAnswer`, `Storage`.
     */
    suspend fun payment(paymentId: String, subject: String? = null): Payment = core.payment(paymentId, subject)

    /**
     * The subject's payments the phone knows of, newest first, as last stored (no network:
     * [payment] or [paymentUpdates] bring a payment up to date).
     *
     * @throws CarePassException `NotSignedIn`, `NotLinked`, `Storage`, `StoreBusy`,
     *   `StoreTampered`.
     */
    suspend fun payments(subject: String? = null): List<Payment> = withContext(io) { core.payments(subject) }

    /**
     * Sends again, with the same key and bytes, every payment request whose answer was lost
     * (a timeout, a crash, the network); call it when the app starts and when the network
     * returns. Requests still without an answer stay stored for the next try.
     *
     * @return the payments that got an answer now.
     * @throws CarePassException `NotSignedIn`, `SessionExpired`, `Storage`, `StoreBusy`.
     */
    suspend fun resumePayments(): List<Payment> = core.resumePayments()

    /**
     * How many payment requests still wait for an answer (to show "resuming"; [resumePayments]
     * sends them). No network.
     *
     * @throws CarePassException `NotSignedIn`, `Storage`, `StoreBusy`.
     */
    suspend fun paymentsUnresolved(): Int = withContext(io) { core.paymentsUnresolved().toInt() }

    /**
     * The receipts of the subject's payments on the phone, newest first, each verified by the
     * core (signature against the platform's receipt key, check code, amounts); after a
     * refund, the write-off and the re-issued receipt too. The receipt key is fetched once,
     * then this works offline.
     *
     * @throws CarePassException `InvalidReceipt` (its [ReceiptProblem] `kind`: a receipt
     *   that does not verify is never shown as valid), `NotSignedIn`, `NotLinked`,
     *   `Network`, `Timeout`, `Platform`, `InvalidServerAnswer` (fetching the key),
     *   `Storage`, `StoreTampered`.
     */
    suspend fun receipts(subject: String? = null): List<VerifiedReceipt> = core.receipts(subject)

    /**
     * The signed-in person's credit pay-later line (信用就医): limit, used, available and each
     * use with its due date. Credit is always the actor's own.
     *
     * @throws CarePassException `NotSignedIn`, `SessionExpired`, `Network`, `Timeout`,
     *   `Platform`, `InvalidServerAnswer`.
     */
    suspend fun creditLine(): CreditLine = core.creditLine()

    /**
     * Signs the credit agreement for [limitFen] (1 to 500000 fen, uses due in 30 days) with the
     * device key; signing again changes the limit (not below what is used).
     *
     * @throws CarePassException `InvalidInput` (`CREDIT_LIMIT`), `NotSignedIn`,
     *   `SessionExpired`, `KeyStore`, `Network`, `Timeout`, `Platform` (`CREDIT_LIMIT_EXCEEDED`:
     *   below what is used), `InvalidServerAnswer`.
     */
    suspend fun signCreditAgreement(limitFen: Long): CreditLine = core.signCreditAgreement(limitFen)

    /**
     * Repays [amountFen] of the credit line from a card ([channel] `card:<number>`), oldest use
     * first, exactly once: the request is stored before it is sent, and one without an answer
     * is sent again by the next call before anything new.
     *
     * @throws CarePassException `InvalidInput` (`PAYMENT_CHANNEL`: not a card; `AMOUNT`),
     *   `PaymentOutcomeUnknown` (bill id `credit`: call again to resolve it), `NotSignedIn`,
     *   `SessionExpired`, `Network`, `Timeout`, `Platform` (`CONFLICT`: more than is owed, or
     *   the card declined; `IDEMPOTENCY_KEY_REUSED`), `Storage`.
     */
    suspend fun repayCredit(channel: String, amountFen: Long): CreditLine = core.repayCredit(channel, amountFen)

    /**
     * Payment [paymentId] from the core's payment stream: as the phone has it now (asked of
     * the platform when the phone has none), then again after every change, stored by a call
     * here or moved at the platform and announced on the live connection or by a doorbell
     * (the phone does not poll). Cold, buffered, in order; stop collecting once the state
     * waited for has come (e.g. `first { it.status == PaymentStatus.SUCCEEDED }`).
     *
     * Fails with `InvalidInput` (`PAYMENT_ID`), `NotLinked`, `Platform` (`NOT_FOUND`), or
     * the first ask's `Network`/`Timeout`; with `NotSignedIn` or `SessionExpired` when the
     * session ends, `Closed` when the client closes.
     */
    fun paymentUpdates(paymentId: String, subject: String? = null): Flow<Payment> = coreFlow { onValue, onError ->
        core.watchPayment(
            paymentId,
            object : PaymentListener {
                override fun onUpdate(payment: Payment) = onValue(payment)
                override fun onError(error: CarePassException) = onError(error)
            },
            subject,
        )
    }

    // ---- Family proxies (亲情账户) -----------------------------------------------------------

    /**
     * The signed-in person's links as last fetched (no network): [FamilyOverview.actingFor]
     * (they act for a relative) and [FamilyOverview.actedForBy] (a relative acts for them,
     * including requests waiting for their consent).
     *
     * @throws CarePassException `NotSignedIn`, `Storage`, `StoreTampered`.
     */
    suspend fun family(): FamilyOverview = withContext(io) { core.family() }

    /**
     * Fetches the links and the family rules from the platform and keeps them; [profiles]
     * follows. Call it when the family screen opens and after a push about a link.
     *
     * @throws CarePassException `NotSignedIn`, `SessionExpired`, `Network`, `Timeout`,
     *   `Platform`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun refreshFamily(): FamilyOverview = core.refreshFamily().also { publishProfiles() }

    /**
     * The relatives the signed-in person may act for now (active links that grant something,
     * with the `effectiveScopes` the core worked out), as last fetched; no network. Pass
     * [FamilyLinkView.principalId] as `subject`. [profiles] is this list with the signed-in
     * person in front.
     *
     * @throws CarePassException `NotSignedIn`, `Storage`, `StoreTampered`.
     */
    suspend fun relatives(): List<FamilyLinkView> = withContext(io) { core.relatives() }

    /**
     * Asks to act for the relative who owns [phone], who is the signed-in person's
     * [relationship] (`PARENT`: their father or mother). A minor in the same household
     * register is linked at once (`ACTIVE`, parental responsibility); any other link comes
     * back `PENDING` until the relative consents ([FamilyLinkView.consentPaths]: on their own
     * phone, [approveLink]; or by a code they read out, [sendLinkCode] then [confirmLinkCode]).
     *
     * @param scopes what to ask for; `null`: all six.
     * @param perPaymentFen the most one payment may move (positive); `null`: no limit.
     * @param perMonthFen the most the proxy may move in a calendar month; `null`: no limit.
     * @throws CarePassException `InvalidInput` (`PHONE`; `AMOUNT`: a limit not positive),
     *   `FamilyRefused` (`RELATIONSHIP_NOT_VERIFIED`: the household register does not show
     *   it; `MINOR_NEEDS_PARENT`; `TOO_MANY_LINKS`; `SELF_LINK`; `ALREADY_LINKED`),
     *   `Platform` (`NOT_FOUND`: nobody insured has that phone), `NotSignedIn`,
     *   `SessionExpired`, `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun linkRelative(
        phone: String,
        relationship: FamilyRelationship,
        scopes: List<FamilyScope>? = null,
        perPaymentFen: Long? = null,
        perMonthFen: Long? = null,
    ): FamilyLinkView = familyAction(app.carepass.ffi.FamilyAction.Link(phone, relationship, scopes, perPaymentFen, perMonthFen))

    /**
     * The principal consents, on their own phone, to a link a relative asked for
     * ([FamilyOverview.actedForBy]); the link comes back `ACTIVE`.
     *
     * @throws CarePassException `InvalidInput` (`LINK_ID`), `FamilyRefused`
     *   (`NOT_THE_PRINCIPAL`; `ILLEGAL_MOVE`: not pending; `CONSENT_PATH_NOT_ALLOWED`),
     *   `Platform` (`NOT_FOUND`), `NotSignedIn`, `SessionExpired`, `Network`, `Timeout`,
     *   `InvalidServerAnswer`, `Storage`.
     */
    suspend fun approveLink(linkId: String): FamilyLinkView = familyAction(app.carepass.ffi.FamilyAction.Approve(linkId))

    /**
     * The proxy has the platform text a consent code to the relative's phone (a relative
     * without a smartphone, when the rules allow it for their age band); the relative reads
     * it out and the proxy enters it with [confirmLinkCode].
     *
     * @return how long the code stays valid.
     * @throws CarePassException `InvalidInput` (`LINK_ID`), `FamilyRefused`
     *   (`CONSENT_PATH_NOT_ALLOWED`, `ILLEGAL_MOVE`), `Platform` (`NOT_FOUND`,
     *   `RATE_LIMITED`), `NotSignedIn`, `SessionExpired`, `Network`, `Timeout`,
     *   `InvalidServerAnswer`.
     */
    suspend fun sendLinkCode(linkId: String): Duration =
        core.sendLinkCode(linkId).toLong().seconds.also { publishProfiles() }

    /**
     * The proxy enters the code the relative read out ([sendLinkCode]); the link comes back
     * `ACTIVE`.
     *
     * @throws CarePassException `InvalidInput` (`LINK_ID`, `VERIFICATION_CODE`), `Platform`
     *   (`WRONG_VERIFICATION_CODE`), `FamilyRefused`, `NotSignedIn`, `SessionExpired`,
     *   `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun confirmLinkCode(linkId: String, code: String): FamilyLinkView =
        familyAction(app.carepass.ffi.FamilyAction.ConfirmCode(linkId, code))

    /**
     * Ends a link, at once, from either side (final). On the proxy's phone the relative's
     * bills leave with it; the proxy's next step under it is refused at the platform, and
     * the proxy's phone learns it at its next [refreshFamily] or [syncInbox].
     *
     * @throws CarePassException `InvalidInput` (`LINK_ID`), `FamilyRefused` (`ILLEGAL_MOVE`:
     *   already revoked), `Platform` (`NOT_FOUND`), `NotSignedIn`, `SessionExpired`,
     *   `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun revokeLink(linkId: String): FamilyLinkView = familyAction(app.carepass.ffi.FamilyAction.Revoke(linkId))

    /**
     * The principal renews an adult link (active or expired) for another period.
     *
     * @throws CarePassException `InvalidInput` (`LINK_ID`), `FamilyRefused`
     *   (`NOT_THE_PRINCIPAL`, `ILLEGAL_MOVE`), `Platform` (`NOT_FOUND`), `NotSignedIn`,
     *   `SessionExpired`, `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun renewLink(linkId: String): FamilyLinkView = familyAction(app.carepass.ffi.FamilyAction.Renew(linkId))

    /**
     * The principal (a teen) sets the scopes they assent to, of those their age band leaves
     * to them; the list replaces the earlier one (empty withdraws assent).
     *
     * @throws CarePassException as [renewLink].
     */
    suspend fun assentLink(linkId: String, scopes: List<FamilyScope>): FamilyLinkView =
        familyAction(app.carepass.ffi.FamilyAction.Assent(linkId, scopes))

    /**
     * Any move on a link ([linkRelative], [approveLink], [confirmLinkCode], [revokeLink],
     * [renewLink] and [assentLink] build it): the link as it now is, after the core fetched
     * the links again; [profiles] follows.
     *
     * @throws CarePassException as the named calls.
     */
    suspend fun familyAction(action: FamilyAction): FamilyLinkView =
        core.familyAction(action).also { publishProfiles() }

    /**
     * The signed-in person's audit trail (oldest first): every act a relative did for them
     * and every change to their links, verified by the core as a hash chain and against the
     * head it verified last time.
     *
     * @throws CarePassException `AuditTampered` (a record was changed, dropped, reordered or
     *   the trail cut short: show none of it as valid), `NotSignedIn`, `SessionExpired`,
     *   `Network`, `Timeout`, `Platform`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun familyAudit(): FamilyAudit = core.familyAudit().also { publishProfiles() }

    // ---- Lifecycle ----------------------------------------------------------------------

    /**
     * Closes the core: every running stream ends with `Closed` (so does every [Flow] being
     * collected), every later call and every new [Flow] fails with `Closed`, and the data
     * directory is released at once, so it can be opened again. Idempotent.
     *
     * The native object itself is freed when this client is garbage collected: freeing it
     * here would make later calls fail with [IllegalStateException] instead of `Closed`.
     */
    override fun close() {
        core.shutdown()
        scope.cancel()
    }

    companion object {
        /**
         * Opens the core on [config]'s data directory (created if missing) on [ioDispatcher].
         *
         * @param secretStore holds the store's data key; the same one must be passed on every
         *   open of this directory.
         * @param keyStore the device key; `null` makes the core keep a software key sealed in
         *   its store (tests, previews). Apps pass `AndroidKeystoreDeviceKey`.
         * @param logger receives the core's log lines (process-wide: the last one wins).
         * @param ioDispatcher where the calls that read the store run.
         * @throws CarePassException `InsecureServerUrl` (not https, nor http to loopback),
         *   `WrongDataKey` (the secret store holds another key for this store's data),
         *   `MissingDataKey` (the store holds data but the secret store has no key for it),
         *   `Storage`, `StoreBusy`, `KeyStore` (the secret store failed), `StoreTampered`.
         */
        suspend fun open(
            config: CarePassConfig,
            secretStore: SecretStore,
            keyStore: DeviceKeyStore? = null,
            logger: Logger? = null,
            ioDispatcher: CoroutineDispatcher = Dispatchers.IO,
        ): CarePassClient = withContext(ioDispatcher) {
            openBlocking(config, secretStore, keyStore, logger, ioDispatcher)
        }

        /** [open] on the calling thread (it reads the disk: not the main thread). */
        @JvmStatic
        @JvmOverloads
        fun openBlocking(
            config: CarePassConfig,
            secretStore: SecretStore,
            keyStore: DeviceKeyStore? = null,
            logger: Logger? = null,
            ioDispatcher: CoroutineDispatcher = Dispatchers.IO,
        ): CarePassClient = CarePassClient(CarePass.open(config, secretStore, keyStore, logger), ioDispatcher)
    }
}
