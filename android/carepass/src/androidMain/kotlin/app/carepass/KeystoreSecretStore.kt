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
 * A [SecretStore] for the core's data key: each value is encrypted with AES-256-GCM under a
 * key held in the Android Keystore (it never leaves it), and the IV and ciphertext are kept
 * in the app-private SharedPreferences file [prefsName]. The value's name is the GCM
 * associated data, so a ciphertext copied to another name does not decrypt.
 *
 * Exclude [prefsName] (and the core's data directory) from Auto Backup: restored on another
 * device they could not be decrypted. If the keystore key is gone while a ciphertext remains
 * (restored backup, keystore reset), [load] answers `null`: the core then starts a fresh store
 * in an empty directory, or reports [CarePassException.WrongDataKey] for one holding data.
 *
 * Failures are reported as [PlatformException.Failed]; the core turns them into
 * [CarePassException.KeyStore].
 */
class KeystoreSecretStore @JvmOverloads constructor(
    context: Context,
    private val prefsName: String = DEFAULT_PREFS_NAME,
    private val keyAlias: String = DEFAULT_KEY_ALIAS,
) : SecretStore {

    private val prefs: SharedPreferences =
        context.applicationContext.getSharedPreferences(prefsName, Context.MODE_PRIVATE)

    @Synchronized
    override fun load(name: String): ByteArray? = platformCall("load") {
        val stored = prefs.getString(prefKey(name), null) ?: return@platformCall null
        val key = existingKey() ?: return@platformCall null
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
                // The keystore picks a fresh random IV (randomized encryption is required).
                init(Cipher.ENCRYPT_MODE, existingKey() ?: createKey())
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

    private fun existingKey(): SecretKey? {
        val keyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }
        return keyStore.getKey(keyAlias, null) as? SecretKey
    }

    private fun createKey(): SecretKey =
        KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, ANDROID_KEYSTORE).run {
            init(
                KeyGenParameterSpec.Builder(keyAlias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                    .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                    .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                    .setKeySize(KEY_BITS)
                    .build(),
            )
            generateKey()
        }

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
        const val DEFAULT_KEY_ALIAS: String = "carepass.secret-store.v1"
        private const val ANDROID_KEYSTORE = "AndroidKeyStore"
        private const val TRANSFORMATION = "AES/GCM/NoPadding"
        private const val KEY_BITS = 256
        private const val TAG_BITS = 128
        private const val FORMAT_V1 = "v1"
        private const val SEPARATOR = ":"
    }
}
