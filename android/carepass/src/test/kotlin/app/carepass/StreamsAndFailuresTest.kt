package app.carepass

import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePassException
import app.carepass.ffi.SessionState
import app.carepass.ffi.FfiConverterTypeCodeListener
import app.carepass.ffi.FfiConverterTypeInboxListener
import app.carepass.ffi.FfiConverterTypeSessionListener
import app.carepass.ffi.PlatformErrorCode
import com.sun.net.httpserver.HttpServer
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.net.InetAddress
import java.net.InetSocketAddress
import java.nio.file.Path
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds

/**
 * The one rule for what the Kotlin shell does after a failure (`docs/architecture.md`
 * § Streams and failures), each point against the real library and the real sandbox:
 * 1. a failed call throws its typed exception and the facade does nothing else;
 * 2. signed-in state comes only from the core's session stream (after `SessionExpired` the
 *    core has already published `Ended`);
 * 3. a flow ends with the error the core sent, and nothing follows;
 * 4. cancelling a collection cancels the core task;
 * 5. on a closed client every call and every new flow fails with `Closed`.
 */
class StreamsAndFailuresTest {

    /** Each test enrols afresh: it starts on a new platform day, under fresh daily limits. */
    @BeforeEach
    fun freshDay() {
        sandbox.startNextDay()
    }

    @TempDir
    lateinit var dataDir: Path

    private val secrets = InMemorySecretStore()

    private fun open(url: String = sandbox.url): CarePassClient = CarePassClient.openBlocking(
        carePassConfig(url, dataDir.toFile()) { deviceName = "host JVM rule test" },
        secrets,
    )

    // ---- 1. a failed call throws its typed error, and that is all ----------------------

    @Test
    fun `a failed call throws the platform's typed error and sends nothing more`() = runBlocking<Unit> {
        val requests = AtomicInteger()
        val platform = HttpServer.create(InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0).apply {
            createContext("/") { exchange ->
                val n = requests.incrementAndGet()
                exchange.requestBody.readAllBytes()
                val (status, code) = if (n == 1) 429 to "rate_limited" else 418 to "a_code_from_a_newer_platform"
                val body = """{"code":"$code","message":"refused by the test platform"}""".toByteArray()
                exchange.responseHeaders.add("Content-Type", "application/json")
                exchange.responseHeaders.add("Retry-After", "7")
                exchange.responseHeaders.add("x-carepass-server-time", System.currentTimeMillis().toString())
                exchange.sendResponseHeaders(status, body.size.toLong())
                exchange.responseBody.use { it.write(body) }
            }
            start()
        }
        try {
            open("http://127.0.0.1:${platform.address.port}").use { client ->
                val limited = assertFailsWith<CarePassException.Platform> { client.requestVerificationCode(ZHANG_WEI) }

                assertEquals(PlatformErrorCode.RATE_LIMITED, limited.code)
                assertEquals(429.toUShort(), limited.status)
                assertEquals(7uL, limited.retryAfterS)
                assertEquals(1, requests.get(), "one request: no retry")

                val unknown = assertFailsWith<CarePassException.Platform> { client.requestVerificationCode(ZHANG_WEI) }

                assertEquals(PlatformErrorCode.UNKNOWN, unknown.code)
                assertEquals(418.toUShort(), unknown.status)
                assertEquals(2, requests.get(), "one request: no retry")
                assertEquals(SessionState.SignedOut, client.sessionState.value)
            }
        } finally {
            platform.stop(0)
        }
    }

