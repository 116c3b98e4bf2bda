package app.carepass

import app.carepass.Sandbox.BillLine
import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePassException
import app.carepass.ffi.InputField
import app.carepass.ffi.PushRefusal
import app.carepass.ffi.PushResult
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.first
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
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

/**
 * Pending bills through the Kotlin facade: the real core against the real sandbox platform,
 * where the clinic issues and cancels bills (`/admin/v1/bills`) and the push relay outbox
 * (`/admin/v1/push-outbox`) stands in for FCM, handing over the data map a push service would
 * deliver.
 *
 * Every test signs in as Zhang Wei on a fresh data directory and first catches up with
 * [CarePassClient.syncInbox] on the bills earlier tests issued to him.
 */
class BillInboxTest {

    /** Each test enrols afresh: it starts on a new platform day, under fresh daily limits. */
    @BeforeEach
    fun freshDay() {
        sandbox.startNextDay()
    }

    @TempDir
    lateinit var dataDir: Path

    @TempDir
    lateinit var otherDataDir: Path

    /** One per test: a reopened directory needs the same data key. */
    private val secrets = InMemorySecretStore()

    private fun open(dir: Path = dataDir): CarePassClient = CarePassClient.openBlocking(
        carePassConfig(sandbox.url, dir.toFile()) { deviceName = "host JVM bill test" },
        if (dir == dataDir) secrets else InMemorySecretStore(),
    )

    /** Enrolled as Zhang Wei (P1001), caught up with the bills already issued to him. */
    private suspend fun CarePassClient.enrolled(): Profile =
        enrol(ZHANG_WEI, CODE).also { syncInbox() }

    /** Registers a fresh FCM token for the signed-in person; returns it. */
    private suspend fun CarePassClient.withPushToken(): String =
        "fcm-token-${UUID.randomUUID()}".also { registerPushToken("fcm", it) }

    /**
     * Collects [CarePassClient.inbox] and checks its first update: the bills in the store
     * now, with no changes.
     */
    private suspend fun CoroutineScope.inboxOf(client: CarePassClient): Collected<InboxUpdate> {
        val collected = Collected(this, client.inbox())
        val first = collected.next()
        assertEquals("P1001", first.subject)
        assertEquals(emptyList(), first.changes, "the first update is the list as it is")
        assertEquals(client.bills(), first.bills)
        return collected
    }

    /** The changes of the next updates, until there are [count] of them. */
    private suspend fun Collected<InboxUpdate>.nextChanges(count: Int, timeout: Duration = 5.seconds): List<InboxChange> {
        val changes = mutableListOf<InboxChange>()
        while (changes.size < count) changes += next(timeout).changes
        assertEquals(count, changes.size, "more changes than expected: $changes")
        return changes
    }

    /** Issues a bill to Zhang Wei and returns the data map of its doorbell to [token]. */
    private fun issueAndRing(token: String, readableAfterMs: Long? = null): Pair<Map<String, Any?>, Map<String, String>> {
        val (_, outboxCursor) = sandbox.pushOutbox()
        val issued = sandbox.issueBill(ZHANG_WEI, readableAfterMs = readableAfterMs)
        return issued to doorbell(token, outboxCursor)
    }

    /** The data map of the one doorbell the relay handed to [token] after [outboxCursor]. */
    @Suppress("UNCHECKED_CAST")
    private fun doorbell(token: String, outboxCursor: Long): Map<String, String> {
        val (pushes, _) = sandbox.pushOutbox(outboxCursor)
        val push = pushes.map { it["push"] as Map<String, Any?> }.single { it["token"] == token }
        assertEquals("fcm", push["service"])
        return push["data"] as Map<String, String>
    }

    private val Map<String, Any?>.billId: String
        get() = this["bill_id"] as String

