package app.carepass

import app.carepass.ffi.CarePass
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * The CarePass core for a Kotlin app: one per data directory, opened with [open], closed
 * with [close]. Every rule (validation, sessions, storage, signing) is in the Rust core;
 * this class adapts it to coroutines and a [StateFlow].
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
) : AutoCloseable {

    private val signedIn = MutableStateFlow(initialProfile)

    /**
     * The signed-in person, or `null`. Starts from the store at [open]; updated by
     * [enrol], [login], [signIn], [refreshProfile], [currentProfile] and [logout]. After a
     * failed or cancelled call it is re-read from the store, which the core keeps
     * authoritative.
     */
    val profile: StateFlow<Profile?> = signedIn.asStateFlow()

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
    suspend fun currentProfile(): Profile? = withContext(io) { core.currentProfile() }.also { signedIn.value = it }

    /**
     * Ends the session: the platform revokes it (best effort, so this also works offline)
     * and the person's local data is wiped. The device stays enrolled, so [login] works next.
     *
     * @throws CarePassException `NotSignedIn`, `Storage`.
     */
    suspend fun logout() {
        publishing { core.logout(); null }
    }

    /** Server clock minus phone clock, from the last platform answer (zero before any). */
    val serverClockOffset: Duration
        get() = core.serverClockOffsetMs().milliseconds

    /**
     * Releases the native core and its store, so the data directory can be opened again.
     * Idempotent. A call still running keeps the core alive until it returns.
     */
    override fun close() {
        core.close()
    }

    /** Runs [call] and publishes its result; after a failure, re-reads the store instead. */
    private suspend inline fun <T : Profile?> publishing(crossinline call: suspend () -> T): T {
        val result = try {
            call()
        } catch (e: Throwable) {
            withContext(NonCancellable + io) {
                try {
                    signedIn.value = core.currentProfile()
                } catch (resync: Exception) {
                    e.addSuppressed(resync)
                }
            }
            throw e
        }
        signedIn.value = result
        return result
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
            val profile = try {
                core.currentProfile()
            } catch (e: Throwable) {
                core.close()
                throw e
            }
            return CarePassClient(core, ioDispatcher, profile)
        }
    }
}
