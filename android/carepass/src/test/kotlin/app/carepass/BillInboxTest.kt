package app.carepass

import app.carepass.Sandbox.BillLine
import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePassException
import app.carepass.ffi.PushResult
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
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
import kotlin.time.Duration.Companion.milliseconds
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
     * The changes of [CarePassClient.inboxChanges], collected on another thread as they come;
     * [end] completes with the exception the flow failed with, or `null` when it completed.
     */
    private class Collected(scope: CoroutineScope, client: CarePassClient) {
        val changes = Channel<InboxChange>(Channel.UNLIMITED)
        val end = CompletableDeferred<Throwable?>()
        val job: Job = scope.launch(Dispatchers.Default) {
            try {
                client.inboxChanges().collect { changes.send(it) }
                end.complete(null)
            } catch (e: CancellationException) {
                throw e
            } catch (e: Throwable) {
                end.complete(e)
            }
        }

        suspend fun next(timeout: Duration = 5.seconds): InboxChange = withTimeout(timeout) { changes.receive() }
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
    fun `a bill the clinic issues reaches the flow through the live stream`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val collected = Collected(this, client)
            try {
                val issued = sandbox.issueBill(
                    ZHANG_WEI,
                    items = listOf(
                        BillLine(quantity = 2, unitPriceFen = 2500),
                        BillLine(itemCode = "250101001", name = "血常规", category = "B", unitPriceFen = 1800),
                    ),
                )

                val change = collected.next()

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
                // Committed to the store before it was handed over.
                assertEquals(bill, client.inbox.value.single { it.billId == bill.billId })
                assertEquals(bill, client.bills().first(), "newest first")
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
            assertFailsWith<CarePassException.InvalidInput> { client.registerPushToken("gcm", "token") }
            val token = client.withPushToken()

            val (issued, data) = issueAndRing(token)

            // The doorbell carries who and which change, signed: nothing about the bill itself.
            assertEquals(setOf("v", "k", "r", "s", "t", "g"), data.keys)
            assertEquals("P1001", data["r"])
            assertTrue(data.values.none { issued.billId in it })

            val result = client.handlePush(data)

            assertIs<PushResult.Pulled>(result)
            val change = result.changes.single()
            assertEquals(ChangeKind.ADDED, change.kind)
            assertEquals(issued.billId, change.bill.billId)
            assertEquals(issued["total_fen"], change.bill.totalFen)
            assertFalse(client.pullOwed())
            assertTrue(client.inbox.value.any { it.billId == issued.billId })

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
            val collected = Collected(this, client)
            // Each bill reaches the phone by every route: the stream, its doorbell, a sync.
            val rung = List(2) { issueAndRing(token) }
            issuedIds = rung.map { it.first.billId }
            assertEquals(issuedIds, List(2) { collected.next().bill.billId })
            for ((_, data) in rung) {
                assertEquals(PushResult.AlreadySeen, client.handlePush(data))
            }
            assertEquals(emptyList(), client.syncInbox())
            before = client.bills()

            client.close()

            // close() completes the flow (normally) and stops the core's stream.
            assertEquals(null, withTimeout(5.seconds) { collected.end.await() }, "the flow completed normally")
        } finally {
            client.close()
        }

        // The stream's task lets go of the store a moment after close().
        val reopened = withTimeout(5.seconds) {
            var attempt: Result<CarePassClient>
            while (true) {
                attempt = runCatching { open() }
                if (attempt.exceptionOrNull() !is CarePassException.Storage) break
                delay(20)
            }
            attempt.getOrThrow()
        }
        reopened.use {
            val bills = it.bills()
            assertEquals(before, bills)
            assertEquals(bills, it.inbox.value, "inbox starts from the store")
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
                "another sequence" to otherSequence,
                "another signature" to otherSignature,
                "misdirected" to misdirected,
                "not a doorbell" to mapOf("title" to "hello"),
                "empty" to emptyMap(),
            )
            for ((what, data) in refused) {
                assertFailsWith<CarePassException.InvalidPush>(what) { client.handlePush(data) }
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
            val collected = Collected(this, client)
            try {
                val issued = sandbox.issueBill(ZHANG_WEI)
                val added = collected.next()
                assertEquals(ChangeKind.ADDED, added.kind)
                assertEquals(issued.billId, added.bill.billId)

                val cancelled = sandbox.cancelBill(issued.billId)
                val updated = collected.next()

                assertEquals(ChangeKind.UPDATED, updated.kind)
                assertEquals(issued.billId, updated.bill.billId)
                assertEquals(BillState.CANCELLED, updated.bill.state)
                assertEquals(cancelled["updated_at_ms"], updated.bill.updatedAtMs)
                assertEquals(added.bill.copy(state = BillState.CANCELLED, updatedAtMs = updated.bill.updatedAtMs), updated.bill)
                assertEquals(BillState.CANCELLED, client.bills().single { it.billId == issued.billId }.state)
                assertEquals(BillState.CANCELLED, client.inbox.value.single { it.billId == issued.billId }.state)
            } finally {
                collected.job.cancel()
            }
        }
    }

    @Test
    fun `the live stream reconnects by itself after a cut and a later bill arrives once`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val collected = Collected(this, client)
            try {
                val first = sandbox.issueBill(ZHANG_WEI)
                assertEquals(first.billId, collected.next().bill.billId, "the stream is up")

                sandbox.cutStreams()
                val afterCut = sandbox.issueBill(ZHANG_WEI)
                val change = collected.next(15.seconds)
                // Once the cut is through, only a new connection can carry this one.
                val later = sandbox.issueBill(ZHANG_WEI)
                val next = collected.next(15.seconds)

                assertEquals(ChangeKind.ADDED, change.kind)
                assertEquals(afterCut.billId, change.bill.billId)
                assertEquals(ChangeKind.ADDED, next.kind)
                assertEquals(later.billId, next.bill.billId, "nothing came twice in between")
                delay(500.milliseconds)
                assertTrue(collected.changes.tryReceive().isFailure, "nothing came twice afterwards")
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
            val (issued, data) = issueAndRing(token, readableAfterMs = 5_000)

            assertEquals(PushResult.NotYetReadable, client.handlePush(data))

            assertTrue(client.pullOwed())
            assertTrue(client.bills().none { it.billId == issued.billId })
            sandbox.advanceClock(6_000)
            assertEquals(listOf(issued.billId), client.syncInbox().map { it.bill.billId })
            assertFalse(client.pullOwed())
            assertEquals(PushResult.AlreadySeen, client.handlePush(data))
        }
    }

    @Test
    fun `logout ends the flow with NotSignedIn and empties the inbox`() = runBlocking<Unit> {
        open().use { client ->
            client.enrolled()
            val collected = Collected(this, client)
            val issued = sandbox.issueBill(ZHANG_WEI)
            assertEquals(issued.billId, collected.next().bill.billId)
            assertTrue(client.inbox.value.isNotEmpty())

            client.logout()

            // At once, not at the next event or reconnection.
            assertIs<CarePassException.NotSignedIn>(withTimeout(1.seconds) { collected.end.await() })
            assertEquals(emptyList(), client.inbox.value)
            assertFailsWith<CarePassException.NotSignedIn> { client.bills() }
            assertFailsWith<CarePassException.NotSignedIn> { client.syncInbox() }
            assertFailsWith<CarePassException.NotSignedIn> {
                withTimeout(5.seconds) { client.inboxChanges().first() }
            }
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
