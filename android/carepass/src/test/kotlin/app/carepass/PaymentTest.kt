package app.carepass

import app.carepass.Sandbox.BillLine
import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePassException
import kotlinx.coroutines.flow.takeWhile
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.nio.file.Path
import java.util.UUID
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds

/**
 * Mixed payment (医保 + 自费, `docs/payments.md`) through the Kotlin facade: the real core
 * against the real sandbox platform and its card channel (`docs/sandbox.md` § Payment channel,
 * whose test cards decline, time out or ask for a second confirmation), where the clinic
 * issues and refunds bills and the test fixture sets Zhang Wei's personal account.
 *
 * Every test signs in as Zhang Wei on a fresh data directory and pays a bill of its own: a
 * chronic-care visit (no deductible, so the pooled fund pays) with a class C line, and a
 * personal account smaller than the patient's share, so the fund, the personal account and
 * the card all pay.
 */
class PaymentTest {

    /** Each test enrols afresh: it starts on a new platform day, under fresh daily limits. */
    @BeforeEach
    fun freshDay() {
        sandbox.startNextDay()
    }

    @TempDir
    lateinit var dataDir: Path

    private fun open(): CarePassClient = CarePassClient.openBlocking(
        carePassConfig(sandbox.url, dataDir.toFile()) { deviceName = "host JVM payment test" },
        InMemorySecretStore(),
    )

    private suspend fun CarePassClient.enrolled(): Profile = enrol(ZHANG_WEI, CODE)

    /**
     * Issues Zhang Wei a bill that three sources pay: A 25.00 × 2 (the fund pays most of it)
     * and a class C drug 30.00 (out of the scheme), with ¥10.00 in his personal account.
     * Returns the bill's id and total.
     */
    private fun threeSourceBill(): Pair<String, Long> {
        sandbox.setAccountBalance(P1001, ACCOUNT_FEN)
        val bill = sandbox.issueBill(
            ZHANG_WEI,
            items = listOf(
                BillLine(quantity = 2, unitPriceFen = 2500),
                BillLine(itemCode = "C-0001", name = "自费营养剂", category = "C", unitPriceFen = 3000),
            ),
            visitType = "chronic_outpatient",
        )
        return bill["bill_id"] as String to bill["total_fen"] as Long
    }

    private fun assertSplit(quote: PaymentQuote, payment: Payment) {
        assertEquals(quote.billId, payment.billId)
        assertEquals(quote.totalFen, payment.totalFen)
        assertEquals(quote.fundFen, payment.fundFen)
        assertEquals(quote.personalAccountFen, payment.personalAccountFen)
        assertEquals(quote.mutualAidFen, payment.mutualAidFen)
        assertEquals(quote.cashFen, payment.cashFen)
    }

    @Test
    fun `a bill paid from the fund, the personal account and a card, with a verified receipt`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val (billId, totalFen) = threeSourceBill()
            val balanceBefore = sandbox.accountBalance(P1001)

            val quote = client.quote(billId, channel = "card:$GOOD_CARD")

            assertEquals(billId, quote.billId)
            assertEquals(P1001, quote.subject)
            assertEquals(totalFen, quote.totalFen)
            assertTrue(quote.fundFen > 0, "the fund pays: $quote")
            assertTrue(quote.personalAccountFen > 0, "the personal account pays: $quote")
            assertTrue(quote.cashFen > 0, "the card pays: $quote")
            assertEquals(0L, quote.mutualAidFen)
            assertNull(quote.mutualAidFrom)
            assertEquals(quote.totalFen, quote.fundFen + quote.personalAccountFen + quote.mutualAidFen + quote.cashFen)
            assertEquals(ACCOUNT_FEN, quote.personalAccountFen, "the account is smaller than the patient's share")
            assertTrue(quote.useAccount)
            assertEquals("card ····4242", quote.channel, "masked")
            assertEquals(2, quote.lines.size)
            assertEquals(totalFen, quote.lines.sumOf { it.amountFen })
            assertEquals(3000L, quote.lines[1].outOfScopeFen, "the class C line is out of the scheme")
            assertTrue(quote.expiresAtMs > sandbox.now())

