package app.carepass

import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import app.carepass.ffi.PlatformException
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.ProviderException
import java.security.PublicKey
import java.security.Signature
import java.security.spec.ECGenParameterSpec

/**
 * The device key in the Android Keystore: an EC P-256 (secp256r1) key pair made for signing
 * with SHA-256, in StrongBox when the device has one (API 28+), otherwise in the TEE. The
 * private key never leaves the keystore; it is created on first use under [alias] and lives
 * until the app's data is cleared.
 *
 * The key needs no user authentication: the core signs with it at [CarePassClient.login],
 * after the user has typed a verification code.
 *
 * Failures are reported as [PlatformException.Failed], which the core turns into
 * [CarePassException.KeyStore].
 */
class AndroidKeystoreDeviceKey @JvmOverloads constructor(
    private val alias: String = DEFAULT_ALIAS,
    private val preferStrongBox: Boolean = true,
) : DeviceKeyStore {

    /** The SEC1 uncompressed public key (65 bytes), converted from its X.509 encoding. */
    override fun publicKey(): ByteArray = platformCall("public key") {
        P256.uncompressedPointFromSpki(entry().publicKey.encoded)
    }

    /** ECDSA P-256 over SHA-256 of [message] (`SHA256withECDSA`), DER-encoded. */
    override fun sign(message: ByteArray): ByteArray = platformCall("signing") {
        Signature.getInstance(SIGNATURE_ALGORITHM).run {
            initSign(entry().privateKey)
            update(message)
            sign()
        }
    }

    private class Entry(val privateKey: PrivateKey, val publicKey: PublicKey)

    @Volatile
    private var cached: Entry? = null

    /** The key pair under [alias], created on first use. */
    private fun entry(): Entry = cached ?: synchronized(this) {
        cached ?: (load() ?: create()).also { cached = it }
    }

    private fun load(): Entry? {
        val keyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }
        val privateKey = keyStore.getKey(alias, null) as? PrivateKey ?: return null
        val publicKey = keyStore.getCertificate(alias)?.publicKey ?: return null
        return Entry(privateKey, publicKey)
    }

    private fun create(): Entry {
        val useStrongBox = preferStrongBox && Build.VERSION.SDK_INT >= Build.VERSION_CODES.P
        val pair = try {
            generate(strongBox = useStrongBox)
        } catch (e: ProviderException) {
            // StrongBoxUnavailableException (API 28) is a ProviderException; referring to it by
            // name would not load on API 24-27. Without StrongBox, any other failure recurs below.
            if (!useStrongBox) throw e
            generate(strongBox = false)
        }
        return Entry(pair.private, pair.public)
    }

    private fun generate(strongBox: Boolean) =
        KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, ANDROID_KEYSTORE).run {
            val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
                .setAlgorithmParameterSpec(ECGenParameterSpec(CURVE))
                .setDigests(KeyProperties.DIGEST_SHA256)
            if (strongBox && Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
                spec.setIsStrongBoxBacked(true)
            }
            initialize(spec.build())
            generateKeyPair()
        }

    private inline fun <T> platformCall(what: String, block: () -> T): T =
        try {
            block()
        } catch (e: PlatformException) {
            throw e
        } catch (e: Exception) {
            throw PlatformException.Failed("Android Keystore $what failed: ${e.javaClass.simpleName}: ${e.message}")
        }

    companion object {
        const val DEFAULT_ALIAS: String = "carepass.device-key.v1"
        private const val ANDROID_KEYSTORE = "AndroidKeyStore"
        private const val CURVE = "secp256r1"
        private const val SIGNATURE_ALGORITHM = "SHA256withECDSA"
    }
}
