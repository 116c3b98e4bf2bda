package app.carepass

import android.content.Context
import android.util.Log
import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.PushResult
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowBuild
import org.robolectric.shadows.ShadowLog
import java.io.File
import java.util.UUID
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds

/**
 * [AndroidCarePass] opened with the Robolectric application's real [Context] on Android 14: the
 * store under its `noBackupFilesDir`, the device named from `Build`, log lines in Logcat, and a
 * process death (close, then open again on the same directory and preferences).
 *
 * The Android Keystore is not emulated by Robolectric (see [KeystoreSecretStoreRobolectricTest]):
 * the secret store runs on [SoftwareWrappingKey], the device key is [JcaDeviceKeyStore]; both
 * stand for keys that outlive the process.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [ROBOLECTRIC_SDK], manifest = Config.NONE)
class AndroidCarePassRobolectricTest {

    private val context: Context = RuntimeEnvironment.getApplication()

    /** The keystore's keys, which survive the process. */
    private val wrappingKey = SoftwareWrappingKey()
    private val deviceKey = JcaDeviceKeyStore()

    /** What the app does at each process start; the default logger is [LogcatLogger]. */
    private fun open(): CarePassClient = runBlocking {
        AndroidCarePass.open(
            context,
            sandbox.url,
            secretStore = KeystoreSecretStore(context, wrappingKey = wrappingKey),
            deviceKey = deviceKey,
        )
    }

    @Test
    fun `the store is under noBackupFilesDir, the device is named from Build, and codes are signed by the device key`() = runBlocking<Unit> {
        ShadowBuild.setManufacturer("Xiaomi")
        ShadowBuild.setModel("2211133C")
        val config = AndroidCarePass.config(context, sandbox.url)
        val dataDir = File(context.noBackupFilesDir, "carepass")
        assertEquals(dataDir.absolutePath, config.dataDir)
        assertEquals(dataDir, AndroidCarePass.dataDir(context))
        assertEquals("Xiaomi 2211133C", config.deviceName)
        assertEquals("android", config.platform)

        open().use { client ->
            val profile = client.enrol(ZHANG_WEI, CODE)
            assertEquals("P1001", profile.personId)

            val code = client.currentCode(CodePurpose.OUTPATIENT_SETTLEMENT)
            assertTrue(deviceKey.signatures.get() > 0, "the code was signed by the device key")
            val scan = sandbox.scan(code.payload, "outpatient_settlement")
            assertEquals(true, scan["accepted"], "the platform accepts the code: $scan")
        }
        assertTrue(dataDir.listFiles().orEmpty().isNotEmpty(), "the core's files are in $dataDir")
        assertFalse(File(context.filesDir, "carepass").exists(), "nothing in filesDir, which Auto Backup copies")
    }

    @Test
    fun `the tests run inside Robolectric's sandbox on Android 14`() {
        assertEquals(ROBOLECTRIC_SDK, android.os.Build.VERSION.SDK_INT)
        // Framework classes as Robolectric instrumented them, not the compile-time jar's.
        assertTrue(org.robolectric.internal.bytecode.ShadowedObject::class.java.isAssignableFrom(context.javaClass))
        assertTrue(context.javaClass.classLoader !== ClassLoader.getSystemClassLoader())
    }

    @Test
    fun `the device name follows the manufacturer and model rules`() {
        ShadowBuild.setManufacturer("HUAWEI")
        ShadowBuild.setModel("HUAWEI Mate 60")
        assertEquals("HUAWEI Mate 60", AndroidCarePass.config(context, sandbox.url).deviceName)
        ShadowBuild.setManufacturer("")
        ShadowBuild.setModel("Pixel 8")
        assertEquals("Pixel 8", AndroidCarePass.config(context, sandbox.url).deviceName)
        ShadowBuild.setModel(" ")
        assertEquals("Android device", AndroidCarePass.config(context, sandbox.url).deviceName)
        val named = AndroidCarePass.config(context, sandbox.url) { deviceName = "Work phone" }
        assertEquals("Work phone", named.deviceName, "configure runs after the defaults")
    }

    @Test
    fun `the core's log lines reach Logcat through LogcatLogger`() = runBlocking<Unit> {
        open().use { client ->
            client.enrol(ZHANG_WEI, CODE)
            client.syncInbox()
            val changes = Channel<InboxChange>(Channel.UNLIMITED)
            val collector = launch(Dispatchers.Default) {
                client.inbox().collect { update -> update.changes.forEach { changes.send(it) } }
            }
            try {
                // The stream is up once it carries a bill; the platform cutting it makes the core log.
                sandbox.issueBill(ZHANG_WEI)
                withTimeout(10.seconds) { changes.receive() }
                sandbox.cutStreams()

                val line = withTimeout(10.seconds) {
                    var found: ShadowLog.LogItem? = null
                    while (found == null) {
                        found = ShadowLog.getLogsForTag("CarePass").firstOrNull()
                        if (found == null) delay(50)
                    }
                    found
                }
                // "<target>: <message>" from the core's own thread.
                assertTrue(Regex("^carepass[a-z_:]*: .+").matches(line.msg), line.msg)
            } finally {
                collector.cancel()
            }
        }
    }

    @Test
    fun `LogcatLogger maps each level to its Logcat priority under its tag`() {
        val logger = LogcatLogger("CarePassTest")
        LogLevel.entries.forEach { logger.log(it, "carepass::test", "line at $it") }

        val lines = ShadowLog.getLogsForTag("CarePassTest")
        assertEquals(listOf(Log.ERROR, Log.WARN, Log.INFO, Log.DEBUG), lines.map { it.type })
        assertEquals(LogLevel.entries.map { "carepass::test: line at $it" }, lines.map { it.msg })
    }

    @Test
    fun `after a process death the app opens the same store again with its session, bills and owed pull`() = runBlocking<Unit> {
        val token = "fcm-${UUID.randomUUID()}"
        val firstRun = open()
        val before: List<Bill>
        val late: Map<String, Any?>
        try {
            firstRun.enrol(ZHANG_WEI, CODE)
            firstRun.syncInbox()
            firstRun.registerPushToken(PushService.FCM.id, token)
            val (_, cursor) = sandbox.pushOutbox()
            val issued = sandbox.issueBill(ZHANG_WEI)
            val pulled = CarePassPush.onMessageReceived(firstRun, sandbox.doorbell("fcm", token, cursor))
            assertIs<PushResult.Pulled>(assertIs<PushOutcome.Handled>(pulled).result)
            assertTrue(firstRun.bills().any { it.billId == issued.billId })

            // A doorbell whose bill the platform does not serve yet: the pull is owed.
            val (_, cursor2) = sandbox.pushOutbox()
            late = sandbox.issueBill(ZHANG_WEI, readableAfterMs = 5_000)
            val owed = CarePassPush.onMessageReceived(firstRun, sandbox.doorbell("fcm", token, cursor2))
            assertEquals(PushOutcome.Handled(PushResult.NotYetReadable), owed)
            assertTrue(firstRun.pullOwed())
            before = firstRun.bills()
        } finally {
            // The process dies: all that the next one has is what is on disk.
            firstRun.close()
        }

        open().use { secondRun ->
            val profile = assertNotNull(secondRun.currentProfile(), "still signed in, read from the store")
            assertEquals("P1001", profile.personId)
            assertEquals(before, secondRun.bills())
            assertEquals(before, secondRun.inbox().first().bills, "the inbox stream starts from the store")
            assertTrue(secondRun.pullOwed(), "the owed pull survived the process")
            // No network needed for a code; the device key is the same.
            val signaturesBefore = deviceKey.signatures.get()
            secondRun.currentCode(CodePurpose.PHARMACY_PURCHASE)
            assertTrue(deviceKey.signatures.get() > signaturesBefore)

            sandbox.advanceClock(6_000)
            assertEquals(listOf(late.billId), secondRun.syncInbox().map { it.bill.billId })
            assertFalse(secondRun.pullOwed())
        }
        assertEquals(1, wrappingKey.created.get(), "the data key was read back, not made again")
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
