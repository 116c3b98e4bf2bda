package app.carepass

import app.carepass.ffi.CarePassException
import app.carepass.ffi.demoSettlementPolicyJson
import app.carepass.ffi.settleJson
import org.junit.jupiter.api.Test
import java.io.ByteArrayOutputStream
import java.math.BigInteger
import java.security.AlgorithmParameters
import java.security.KeyFactory
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.security.spec.ECParameterSpec
import java.security.spec.ECPoint
import java.security.spec.ECPublicKeySpec
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.spec.IvParameterSpec
import javax.crypto.spec.SecretKeySpec
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.test.fail

/**
 * The shared test vectors (`tests/vectors`): the voucher codes through the core's
 * [VoucherVerifier], the settlement split through [settleJson], and the store and login-proof formats checked independently with the
 * JDK's own cryptography.
 */
class VectorTest {

    @Suppress("UNCHECKED_CAST")
    private fun vectors(name: String): Map<String, Any?> =
        Json.parseObject(requiredFile("carepass.vectors.dir", name).readText())

    /** The cases, which must be as many as the file states: an empty or truncated file fails. */
    @Suppress("UNCHECKED_CAST")
    private val Map<String, Any?>.cases: List<Map<String, Any?>>
        get() {
            val cases = this["cases"] as List<Map<String, Any?>>
            val stated = this["case_count"] as? Long ?: error("the vector file states no case_count")
            assertTrue(stated > 0, "a vector file with no cases")
            assertEquals(stated, cases.size.toLong(), "the file holds ${cases.size} cases but says $stated")
            return cases
        }

    private fun Map<String, Any?>.string(key: String): String =
        this[key] as? String ?: error("$key is missing or not a string in $this")

    // ---- voucher codes ---------------------------------------------------------------------

    private class VoucherVectors(file: Map<String, Any?>) {
        @Suppress("UNCHECKED_CAST")
        private fun list(file: Map<String, Any?>, key: String) = file[key] as List<Map<String, Any?>>

        val issuers = list(file, "issuers").map {
            IssuerKey((it["key_id"] as Long).toInt().toUShort(), (it["public_key_hex"] as String).hexToBytes())
        }

        @Suppress("UNCHECKED_CAST")
        val revoked = file["revoked_device_ids"] as List<String>
        val skewMs = file["skew_ms"] as Long
        val directory = list(file, "directory").map {
            DirectoryDevice(it["device_id"] as String, (it["public_key_hex"] as String).hexToBytes(), revoked = false)
        }

        fun verifier(skew: Long = skewMs): VoucherVerifier {
            requireNativeLibrary()
            return VoucherVerifier(issuers, revoked, skew)
        }
    }

    /** The purpose a name stands for: the four names exactly as `docs/voucher-code.md` spells them. */
    private fun purposeOf(name: String): CodePurpose? = when (name) {
        "registration" -> CodePurpose.REGISTRATION
        "outpatient_settlement" -> CodePurpose.OUTPATIENT_SETTLEMENT
        "pharmacy_purchase" -> CodePurpose.PHARMACY_PURCHASE
        "prescription_download" -> CodePurpose.PRESCRIPTION_DOWNLOAD
        else -> null
    }

    private fun ScanVerdict.outcome(): String = if (accepted) "accepted" else reason ?: "rejected without a reason"

