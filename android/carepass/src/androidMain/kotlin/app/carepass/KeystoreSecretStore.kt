package app.carepass

import android.content.Context
import android.content.SharedPreferences
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Base64
import app.carepass.ffi.PlatformException
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * A [SecretStore] for the core's data key: each value is encrypted with AES-256-GCM under the
 * wrapping key of [wrappingKey] (by default [AndroidKeystoreWrappingKey]: a key held in the
 * Android Keystore, which never leaves it), and the IV and ciphertext are kept in the
 * app-private SharedPreferences file [prefsName]. The value's name is the GCM associated data,
 * so a ciphertext copied to another name does not decrypt.
 *
 * Exclude [prefsName] (and the core's data directory) from Auto Backup: restored on another
 * device they could not be decrypted. If the wrapping key is gone while a ciphertext remains
 * (restored backup, keystore reset), [load] answers `null`: the core then starts a fresh store
 * in an empty directory, or reports [CarePassException.MissingDataKey] for one holding data.
 *
 * Failures are reported as [PlatformException.Failed]; the core turns them into
 * [CarePassException.KeyStore].
 */
class KeystoreSecretStore @JvmOverloads constructor(
    context: Context,
    private val prefsName: String = DEFAULT_PREFS_NAME,
    private val wrappingKey: WrappingKey = AndroidKeystoreWrappingKey(),
) : SecretStore {

    private val prefs: SharedPreferences =
        context.applicationContext.getSharedPreferences(prefsName, Context.MODE_PRIVATE)

    @Synchronized
    override fun load(name: String): ByteArray? = platformCall("load") {
        val stored = prefs.getString(prefKey(name), null) ?: return@platformCall null
        val key = wrappingKey.existing() ?: return@platformCall null
        val parts = stored.split(SEPARATOR)
        if (parts.size != 3 || parts[0] != FORMAT_V1) {
            throw PlatformException.Failed("stored secret has an unknown format")
        }
        val iv = Base64.decode(parts[1], Base64.NO_WRAP)
        val ciphertext = Base64.decode(parts[2], Base64.NO_WRAP)
        Cipher.getInstance(TRANSFORMATION).run {
            init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(TAG_BITS, iv))
            updateAAD(name.toByteArray(Charsets.UTF_8))
            doFinal(ciphertext)
        }
    }

    @Synchronized
    override fun save(name: String, value: ByteArray) {
        platformCall("save") {
            val cipher = Cipher.getInstance(TRANSFORMATION).apply {
                // The provider picks a fresh random IV (the Keystore requires randomized encryption).
                init(Cipher.ENCRYPT_MODE, wrappingKey.existing() ?: wrappingKey.create())
                updateAAD(name.toByteArray(Charsets.UTF_8))
            }
            val ciphertext = cipher.doFinal(value)
            val stored = listOf(
                FORMAT_V1,
                Base64.encodeToString(cipher.iv, Base64.NO_WRAP),
                Base64.encodeToString(ciphertext, Base64.NO_WRAP),
            ).joinToString(SEPARATOR)
            // commit(), not apply(): the core seals data under this key as soon as save returns.
            if (!prefs.edit().putString(prefKey(name), stored).commit()) {
                throw PlatformException.Failed("SharedPreferences could not be written")
            }
        }
    }

    private fun prefKey(name: String) = "secret.$name"

    private inline fun <T> platformCall(what: String, block: () -> T): T =
        try {
            block()
        } catch (e: PlatformException) {
            throw e
        } catch (e: Exception) {
            throw PlatformException.Failed("secret store $what failed: ${e.javaClass.simpleName}: ${e.message}")
        }

    companion object {
        const val DEFAULT_PREFS_NAME: String = "carepass.secrets"
        private const val TRANSFORMATION = "AES/GCM/NoPadding"
        private const val TAG_BITS = 128
        private const val FORMAT_V1 = "v1"
        private const val SEPARATOR = ":"
    }
}

/**
 * Where [KeystoreSecretStore]'s AES-256 wrapping key lives: [AndroidKeystoreWrappingKey] on
 * devices. Another implementation (a software key in tests on the host JVM, where there is no
 * Android Keystore) exercises the same store code; apps keep the default.
 *
 * The key must be usable for `AES/GCM/NoPadding` with a 128-bit tag, and let the cipher pick
 * the IV when encrypting.
 */
interface WrappingKey {
    /** The key, or `null` while there is none (first run, or the keystore lost it). */
    fun existing(): SecretKey?

    /** Makes the key; called only after [existing] answered `null`. */
    fun create(): SecretKey
}

/**
 * The wrapping key in the Android Keystore under [alias]: AES-256 for GCM, made on first use,
 * never leaving the keystore (the TEE or StrongBox, as the device has). It needs no user
 * authentication: the core reads its data key at [CarePassClient.open].
 */
class AndroidKeystoreWrappingKey @JvmOverloads constructor(
    private val alias: String = DEFAULT_ALIAS,
) : WrappingKey {

    override fun existing(): SecretKey? {
        val keyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }
        return keyStore.getKey(alias, null) as? SecretKey
    }

    override fun create(): SecretKey =
        KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, ANDROID_KEYSTORE).run {
            init(
                KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                    .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                    .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                    .setKeySize(KEY_BITS)
                    .build(),
            )
            generateKey()
        }

    companion object {
        const val DEFAULT_ALIAS: String = "carepass.secret-store.v1"
        private const val ANDROID_KEYSTORE = "AndroidKeyStore"
        private const val KEY_BITS = 256
    }
}
