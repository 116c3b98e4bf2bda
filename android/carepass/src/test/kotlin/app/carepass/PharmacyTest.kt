package app.carepass

import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePassException
import app.carepass.ffi.InputField
import app.carepass.ffi.PlatformErrorCode
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * Prescriptions, pharmacy ranking and orders through the Kotlin facade: the real core against
 * the real sandbox platform (the demo city's 2,000 pharmacies), where the pharmacy moves
 * orders on through `/admin/v1/orders/{id}/advance`.
 *
 * Every test signs in as Zhang Wei (P1001, prescription [RX]) on a fresh data directory and
 * ranks near his home, on a sandbox of its own: a prescription is filled once, so orders of
 * one test would refuse those of the next.
 */
class PharmacyTest {

    @TempDir
    lateinit var dataDir: Path

    @TempDir
    lateinit var otherDataDir: Path

    private fun open(dir: Path = dataDir): CarePassClient = CarePassClient.openBlocking(
        carePassConfig(sandbox.url, dir.toFile()) { deviceName = "host JVM pharmacy test" },
        InMemorySecretStore(),
    )

    /** Signed in as Zhang Wei. */
    private suspend fun CarePassClient.signedIn(): Profile = signIn(ZHANG_WEI, CODE)

    /** Where Zhang Wei is to receive a delivery: his home. */
    private fun home(contactPhone: String = ZHANG_WEI) =
        DeliveryDetails(address = "武汉市江岸区中山大道 1 号 2 单元 301", lat = HOME_LAT, lon = HOME_LON, contactPhone = contactPhone)

    private val Map<String, Any?>.state: String
        get() = this["state"] as String

    /** [PharmacyQuote.netCostFen] recomputed from the quote's parts. */
    private val PharmacyQuote.expectedNet: Long
        get() = listCostFen - fundFen + deliveryFeeFen

    /** A ranking near home with the core's defaults for everything else. */
    private fun nearHome(
        rxId: String? = RX,
        delivery: Boolean = false,
        maxDistanceM: UInt? = null,
        limit: UInt? = null,
    ) = RankRequest(rxId = rxId, lat = HOME_LAT, lon = HOME_LON, delivery = delivery, maxDistanceM = maxDistanceM, limit = limit)

    private lateinit var sandbox: Sandbox

    @BeforeEach
    fun startSandbox() {
        sandbox = Sandbox.start()
    }

    @AfterEach
    fun stopSandbox() {
        if (::sandbox.isInitialized) sandbox.close()
    }

    @Test
    fun `the demo patient has his chronic prescription`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()

            val prescriptions = client.prescriptions()

            val rx = prescriptions.single { it.rxId == RX }
            assertEquals(8, rx.items.size)
            assertTrue(rx.items.all { it.quantity > 0u && it.drugCode.isNotEmpty() })
            assertTrue(rx.validUntilMs > rx.issuedAtMs)
            assertEquals(prescriptions.sortedByDescending { it.issuedAtMs }, prescriptions, "newest first")
        }
    }

    @Test
    fun `a ranking near home lists complete pharmacies first, each by net cost, within 5 km`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()

            val ranking = client.rankPharmacies(nearHome())

            assertEquals(RX, ranking.rxId)
            val quotes = ranking.quotes
            assertTrue(quotes.isNotEmpty(), "no pharmacy near home")
            assertTrue(quotes.size <= 20, "the default limit")
            assertTrue(quotes.first().complete, "the best quote fills everything")
            assertEquals(ranking.candidates, ranking.complete + ranking.partial + ranking.noStock)
            val completeFirst = quotes.dropWhile { it.complete }
            assertTrue(completeFirst.none { it.complete }, "a complete quote after a partial one")
            for (group in quotes.partition { it.complete }.toList()) {
                val nets = group.map { it.netCostFen }
                assertEquals(nets.sorted(), nets, "sorted by net cost")
            }
            for (quote in quotes) {
                assertEquals(quote.expectedNet, quote.netCostFen, quote.pharmacyId)
                assertEquals(0L, quote.deliveryFeeFen, "pickup has no fee: ${quote.pharmacyId}")
                assertTrue(quote.distanceM <= 5_000u, "${quote.pharmacyId} at ${quote.distanceM} m")
                assertEquals(quote.complete, quote.missing.isEmpty(), quote.pharmacyId)
                assertTrue(quote.fundFen in 0..quote.listCostFen, quote.pharmacyId)
            }
            // The newest prescription is the same one here.
            assertEquals(RX, client.rankPharmacies(nearHome(rxId = null, limit = 3u)).also { assertTrue(it.quotes.size <= 3) }.rxId)
        }
    }

    @Test
    fun `a delivery ranking only lists pharmacies that deliver, fee included`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()

            val ranking = client.rankPharmacies(nearHome(delivery = true))

            assertTrue(ranking.quotes.isNotEmpty(), "nobody delivers home")
            for (quote in ranking.quotes) {
                assertNotNull(quote.deliveryMinutes, "${quote.pharmacyId} does not deliver")
                assertEquals(quote.expectedNet, quote.netCostFen, quote.pharmacyId)
                assertTrue(quote.distanceM <= 5_000u, "${quote.pharmacyId} at ${quote.distanceM} m")
            }
        }
    }

    @Test
    fun `a delivery order from the best quote is accepted at its net cost, then delivered`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()
            val best = client.rankPharmacies(nearHome(delivery = true)).quotes.first()
            assertTrue(best.complete)

            val placed = client.placeOrder(RX, best.pharmacyId, home())

            assertEquals(OrderStatus.ACCEPTED, placed.status)
            assertEquals(RX, placed.rxId)
            assertEquals(best.pharmacyId, placed.pharmacyId)
            assertEquals(best.pharmacyName, placed.pharmacyName)
            assertEquals(home(), placed.delivery)
            assertEquals(best.netCostFen, placed.quote.netCostFen)
            assertEquals(best.deliveryFeeFen, placed.quote.deliveryFeeFen)
            assertEquals(placed, client.order(placed.orderId))

            assertEquals("out_for_delivery", sandbox.advanceOrder(placed.orderId).state)
            val outForDelivery = client.order(placed.orderId)
            assertEquals(OrderStatus.OUT_FOR_DELIVERY, outForDelivery.status)
            assertTrue(outForDelivery.updatedAtMs >= placed.updatedAtMs)

            assertEquals("completed", sandbox.advanceOrder(placed.orderId).state)
            val completed = client.order(placed.orderId)
            assertEquals(OrderStatus.COMPLETED, completed.status)
            assertEquals(placed.quote, completed.quote, "the quote it was placed on is kept")
            assertEquals(placed.createdAtMs, completed.createdAtMs)
            assertEquals(listOf(completed), client.orders())

            // A prescription is filled once.
            val again = assertFailsWith<CarePassException.Platform> { client.placeOrder(RX, best.pharmacyId, home()) }
            assertEquals(PlatformErrorCode.ALREADY_ORDERED, again.code)
            assertEquals(409.toUShort(), again.status)
        }
    }

    @Test
    fun `a pickup order can be cancelled while accepted, not once the pharmacy prepared it`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()
            val best = client.rankPharmacies(nearHome()).quotes.first()

            val placed = client.placeOrder(RX, best.pharmacyId, delivery = null)
            assertEquals(OrderStatus.ACCEPTED, placed.status)
            assertNull(placed.delivery)
            assertEquals(best.netCostFen, placed.quote.netCostFen)

            val live = assertFailsWith<CarePassException.Platform> { client.placeOrder(RX, best.pharmacyId) }
            assertEquals(PlatformErrorCode.ALREADY_ORDERED, live.code, "a second order while the first is live")

            val cancelled = client.cancelOrder(placed.orderId)
            assertEquals(OrderStatus.CANCELLED, cancelled.status)
            assertEquals(placed.orderId, cancelled.orderId)
            assertEquals(OrderStatus.CANCELLED, client.order(placed.orderId).status)

            // Once cancelled, the prescription can be ordered again.
            val prepared = client.placeOrder(RX, best.pharmacyId)
            assertEquals("ready", sandbox.advanceOrder(prepared.orderId).state)
            assertEquals(OrderStatus.READY, client.order(prepared.orderId).status)
            val refused = assertFailsWith<CarePassException.Platform> { client.cancelOrder(prepared.orderId) }
            assertEquals(PlatformErrorCode.CONFLICT, refused.code)
            assertEquals(OrderStatus.READY, client.order(prepared.orderId).status)
            assertEquals(listOf(prepared.orderId, placed.orderId), client.orders().map { it.orderId }, "newest first")
        }
    }

    @Test
    fun `a bad contact phone or address is InvalidInput`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()
            val best = client.rankPharmacies(nearHome(delivery = true)).quotes.first()

            val phone = assertFailsWith<CarePassException.InvalidInput> {
                client.placeOrder(RX, best.pharmacyId, home(contactPhone = "12345"))
            }
            assertEquals(InputField.CONTACT_PHONE, phone.field)
            val address = assertFailsWith<CarePassException.InvalidInput> {
                client.placeOrder(RX, best.pharmacyId, home().copy(address = "家"))
            }
            assertEquals(InputField.DELIVERY_ADDRESS, address.field)
            assertEquals(emptyList(), client.orders(), "nothing was ordered")
        }
    }

    @Test
    fun `an order the pharmacy cannot fill and options out of range are refused`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()
            val ranking = client.rankPharmacies(nearHome(limit = 200u))
            val partial = ranking.quotes.firstOrNull { !it.complete }
            assertNotNull(partial, "no partial pharmacy near home among ${ranking.candidates}")

            val refused = assertFailsWith<CarePassException.Platform> { client.placeOrder(RX, partial.pharmacyId) }

            assertEquals(PlatformErrorCode.INCOMPLETE_QUOTE, refused.code)
            // The core checks the query before any request.
            val limit = assertFailsWith<CarePassException.InvalidInput> { client.rankPharmacies(nearHome(limit = 201u)) }
            assertEquals(InputField.LIMIT, limit.field)
            val radius = assertFailsWith<CarePassException.InvalidInput> {
                client.rankPharmacies(nearHome(maxDistanceM = 100_001u))
            }
            assertEquals(InputField.SEARCH_RADIUS, radius.field)
            val location = assertFailsWith<CarePassException.InvalidInput> {
                client.rankPharmacies(nearHome().copy(lat = 91.0))
            }
            assertEquals(InputField.LOCATION, location.field)
        }
    }

    @Test
    fun `another person's prescription is not_found`() = runBlocking<Unit> {
        open(otherDataDir).use { other ->
            other.signIn(ANOTHER_PERSON, CODE)

            val refused = assertFailsWith<CarePassException.Platform> { other.rankPharmacies(nearHome()) }

            assertEquals(PlatformErrorCode.NOT_FOUND, refused.code)
            assertEquals(emptyList(), other.prescriptions())
            assertFailsWith<CarePassException.NoPrescription> { other.rankPharmacies(nearHome(rxId = null)) }
        }
    }

    @Test
    fun `an expired prescription is EXPIRED for ranking and ordering`() = runBlocking<Unit> {
        open().use { client ->
            client.signedIn()
            val best = client.rankPharmacies(nearHome()).quotes.first()

            sandbox.advanceClock(91L * 24 * 3600 * 1000)
            client.signedIn() // the session of 91 days ago is long over

            val ranking = assertFailsWith<CarePassException.Platform> { client.rankPharmacies(nearHome()) }
            assertEquals(PlatformErrorCode.EXPIRED, ranking.code)
            val order = assertFailsWith<CarePassException.Platform> { client.placeOrder(RX, best.pharmacyId) }
            assertEquals(PlatformErrorCode.EXPIRED, order.code)
            assertEquals(emptyList(), client.orders())
        }
    }

    companion object {
        /** Zhang Wei's chronic prescription in the demo seed (8 drugs). */
        private const val RX = "rx_p1001_chronic"

        /** Zhang Wei's home, inside the demo city. */
        private const val HOME_LAT = 30.5952
        private const val HOME_LON = 114.2999

        /** Another person of the demo seed: Zhang Xiaoyu (P1003), who has no prescription. */
        private const val ANOTHER_PERSON = "13800000003"
    }
}
