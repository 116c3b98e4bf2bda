package app.carepass

import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePassException
import app.carepass.ffi.SessionState
import app.carepass.ffi.FfiConverterTypeCodeListener
import app.carepass.ffi.InputField
import app.carepass.ffi.PlatformErrorCode
import app.carepass.ffi.qrSvg
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds

/**
 * E-voucher codes made by the real core through the Kotlin facade and scanned by the real
 * sandbox platform (`POST /v1/scans`, the scanner terminal's route).
 */
class VoucherCodeTest {

    /** Each test enrols afresh: it starts on a new platform day, under fresh daily limits. */
    @BeforeEach
    fun freshDay() {
        sandbox.startNextDay()
    }

    @TempDir
    lateinit var dataDir: Path

    @TempDir
    lateinit var otherDataDir: Path

    private fun open(dir: Path = dataDir): CarePassClient = CarePassClient.openBlocking(
        carePassConfig(sandbox.url, dir.toFile()) { deviceName = "host JVM voucher test" },
        InMemorySecretStore(),
    )

    /** Enrolled as Zhang Wei (P1001), with the clock offset freshly learned. */
    private suspend fun CarePassClient.enrolled(): Profile =
        enrol(ZHANG_WEI, CODE).also { syncClock() }

    private fun scan(code: VoucherCode, purpose: CodePurpose = code.purpose): Map<String, Any?> =
        sandbox.scan(code.payload, purpose.wireName)

    @Suppress("UNCHECKED_CAST")
    private val Map<String, Any?>.holderPersonId: Any?
        get() = (this["holder"] as Map<String, Any?>?)?.get("person_id")

    @Test
    fun `a code made in Kotlin is accepted once by the scanner, then replayed`() = runBlocking<Unit> {
        open().use { client ->
            val profile = client.enrolled()

            val code = client.currentCode(CodePurpose.OUTPATIENT_SETTLEMENT)

            assertTrue(code.payload.startsWith("CP1:"), code.payload)
            assertEquals(CodePurpose.OUTPATIENT_SETTLEMENT, code.purpose)
            assertFalse(code.offline)
            assertTrue(code.qrVersion.toInt() in 1..7, "online QR version ${code.qrVersion}")
            assertEquals(code.validFromMs + 30_000, code.refreshAtMs)
            assertTrue(code.expiresAtMs > code.refreshAtMs)
            assertTrue(code.secondsLeft in 0u..30u, "seconds left ${code.secondsLeft}")

            val first = scan(code)
            assertEquals(true, first["accepted"], "first scan: $first")
            assertNull(first["reason"])
            assertEquals("P1001", first.holderPersonId)
            assertEquals(profile.deviceId, first["presenter_device_id"])
            assertEquals("P1001", first["presenter_person_id"])
            assertEquals(false, first["offline"])
            assertEquals(false, first["proxy"])

            val again = scan(code)
            assertEquals(false, again["accepted"], "second scan: $again")
            assertEquals("replayed", again["reason"])
            assertNull(again["holder"])
        }
    }

    @Test
    fun `a code scanned after its window is expired`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val code = client.currentCode(CodePurpose.REGISTRATION)

            sandbox.advanceClock(120_000)

            val outcome = scan(code)
            assertEquals(false, outcome["accepted"], "$outcome")
            assertEquals("expired", outcome["reason"])

