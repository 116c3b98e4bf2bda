package app.carepass

import android.content.Context
import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePassException
import app.carepass.ffi.PlatformException
import kotlinx.coroutines.runBlocking
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import java.io.File
import java.util.Base64
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * [KeystoreSecretStore] on Android 14 under Robolectric: the real SharedPreferences, Base64 and
 * crypto providers of the Android runtime, the real core and the real sandbox.
 *
 * What Robolectric cannot emulate, and so is not tested here:
 * - the AndroidKeyStore JCA provider: Robolectric does not install it (nor is there a keystore2
 *   system service behind it), so `KeyStore.getInstance("AndroidKeyStore")` throws
 *   KeyStoreException and [AndroidKeystoreWrappingKey] and [AndroidKeystoreDeviceKey] cannot
 *   make or use a key (the last test pins that down);
 * - the TEE and StrongBox (`setIsStrongBoxBacked`, StrongBoxUnavailableException and the
 *   fallback to the TEE), non-exportable key material, key invalidation by the system.
 * Those need a device or an emulator (an instrumented test on a machine with the SDK).
 *
 * What is tested: everything around the key, through [SoftwareWrappingKey] behind the same
 * [WrappingKey] interface: the stored format, a fresh IV per value, the value's name as GCM
 * associated data, the commit to disk, what a lost or different key does, and the core using
 * the store through [AndroidCarePass].
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [ROBOLECTRIC_SDK], manifest = Config.NONE)
class KeystoreSecretStoreRobolectricTest {

    private val context: Context = RuntimeEnvironment.getApplication()

    private val key = SoftwareWrappingKey()

    private fun store(wrappingKey: WrappingKey = key) = KeystoreSecretStore(context, wrappingKey = wrappingKey)

    private val prefs
        get() = context.getSharedPreferences(KeystoreSecretStore.DEFAULT_PREFS_NAME, Context.MODE_PRIVATE)

    private fun stored(name: String): String = prefs.getString("secret.$name", null) ?: error("nothing stored for $name")

    @Test
    fun `a saved value loads back from a new store object, and is on disk only as ciphertext`() {
        val value = ByteArray(32) { (it * 7).toByte() }

        store().save("data-key", value)

        assertContentEquals(value, store().load("data-key"), "a new store object on the same preferences")
        assertNull(store().load("other"), "nothing saved under another name")
        assertEquals(1, key.created.get(), "one key, made on the first save")
        // commit() wrote the preferences file: v1:<iv>:<ciphertext+tag>, no plaintext.
        val file = File(context.dataDir, "shared_prefs/${KeystoreSecretStore.DEFAULT_PREFS_NAME}.xml")
        assertTrue(file.isFile, "$file")
        val xml = file.readText()
        val parts = stored("data-key").split(":")
        assertEquals("v1", parts[0])
        assertEquals(12, android.util.Base64.decode(parts[1], android.util.Base64.NO_WRAP).size, "a 96-bit GCM IV")
        assertEquals(32 + 16, android.util.Base64.decode(parts[2], android.util.Base64.NO_WRAP).size, "ciphertext and a 128-bit tag")
        assertTrue(stored("data-key") in xml)
        assertTrue(Base64.getEncoder().encodeToString(value) !in xml)
        assertTrue(android.util.Base64.encodeToString(value, android.util.Base64.NO_WRAP) !in xml)
    }

    @Test
    fun `each save picks a fresh IV`() {
        val value = ByteArray(32) { 1 }
        store().save("a", value)
        val first = stored("a")
        store().save("a", value)
        val second = stored("a")

        assertNotEquals(first.split(":")[1], second.split(":")[1])
        assertContentEquals(value, store().load("a"))
    }

    @Test
    fun `a ciphertext copied under another name does not decrypt, as the name is the associated data`() {
        store().save("a", ByteArray(32) { 2 })
        assertTrue(prefs.edit().putString("secret.b", stored("a")).commit())

        val e = assertFailsWith<PlatformException.Failed> { store().load("b") }

        assertTrue("AEADBadTagException" in e.reason, e.reason)
    }

    @Test
    fun `a stored value in an unknown format is a PlatformException`() {
        assertTrue(prefs.edit().putString("secret.a", "v2:AAAA:AAAA").commit())
        key.create()

        val e = assertFailsWith<PlatformException.Failed> { store().load("a") }

        assertTrue("unknown format" in e.reason, e.reason)
    }

    @Test
    fun `the core keeps its data key in the store and reopens with it, and a lost key is MissingDataKey`() = runBlocking<Unit> {
        val deviceKey = JcaDeviceKeyStore()
        suspend fun open(wrappingKey: WrappingKey) =
            AndroidCarePass.open(context, sandbox.url, secretStore = store(wrappingKey), deviceKey = deviceKey, logger = null)

        val enrolled = open(key).use { it.enrol(ZHANG_WEI, CODE) }
        assertTrue(prefs.all.keys.any { it.startsWith("secret.") }, "the core saved its data key: ${prefs.all.keys}")

        open(key).use { assertEquals(enrolled, runBlocking { it.currentProfile() }, "the store opened with the same key") }

        // Another key that exists: the stored key does not decrypt, the core reports KeyStore.
        val other = SoftwareWrappingKey().apply { create() }
        assertFailsWith<CarePassException.KeyStore> { open(other) }

        // The keystore lost the key: the secret store answers null; the store holds data.
        key.forget()
        assertNull(store().load(prefs.all.keys.first { it.startsWith("secret.") }.removePrefix("secret.")))
        assertFailsWith<CarePassException.MissingDataKey> { open(key) }
    }

    @Test
    fun `the production key needs the AndroidKeyStore provider, which Robolectric does not have`() {
        // If this starts to pass through, Robolectric emulates the keystore: test it for real then.
        val e = assertFailsWith<PlatformException.Failed> { KeystoreSecretStore(context).save("a", ByteArray(32)) }
        assertTrue("KeyStoreException" in e.reason && "AndroidKeyStore" in e.reason, e.reason)

        val device = assertFailsWith<PlatformException.Failed> { AndroidKeystoreDeviceKey().publicKey() }
        assertTrue("Android Keystore public key failed" in device.reason, device.reason)

        // Through the core: AndroidCarePass with its defaults reports the failure as KeyStore.
        assertFailsWith<CarePassException.KeyStore> { runBlocking { AndroidCarePass.open(context, sandbox.url) } }
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
