package app.carepass

/** Encodings of P-256 (secp256r1) public keys between the JCA and the core. */
internal object P256 {
    /** Length of a SEC1 uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes). */
    const val UNCOMPRESSED_POINT_LEN: Int = 65

    /**
     * DER of SubjectPublicKeyInfo { AlgorithmIdentifier { id-ecPublicKey, prime256v1 },
     * BIT STRING (no unused bits) } up to the point. DER is canonical, so every P-256 key with
     * an uncompressed point and named-curve parameters starts with exactly these bytes.
     */
    private val SPKI_PREFIX: ByteArray = byteArrayOf(
        0x30, 0x59, // SEQUENCE, 89 bytes
        0x30, 0x13, // SEQUENCE, 19 bytes (AlgorithmIdentifier)
        0x06, 0x07, 0x2a, 0x86.toByte(), 0x48, 0xce.toByte(), 0x3d, 0x02, 0x01, // 1.2.840.10045.2.1
        0x06, 0x08, 0x2a, 0x86.toByte(), 0x48, 0xce.toByte(), 0x3d, 0x03, 0x01, 0x07, // 1.2.840.10045.3.1.7
        0x03, 0x42, 0x00, // BIT STRING, 66 bytes, 0 unused bits
    )

    /**
     * The SEC1 uncompressed point (65 bytes) inside an X.509 SubjectPublicKeyInfo, as
     * `java.security.PublicKey.getEncoded()` returns for an EC key.
     *
     * @throws IllegalArgumentException if [spki] is not a named-curve P-256 key with an
     *   uncompressed point.
     */
    fun uncompressedPointFromSpki(spki: ByteArray): ByteArray {
        require(spki.size == SPKI_PREFIX.size + UNCOMPRESSED_POINT_LEN) {
            "not a P-256 SubjectPublicKeyInfo: ${spki.size} bytes"
        }
        require(spki.copyOfRange(0, SPKI_PREFIX.size).contentEquals(SPKI_PREFIX)) {
            "not a named-curve P-256 SubjectPublicKeyInfo"
        }
        val point = spki.copyOfRange(SPKI_PREFIX.size, spki.size)
        require(point[0] == 0x04.toByte()) { "the P-256 point is not uncompressed" }
        return point
    }
}
