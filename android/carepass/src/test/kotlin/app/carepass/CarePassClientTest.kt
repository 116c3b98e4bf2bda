package app.carepass

import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePassException
import app.carepass.ffi.SessionState
import app.carepass.ffi.InputField
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** The account flows through the Kotlin facade, the real core and the real sandbox platform. */
class CarePassClientTest {

    /** Each test enrols afresh: it starts on a new platform day, under fresh daily limits. */
    @BeforeEach
    fun freshDay() {
        sandbox.startNextDay()
    }

    @TempDir
    lateinit var dataDir: Path

    private fun open(
        secrets: SecretStore,
        keyStore: DeviceKeyStore? = null,
        dir: Path = dataDir,
    ): CarePassClient = CarePassClient.openBlocking(
        carePassConfig(sandbox.url, dir.toFile()) { deviceName = "host JVM test" },
        secrets,
        keyStore,
    )

    @Test
    fun `enrol returns Zhang Wei with computed age and masked phone and publishes him`() = runBlocking {
        open(InMemorySecretStore()).use { client ->
            assertEquals(SessionState.SignedOut, client.sessionState.value, "a fresh data dir has nobody signed in")
            assertTrue(client.requestVerificationCode(ZHANG_WEI).isPositive())

            val profile = client.enrol(ZHANG_WEI, CODE)

            assertEquals("P1001", profile.personId)
            assertTrue(profile.name.startsWith("张伟"), profile.name)
            assertEquals("1986-04-12", profile.birthDate)
            assertTrue(profile.age > 30u, "age ${profile.age}")
            assertEquals("138****0001", profile.phoneMasked)
            assertEquals(InsuranceType.EMPLOYEE_ACTIVE, profile.insuranceType)
            assertTrue(profile.deviceId.isNotEmpty())
            client.awaitSession(SessionState.SignedIn(profile))
        }
    }

    @Test
    fun `reopening the data dir with the same secret store keeps the session and refresh works`() = runBlocking {
        val secrets = InMemorySecretStore()
        val enrolled = open(secrets).use { it.enrol(ZHANG_WEI, CODE) }

        open(secrets).use { client ->
            assertEquals(SessionState.SignedIn(enrolled), client.sessionState.value, "it starts from the stored session")
            assertEquals(enrolled, client.currentProfile())

            val refreshed = client.refreshProfile()

            assertEquals("P1001", refreshed.personId)
            assertEquals(enrolled.deviceId, refreshed.deviceId)
            client.awaitSession(SessionState.SignedIn(refreshed))
        }
    }

    @Test
    fun `a JCA key with DER signatures enrols and logs in again after logout`() = runBlocking {
        val key = JcaDeviceKeyStore()
        open(InMemorySecretStore(), keyStore = key).use { client ->
            val enrolled = client.enrol(ZHANG_WEI, CODE)

            assertTrue(client.logout().revokedAtPlatform)
            client.awaitSession(SessionState.SignedOut)
            assertNull(client.currentProfile())
            assertEquals(0, key.signatures.get(), "enrolment registers the key without signing")

            val again = client.login(ZHANG_WEI, CODE)

            assertEquals("P1001", again.personId)
            assertEquals(enrolled.deviceId, again.deviceId, "the same device enrolment")
            client.awaitSession(SessionState.SignedIn(again))
            assertEquals(1, key.signatures.get())
            assertEquals(0x30.toByte(), assertNotNull(key.lastSignature)[0], "the signature was DER")
        }
    }

    @Test
    fun `the session stream gives the state now, then each change in order`() = runBlocking<Unit> {
        open(InMemorySecretStore()).use { client ->
            val states = Collected(this, client.session())
            try {
                assertEquals(SessionState.SignedOut, states.next())

                val enrolled = client.enrol(ZHANG_WEI, CODE)
                assertEquals(SessionState.SignedIn(enrolled), states.next())
                val signOut = client.logout()
                assertTrue(signOut.revokedAtPlatform)
                assertEquals(SessionState.SignedOut, states.next())
                val again = client.login(ZHANG_WEI, CODE)
                assertEquals(SessionState.SignedIn(again), states.next())

                client.awaitSession(SessionState.SignedIn(again))
                assertEquals(again, client.sessionState.value.signedInProfile)
            } finally {
                states.job.cancel()
            }
        }
    }

    @Test
    fun `a wrong verification code is WrongVerificationCode`() = runBlocking {
        open(InMemorySecretStore()).use { client ->
            assertFailsWith<CarePassException.WrongVerificationCode> {
                client.enrol(ZHANG_WEI, "654321")
            }
            assertEquals(SessionState.SignedOut, client.sessionState.value)
            assertNull(client.currentProfile())
        }
    }

    @Test
    fun `a malformed phone is InvalidInput and the stored session survives`() = runBlocking {
        val secrets = InMemorySecretStore()
        open(secrets).use { client ->
            val enrolled = client.enrol(ZHANG_WEI, CODE)

            val error = assertFailsWith<CarePassException.InvalidInput> { client.enrol("12", CODE) }
            assertEquals(InputField.PHONE, error.field)
            assertTrue(error.reason.isNotEmpty())
            assertEquals(InputField.PHONE, assertFailsWith<CarePassException.InvalidInput> { client.login("12", CODE) }.field)
            assertEquals(
                InputField.VERIFICATION_CODE,
                assertFailsWith<CarePassException.InvalidInput> { client.login(ZHANG_WEI, "12") }.field,
            )

            client.awaitSession(SessionState.SignedIn(enrolled))
            assertEquals(enrolled, client.currentProfile())
        }
        open(secrets).use { client ->
            assertEquals("P1001", client.refreshProfile().personId)
        }
    }

    @Test
    fun `a missing or wrong data key is refused and the right one still opens the data`() = runBlocking {
        val secrets = InMemorySecretStore()
        val enrolled = open(secrets).use { it.enrol(ZHANG_WEI, CODE) }

        assertFailsWith<CarePassException.MissingDataKey> { open(InMemorySecretStore()) }

        val other = InMemorySecretStore().apply {
            secrets.names.forEach { save(it, ByteArray(32) { 7 }) }
        }
        assertFailsWith<CarePassException.WrongDataKey> { open(other) }

        open(secrets).use { client ->
            assertEquals(enrolled, client.currentProfile())
            assertEquals("P1001", client.refreshProfile().personId)
        }
    }

    @Test
    fun `login on a fresh data dir is NotEnrolled`() = runBlocking {
        open(InMemorySecretStore()).use { client ->
            assertFailsWith<CarePassException.NotEnrolled> { client.login(ZHANG_WEI, CODE) }
            assertEquals(SessionState.SignedOut, client.sessionState.value)
        }
    }

    @Test
    fun `signIn enrols first and logs in once enrolled`() = runBlocking {
        val key = JcaDeviceKeyStore()
        open(InMemorySecretStore(), keyStore = key).use { client ->
            val first = client.signIn(ZHANG_WEI, CODE)
            assertEquals(0, key.signatures.get(), "first sign-in is an enrolment")
            client.logout()

            val second = client.signIn(ZHANG_WEI, CODE)

            assertEquals(1, key.signatures.get(), "second sign-in is a login")
            assertEquals(first.deviceId, second.deviceId)
            client.awaitSession(SessionState.SignedIn(second))
        }
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
