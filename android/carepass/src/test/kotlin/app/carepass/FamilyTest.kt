package app.carepass

import app.carepass.Sandbox.BillLine
import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePassException
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
import kotlin.test.fail

/**
 * Family proxies (亲情账户, `docs/family.md`) through the Kotlin facade: the real core against
 * the real sandbox platform, two phones (two cores, each on its own data directory) for a son
 * and his father. The clinic issues the father a bill through the admin routes, and the son
 * pays it as him; the father reads it in his audit trail and revokes the link.
 */
class FamilyTest {

    /** Each test enrols afresh: it starts on a new platform day, under fresh daily limits. */
    @BeforeEach
    fun freshDay() {
        sandbox.startNextDay()
    }

    @TempDir
    lateinit var sonDir: Path

    @TempDir
    lateinit var fatherDir: Path

    private fun open(dir: Path): CarePassClient = CarePassClient.openBlocking(
        carePassConfig(sandbox.url, dir.toFile()) { deviceName = "host JVM family test" },
        InMemorySecretStore(),
    )

    @Test
    fun `a son links his father, pays his bill as him, and stops at once when the father revokes`() = runBlocking<Unit> {
        open(sonDir).use { son ->
            open(fatherDir).use { father ->
                son.enrol(ZHANG_WEI, CODE)
                father.enrol(FATHER, CODE)
                assertEquals(listOf(SON_ID), son.profiles.value.map { it.personId }, "the signed-in person only")
                assertTrue(son.profiles.value.single().isSelf)
                assertNull(son.profiles.value.single().subject)

                // The son asks; the link waits for the father's consent.
                val asked = son.linkRelative(FATHER, FamilyRelationship.PARENT)
                assertEquals(FamilyLinkStatus.PENDING, asked.status)
                assertEquals(FamilyStatusReason.AWAITING_CONSENT, asked.reason)
                assertEquals(FATHER_ID, asked.principalId)
                assertEquals(SON_ID, asked.proxyId)
                assertEquals(FamilyRelationship.PARENT, asked.relationship)
                assertNull(asked.basis)
                assertEquals(FamilyBand.ELDERLY, asked.band)
                assertEquals(FamilyScope.entries.toSet(), asked.scopes.toSet(), "all six when none are named")
                assertEquals(emptyList(), asked.effectiveScopes)
                assertTrue(FamilyConsentPath.OWN_DEVICE in asked.consentPaths, "${asked.consentPaths}")
                assertNull(asked.perPaymentFen)
                assertNull(asked.perMonthFen)
                assertEquals(listOf(asked.linkId), son.family().actingFor.map { it.linkId }, "kept on the phone")
                assertEquals(listOf(SON_ID), son.profiles.value.map { it.personId }, "a pending link is nobody to act as")
                val pending = assertFailsWith<CarePassException.FamilyRefused> { son.bills(FATHER_ID) }
                assertEquals(FamilyProblem.LINK_PENDING, pending.kind)

                // The father consents on his own phone.
                val request = father.refreshFamily().actedForBy.single()
                assertEquals(asked.linkId, request.linkId)
                assertEquals(SON_ID, request.proxyId)
                assertTrue(request.proxyName.isNotBlank())
                val approved = father.approveLink(asked.linkId)
                assertEquals(FamilyLinkStatus.ACTIVE, approved.status)
                assertEquals(FamilyStatusReason.CONSENTED, approved.reason)
                assertEquals(FamilyLegalBasis.PRINCIPAL_CONSENT, approved.basis)
                assertNotNull(approved.expiresAtMs, "an adult's consent has an end")
                assertEquals(listOf(FATHER_ID), father.profiles.value.map { it.personId }, "nobody he acts for")

                // The son's phone learns it: the father is a profile to act as.
                son.refreshFamily()
                val relative = son.relatives().single()
                assertEquals(asked.linkId, relative.linkId)
                assertTrue(FamilyScope.PAY_BILLS in relative.effectiveScopes, "${relative.effectiveScopes}")
                assertEquals(listOf(SON_ID, FATHER_ID), son.profiles.value.map { it.personId })
                val fatherProfile = son.profiles.value[1]
                assertEquals(FATHER_ID, fatherProfile.subject)
                assertEquals(FamilyRelationship.PARENT, fatherProfile.relationship)
                assertEquals(relative.principalName, fatherProfile.name)
                assertEquals(relative, fatherProfile.link)

                // The clinic bills the father; the son's phone holds it under his subject.
                sandbox.setAccountBalance(FATHER_ID, FATHER_ACCOUNT_FEN)
                val issued = sandbox.issueBill(
                    FATHER,
                    items = listOf(
                        BillLine(quantity = 2, unitPriceFen = 2500),
                        BillLine(itemCode = "C-0001", name = "自费营养剂", category = "C", unitPriceFen = 3000),
                    ),
                    visitType = "chronic_outpatient",
                )
                val billId = issued["bill_id"] as String
                son.syncInbox()
                assertEquals(listOf(billId), son.bills(fatherProfile.subject).map { it.billId })
                assertTrue(son.bills().none { it.billId == billId }, "the father's bill is not the son's")
                val sonBalance = sandbox.accountBalance(SON_ID)

                // The son pays it as his father: the father's account first, then the son's card.
                val quote = son.quote(billId, useAccount = true, channel = "card:$GOOD_CARD", subject = fatherProfile.subject)
                assertEquals(FATHER_ID, quote.subject)
                assertEquals(issued["total_fen"] as Long, quote.totalFen)
                assertEquals(FATHER_ACCOUNT_FEN, quote.personalAccountFen, "the father's personal account pays first")
                assertTrue(quote.cashFen > 0, "the card pays the rest: $quote")
                val payment = son.pay(quote)
                assertEquals(PaymentStatus.SUCCEEDED, payment.status)
                assertEquals(FATHER_ID, payment.subject)
                assertEquals(SON_ID, payment.actor)
                assertEquals(quote.personalAccountFen, payment.personalAccountFen)
                assertEquals(0L, sandbox.accountBalance(FATHER_ID), "debited from the father's account, once")
                assertEquals(sonBalance, sandbox.accountBalance(SON_ID), "the son's own account is untouched")
                assertEquals(listOf(payment), son.payments(FATHER_ID))
                assertEquals(emptyList(), son.payments(), "not a payment for the son")

                // The father's audit trail holds the payment, made by his son, and verifies.
                val audit = father.familyAudit()
                assertEquals((1L..audit.records.size.toLong()).toList(), audit.records.map { it.seq.toLong() })
                assertEquals(audit.records.last().hash, audit.head)
                assertTrue(audit.records.all { it.principal == FATHER_ID })
                val actions = audit.records.map { it.action }
                for (expected in listOf(FamilyAuditAction.LINK_REQUESTED, FamilyAuditAction.LINK_ACTIVATED, FamilyAuditAction.PAYMENT_MADE)) {
                    assertTrue(expected in actions, "$expected missing from $actions")
                }
                val paid = audit.records.single { it.action == FamilyAuditAction.PAYMENT_MADE }
                assertEquals(SON_ID, paid.actor)
                assertEquals(asked.linkId, paid.linkId)
                assertEquals(payment.paymentId, paid.reference)
                assertNotNull(paid.amountFen, "a payment names its amount")
                assertEquals(emptyList(), son.familyAudit().records, "nobody acts for the son")

                // Family mutual aid (家庭共济): the father's account is empty now; the son's own
                // account pays what is left of the father's share, in the same payment.
                sandbox.setAccountBalance(SON_ID, SON_ACCOUNT_FEN)
                val second = sandbox.issueBill(FATHER, items = listOf(BillLine(quantity = 4, unitPriceFen = 2500)))["bill_id"] as String
                son.syncInbox()
                val plain = son.quote(second, useAccount = true, channel = "card:$GOOD_CARD", subject = FATHER_ID)
                assertEquals(0L, plain.mutualAidFen, "no mutual aid unless asked for")
                val aided = son.quote(second, useAccount = true, channel = "card:$GOOD_CARD", subject = FATHER_ID, mutualAid = true)
                assertTrue(aided.mutualAidFen > 0, "the son's account gives: $aided")
                assertEquals(plain.cashFen - aided.mutualAidFen, aided.cashFen, "the card pays only what is left")
                val aidedPayment = son.pay(aided)
                assertEquals(PaymentStatus.SUCCEEDED, aidedPayment.status)
                assertEquals(SON_ACCOUNT_FEN - aided.mutualAidFen, sandbox.accountBalance(SON_ID), "the giver's account, once")
                assertEquals(0L, sandbox.accountBalance(FATHER_ID))

                // The father revokes: final, and the son's phone drops him at its next sync.
                val revoked = father.revokeLink(asked.linkId)
                assertEquals(FamilyLinkStatus.REVOKED, revoked.status)
                assertEquals(FamilyStatusReason.REVOKED_BY_PRINCIPAL, revoked.reason)
                assertEquals(emptyList(), revoked.effectiveScopes)
                val last = father.familyAudit().records.last()
                assertEquals(FamilyAuditAction.LINK_REVOKED, last.action)
                assertEquals(FATHER_ID, last.actor)
                val again = assertFailsWith<CarePassException.FamilyRefused> { father.approveLink(asked.linkId) }
                assertEquals(FamilyProblem.ILLEGAL_MOVE, again.kind)

                son.syncInbox()
                when (val refused = runCatching { son.bills(FATHER_ID) }.exceptionOrNull()) {
                    is CarePassException.FamilyRefused -> assertEquals(FamilyProblem.LINK_REVOKED, refused.kind)
                    is CarePassException.NotLinked -> Unit
                    else -> fail("the son still sees his father's bills after the revocation: $refused")
                }
                assertEquals(emptyList(), son.relatives())
                assertEquals(listOf(SON_ID), son.profiles.value.map { it.personId })
                assertEquals(FamilyLinkStatus.REVOKED, son.family().actingFor.single().status)
            }
        }
    }