    @Test
    fun `failed calls publish nothing, the next session state is the next change in the core`() = runBlocking<Unit> {
        open().use { client ->
            val profile = client.enrol(ZHANG_WEI, CODE)
            val states = Collected(this, client.session())
            try {
                assertEquals(SessionState.SignedIn(profile), states.next(), "the state now comes first")

                assertFailsWith<CarePassException.WrongVerificationCode> { client.login(ZHANG_WEI, "654321") }
                assertFailsWith<CarePassException.InvalidInput> { client.rankPharmacies(RankRequest(lat = 91.0, lon = 0.0)) }
                val missing = assertFailsWith<CarePassException.Platform> { client.order("ord_0000000000000000") }
                assertEquals(PlatformErrorCode.NOT_FOUND, missing.code)
                assertFailsWith<CarePassException.NotLinked> { client.prescriptions(subject = "P1004") }
                client.awaitSession(SessionState.SignedIn(profile))

                client.logout()

                assertEquals(SessionState.SignedOut, states.next(), "nothing was published in between")
                client.awaitSession(SessionState.SignedOut)
            } finally {
                states.job.cancel()
            }
        }
    }

    // ---- 2 and 3. the session stream says the session ended; flows end with the error ---

    @Test
    fun `after SessionExpired the session stream has said Ended and the live flows end with it`() = runBlocking<Unit> {
        open().use { client ->
            val profile = client.enrol(ZHANG_WEI, CODE)
            val states = Collected(this, client.session())
            val codes = Collected(this, client.codes(CodePurpose.REGISTRATION))
            val inbox = Collected(this, client.inbox())
            try {
                assertEquals(SessionState.SignedIn(profile), states.next())
                codes.next()
                inbox.next()
                // The inbox's first update comes from the store, before its live connection has
                // made its first requests (a sync, then the stream); a revocation in between
                // would be learnt by the connection, not by the call below. A bill arriving on
                // the flow (after the first sync's changes, if any) shows the connection is up.
                val bill = sandbox.issueBill(ZHANG_WEI)["bill_id"]
                while (inbox.next().changes.none { it.bill.billId == bill }) Unit

                sandbox.revokeDevice(profile.deviceId)
                // The platform ended the session; the phone learns it at its next call.
                client.awaitSession(SessionState.SignedIn(profile))
                assertFailsWith<CarePassException.SessionExpired> { client.refreshProfile() }
                // The facade wrote nothing of its own: the state is the stream's, old or new.
                assertTrue(
                    client.sessionState.value in setOf(SessionState.SignedIn(profile), SessionState.Ended),
                    "session state ${client.sessionState.value}",
                )

                assertEquals(SessionState.Ended, states.next(), "the core published Ended")
                client.awaitSession(SessionState.Ended)
                codes.assertEndsWith<CarePassException.SessionExpired>()
                inbox.assertEndsWith<CarePassException.SessionExpired>()
                // Nothing was retried or re-read for the app: it signs in again.
                assertFailsWith<CarePassException.NotSignedIn> { client.refreshProfile() }
                assertNull(client.currentProfile())

                val again = client.signIn(ZHANG_WEI, CODE)

                assertEquals(SessionState.SignedIn(again), states.next())
                client.awaitSession(SessionState.SignedIn(again))
            } finally {
                states.job.cancel()
                codes.job.cancel()
                inbox.job.cancel()
            }
        }
    }

    // ---- 4. cancelling a collection cancels the core task --------------------------------

    @Test
    fun `stopping a collection ends the core task behind it`() = runBlocking<Unit> {
        open().use { client ->
            client.enrol(ZHANG_WEI, CODE)
            // Each core task holds its listener until it ends; then the core releases it.
            val codeListeners = FfiConverterTypeCodeListener.handleMap
            val inboxListeners = FfiConverterTypeInboxListener.handleMap
            val sessionListeners = FfiConverterTypeSessionListener.handleMap
            eventually("no code or inbox stream left from earlier tests") {
                codeListeners.size == 0 && inboxListeners.size == 0
            }
            // Only this client's sessionState runs a session stream.
            eventually("one session stream") { sessionListeners.size == 1 }

            val codes = Collected(this, client.codes(CodePurpose.REGISTRATION))
            val inbox = Collected(this, client.inbox())
            val states = Collected(this, client.session())
            codes.next()
            inbox.next()
            states.next()
            assertEquals(1, codeListeners.size)
            assertEquals(1, inboxListeners.size)
            assertEquals(2, sessionListeners.size)

            codes.job.cancel()
            eventually("the code task ended") { codeListeners.size == 0 }
            inbox.job.cancel()
            eventually("the inbox task ended") { inboxListeners.size == 0 }
            states.job.cancel()
            eventually("the session task ended") { sessionListeners.size == 1 }

            // first() stops the collection too.
            client.codes(CodePurpose.PHARMACY_PURCHASE).first()
            eventually("the code task of first() ended") { codeListeners.size == 0 }
        }
    }

