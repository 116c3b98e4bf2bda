package app.carepass

import org.junit.jupiter.api.Test
import java.io.File
import java.math.BigInteger
import java.security.KeyPairGenerator
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.time.Duration.Companion.microseconds
import kotlin.time.Duration.Companion.seconds

/** The facade's own Kotlin code, without the native library. */
class FacadeUnitTest {

    @Test
    fun `the SEC1 point taken from a JCA SubjectPublicKeyInfo is 04 X Y`() {
        repeat(20) {
            val key = KeyPairGenerator.getInstance("EC").run {
                initialize(ECGenParameterSpec("secp256r1"))
                generateKeyPair().public as ECPublicKey
            }

            val point = P256.uncompressedPointFromSpki(key.encoded)

            assertEquals(65, point.size)
            assertEquals(0x04.toByte(), point[0])
            assertEquals(key.w.affineX, BigInteger(1, point.copyOfRange(1, 33)))
            assertEquals(key.w.affineY, BigInteger(1, point.copyOfRange(33, 65)))
        }
    }

    @Test
    fun `a SubjectPublicKeyInfo of another curve is refused`() {
        val p384 = KeyPairGenerator.getInstance("EC").run {
            initialize(ECGenParameterSpec("secp384r1"))
            generateKeyPair().public
        }
        assertFailsWith<IllegalArgumentException> { P256.uncompressedPointFromSpki(p384.encoded) }
    }

    @Test
    fun `the config builder fills defaults and rounds the timeout up to whole milliseconds`() {
        val defaults = carePassConfig("https://api.example.cn", File("/data/app/carepass"))
        assertEquals("https://api.example.cn", defaults.serverUrl)
        assertEquals("/data/app/carepass", defaults.dataDir)
        assertEquals("android", defaults.platform)
        assertEquals(0uL, defaults.requestTimeoutMs, "0: the core's default")
        assertEquals(emptyList(), defaults.pinnedRootsPem)

        assertEquals(1500uL, carePassConfig("https://x", File("/d")) { requestTimeout = 1.5.seconds }.requestTimeoutMs)
        assertEquals(1uL, carePassConfig("https://x", File("/d")) { requestTimeout = 10.microseconds }.requestTimeoutMs)
        assertFailsWith<IllegalArgumentException> {
            carePassConfig("https://x", File("/d")) { requestTimeout = (-1).seconds }
        }
    }

    @Test
    fun `the in-memory secret store keeps copies`() {
        val store = InMemorySecretStore()
        val value = byteArrayOf(1, 2, 3)
        store.save("k", value)
        value[0] = 9
        val loaded = store.load("k")!!
        loaded[1] = 9

        assertContentEquals(byteArrayOf(1, 2, 3), store.load("k"))
        assertEquals(null, store.load("missing"))
        assertEquals(setOf("k"), store.names)
    }
}