    @Test
    fun `a bill the clinic issues reaches the inbox flow through the live stream`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val collected = inboxOf(client)
            try {
                val issued = sandbox.issueBill(
                    ZHANG_WEI,
                    items = listOf(
                        BillLine(quantity = 2, unitPriceFen = 2500),
                        BillLine(itemCode = "250101001", name = "血常规", category = "B", unitPriceFen = 1800),
                    ),
                )

                val update = collected.next()

                assertEquals("P1001", update.subject)
                val change = update.changes.single()
                assertEquals(ChangeKind.ADDED, change.kind)
                val bill = change.bill
                assertEquals(issued.billId, bill.billId)
                assertEquals(issued["total_fen"], bill.totalFen)
                assertEquals(6_800L, bill.totalFen)
                assertEquals("P1001", bill.personId)
                assertEquals(BillState.PENDING, bill.state)
                assertEquals(listOf(ItemCategory.A, ItemCategory.B), bill.items.map { it.category })
                assertEquals(2u, bill.items[0].quantity)
                assertEquals(5_000L, bill.items[0].amountFen)
                assertEquals("血常规", bill.items[1].name)
                // The whole list, newest first, committed to the store before it was handed over.
                assertEquals(bill, update.bills.first(), "newest first")
                assertEquals(client.bills(), update.bills)
                assertEquals(emptyList(), client.syncInbox())
            } finally {
                collected.job.cancel()
            }
        }
    }

    @Test
    fun `a bill reaches the app through the push relay, and the same doorbell again is AlreadySeen`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val service = assertFailsWith<CarePassException.InvalidInput> { client.registerPushToken("gcm", "token") }
            assertEquals(InputField.PUSH_SERVICE, service.field)
            val token = assertFailsWith<CarePassException.InvalidInput> { client.registerPushToken("fcm", "") }
            assertEquals(InputField.PUSH_TOKEN, token.field)
            val fcmToken = client.withPushToken()

            val (issued, data) = issueAndRing(fcmToken)

            // The doorbell carries who and which change, signed: nothing about the bill itself.
            assertEquals(setOf("v", "k", "r", "s", "t", "g"), data.keys)
            assertEquals("P1001", data["r"])
            assertTrue(data.values.none { issued.billId in it })
            assertTrue(isCarePassPush(data))
            assertFalse(isCarePassPush(mapOf("title" to "hello")))

            val result = client.handlePush(data)

            assertIs<PushResult.Pulled>(result)
            val change = result.changes.single()
            assertEquals(ChangeKind.ADDED, change.kind)
            assertEquals(issued.billId, change.bill.billId)
            assertEquals(issued["total_fen"], change.bill.totalFen)
            assertFalse(client.pullOwed())
            assertTrue(client.bills().any { it.billId == issued.billId })

            assertEquals(PushResult.AlreadySeen, client.handlePush(data), "FCM may deliver twice")
            assertEquals(1, client.bills().count { it.billId == issued.billId })
        }
    }

    @Test
    fun `after close and reopen bills lists each bill once and syncInbox brings nothing new`() = runBlocking<Unit> {
        val client = open()
        val before: List<Bill>
        val issuedIds: List<String>
        try {
            client.enrolled()
            val token = client.withPushToken()
            val collected = inboxOf(client)
            // Each bill reaches the phone by every route: the stream, its doorbell, a sync.
            val rung = List(2) { issueAndRing(token) }
            issuedIds = rung.map { it.first.billId }
            // Changes come in the list's order (newest first); two bills may land in one update.
            assertEquals(issuedIds.toSet(), collected.nextChanges(2).map { it.bill.billId }.toSet())
            for ((_, data) in rung) {
                assertEquals(PushResult.AlreadySeen, client.handlePush(data))
            }
            assertEquals(emptyList(), client.syncInbox())
            before = client.bills()

            client.close()

            // close() ends the flow with Closed; nothing came twice before it.
            collected.assertEndsWith<CarePassException.Closed>()
        } finally {
            client.close()
        }

        // The store is released at close(): the directory opens again at once.
        open().use {
            val bills = it.bills()
            assertEquals(before, bills)
            assertEquals(bills.map { b -> b.billId }.distinct(), bills.map { b -> b.billId }, "no bill listed twice")
            assertTrue(bills.map { b -> b.billId }.containsAll(issuedIds))
            assertEquals(emptyList(), it.syncInbox())
            assertFalse(it.pullOwed())
        }
    }

    @Test
    fun `a forged, misdirected or empty doorbell is refused with InvalidPush and adds nothing`() = runBlocking<Unit> {
        // A genuine doorbell, rung for Li Na (P1004): handed to Zhang Wei's phone it is misdirected.
        val misdirected = open(otherDataDir).use { liNa ->
            liNa.enrol(LI_NA, CODE)
            val token = liNa.withPushToken()
            val (_, outboxCursor) = sandbox.pushOutbox()
            sandbox.issueBill(LI_NA)
            doorbell(token, outboxCursor)
        }
        open().use { client ->
            client.enrolled()
            val token = client.withPushToken()
            val (issued, genuine) = issueAndRing(token)
            val before = client.bills()

            val otherSequence = genuine + ("s" to (genuine.getValue("s").toLong() + 1).toString())
            val otherSignature = genuine + ("g" to genuine.getValue("g").let { g ->
                g.substring(0, 10) + (if (g[10] == 'A') 'B' else 'A') + g.substring(11)
            })
            val refused = mapOf(
                "another sequence" to (otherSequence to PushRefusal.FORGED),
                "another signature" to (otherSignature to PushRefusal.FORGED),
                "misdirected" to (misdirected to PushRefusal.WRONG_RECIPIENT),
                "not a doorbell" to (mapOf("title" to "hello") to PushRefusal.MALFORMED),
                "empty" to (emptyMap<String, String>() to PushRefusal.MALFORMED),
            )
            for ((what, case) in refused) {
                val (data, kind) = case
                assertEquals(kind, assertFailsWith<CarePassException.InvalidPush>(what) { client.handlePush(data) }.kind, what)
            }

            assertEquals(before, client.bills())
            assertTrue(client.bills().none { it.billId == issued.billId })
            assertFalse(client.pullOwed(), "a refused doorbell is not remembered")
            // The genuine one still works.
            val result = client.handlePush(genuine)
            assertIs<PushResult.Pulled>(result)
            assertEquals(listOf(issued.billId), result.changes.map { it.bill.billId })
        }
    }

    @Test
    fun `a cancelled bill arrives on the flow as UPDATED and CANCELLED`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val collected = inboxOf(client)
            try {
                val issued = sandbox.issueBill(ZHANG_WEI)
                val added = collected.nextChanges(1).single()
                assertEquals(ChangeKind.ADDED, added.kind)
                assertEquals(issued.billId, added.bill.billId)

                val cancelled = sandbox.cancelBill(issued.billId)
                val update = collected.next()
                val updated = update.changes.single()

                assertEquals(ChangeKind.UPDATED, updated.kind)
                assertEquals(issued.billId, updated.bill.billId)
                assertEquals(BillState.CANCELLED, updated.bill.state)
                assertEquals(cancelled["updated_at_ms"], updated.bill.updatedAtMs)
                assertEquals(added.bill.copy(state = BillState.CANCELLED, updatedAtMs = updated.bill.updatedAtMs), updated.bill)
                assertEquals(BillState.CANCELLED, update.bills.single { it.billId == issued.billId }.state)
                assertEquals(BillState.CANCELLED, client.bills().single { it.billId == issued.billId }.state)
            } finally {
                collected.job.cancel()
            }
        }
    }

    @Test
    fun `the live stream reconnects by itself after a cut and a later bill arrives once`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val collected = inboxOf(client)
            try {
                val first = sandbox.issueBill(ZHANG_WEI)
                assertEquals(first.billId, collected.nextChanges(1).single().bill.billId, "the stream is up")

                sandbox.cutStreams()
                val afterCut = sandbox.issueBill(ZHANG_WEI)
                val change = collected.nextChanges(1, 15.seconds).single()
                // Once the cut is through, only a new connection can carry this one.
                val later = sandbox.issueBill(ZHANG_WEI)
                val next = collected.nextChanges(1, 15.seconds).single()
                // A last bill as a marker: the next change is it, so nothing came twice before.
                val marker = sandbox.issueBill(ZHANG_WEI)
                val last = collected.nextChanges(1, 15.seconds).single()

                assertEquals(ChangeKind.ADDED, change.kind)
                assertEquals(afterCut.billId, change.bill.billId)
                assertEquals(ChangeKind.ADDED, next.kind)
                assertEquals(later.billId, next.bill.billId, "nothing came twice in between")
                assertEquals(marker.billId, last.bill.billId, "nothing came twice afterwards")
                val ids = client.bills().map { it.billId }
                assertEquals(ids.distinct(), ids)
                assertEquals(emptyList(), client.syncInbox())
            } finally {
                collected.job.cancel()
            }
        }
    }

    @Test
    fun `a doorbell for a bill not readable yet is owed until the next sync`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val token = client.withPushToken()
            val (issued, data) = issueAndRing(token, readableAfterMs = 60_000)

            assertEquals(PushResult.NotYetReadable, client.handlePush(data))

            assertTrue(client.pullOwed())
            assertTrue(client.bills().none { it.billId == issued.billId })
            sandbox.advanceClock(61_000)
            assertEquals(listOf(issued.billId), client.syncInbox().map { it.bill.billId })
            assertFalse(client.pullOwed())
            assertEquals(PushResult.AlreadySeen, client.handlePush(data))
        }
    }

    @Test
    fun `logout ends the flow with NotSignedIn at once, and the bills are gone`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val collected = inboxOf(client)
            val issued = sandbox.issueBill(ZHANG_WEI)
            assertEquals(issued.billId, collected.nextChanges(1).single().bill.billId)

            client.logout()

            // At once, not at the next event or reconnection; nothing after the error.
            collected.assertEndsWith<CarePassException.NotSignedIn>(timeout = 1.seconds)
            assertFailsWith<CarePassException.NotSignedIn> { client.bills() }
            assertFailsWith<CarePassException.NotSignedIn> { client.syncInbox() }
            assertFailsWith<CarePassException.NotSignedIn> {
                withTimeout(5.seconds) { client.inbox().first() }
            }
            // Signed in again, the wiped store starts empty and the platform's log refills it.
            client.login(ZHANG_WEI, CODE)
            assertEquals(emptyList(), client.bills())
            assertTrue(client.syncInbox().any { it.bill.billId == issued.billId })
        }
    }

    @Test
    fun `the inbox of someone this phone does not act for is NotLinked`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()

            assertFailsWith<CarePassException.NotLinked> { client.bills(subject = "P1004") }
            assertFailsWith<CarePassException.NotLinked> {
                withTimeout(5.seconds) { client.inbox(subject = "P1004").first() }
            }
            assertEquals("P1001", withTimeout(5.seconds) { client.inbox(subject = "P1001").first() }.subject)
        }
    }

    companion object {
        /** Li Na (P1004) of the demo seed. */
        private const val LI_NA = "13800000004"

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
