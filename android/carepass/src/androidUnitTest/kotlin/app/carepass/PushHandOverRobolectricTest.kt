package app.carepass

import android.content.Context
import android.os.Looper
import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePassException
import app.carepass.ffi.PushResult
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import java.util.UUID
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertTrue

/**
 * Push hand-over through [CarePassPush], the entry point a `FirebaseMessagingService`, a Huawei
 * `HmsMessageService` or a Mi Push `PushMessageReceiver` calls with the message's data map. The
 * sandbox's push relay outbox stands in for the push services: it holds exactly the data maps
 * they would deliver to each registered token.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [ROBOLECTRIC_SDK], manifest = Config.NONE)
class PushHandOverRobolectricTest {

    private val context: Context = RuntimeEnvironment.getApplication()

    private fun open(): CarePassClient = runBlocking {
        AndroidCarePass.open(
            context,
            sandbox.url,
            secretStore = KeystoreSecretStore(context, wrappingKey = SoftwareWrappingKey()),
            deviceKey = JcaDeviceKeyStore(),
        )
    }

    /** Signed in as Zhang Wei, caught up with the bills earlier tests issued to him. */
    private suspend fun CarePassClient.signedIn() {
        enrol(ZHANG_WEI, CODE)
        syncInbox()
    }

    /** Registers a fresh token of [service]; issues a bill; returns it and the doorbell [service] delivers. */
    private suspend fun CarePassClient.ring(service: PushService): Pair<Map<String, Any?>, Map<String, String>> {
        val token = "${service.id}-token-${UUID.randomUUID()}"
        registerPushToken(service.id, token)
        val (_, cursor) = sandbox.pushOutbox()
        val issued = sandbox.issueBill(ZHANG_WEI)
        return issued to sandbox.doorbell(service.id, token, cursor)
    }

    @Test
    fun `an FCM doorbell handed over from the service's background thread pulls the bill, and again is AlreadySeen`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()
            val (issued, data) = client.ring(PushService.FCM)

            // FirebaseMessagingService.onMessageReceived runs on a background thread of its own.
            val service = Executors.newSingleThreadExecutor()
            try {
                val outcome = service.submit<PushOutcome> {
                    check(Looper.myLooper() != Looper.getMainLooper())
                    CarePassPush.onMessageReceivedBlocking(client, data)
                }.get(30, TimeUnit.SECONDS)
                val pulled = assertIs<PushResult.Pulled>(assertIs<PushOutcome.Handled>(outcome).result)
                assertEquals(listOf(issued.billId), pulled.changes.map { it.bill.billId })
                assertEquals(ChangeKind.ADDED, pulled.changes.single().kind)
                assertTrue(runBlocking { client.bills() }.any { it.billId == issued.billId }, "in the inbox")

                val again = service.submit<PushOutcome> { CarePassPush.onMessageReceivedBlocking(client, data) }
                    .get(30, TimeUnit.SECONDS)
                assertEquals(PushOutcome.Handled(PushResult.AlreadySeen), again, "FCM may deliver twice")
            } finally {
                service.shutdownNow()
            }
        }
    }

    @Test
    fun `Huawei and Mi Push tokens are registered under their ids and their doorbells pull the bill`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()
            for (service in listOf(PushService.HUAWEI, PushService.XIAOMI)) {
                val (issued, data) = client.ring(service)

                // As a receiver would after goAsync(): the suspend entry point in a coroutine.
                val outcome = async(Dispatchers.IO) { CarePassPush.onMessageReceived(client, data) }.await()

                val pulled = assertIs<PushResult.Pulled>(assertIs<PushOutcome.Handled>(outcome).result, "$service")
                assertEquals(listOf(issued.billId), pulled.changes.map { it.bill.billId }, "$service")
            }
        }
    }

    @Test
    fun `messages that are not CarePass doorbells are NotCarePass, forged ones Refused, and nothing is pulled`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()
            val (issued, genuine) = client.ring(PushService.FCM)
            val before = client.bills()

            assertEquals(PushOutcome.NotCarePass, CarePassPush.onMessageReceived(client, mapOf("title" to "Sale!")))
            assertEquals(PushOutcome.NotCarePass, CarePassPush.onMessageReceived(client, emptyMap()))
            val forged = genuine + ("s" to (genuine.getValue("s").toLong() + 1).toString())
            val refused = assertIs<PushOutcome.Refused>(CarePassPush.onMessageReceived(client, forged))
            assertIs<CarePassException.InvalidPush>(refused.error)

            assertEquals(before, client.bills())
            assertTrue(client.bills().none { it.billId == issued.billId })
            assertEquals(false, client.pullOwed(), "a refused doorbell is not remembered")
        }
    }

    @Test
    fun `a doorbell with nobody signed in is Failed with NotSignedIn, not an exception`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()
            val (_, data) = client.ring(PushService.FCM)
            client.logout()

            val failed = assertIs<PushOutcome.Failed>(CarePassPush.onMessageReceived(client, data))

            assertIs<CarePassException.NotSignedIn>(failed.error)
        }
    }

    @Test
    fun `the blocking entry point refuses the main thread`() {
        open().use { client ->
            assertEquals(Looper.getMainLooper(), Looper.myLooper(), "Robolectric runs tests on the main thread")
            assertFailsWith<IllegalStateException> { CarePassPush.onMessageReceivedBlocking(client, mapOf("title" to "x")) }
        }
    }

    companion object {
        private lateinit var sandbox: Sandbox

        @JvmStatic
        @BeforeClass
        fun startSandbox() {
            sandbox = Sandbox.start()
        }

        @JvmStatic
        @AfterClass
        fun stopSandbox() {
            if (::sandbox.isInitialized) sandbox.close()
        }
    }
}