    @Test
    fun `every voucher vector gets its expected verdict from a fresh verifier`() {
        val file = vectors("voucher/codes.json")
        val setup = VoucherVectors(file)
        val cases = file.cases
        assertTrue(cases.size >= 20, "only ${cases.size} voucher cases")
        assertTrue(cases.any { it["seen_before"] == true }, "no replay case")

        val mismatches = mutableListOf<String>()
        var ran = 0
        for (case in cases) {
            val name = case.string("name")
            val payload = case.string("payload")
            val expected = case.string("expect")
            val purpose = purposeOf(case.string("purpose"))
            if (purpose == null) {
                // An unknown purpose is refused before any check: no verdict at all.
                if (expected != "invalid_purpose") mismatches += "$name: unknown purpose, expected $expected"
                ran++
                continue
            }
            val nowMs = case["now_ms"] as Long
            setup.verifier((case["skew_ms"] as Long?) ?: setup.skewMs).use { verifier ->
                if (case["seen_before"] == true) {
                    val firstPayload = (case["first_payload"] as String?) ?: payload
                    val first = verifier.verify(firstPayload, purpose, nowMs, setup.directory)
                    if (!first.accepted) mismatches += "$name: first sight was ${first.outcome()}, not accepted"
                }
                val verdict = verifier.verify(payload, purpose, nowMs, setup.directory)
                if (verdict.outcome() != expected) mismatches += "$name: ${verdict.outcome()}, expected $expected"
                if (verdict.accepted) {
                    if (verdict.purpose != purpose) mismatches += "$name: accepted for ${verdict.purpose}"
                    if (verdict.deviceId?.startsWith("dev_") != true) mismatches += "$name: device ${verdict.deviceId}"
                } else if (verdict.deviceId != null || verdict.purpose != null) {
                    mismatches += "$name: a rejection names ${verdict.deviceId} / ${verdict.purpose}"
                }
            }
            ran++
        }

        assertEquals(emptyList(), mismatches)
        assertEquals(cases.size, ran, "every case ran")
    }

    @Test
    fun `a verifier accepts a code once, another verifier has its own replay cache, revocation applies at once`() {
        val file = vectors("voucher/codes.json")
        val setup = VoucherVectors(file)
        val valid = file.cases.first { it["name"] == "valid online" }
        val payload = valid.string("payload")
        val purpose = assertNotNull(purposeOf(valid.string("purpose")))
        val nowMs = valid["now_ms"] as Long

        setup.verifier().use { scanner ->
            val accepted = scanner.verify(payload, purpose, nowMs, setup.directory)
            assertTrue(accepted.accepted, accepted.outcome())
            assertEquals(false, accepted.offline)
            assertEquals(false, accepted.proxy)
            assertEquals("replayed", scanner.verify(payload, purpose, nowMs, setup.directory).reason)

            setup.verifier().use { other ->
                assertTrue(other.verify(payload, purpose, nowMs, setup.directory).accepted, "another scanner's cache")
            }
            setup.verifier().use { other ->
                other.setRevoked(listOf(accepted.deviceId!!))
                assertEquals("revoked", other.verify(payload, purpose, nowMs, setup.directory).reason)
                other.setRevoked(emptyList())
                assertTrue(other.verify(payload, purpose, nowMs, setup.directory).accepted)
            }
        }

        val offline = file.cases.first { it["name"] == "valid offline" }
        setup.verifier().use { scanner ->
            val verdict = scanner.verify(
                offline.string("payload"),
                assertNotNull(purposeOf(offline.string("purpose"))),
                offline["now_ms"] as Long,
                emptyList(),
            )
            assertTrue(verdict.accepted, "an offline code needs no directory: ${verdict.outcome()}")
            assertEquals(true, verdict.offline)
        }
    }

    // ---- settlement: the split through settleJson -----------------------------------------

    /**
     * What a settlement vector checks of the `Settlement` JSON [settleJson] returns, named as
     * the vectors' `expect.settlement`: the top-level amounts, and each line's deductible and fund.
     */
    @Suppress("UNCHECKED_CAST")
    private fun split(settlement: Map<String, Any?>): Map<String, Any?> {
        val lines = settlement["lines"] as List<Map<String, Any?>>
        return SPLIT_FIELDS.associateWith { settlement[it] } +
            mapOf(
                "line_deductible" to lines.map { it["deductible"] },
                "line_fund" to lines.map { it["fund"] },
            )
    }