            val payment = client.pay(quote)

            assertEquals(PaymentStatus.SUCCEEDED, payment.status)
            assertSplit(quote, payment)
            assertEquals(0L, payment.cashDueFen)
            assertEquals(0L, payment.refundedFen)
            assertNull(payment.failureCode)
            assertEquals(P1001, payment.subject)
            assertEquals(P1001, payment.actor)
            assertEquals(1u, payment.receiptCount)
            assertEquals(0, client.paymentsUnresolved())
            assertEquals(listOf(payment), client.payments())
            assertEquals(balanceBefore - quote.personalAccountFen, sandbox.accountBalance(P1001), "debited exactly once")
            client.syncInbox()
            assertEquals(BillState.PAID, client.bills().single { it.billId == billId }.state)

            val receipt = client.receipts().single()

            assertEquals(billId, receipt.billId)
            assertEquals(payment.paymentId, receipt.paymentId)
            assertEquals(false, receipt.writeOff)
            assertEquals("市第一人民医院", receipt.payee)
            assertTrue("张伟" in receipt.payerName, receipt.payerName)
            assertEquals(payment.totalFen, receipt.totalFen)
            assertEquals(payment.fundFen, receipt.fundFen)
            assertEquals(payment.personalAccountFen, receipt.personalAccountFen)
            assertEquals(payment.mutualAidFen, receipt.mutualAidFen)
            assertEquals(payment.cashFen, receipt.cashFen)
            assertEquals(3000L, receipt.selfPayFen, "个人自费: the class C line")
            assertEquals(listOf("110200001", "C-0001"), receipt.lines.map { it.code })
            assertTrue(receipt.channel.endsWith("4242"), receipt.channel)
            assertEquals(8, receipt.receiptCode.length)
            assertEquals(10, receipt.receiptNumber.length)
            assertEquals(6, receipt.checkCode.length)
            assertTrue(receipt.svg.startsWith("<svg"), receipt.svg.take(80))
            assertTrue(receipt.checkCode in receipt.svg, "the card shows the check code")
        }
    }

    @Test
    fun `a used quote and a paid bill are refused, and nothing is charged twice`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val (billId, _) = threeSourceBill()
            val quote = client.quote(billId, channel = "card:$GOOD_CARD")
            val paid = client.pay(quote)
            assertEquals(PaymentStatus.SUCCEEDED, paid.status)
            val balanceAfter = sandbox.accountBalance(P1001)

            val again = assertFailsWith<CarePassException.Platform> { client.pay(quote.quoteId) }
            assertEquals(PlatformErrorCode.QUOTE_USED, again.code)
            assertEquals(409.toUShort(), again.status)

            val requote = assertFailsWith<CarePassException.Platform> { client.quote(billId, channel = "card:$GOOD_CARD") }
            assertEquals(PlatformErrorCode.BILL_NOT_PAYABLE, requote.code)

            assertEquals(balanceAfter, sandbox.accountBalance(P1001))
            assertEquals(listOf(paid.paymentId), client.payments().map { it.paymentId })
            assertEquals(0, client.paymentsUnresolved(), "a refusal is an answer")
        }
    }

    @Test
    fun `credit is signed, pays the cash part within its limit, and is repaid once`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val (billId, _) = threeSourceBill()
            assertFalse(client.creditLine().signed)
            val refused = assertFailsWith<CarePassException.Platform> { client.quote(billId, channel = "credit") }
            assertEquals(PlatformErrorCode.CREDIT_LIMIT_EXCEEDED, refused.code)
            assertFailsWith<CarePassException.InvalidInput> { client.signCreditAgreement(500_001) }

            val signed = client.signCreditAgreement(50_000)
            assertTrue(signed.signed)
            assertEquals(50_000L, signed.availableFen)
            val quote = client.quote(billId, channel = "credit")
            val paid = client.pay(quote)
            assertEquals(PaymentStatus.SUCCEEDED, paid.status)
            val line = client.creditLine()
            assertEquals(quote.cashFen, line.usedFen)
            val draw = line.draws.single()
            assertEquals(30L * 24 * 60 * 60 * 1000, draw.dueAtMs - draw.drawnAtMs)

            assertFailsWith<CarePassException.InvalidInput> { client.repayCredit("credit", 100) }
            val over = assertFailsWith<CarePassException.Platform> { client.repayCredit("card:$GOOD_CARD", quote.cashFen + 1) }
            assertEquals(PlatformErrorCode.CONFLICT, over.code)
            val repaid = client.repayCredit("card:$GOOD_CARD", quote.cashFen)
            assertEquals(0L, repaid.usedFen)
            assertEquals(quote.cashFen, repaid.draws.single().repaidFen)
        }
    }

    @Test
    fun `a card with insufficient funds fails the payment, charging nothing, and a good card then pays`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val (billId, _) = threeSourceBill()
            val balanceBefore = sandbox.accountBalance(P1001)

            val declined = client.pay(client.quote(billId, channel = "card:$INSUFFICIENT_FUNDS"))

            assertEquals(PaymentStatus.FAILED, declined.status)
            assertEquals("insufficient_funds", declined.failureCode)
            assertNotNull(declined.failureMessage)
            assertEquals(0u, declined.receiptCount)
            assertEquals(balanceBefore, sandbox.accountBalance(P1001), "nothing was settled")
            client.syncInbox()
            assertEquals(BillState.PENDING, client.bills().single { it.billId == billId }.state, "the bill can be paid again")

            val quote = client.quote(billId, channel = "card:$GOOD_CARD")
            val paid = client.pay(quote)

            assertEquals(PaymentStatus.SUCCEEDED, paid.status)
            assertSplit(quote, paid)
            assertTrue(paid.paymentId != declined.paymentId)
            assertEquals(balanceBefore - quote.personalAccountFen, sandbox.accountBalance(P1001))
            assertEquals(setOf(declined.paymentId, paid.paymentId), client.payments().map { it.paymentId }.toSet())
            assertEquals(paid.paymentId, client.receipts().single().paymentId)
        }
    }

    @Test
    fun `a card declined at capture leaves the cash due, and another card pays it`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val (billId, _) = threeSourceBill()
            val balanceBefore = sandbox.accountBalance(P1001)
            val quote = client.quote(billId, channel = "card:$DECLINED_AT_CAPTURE")

            val due = client.pay(quote)

            assertEquals(PaymentStatus.CASH_DUE, due.status)
            assertEquals("card_declined", due.failureCode)
            assertTrue(due.cashDueFen > 0)
            assertEquals(quote.cashFen, due.cashDueFen, "the whole cash part is owed")
            assertSplit(quote, due)
            assertEquals(balanceBefore - quote.personalAccountFen, sandbox.accountBalance(P1001), "the insurance paid")
            client.syncInbox()
            assertEquals(BillState.CASH_DUE, client.bills().single { it.billId == billId }.state)
            val notACard = assertFailsWith<CarePassException.InvalidInput> { client.payCashDue(due.paymentId, "credit") }
            assertEquals(InputField.PAYMENT_CHANNEL, notACard.field)

            val paid = client.payCashDue(due.paymentId, "card:$GOOD_CARD")

            assertEquals(PaymentStatus.SUCCEEDED, paid.status)
            assertEquals(due.paymentId, paid.paymentId)
            assertEquals(0L, paid.cashDueFen)
            assertSplit(quote, paid)
            assertEquals(balanceBefore - quote.personalAccountFen, sandbox.accountBalance(P1001), "the insurance paid once")
            val receipt = client.receipts().single()
            assertEquals(paid.paymentId, receipt.paymentId)
            assertEquals(quote.cashFen, receipt.cashFen)
            assertTrue(receipt.channel.endsWith("4242"), "the receipt names the card that paid: ${receipt.channel}")
            val noneDue = assertFailsWith<CarePassException.Platform> { client.payCashDue(due.paymentId, "card:$GOOD_CARD") }
            assertEquals(PlatformErrorCode.BILL_NOT_PAYABLE, noneDue.code)
        }
    }

    @Test
    fun `a card that needs the bank's second confirmation pays after the right code`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val (billId, _) = threeSourceBill()
            val quote = client.quote(billId, channel = "card:$NEEDS_CONFIRMATION")

            val waiting = client.pay(quote)

            assertEquals(PaymentStatus.REQUIRES_ACTION, waiting.status)
            assertEquals("confirm_code", waiting.actionKind)
            assertNotNull(waiting.actionMessage)
            assertTrue(assertNotNull(waiting.actionExpiresAtMs) > sandbox.now())

            val wrong = client.confirmPayment(waiting.paymentId, "654321")
            assertEquals(PaymentStatus.REQUIRES_ACTION, wrong.status, "a wrong code leaves it waiting")
            val malformed = assertFailsWith<CarePassException.InvalidInput> { client.confirmPayment(waiting.paymentId, "12ab") }
            assertEquals(InputField.VERIFICATION_CODE, malformed.field)

            val paid = client.confirmPayment(waiting.paymentId, CODE)

            assertEquals(PaymentStatus.SUCCEEDED, paid.status)
            assertEquals(waiting.paymentId, paid.paymentId)
            assertNull(paid.actionKind)
            assertSplit(quote, paid)
            assertEquals(paid, client.payments().single(), "the confirmation's answer is kept")
            assertEquals(1u, paid.receiptCount)
        }
    }

    @Test
    fun `paymentUpdates follows a card whose answer comes late until it succeeds, without polling`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val (billId, _) = threeSourceBill()
            val quote = client.quote(billId, channel = "card:$LATE_THEN_SUCCEEDS")

            // The platform waits 1 s for the channel, then answers the payment as processing;
            // had the phone's request timed out first, the core would re-send it.
            val started = try {
                client.pay(quote)
            } catch (e: CarePassException.PaymentOutcomeUnknown) {
                assertEquals(billId, e.billId)
                client.resumePayments().single { it.billId == billId }
            }
            assertEquals(PaymentStatus.PROCESSING, started.status, "the hold's answer is late: $started")

            val seen = withTimeout(20.seconds) {
                val updates = mutableListOf<Payment>()
                client.paymentUpdates(started.paymentId)
                    .takeWhile { updates += it; it.status != PaymentStatus.SUCCEEDED }
                    .toList()
                updates
            }

            assertEquals(PaymentStatus.SUCCEEDED, seen.last().status)
            assertTrue(seen.dropLast(1).all { it.status == PaymentStatus.PROCESSING }, "$seen")
            assertTrue(seen.all { it.paymentId == started.paymentId })
            assertSplit(quote, seen.last())
            assertEquals(0, client.paymentsUnresolved())
            assertEquals(PaymentStatus.SUCCEEDED, client.payments().single().status, "the stream kept what it saw")
            assertEquals(started.paymentId, client.receipts().single().paymentId)
        }
    }

    @Test
    fun `a refund by the clinic reaches the payment, whole and in part, with write-off receipts`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val (billId, totalFen) = threeSourceBill()
            val balanceBefore = sandbox.accountBalance(P1001)
            val paid = client.pay(client.quote(billId, channel = "card:$GOOD_CARD"))
            assertEquals(PaymentStatus.SUCCEEDED, paid.status)

            // The class C drug (line 1) comes back.
            val part = sandbox.refund(billId, "R-${UUID.randomUUID().toString().take(8)}", lines = mapOf(1 to 1))
            @Suppress("UNCHECKED_CAST")
            val partFen = (part["split"] as Map<String, Any?>)["total"] as Long
            assertEquals(3000L, partFen)

            val partly = client.payment(paid.paymentId)

            assertEquals(PaymentStatus.PARTLY_REFUNDED, partly.status)
            assertEquals(partFen, partly.refundedFen)
            assertEquals(totalFen, partly.totalFen)
            assertEquals(3u, partly.receiptCount, "the original, its write-off, the re-issue")

            val rest = sandbox.refund(billId, "R-${UUID.randomUUID().toString().take(8)}")
            @Suppress("UNCHECKED_CAST")
            val restFen = (rest["split"] as Map<String, Any?>)["total"] as Long

            val refunded = client.payment(paid.paymentId)

            assertEquals(PaymentStatus.REFUNDED, refunded.status)
            assertEquals(partFen + restFen, refunded.refundedFen)
            assertEquals(totalFen, refunded.refundedFen, "everything came back")
            assertEquals(balanceBefore, sandbox.accountBalance(P1001), "the personal account is whole again")
            assertEquals(refunded, client.payments().single(), "payment() keeps what it fetched")
            val receipts = client.receipts()
            assertEquals(4, receipts.size, "every receipt verifies")
            assertEquals(2, receipts.count { it.writeOff })
            assertTrue(receipts.all { it.paymentId == paid.paymentId })
        }
    }

    @Test
    fun `an unknown channel and an unknown bill are refused with their input named`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val (billId, _) = threeSourceBill()

            val paypal = assertFailsWith<CarePassException.InvalidInput> { client.quote(billId, channel = "paypal") }
            assertEquals(InputField.PAYMENT_CHANNEL, paypal.field)
            val luhn = assertFailsWith<CarePassException.InvalidInput> { client.quote(billId, channel = "card:4242424242424241") }
            assertEquals(InputField.PAYMENT_CHANNEL, luhn.field)
            val noChannel = assertFailsWith<CarePassException.Platform> { client.quote(billId) }
            assertEquals(PlatformErrorCode.INVALID_REQUEST, noChannel.code, "cash is due: a channel is needed")

            // The core looks for the bill on the phone (syncing once) before asking the platform.
            val unknown = assertFailsWith<CarePassException.InvalidInput> { client.quote("bill_0000000000000000", channel = "card:$GOOD_CARD") }
            assertEquals(InputField.BILL_ID, unknown.field)
            val malformed = assertFailsWith<CarePassException.InvalidInput> { client.quote("bill/1", channel = "card:$GOOD_CARD") }
            assertEquals(InputField.BILL_ID, malformed.field)
            val noQuote = assertFailsWith<CarePassException.InvalidInput> { client.pay("q_0000000000000000") }
            assertEquals(InputField.QUOTE_ID, noQuote.field)
            val noPayment = assertFailsWith<CarePassException.Platform> { client.payment("pay_0000000000000000") }
            assertEquals(PlatformErrorCode.NOT_FOUND, noPayment.code)
            assertEquals(emptyList(), client.payments())
            assertEquals(0, client.paymentsUnresolved())
        }
    }

    companion object {
        private const val P1001 = "P1001"

        /** Zhang Wei's personal account for each test: less than his share of the bill. */
        private const val ACCOUNT_FEN = 1000L

        // The sandbox channel's test cards (docs/sandbox.md § Test cards).
        private const val GOOD_CARD = "4242424242424242"
        private const val INSUFFICIENT_FUNDS = "4000000000009995"
        private const val DECLINED_AT_CAPTURE = "4000000000000341"
        private const val LATE_THEN_SUCCEEDS = "4000000000000119"
        private const val NEEDS_CONFIRMATION = "4000000000003220"

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
