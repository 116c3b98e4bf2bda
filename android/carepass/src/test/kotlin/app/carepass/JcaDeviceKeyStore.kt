package app.carepass

import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.atomic.AtomicInteger

/**
 * A [DeviceKeyStore] over a JCA P-256 key pair, shaped like `AndroidKeystoreDeviceKey`: the
 * public key converted from its X.509 SubjectPublicKeyInfo, signatures from `SHA256withECDSA`
 * (DER, not the core's own fixed r||s). Counts its signatures so tests can see it was used.
 */
internal class JcaDeviceKeyStore : DeviceKeyStore {
    private val pair: KeyPair = KeyPairGenerator.getInstance("EC").run {
        initialize(ECGenParameterSpec("secp256r1"))
        generateKeyPair()
    }

    val signatures = AtomicInteger()

    @Volatile
    var lastSignature: ByteArray? = null
        private set

    override fun publicKey(): ByteArray = P256.uncompressedPointFromSpki(pair.public.encoded)

    override fun sign(message: ByteArray): ByteArray =
        Signature.getInstance("SHA256withECDSA").run {
            initSign(pair.private)
            update(message)
            sign()
        }.also {
            lastSignature = it
            signatures.incrementAndGet()
        }
}
