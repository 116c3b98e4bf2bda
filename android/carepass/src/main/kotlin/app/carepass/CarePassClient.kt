package app.carepass

import app.carepass.ffi.CarePass
import app.carepass.ffi.CarePassException
import app.carepass.ffi.CodeListener
import app.carepass.ffi.InboxListener
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.SendChannel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.conflate
import kotlinx.coroutines.flow.distinctUntilChangedBy
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.withContext
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * The CarePass core for a Kotlin app: one per data directory, opened with [open], closed
 * with [close]. Every rule (validation, sessions, storage, signing) is in the Rust core;
 * this class adapts it to coroutines and [StateFlow]s.
 *
 * Network calls are `suspend` and never block the caller's thread (the core runs them on
 * its own runtime); calls that read the on-disk store run on the IO dispatcher.
 *
 * Errors: every call throws [CarePassException] (a sealed class; the subclass is the
 * kind), listed per function below. Calls on a closed client throw [IllegalStateException].
 * Phone numbers are 11 digits starting with 1 and verification codes 6 digits; anything
 * else is [CarePassException.InvalidInput] before any network traffic.
 */
class CarePassClient private constructor(
    private val core: CarePass,
    private val io: CoroutineDispatcher,
    initialProfile: Profile?,
    initialBills: List<Bill>,
) : AutoCloseable {

    private val signedIn = MutableStateFlow(initialProfile)

    private val inboxBills = MutableStateFlow(initialBills)

    /** Serialises [readInbox], so the last list published is from the last store read. */
    private val inboxLock = Any()

    private val closed = AtomicBoolean(false)

    /** The core watches of the [codes] and [inboxChanges] flows being collected; [close] stops them. */
    private val watches: MutableSet<RunningWatch> = ConcurrentHashMap.newKeySet()

    /**
     * The signed-in person, or `null`. Starts from the store at [open]; updated by
     * [enrol], [login], [signIn], [refreshProfile], [currentProfile] and [logout]. After a
     * failed or cancelled call it is re-read from the store, which the core keeps
     * authoritative.
     */
    val profile: StateFlow<Profile?> = signedIn.asStateFlow()

    /**
     * The signed-in person's bills as [bills] lists them (newest first, expiry applied), or
     * empty when nobody is signed in. Starts from the store at [open]; re-read from the store
     * after [bills], [syncInbox], [handlePush], each change an [inboxChanges] flow hands
     * over, and the calls that change [profile]. Nothing re-reads it on a timer, so a bill
     * that passes its due time while the app watches shows as expired at the next of these.
     */
    val inbox: StateFlow<List<Bill>> = inboxBills.asStateFlow()

    /**
     * Asks the platform to text a verification code to [phone].
     *
     * @return how long the code stays valid.
     * @throws CarePassException `InvalidInput`, `Network`, `Timeout`, `Platform` (e.g. rate
     *   limited), `InvalidServerAnswer`.
     */
    suspend fun requestVerificationCode(phone: String): Duration =
        core.requestVerificationCode(phone).toLong().seconds

    /**
     * Enrols this device for the person who owns [phone] (registers the device key) and
     * signs them in.
     *
     * @throws CarePassException `InvalidInput`, `WrongVerificationCode`, `Network`,
     *   `Timeout`, `Platform`, `InvalidServerAnswer`, `KeyStore` (the device key failed),
     *   `Storage`.
     */
    suspend fun enrol(phone: String, code: String): Profile = publishing { core.enrol(phone, code) }

    /**
     * Signs in again on a device already enrolled for [phone] (this data directory), proving
     * the device with a signature by its key; works after [logout].
     *
     * @throws CarePassException `NotEnrolled` (this directory, or the platform, does not know
     *   the device), `InvalidInput`, `WrongVerificationCode`, `KeyStore`, `Network`,
     *   `Timeout`, `Platform`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun login(phone: String, code: String): Profile = publishing { core.login(phone, code) }

    /**
     * [login] when this device is already enrolled for [phone], [enrol] otherwise.
     *
     * @throws CarePassException as [enrol] and [login].
     */
    suspend fun signIn(phone: String, code: String): Profile = publishing { core.signIn(phone, code) }

    /**
     * Fetches the signed-in person from the platform, refreshing the session if needed.
     *
     * @throws CarePassException `NotSignedIn`, `SessionExpired` (sign in again), `Network`,
     *   `Timeout`, `Platform`, `InvalidServerAnswer`, `Storage`, `StoreTampered`.
     */
    suspend fun refreshProfile(): Profile = publishing { core.refreshProfile() }

    /**
     * The signed-in person from the store, without network; also re-publishes it to [profile].
     *
     * @throws CarePassException `Storage`, `StoreTampered`.
     */
    suspend fun currentProfile(): Profile? = withContext(io) { core.currentProfile() }.also { publish(it) }

    /**
     * Ends the session: the platform revokes it (best effort, so this also works offline)
     * and the person's local data is wiped. The device stays enrolled, so [login] works next.
     *
     * @throws CarePassException `NotSignedIn`, `Storage`.
     */
    suspend fun logout() {
        publishing { core.logout(); null }
    }

    /**
     * The e-voucher code to show now for [purpose], made on this device with no network and
     * signed by the device key, on platform time (the phone's clock corrected by the offset
     * learned from the platform; see [syncClock]). The same code comes back until its period
     * (30 s) ends, as long as nothing asks for another purpose or profile in between.
     *
     * @param offline the offline profile: carries the device certificate, so scanners without
     *   a network verify it; a larger QR code.
     * @throws CarePassException `NotSignedIn`, `NoOfflineCertificate` (offline, and the
     *   platform issued no certificate), `KeyStore`, `Storage`, `StoreTampered`.
     */
    suspend fun currentCode(purpose: CodePurpose, offline: Boolean = false): VoucherCode =
        withContext(io) { core.currentCode(purpose, offline) }

    /**
     * The codes to show for [purpose]: the current one at once, then a new one at each
     * rotation (every 30 s, at [VoucherCode.refreshAtMs] platform time), until the collector
     * stops. Cold: each collection starts its own watch in the core, and stopping the
     * collection (cancelling it, or `first()`) stops that watch.
     *
     * Each code comes once (the core may hand the same code again when the phone's clock is
     * adjusted); conflated: a collector slower than the rotation skips to the newest code,
     * never an outdated one.
     *
     * The flow fails with the [CarePassException] that stopped the watch: `NotSignedIn` (also
     * after [logout]), `NoOfflineCertificate`, `KeyStore`, `Storage`, `StoreTampered`. It
     * completes when the client is [close]d; collecting it on a closed client throws
     * [IllegalStateException].
     *
     * @param offline as in [currentCode].
     */
    fun codes(purpose: CodePurpose, offline: Boolean = false): Flow<VoucherCode> = callbackFlow {
        val listener = object : CodeListener {
            // Called on the core's background thread; both calls are thread-safe and never block.
            override fun onCode(code: VoucherCode) {
                trySend(code)
            }

            override fun onError(error: CarePassException) {
                close(error)
            }
        }
        val watch = core.watchCodes(purpose, offline, listener)
        val running = RunningWatch(channel, endsWithSession = false) {
            watch.cancel()
            watch.close()
        }
        watches += running
        // Either close() sees this watch in the set, or this sees the flag it set first.
        if (closed.get()) running.stop()
        awaitClose {
            watches -= running
            running.stop()
        }
    }.conflate().distinctUntilChangedBy { it.payload }

    /**
     * Learns the platform's time (one small request) and remembers the offset in the store,
     * so codes made later with no network are on platform time. Every platform answer updates
     * the offset too; call this when the app comes to the foreground before showing codes.
     *
     * @return the new [serverClockOffset].
     * @throws CarePassException `Network`, `Timeout`, `Platform`, `InvalidServerAnswer`,
     *   `Storage`.
     */
    suspend fun syncClock(): Duration = core.syncClock().milliseconds

    /**
     * Revokes one of the signed-in person's devices (a lost phone): its codes and sessions
     * stop working on the platform at once.
     *
     * Revoking this device itself ends its session here too: [profile] becomes `null`, and
     * the calls that need a session ([currentCode], [refreshProfile], [bills]…) throw
     * `NotSignedIn`; codes it showed before are rejected by scanners as `revoked`. A device
     * revoked from another phone learns it at its next call that needs the session: that
     * call throws `SessionExpired` and [profile] becomes `null`.
     *
     * @param deviceId `dev_` and 16 hex digits, e.g. [Profile.deviceId].
     * @throws CarePassException `InvalidInput` (not a device id), `NotSignedIn`,
     *   `SessionExpired`, `Platform` (e.g. not one of this person's devices), `Network`,
     *   `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun revokeDevice(deviceId: String) {
        publishing {
            core.revokeDevice(deviceId)
            withContext(io) { core.currentProfile() }
        }
    }

    // ---- Pending bills -------------------------------------------------------------------

    /**
     * The signed-in person's bills from the phone's store, newest first, with expiry applied
     * on platform time (a pending bill past its due time is [BillState.EXPIRED]). No network:
     * what [syncInbox], [handlePush] and [inboxChanges] brought in. Also published to [inbox].
     * After the session ended (`SessionExpired`, or this device revoked) it still lists that
     * person's bills from the store, until [logout] wipes them; [inbox] is empty then.
     *
     * @throws CarePassException `NotSignedIn`, `Storage`, `StoreTampered`.
     */
    suspend fun bills(): List<Bill> = withContext(io) { readInbox() }

    /**
     * Pulls every change after the phone's cursor from the platform and commits it to the
     * store. Call it when the app starts or comes to the foreground (in any case when
     * [pullOwed] is true), and on pull-to-refresh.
     *
     * @return the changes new to the phone (each bill once: [ChangeKind.ADDED] when first
     *   seen, [ChangeKind.UPDATED] when its state or content changed); empty if none.
     * @throws CarePassException `NotSignedIn`, `SessionExpired`, `Network`, `Timeout`,
     *   `Platform`, `InvalidServerAnswer`, `Storage`, `StoreTampered`.
     */
    suspend fun syncInbox(): List<InboxChange> = afterwardsReloadingInbox { core.syncInbox() }

    /**
     * Hands over a push: the data map exactly as the push service delivered it. The push is
     * only a signed doorbell ("something new for you"); the core verifies it (platform
     * signature, recipient, age), then pulls the change over the authenticated API.
     *
     * On Android, the push services' callbacks call `CarePassPush.onMessageReceived`, which
     * routes the map here and turns the outcome into a value. By hand, from Firebase Cloud
     * Messaging, in the app's `FirebaseMessagingService`:
     * ```
     * override fun onMessageReceived(message: RemoteMessage) {
     *     // Already on a background thread, with a few seconds to finish.
     *     runBlocking {
     *         try {
     *             when (val result = client.handlePush(message.data)) {
     *                 is PushResult.Pulled -> notifyNewBills(result.changes)
     *                 PushResult.AlreadySeen, PushResult.NotYetReadable -> Unit
     *             }
     *         } catch (e: CarePassException.InvalidPush) {
     *             // Not a doorbell of this platform for this person: ignore it.
     *         } catch (e: CarePassException) {
     *             // Network and the like: the doorbell is remembered, see pullOwed().
     *         }
     *     }
     * }
     *
     * override fun onNewToken(token: String) {
     *     // Needs a signed-in person: register again after each sign-in too.
     *     scope.launch { client.registerPushToken("fcm", token) }
     * }
     * ```
     * Huawei Push Kit and Mi Push deliver the same map; pass it the same way.
     *
     * A verified doorbell is remembered before the pull, so if the pull fails (or the process
     * dies) [pullOwed] is true until a [syncInbox] brings the change in.
     *
     * @return [PushResult.Pulled] with the changes new to the phone; [PushResult.AlreadySeen]
     *   for a duplicate or late doorbell (its change is already in the store: FCM may deliver
     *   twice, and the live stream may have been first); [PushResult.NotYetReadable] when the
     *   platform does not serve the announced change yet after a few short retries (then
     *   [pullOwed] is true and the next [syncInbox] brings it).
     * @throws CarePassException `InvalidPush` (forged, stale, for another person, or not a
     *   CarePass doorbell at all; nothing is pulled), `NotSignedIn`, `SessionExpired`,
     *   `Network`, `Timeout`, `Platform`, `InvalidServerAnswer`, `Storage`, `StoreTampered`.
     */
    suspend fun handlePush(data: Map<String, String>): PushResult = afterwardsReloadingInbox { core.handlePush(data) }

    /**
     * Whether a verified doorbell announced a change that is not in the store yet (the pull
     * failed, or the app was killed in between). Check it when the app starts: if true, call
     * [syncInbox].
     *
     * @throws CarePassException `NotSignedIn`, `Storage`, `StoreTampered`.
     */
    suspend fun pullOwed(): Boolean = withContext(io) { core.pullOwed() }

    /**
     * Registers this app's push token for the signed-in person, so the platform rings their
     * doorbell through it. Call it after each sign-in and whenever the push service hands a
     * new token (FCM's `onNewToken`); registering the same token again is harmless.
     *
     * @param service `fcm`, `apns`, `huawei` or `xiaomi`.
     * @param token the push service's registration token (1 to 4096 characters).
     * @throws CarePassException `InvalidInput` (another service, or an empty or too long
     *   token), `NotSignedIn`, `SessionExpired`, `Network`, `Timeout`, `Platform`,
     *   `InvalidServerAnswer`, `Storage`.
     */
    suspend fun registerPushToken(service: String, token: String) {
        core.registerPushToken(service, token)
    }

    /**
     * The changes to the signed-in person's bills as they happen, over the platform's live
     * stream: collect it while the app is in the foreground (e.g. `repeatOnLifecycle(STARTED)`),
     * and rely on [handlePush] in the background. Cold: each collection opens its own stream,
     * and stopping the collection closes it.
     *
     * The stream starts from the phone's cursor, so changes the phone missed come first.
     * Each change is committed to the store before it is emitted (so [bills] and [inbox]
     * already list it), and comes once, even across reconnections and alongside [syncInbox]
     * or [handlePush]. Buffered without limit, never conflated: a slow collector gets every
     * change, in order.
     *
     * When the connection drops, the core reconnects by itself with backoff (200 ms to
     * 10 s) and resyncs from the cursor; the flow does not fail for network trouble. It
     * fails with the [CarePassException] that ended the session: `SessionExpired` or
     * `NotSignedIn` (at once when [profile] becomes `null`: [logout], this device revoked, a
     * session the platform ended). It completes when the client is [close]d; collecting it
     * on a closed client throws [IllegalStateException].
     */
    fun inboxChanges(): Flow<InboxChange> = callbackFlow {
        val listener = object : InboxListener {
            // Called on the core's background thread; both calls are thread-safe and never block
            // (the channel is unlimited, so trySend never drops a change).
            override fun onChange(change: InboxChange) {
                trySend(change)
            }

            override fun onError(error: CarePassException) {
                close(error)
            }
        }
        val watch = core.watchInbox(listener)
        val running = RunningWatch(channel, endsWithSession = true) {
            watch.cancel()
            watch.close()
        }
        watches += running
        // Either close() sees this watch in the set, or this sees the flag it set first.
        if (closed.get()) running.stop()
        awaitClose {
            watches -= running
            running.stop()
        }
    }.buffer(Channel.UNLIMITED).onEach { withContext(io) { reloadInbox() } }

    // ---- Prescriptions and pharmacies ----------------------------------------------------

    /**
     * The signed-in person's prescriptions from the platform, newest first (each valid for
     * 90 days after it was issued: [Prescription.validUntilMs]).
     *
     * @throws CarePassException `NotSignedIn`, `SessionExpired`, `Network`, `Timeout`,
     *   `Platform`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun prescriptions(): List<Prescription> = core.prescriptions()

    /**
     * Nearby pharmacies ranked by what the patient pays for the prescription after insurance,
     * with the signed-in person's coverage (the platform settles each quote under its policy):
     * pharmacies that fill every item first, then by [PharmacyQuote.netCostFen] (list cost −
     * fund + delivery fee), then by delivery time, distance and id. When no pharmacy has
     * everything, [PharmacyRanking.bestPair] is the cheapest pair that does together.
     *
     * @param rxId the prescription ([Prescription.rxId]); `null` ranks the newest one.
     * @param lat where the patient is, or the delivery address (WGS-84 degrees).
     * @param lon see [lat].
     * @param delivery home delivery to ([lat], [lon]): only pharmacies that deliver there,
     *   their fee included and [PharmacyQuote.deliveryMinutes] set; otherwise pickup.
     * @param maxDistanceM at most this far, in metres (`null`: 5 km).
     * @param openNow only pharmacies open now (platform time).
     * @param limit how many quotes at most, 1 to 200 (`null`: 20).
     * @throws CarePassException `InvalidInput` (coordinates out of range, or no prescription
     *   at all), `NotSignedIn`, `SessionExpired`, `Platform` (`not_found`: no such
     *   prescription of this person; `invalid_request`: options out of range, e.g. [limit]),
     *   `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun rankPharmacies(
        lat: Double,
        lon: Double,
        rxId: String? = null,
        delivery: Boolean = false,
        maxDistanceM: UInt? = null,
        openNow: Boolean = false,
        limit: UInt? = null,
    ): PharmacyRanking = core.rankPharmacies(
        RankRequest(
            rxId = rxId,
            lat = lat,
            lon = lon,
            delivery = delivery,
            maxDistanceM = maxDistanceM,
            openNow = openNow,
            limit = limit,
        ),
    )

    /**
     * Orders prescription [rxId] from pharmacy [pharmacyId] (a [PharmacyQuote.pharmacyId] of
     * [rankPharmacies]) at the platform's quote now, kept in [PharmacyOrder.quote]. The order
     * starts [OrderStatus.ACCEPTED]; the pharmacy moves it on (`READY` then `COMPLETED` for
     * pickup, `OUT_FOR_DELIVERY` then `COMPLETED` for delivery): read it with [order].
     *
     * @param delivery where to deliver (address 4 to 200 characters, an 11-digit contact
     *   phone); `null` for pickup at the pharmacy.
     * @throws CarePassException `InvalidInput` (a bad address or phone), `NotSignedIn`,
     *   `SessionExpired`, `Platform` (`not_found`: no such prescription or pharmacy;
     *   `invalid_request`: the pharmacy does not fill the whole prescription, or does not
     *   deliver there), `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun placeOrder(rxId: String, pharmacyId: String, delivery: DeliveryDetails? = null): PharmacyOrder =
        core.placeOrder(rxId, pharmacyId, delivery)

    /**
     * One of the signed-in person's orders as the platform has it now.
     *
     * @throws CarePassException `NotSignedIn`, `SessionExpired`, `Platform` (`not_found`: no
     *   such order of this person), `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun order(orderId: String): PharmacyOrder = core.order(orderId)

    /**
     * Cancels an order while it is [OrderStatus.ACCEPTED] (the pharmacy has not prepared it).
     *
     * @return the order, now [OrderStatus.CANCELLED].
     * @throws CarePassException `NotSignedIn`, `SessionExpired`, `Platform` (`not_found`: no
     *   such order of this person; `invalid_request`: the pharmacy moved it on already),
     *   `Network`, `Timeout`, `InvalidServerAnswer`, `Storage`.
     */
    suspend fun cancelOrder(orderId: String): PharmacyOrder = core.cancelOrder(orderId)

    /** Server clock minus phone clock, from the last platform answer (zero before any). */
    val serverClockOffset: Duration
        get() = core.serverClockOffsetMs().milliseconds

    /**
     * Releases the native core and its store, so the data directory can be opened again.
     * Idempotent. A call still running keeps the core alive until it returns; the [codes]
     * and [inboxChanges] flows complete, and their watches in the core stop within
     * milliseconds (until then they too keep the store open).
     */
    override fun close() {
        closed.set(true)
        // Iterated, not copied: the set's iterator tolerates flows ending concurrently
        // (toList() checks the size first and fails when the last one leaves in between).
        watches.forEach { it.stop() }
        core.close()
    }

    /**
     * Runs [call] and publishes its result; after a failure, re-reads the store instead.
     * Either way [inbox] is re-read, since the person may have changed.
     */
    private suspend inline fun <T : Profile?> publishing(crossinline call: suspend () -> T): T {
        val result = try {
            call()
        } catch (e: Throwable) {
            withContext(NonCancellable + io) {
                try {
                    publish(core.currentProfile())
                } catch (resync: Exception) {
                    e.addSuppressed(resync)
                }
                reloadInbox()
            }
            throw e
        }
        publish(result)
        withContext(NonCancellable + io) { reloadInbox() }
        return result
    }

    /**
     * Publishes [profile]; when nobody is signed in any more, also ends the [inboxChanges]
     * flows with `NotSignedIn` (the core would keep their connection open until the next
     * event or reconnection, although the session, and after [logout] the bills, are gone).
     */
    private fun publish(profile: Profile?) {
        signedIn.value = profile
        if (profile == null) {
            watches.filter { it.endsWithSession }.forEach { it.stop(CarePassException.NotSignedIn("no one is signed in")) }
        }
    }

    /** Runs [call], then re-reads [inbox] (also when it failed: it may have pulled some pages). */
    private suspend inline fun <T> afterwardsReloadingInbox(crossinline call: suspend () -> T): T =
        try {
            call()
        } finally {
            withContext(NonCancellable + io) { reloadInbox() }
        }

    /**
     * Reads the bills from the store and publishes them to [inbox] (an empty list while
     * [profile] is `null`: the core still lists the last person's bills after their session
     * ended). Blocking.
     */
    private fun readInbox(): List<Bill> = synchronized(inboxLock) {
        core.bills().also { inboxBills.value = if (signedIn.value == null) emptyList() else it }
    }

    /**
     * [readInbox] for the calls that only keep [inbox] current: nobody signed in publishes
     * an empty list; other failures leave it as it was (the app sees them at its next call).
     */
    private fun reloadInbox() {
        try {
            readInbox()
        } catch (e: CarePassException.NotSignedIn) {
            synchronized(inboxLock) { inboxBills.value = emptyList() }
        } catch (e: CarePassException) {
            // Kept: the list stays as last read.
        } catch (e: IllegalStateException) {
            if (!closed.get()) throw e // the core was released by close(): nothing to refresh
        }
    }

    /**
     * A [codes] or [inboxChanges] flow's watch in the core and the channel it feeds;
     * [endsWithSession]: stopped when [profile] becomes `null`.
     */
    private class RunningWatch(
        private val channel: SendChannel<*>,
        val endsWithSession: Boolean,
        private val cancelWatch: () -> Unit,
    ) {
        private val stopped = AtomicBoolean(false)

        /** Stops the watch and completes the flow, or fails it with [cause]; idempotent, from any thread. */
        fun stop(cause: Throwable? = null) {
            if (stopped.compareAndSet(false, true)) {
                cancelWatch()
            }
            channel.close(cause)
        }
    }

    companion object {
        /**
         * Opens the core on [config]'s data directory (created if missing) on the IO dispatcher.
         *
         * @param secretStore holds the store's data key; the same one must be passed on every
         *   open of this directory.
         * @param keyStore the device key; `null` makes the core keep a software key sealed in
         *   its store (tests, previews). Apps pass `AndroidKeystoreDeviceKey`.
         * @param logger receives the core's log lines (process-wide: the last one wins).
         * @param ioDispatcher where blocking store reads run.
         * @throws CarePassException `InsecureServerUrl` (not https, nor http to loopback),
         *   `WrongDataKey` (the secret store holds another key for this store's data),
         *   `MissingDataKey` (the store holds data but the secret store has no key for it);
         *   in both cases nothing is changed, `Storage` (the directory cannot be used, e.g. it is still
         *   open elsewhere), `KeyStore` (the secret store failed), `StoreTampered`.
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
        ): CarePassClient {
            val core = CarePass.open(config, secretStore, keyStore, logger)
            try {
                val profile = core.currentProfile()
                val bills = if (profile == null) emptyList() else core.bills()
                return CarePassClient(core, ioDispatcher, profile, bills)
            } catch (e: Throwable) {
                core.close()
                throw e
            }
        }
    }
}
