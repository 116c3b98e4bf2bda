package app.carepass

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.nio.file.Path
import java.util.UUID
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.time.Duration as JavaDuration

/** A file named by a system property that the build (pom.xml, build.gradle.kts) sets. */
internal fun requiredFile(property: String, fileName: String? = null): File {
    val value = System.getProperty(property)
        ?: error("system property $property is not set; run the tests through Maven or Gradle")
    val file = if (fileName == null) File(value) else File(value, fileName)
    check(file.isFile) { "$file (from $property) does not exist: build the Rust artifacts first" }
    return file
}

/**
 * Fails, never skips, when the Rust library is missing: JNA would otherwise report a bare
 * UnsatisfiedLinkError on the first call.
 */
internal fun requireNativeLibrary(): File =
    requiredFile("jna.library.path", System.mapLibraryName("carepass_ffi"))

/**
 * The real sandbox platform (`carepass-sandbox serve`) on a free loopback port, seeded with the
 * demo city, in a temporary directory. One per test class.
 */
internal class Sandbox private constructor(
    private val process: Process,
    private val dir: Path,
    /** `http://127.0.0.1:PORT`. */
    val url: String,
    /** Bearer token of the admin routes (scanner terminal, test fixtures). */
    private val adminToken: String,
) : AutoCloseable {

    private val http: HttpClient = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(JavaDuration.ofSeconds(5))
        .build()

    /**
     * Scans [payload] for [purpose] (snake_case, e.g. `outpatient_settlement`) as a scanner
     * terminal: `POST /v1/scans`. The platform's `ScanOutcome`.
     */
    fun scan(payload: String, purpose: String): Map<String, Any?> =
        Json.parseObject(admin("/v1/scans", """{"payload":${Json.quote(payload)},"purpose":${Json.quote(purpose)}}"""))

    /** The platform's time now (ms): `GET /admin/v1/clock`. */
    fun now(): Long = Json.parseObject(adminGet("/admin/v1/clock"))["server_time_ms"] as Long

    /** Moves platform time forward by [advanceMs]; returns the platform's new time (ms). */
    fun advanceClock(advanceMs: Long): Long =
        Json.parseObject(admin("/admin/v1/clock", """{"advance_ms":$advanceMs}"""))["server_time_ms"] as Long

    /**
     * Moves platform time a day on, so a test that shares this sandbox with others starts with
     * fresh daily limits (enrolments are capped per phone per day, `docs/api.md` § Limits).
     */
    fun startNextDay(): Long = advanceClock(24L * 60 * 60 * 1000 + 1)

    /** A line of a bill the clinic issues; the platform computes its amount. */
    data class BillLine(
        val itemCode: String = "110200001",
        val name: String = "普通门诊诊查费",
        /** `A`, `B` or `C` (甲类, 乙类, 丙类), as on the wire. */
        val category: String = "A",
        val quantity: Int = 1,
        val unitPriceFen: Long = 2500,
    )

    /**
     * Issues a bill to the patient who owns [phone] as the clinic: `POST /admin/v1/bills`. The
     * platform's `Bill` (`bill_id`, `total_fen`, `state`…). [readableAfterMs] holds the bill
     * back from reads that long after its doorbell rings (replication lag). [visitType]
     * (`outpatient`, `chronic_outpatient`, `pharmacy`) picks the settlement rule: ordinary
     * outpatient care has a deductible the demo accumulators have not met (the fund pays
     * nothing), chronic care has none.
     */
    fun issueBill(
        phone: String,
        items: List<BillLine> = listOf(BillLine()),
        hospital: String = "市第一人民医院",
        department: String = "内科",
        doctor: String = "李医生",
        readableAfterMs: Long? = null,
        visitType: String = "outpatient",
    ): Map<String, Any?> {
        val lines = items.joinToString(",") {
            """{"item_code":${Json.quote(it.itemCode)},"name":${Json.quote(it.name)},""" +
                """"category":${Json.quote(it.category)},"quantity":${it.quantity},"unit_price_fen":${it.unitPriceFen}}"""
        }
        val body = """{"phone":${Json.quote(phone)},"hospital":${Json.quote(hospital)},""" +
            """"department":${Json.quote(department)},"doctor":${Json.quote(doctor)},"items":[$lines],""" +
            """"readable_after_ms":${readableAfterMs ?: "null"},"visit_type":${Json.quote(visitType)}}"""
        return Json.parseObject(admin("/admin/v1/bills", body))
    }

    /** Cancels a bill as the clinic: `POST /admin/v1/bills/{id}/cancel`; the bill as it now is. */
    fun cancelBill(billId: String): Map<String, Any?> =
        Json.parseObject(admin("/admin/v1/bills/$billId/cancel", null))

    /**
     * The doorbells the platform handed the push services after outbox entry [after]: each
     * `{"n", "person_id", "push": {"service", "token", "data"}}`, where `data` is the map the
     * push service delivers to the app. Also returns the outbox cursor to read on from.
     */
    @Suppress("UNCHECKED_CAST")
    fun pushOutbox(after: Long = 0): Pair<List<Map<String, Any?>>, Long> {
        val page = Json.parseObject(adminGet("/admin/v1/push-outbox?after=$after"))
        return (page["pushes"] as List<Map<String, Any?>>) to (page["cursor"] as Long)
    }

    /**
     * Moves an order to its next state as the pharmacy: `POST /admin/v1/orders/{id}/advance`
     * (accepted → ready or out_for_delivery → completed). The platform's `Order` (`state`…).
     */
    fun advanceOrder(orderId: String): Map<String, Any?> =
        Json.parseObject(admin("/admin/v1/orders/$orderId/advance", null))

    /**
     * Revokes a device as the platform's admin (`POST /admin/v1/devices/{id}/revoke`): its
     * sessions end at the platform, and the phone learns it at its next call.
     */
    fun revokeDevice(deviceId: String) {
        admin("/admin/v1/devices/$deviceId/revoke", null)
    }

    /** A person's personal account balance (fen): `GET /admin/v1/accounts/{id}`. */
    fun accountBalance(personId: String): Long =
        Json.parseObject(adminGet("/admin/v1/accounts/$personId"))["account_balance_fen"] as Long

    /** Sets a person's personal account balance (fen): `POST /admin/v1/accounts/{id}`. */
    fun setAccountBalance(personId: String, balanceFen: Long) {
        admin("/admin/v1/accounts/$personId", """{"balance_fen":$balanceFen}""")
    }

    /** Any payment as its patient sees it (`GET /admin/v1/payments/{id}`): `status`, `refunded_fen`… */
    fun payment(paymentId: String): Map<String, Any?> = Json.parseObject(adminGet("/admin/v1/payments/$paymentId"))

    /** Runs the payment driver now (`POST /admin/v1/payments/drive`); how many payments it moved. */
    fun drivePayments(): Long = Json.parseObject(admin("/admin/v1/payments/drive", null))["moved"] as Long

    /**
     * Refunds a paid bill as the clinic: `POST /admin/v1/bills/{id}/refunds`. [lines] maps a
     * 0-based line index to the units returned; `null` refunds everything still paid. The
     * platform's `Refund` (`status`, `split` by source with `total`, `receipts`…).
     */
    fun refund(billId: String, refundId: String, lines: Map<Int, Int>? = null, reason: String = "退药"): Map<String, Any?> {
        val returned = lines?.entries?.joinToString(",", "[", "]") { (line, quantity) -> """{"line":$line,"quantity":$quantity}""" }
        val body = """{"refund_id":${Json.quote(refundId)},"reason":${Json.quote(reason)}""" +
            (if (returned == null) "}" else ""","lines":$returned}""")
        return Json.parseObject(admin("/admin/v1/bills/$billId/refunds", body))
    }

    /** Ends every open live stream now (`POST /admin/v1/streams/cut`); clients reconnect. */
    fun cutStreams() {
        admin("/admin/v1/streams/cut", null)
    }

    /**
     * A POST with the admin token; the body of a 200 answer. Routes that take no body get
     * none ([json] `null`): the server closes a connection whose request body it did not
     * read, and the client's next request on it would fail.
     */
    private fun admin(path: String, json: String?): String = send(
        path,
        if (json == null) {
            HttpRequest.newBuilder().POST(HttpRequest.BodyPublishers.noBody())
        } else {
            HttpRequest.newBuilder().POST(HttpRequest.BodyPublishers.ofString(json)).header("Content-Type", "application/json")
        },
    )

    /** A GET with the admin token; the body of a 200 answer. */
    private fun adminGet(path: String): String = send(path, HttpRequest.newBuilder().GET())

    private fun send(path: String, builder: HttpRequest.Builder): String {
        val request = builder.uri(URI.create(url + path))
            .timeout(JavaDuration.ofSeconds(10))
            .header("Authorization", "Bearer $adminToken")
            .build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() == 200) {
            "${request.method()} $path answered ${response.statusCode()}: ${response.body()}"
        }
        return response.body()
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(5, TimeUnit.SECONDS)
        }
        dir.toFile().deleteRecursively()
    }

    companion object {
        const val CODE = "123456"
        const val ZHANG_WEI = "13800000001"

        fun start(): Sandbox {
            requireNativeLibrary()
            val bin = requiredFile("carepass.sandbox.bin")
            val dir = Files.createTempDirectory("carepass-sandbox-")
            val log = dir.resolve("sandbox.log").toFile()
            val adminToken = UUID.randomUUID().toString()
            val builder = ProcessBuilder(
                bin.path, "serve",
                "--listen", "127.0.0.1:0",
                "--data", dir.resolve("platform").toString(),
                "--seed", "demo",
                "--admin-token", adminToken,
            ).redirectError(log)
            builder.environment().remove("CAREPASS_ADMIN_TOKEN")
            val process = builder.start()
            try {
                val stdout = process.inputStream.bufferedReader()
                val line = try {
                    CompletableFuture.supplyAsync { stdout.readLine() }.get(30, TimeUnit.SECONDS)
                } catch (e: TimeoutException) {
                    null
                }
                val url = line?.removePrefix("listening on ")?.takeIf { it != line && it.startsWith("http://") }
                    ?: error("the sandbox did not start (first line: $line); its log:\n${log.readText()}")
                // Keep draining stdout so the sandbox never blocks on a full pipe.
                Thread { stdout.useLines { lines -> lines.forEach { _ -> } } }
                    .apply { isDaemon = true; name = "sandbox-stdout" }
                    .start()
                return Sandbox(process, dir, url.trim(), adminToken)
            } catch (e: Throwable) {
                process.destroyForcibly()
                dir.toFile().deleteRecursively()
                throw e
            }
        }
    }
}