    @Test
    fun `every settlement vector gets its split or its error kind from settleJson`() {
        requireNativeLibrary()
        val file = vectors("settlement/cases.json")
        @Suppress("UNCHECKED_CAST")
        val policies = file["policies"] as Map<String, Any?>
        val cases = file.cases
        assertTrue(cases.size >= 20, "only ${cases.size} settlement cases")
        assertTrue(cases.any { "error" in (it["expect"] as Map<*, *>) }, "no error case")

        val mismatches = mutableListOf<String>()
        var ran = 0
        for (case in cases) {
            val name = case.string("name")
            val policy = policies[case.string("policy")] ?: error("$name: no policy ${case["policy"]}")
            @Suppress("UNCHECKED_CAST")
            val expect = case["expect"] as Map<String, Any?>
            val outcome = try {
                Result.success(Json.parseObject(settleJson(Json.write(policy), Json.write(case["request"]))))
            } catch (e: CarePassException.Refused) {
                Result.failure(e)
            } catch (e: CarePassException.InvalidInput) {
                Result.failure(e)
            }
            when {
                "settlement" in expect -> outcome.fold(
                    onSuccess = { settlement ->
                        @Suppress("UNCHECKED_CAST")
                        val want = expect["settlement"] as Map<String, Any?>
                        assertEquals(want.keys, split(settlement).keys, "$name: the vector's fields")
                        val got = split(settlement)
                        if (got != want) mismatches += "$name: $got, expected $want"
                    },
                    onFailure = { mismatches += "$name: refused (${it.message}), expected a settlement" },
                )
                "error" in expect -> outcome.fold(
                    onSuccess = { mismatches += "$name: settled as ${split(it)}, expected ${expect["error"]}" },
                    onFailure = {
                        val want = expect["error"] as String
                        when (it) {
                            // A request or policy that does not decode (`docs/settlement.md` § 4).
                            is CarePassException.InvalidInput -> {
                                if (want != "malformed" || it.field != InputField.PAYLOAD) {
                                    mismatches += "$name: invalid ${it.field} (${it.reason}), expected $want"
                                }
                            }
                            is CarePassException.Refused -> {
                                // The vectors spell the kinds as the core does (`negative_amount`).
                                val kind = RefusalKind.valueOf(want.uppercase())
                                if (it.kind != kind) mismatches += "$name: refused as ${it.kind} (${it.reason}), expected $kind"
                            }
                            else -> mismatches += "$name: $it"
                        }
                    },
                )
                else -> fail("$name: unknown expectation $expect")
            }
            ran++
        }

        assertEquals(emptyList(), mismatches)
        assertEquals(cases.size, ran, "every case ran")
        assertTrue(ran >= 20, "only $ran settlement cases ran")
    }

    @Test
    fun `the vector file's demo policy is the core's demo policy`() {
        requireNativeLibrary()
        @Suppress("UNCHECKED_CAST")
        val policies = vectors("settlement/cases.json")["policies"] as Map<String, Any?>
        assertEquals(policies["demo"], Json.parse(demoSettlementPolicyJson()))
    }

    @Test
    fun `settleJson refuses JSON that is not a policy or a request as InvalidInput`() {
        requireNativeLibrary()
        assertEquals(InputField.PAYLOAD, assertFailsWith<CarePassException.InvalidInput> { settleJson("{}", "{}") }.field)
        assertEquals(
            InputField.PAYLOAD,
            assertFailsWith<CarePassException.InvalidInput> { settleJson(demoSettlementPolicyJson(), "not json") }.field,
        )
    }

    // ---- store: sealed values, with the JDK's ChaCha20-Poly1305 ----------------------------

    /** The plaintext, or `null` when the sealed value must be refused as tampered. */
    private fun openSealed(key: ByteArray, sealed: ByteArray, aad: ByteArray): ByteArray? {
        if (sealed.size < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEALED_VERSION) return null
        val cipher = Cipher.getInstance("ChaCha20-Poly1305")
        cipher.init(
            Cipher.DECRYPT_MODE,
            SecretKeySpec(key, "ChaCha20"),
            IvParameterSpec(sealed.copyOfRange(1, 1 + NONCE_LEN)),
        )
        cipher.updateAAD(aad)
        return try {
            cipher.doFinal(sealed, 1 + NONCE_LEN, sealed.size - 1 - NONCE_LEN)
        } catch (e: AEADBadTagException) {
            null
        }
    }