    @Test
    fun `a stranger naming someone else is refused, and so is a relationship the register does not show`() = runBlocking<Unit> {
        open(sonDir).use { stranger ->
            stranger.enrol(STRANGER, CODE)

            assertFailsWith<CarePassException.NotLinked> { stranger.bills(SON_ID) }
            assertFailsWith<CarePassException.NotLinked> { stranger.payments(SON_ID) }
            assertFailsWith<CarePassException.NotLinked> {
                stranger.currentCode(CodePurpose.OUTPATIENT_SETTLEMENT, subject = SON_ID)
            }
            assertEquals(listOf(STRANGER_ID), stranger.profiles.value.map { it.personId })
            assertEquals(emptyList(), stranger.relatives())

            val unrelated = assertFailsWith<CarePassException.FamilyRefused> {
                stranger.linkRelative(FATHER, FamilyRelationship.PARENT)
            }
            assertEquals(FamilyProblem.RELATIONSHIP_NOT_VERIFIED, unrelated.kind)
            val limit = assertFailsWith<CarePassException.InvalidInput> {
                stranger.linkRelative(ZHANG_WEI, FamilyRelationship.SIBLING, perPaymentFen = 0)
            }
            assertEquals(InputField.AMOUNT, limit.field)
            val malformed = assertFailsWith<CarePassException.InvalidInput> { stranger.approveLink("lnk/1") }
            assertEquals(InputField.LINK_ID, malformed.field)
            assertEquals(emptyList(), stranger.family().actingFor, "nothing was linked")
            assertEquals(emptyList(), stranger.familyAudit().records)
        }
    }

    companion object {
        private const val SON_ID = "P1001"
        private const val FATHER = "13800000002"
        private const val FATHER_ID = "P1002"
        private const val STRANGER = "13800000007"
        private const val STRANGER_ID = "P3001"

        /** The father's personal account: less than his share of the bill. */
        private const val FATHER_ACCOUNT_FEN = 1000L
        private const val SON_ACCOUNT_FEN = 3000L

        private const val GOOD_CARD = "4242424242424242"

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