            // The phone learns the moved clock at the next answer; its new code is on time.
            assertTrue(client.syncClock() >= 110.seconds, "offset ${client.serverClockOffset}")
            val fresh = client.currentCode(CodePurpose.REGISTRATION)
            assertEquals(true, scan(fresh)["accepted"])
        }
    }

    @Test
    fun `an offline-profile code is accepted and fits a QR version up to 10`() = runBlocking<Unit> {
        open().use { client ->
            val profile = client.enrolled()
            val online = client.currentCode(CodePurpose.PHARMACY_PURCHASE)

            val offline = client.currentCode(CodePurpose.PHARMACY_PURCHASE, offline = true)

            assertTrue(offline.offline)
            assertTrue(offline.qrVersion.toInt() in 1..10, "offline QR version ${offline.qrVersion}")
            assertTrue(online.qrVersion.toInt() in 1..7, "online QR version ${online.qrVersion}")
            assertTrue(offline.payload.length > online.payload.length, "the offline code carries the certificate")
            assertEquals(offline.qrSize.toInt() * offline.qrSize.toInt(), offline.qrModules.size)

            val outcome = scan(offline)
            assertEquals(true, outcome["accepted"], "$outcome")
            assertEquals(true, outcome["offline"])
            assertEquals("P1001", outcome.holderPersonId)
            assertEquals(profile.deviceId, outcome["presenter_device_id"])
        }
    }

    @Test
    fun `a code for another purpose is rejected as wrong_purpose`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val code = client.currentCode(CodePurpose.PRESCRIPTION_DOWNLOAD)

            val outcome = scan(code, CodePurpose.OUTPATIENT_SETTLEMENT)

            assertEquals(false, outcome["accepted"])
            assertEquals("wrong_purpose", outcome["reason"])
            assertEquals(true, scan(code)["accepted"], "a rejected scan does not use the code up")
        }
    }

    @Test
    fun `codes emits the current code at once and first() stops the core stream`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            eventually("no code stream left from earlier tests") { FfiConverterTypeCodeListener.handleMap.size == 0 }
            val before = client.currentCode(CodePurpose.OUTPATIENT_SETTLEMENT)

            val emitted = withTimeout(5.seconds) { client.codes(CodePurpose.OUTPATIENT_SETTLEMENT).first() }

            // The core's rotator: the same code within a period, the next one after it.
            if (emitted.validFromMs == before.validFromMs) {
                assertEquals(before.payload, emitted.payload, "the same code within a period")
            } else {
                assertEquals(before.refreshAtMs, emitted.validFromMs, "the code of the next period")
            }
            assertEquals(emitted.qrSize.toInt() * emitted.qrSize.toInt(), emitted.qrModules.size)
            assertTrue(emitted.qrModules.all { it == 0.toByte() || it == 1.toByte() })
            assertTrue(emitted.isDark(0, 0), "the top-left finder pattern is dark")
            assertFalse(emitted.isDark(7, 7), "the finder pattern's separator is light")
            assertFalse(emitted.isDark(-1, 0), "the quiet zone is light")
            // The core releases the listener once its stream's task has ended.
            eventually("the code stream's listener released") { FfiConverterTypeCodeListener.handleMap.size == 0 }
        }
    }

    @Test
    fun `codes hands a new code at the next rotation on platform time`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val codes = Collected(this, client.codes(CodePurpose.REGISTRATION, offline = true))
            try {
                val first = codes.next()

                // Platform time moves to the middle of the next period; the phone learns it.
                sandbox.advanceClock(first.refreshAtMs - sandbox.now() + 15_000)
                client.syncClock()
                val second = codes.next(10.seconds)

                assertTrue(first.offline && second.offline)
                assertEquals(first.refreshAtMs, second.validFromMs)
                assertNotEquals(first.payload, second.payload)
                assertEquals(true, scan(first)["accepted"], "the previous code is still within its window")
                assertEquals(true, scan(second)["accepted"])
            } finally {
                codes.job.cancel()
            }
        }
    }

    @Test
    fun `closing the client ends its code flows with Closed and frees the store at once`() = runBlocking<Unit> {
        val secrets = InMemorySecretStore()
        val client = CarePassClient.openBlocking(carePassConfig(sandbox.url, dataDir.toFile()), secrets)
        client.enrolled()
        val codes = Collected(this, client.codes(CodePurpose.REGISTRATION))
        codes.next()

        client.close()

        codes.assertEndsWith<CarePassException.Closed>()
        assertFailsWith<CarePassException.Closed> { client.codes(CodePurpose.REGISTRATION).first() }
        assertFailsWith<CarePassException.Closed> { client.currentCode(CodePurpose.REGISTRATION) }
        CarePassClient.openBlocking(carePassConfig(sandbox.url, dataDir.toFile()), secrets).use {
            assertEquals("P1001", it.currentProfile()?.personId)
        }
    }

    @Test
    fun `logout ends a code flow with NotSignedIn, and currentCode and new flows fail with it`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val codes = Collected(this, client.codes(CodePurpose.REGISTRATION))
            codes.next()

            assertTrue(client.logout().revokedAtPlatform)

            codes.assertEndsWith<CarePassException.NotSignedIn>()
            assertFailsWith<CarePassException.NotSignedIn> { client.currentCode(CodePurpose.REGISTRATION) }
            assertFailsWith<CarePassException.NotSignedIn> {
                withTimeout(5.seconds) { client.codes(CodePurpose.REGISTRATION).first() }
            }
            assertEquals(SessionState.SignedOut, withTimeout(5.seconds) { client.sessionState.first { it == SessionState.SignedOut } })
        }
    }

    @Test
    fun `revoking this device gets its codes rejected as revoked and signs it out`() = runBlocking<Unit> {
        open().use { client ->
            val profile = client.enrolled()
            val before = client.currentCode(CodePurpose.OUTPATIENT_SETTLEMENT, offline = true)

            client.revokeDevice(profile.deviceId)

            // The platform refuses the codes it made, offline profile included; the phone
            // drops the session at once, so it makes no more.
            val outcome = scan(before)
            assertEquals(false, outcome["accepted"], "$outcome")
            assertEquals("revoked", outcome["reason"])
            withTimeout(5.seconds) { client.sessionState.first { it == SessionState.Ended } }
            assertNull(client.currentProfile())
            assertFailsWith<CarePassException.NotSignedIn> { client.currentCode(CodePurpose.OUTPATIENT_SETTLEMENT) }
            assertFailsWith<CarePassException.NotSignedIn> { client.refreshProfile() }
            assertFailsWith<CarePassException.NotSignedIn> { client.bills() }
        }
    }

    @Test
    fun `a lost phone revoked from another device stops working, the other goes on`() = runBlocking<Unit> {
        open(otherDataDir).use { lost ->
            val lostProfile = lost.enrolled()
            val lostCode = lost.currentCode(CodePurpose.PHARMACY_PURCHASE)

            open().use { client ->
                val profile = client.enrolled()
                assertNotEquals(lostProfile.deviceId, profile.deviceId)

                client.revokeDevice(lostProfile.deviceId)

                assertEquals("revoked", scan(lostCode)["reason"])
                assertEquals(profile, client.refreshProfile(), "the revoking device keeps its session")
                client.awaitSession(SessionState.SignedIn(profile))
                assertEquals(true, scan(client.currentCode(CodePurpose.PHARMACY_PURCHASE))["accepted"])
                val unknown = assertFailsWith<CarePassException.Platform> { client.revokeDevice("dev_0000000000000000") }
                assertEquals(PlatformErrorCode.UNKNOWN_DEVICE, unknown.code)
            }
            lost.awaitSession(SessionState.SignedIn(lostProfile)) // nothing told the lost phone yet
            assertFailsWith<CarePassException.SessionExpired> { lost.refreshProfile() }
            withTimeout(5.seconds) { lost.sessionState.first { it == SessionState.Ended } }
        }
    }

    @Test
    fun `revoking something that is not a device id is InvalidInput`() = runBlocking<Unit> {
        open().use { client ->
            val profile = client.enrolled()
            val refused = assertFailsWith<CarePassException.InvalidInput> { client.revokeDevice("not-a-device") }
            assertEquals(InputField.DEVICE_ID, refused.field)
            client.awaitSession(SessionState.SignedIn(profile))
            assertEquals("P1001", client.sessionState.value.signedInProfile?.personId)
        }
    }

    @Test
    fun `a code renders as SVG`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val code = client.currentCode(CodePurpose.REGISTRATION)

            val svg = qrSvg(code.payload, 4u)

            assertTrue(svg.startsWith("<svg"), svg.take(80))
            assertTrue(svg.trimEnd().endsWith("</svg>"))
            assertEquals(svg, code.toSvg(4))
            assertFailsWith<IllegalArgumentException> { code.toSvg(0) }
        }
    }

    companion object {
        private lateinit var sandbox: Sandbox

        /** The platform's name of a purpose: `outpatient_settlement`. */
        private val CodePurpose.wireName: String
            get() = name.lowercase()

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