    @Test
    fun `sealed-value vectors open with the JDK's ChaCha20-Poly1305, and tampered ones do not`() {
        val file = vectors("store/sealed-value.json")
        val key = file.string("key_hex").hexToBytes()
        assertEquals(32, key.size)
        val cases = file.cases
        assertTrue(cases.any { it["expect"] == "ok" } && cases.any { it["expect"] == "tampered" })

        var ran = 0
        for (case in cases) {
            val name = case.string("name")
            val opened = openSealed(key, case.string("sealed_hex").hexToBytes(), case.string("aad_hex").hexToBytes())
            when (val expect = case.string("expect")) {
                "ok" -> assertContentEquals(case.string("plaintext_hex").hexToBytes(), opened, name)
                "tampered" -> assertEquals(null, opened, "$name opened")
                else -> fail("$name: unknown expectation $expect")
            }
            ran++
        }
        assertEquals(cases.size, ran)
    }

    // ---- account: login proofs, with the JDK's SHA256withECDSA -----------------------------

    private fun p256PublicKey(point: ByteArray): ECPublicKey {
        require(point.size == 65 && point[0] == 0x04.toByte()) { "not an uncompressed P-256 point" }
        val params = AlgorithmParameters.getInstance("EC").run {
            init(ECGenParameterSpec("secp256r1"))
            getParameterSpec(ECParameterSpec::class.java)
        }
        val w = ECPoint(BigInteger(1, point.copyOfRange(1, 33)), BigInteger(1, point.copyOfRange(33, 65)))
        return KeyFactory.getInstance("EC").generatePublic(ECPublicKeySpec(w, params)) as ECPublicKey
    }

    /** Fixed 64-byte r||s to the DER `SEQUENCE { INTEGER r, INTEGER s }` the JDK verifies. */
    private fun fixedToDer(signature: ByteArray): ByteArray {
        require(signature.size == 64) { "not a 64-byte r||s signature" }
        fun integer(half: ByteArray): ByteArray {
            // Minimal big-endian two's complement: BigInteger adds the 0x00 a set top bit needs.
            val value = BigInteger(1, half).toByteArray()
            return byteArrayOf(0x02, value.size.toByte()) + value
        }
        val body = integer(signature.copyOfRange(0, 32)) + integer(signature.copyOfRange(32, 64))
        return ByteArrayOutputStream().apply {
            write(0x30)
            write(body.size) // at most 2 * (2 + 33) = 70: short form
            write(body)
        }.toByteArray()
    }

    @Test
    fun `login-proof vectors verify with the JDK's SHA256withECDSA`() {
        val file = vectors("account/login-proof.json")
        val message = file.string("message_hex").hexToBytes()
        val expectedMessage = "carepass-login-v1\n${file.string("device_id")}\n${file.string("nonce")}"
        assertContentEquals(expectedMessage.toByteArray(Charsets.UTF_8), message, "the message format")
        val key = p256PublicKey(file.string("public_key_hex").hexToBytes())
        val cases = file.cases
        assertTrue(setOf("valid", "invalid", "malformed").all { kind -> cases.any { it["expect"] == kind } })

        var ran = 0
        for (case in cases) {
            val name = case.string("name")
            val signature = case.string("signature_hex").hexToBytes()
            val outcome = if (signature.size != 64) {
                "malformed"
            } else {
                val ok = Signature.getInstance("SHA256withECDSA").run {
                    initVerify(key)
                    update(message)
                    verify(fixedToDer(signature))
                }
                if (ok) "valid" else "invalid"
            }
            assertEquals(case.string("expect"), outcome, name)
            ran++
        }
        assertEquals(cases.size, ran)
    }

    private companion object {
        const val SEALED_VERSION: Byte = 1
        const val NONCE_LEN = 12
        const val TAG_LEN = 16

        /** The top-level fields of a `Settlement` that the vectors state. */
        val SPLIT_FIELDS = listOf(
            "total", "fund", "personal_account", "mutual_aid", "cash", "first_self_pay",
            "out_of_scope", "eligible", "deductible_applied", "cap_reached",
        )
    }
}