    // ---- 5. a closed client: Closed everywhere -------------------------------------------

    @Test
    fun `closing mid-collection ends every flow with Closed, then every call and new flow fails with it`() =
        runBlocking<Unit> {
            val client = open()
            val profile = client.enrol(ZHANG_WEI, CODE)
            val codes = Collected(this, client.codes(CodePurpose.REGISTRATION))
            val inbox = Collected(this, client.inbox())
            val states = Collected(this, client.session())
            codes.next()
            inbox.next()
            assertEquals(SessionState.SignedIn(profile), states.next())
            client.awaitSession(SessionState.SignedIn(profile))

            client.close()

            codes.assertEndsWith<CarePassException.Closed>()
            inbox.assertEndsWith<CarePassException.Closed>()
            states.assertEndsWith<CarePassException.Closed>()
            assertEquals(SessionState.SignedIn(profile), client.sessionState.value, "the last state stays")

            val calls: Map<String, suspend () -> Any?> = mapOf(
                "requestVerificationCode" to { client.requestVerificationCode(ZHANG_WEI) },
                "enrol" to { client.enrol(ZHANG_WEI, CODE) },
                "login" to { client.login(ZHANG_WEI, CODE) },
                "signIn" to { client.signIn(ZHANG_WEI, CODE) },
                "refreshProfile" to { client.refreshProfile() },
                "currentProfile" to { client.currentProfile() },
                "logout" to { client.logout() },
                "revokeDevice" to { client.revokeDevice(profile.deviceId) },
                "currentCode" to { client.currentCode(CodePurpose.REGISTRATION) },
                "syncClock" to { client.syncClock() },
                "bills" to { client.bills() },
                "syncInbox" to { client.syncInbox() },
                "handlePush" to { client.handlePush(mapOf("v" to "1")) },
                "pullOwed" to { client.pullOwed() },
                "registerPushToken" to { client.registerPushToken("fcm", "token") },
                "prescriptions" to { client.prescriptions() },
                "rankPharmacies" to { client.rankPharmacies(RankRequest(lat = 30.5952, lon = 114.2999)) },
                "placeOrder" to { client.placeOrder("rx_p1001_chronic", "ph_0001") },
                "orders" to { client.orders() },
                "order" to { client.order("ord_0000000000000000") },
                "cancelOrder" to { client.cancelOrder("ord_0000000000000000") },
                "codes().first()" to { withTimeout(5.seconds) { client.codes(CodePurpose.REGISTRATION).first() } },
                "inbox().first()" to { withTimeout(5.seconds) { client.inbox().first() } },
                "session().collect()" to { withTimeout(5.seconds) { client.session().collect() } },
            )
            val notClosed = calls.mapNotNull { (name, call) ->
                val outcome = runCatching { call() }
                val error = outcome.exceptionOrNull()
                if (error is CarePassException.Closed) null else "$name: ${error ?: "returned ${outcome.getOrNull()}"}"
            }
            assertEquals(emptyList(), notClosed, "every call on a closed client fails with Closed")
            client.close() // idempotent

            // The directory is released at close(): it opens again at once.
            open().use { assertEquals(profile, it.currentProfile()) }
        }

    companion object {
        private lateinit var sandbox: Sandbox

        @JvmStatic
        @BeforeAll
        fun startSandbox() {
            sandbox = Sandbox.start()
        }

        @JvmStatic
        @AfterAll
        fun stopSandbox() {
            if (::sandbox.isInitialized) sandbox.close()
        }
    }
}
