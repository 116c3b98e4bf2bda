package app.carepass

import app.carepass.Sandbox.Companion.CODE
import app.carepass.Sandbox.Companion.ZHANG_WEI
import app.carepass.ffi.CarePass
import app.carepass.ffi.CarePassException
import app.carepass.ffi.CodeListener
import app.carepass.ffi.NoHandle
import app.carepass.ffi.TaskHandle
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.nio.file.Path
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds

/**
 * The facade's one Flow adapter ([coreFlow]): with a scripted stream, and with a real core
 * stream whose [TaskHandle] the test watches.
 */
class CoreFlowTest {

    @TempDir
    lateinit var dataDir: Path

    /**
     * A [TaskHandle] that records what the adapter does with it and passes [cancel] and
     * [isFinished] on to [real] (when there is one). [close] is recorded only, so the test
     * can still ask [real] whether its task finished; the test closes [real] itself.
     */
    private class Watched(val real: TaskHandle? = null) : TaskHandle(NoHandle) {
        val cancelled = AtomicBoolean()
        val closed = AtomicBoolean()

        override fun cancel() {
            cancelled.set(true)
            real?.cancel()
        }

        override fun isFinished(): Boolean = real?.isFinished() ?: cancelled.get()

        override fun close() {
            closed.set(true)
        }
    }

    @Test
    fun `every value comes in order, the error ends the flow and nothing follows it`() = runBlocking<Unit> {
        val handle = Watched()
        val flow = coreFlow<Int> { onValue, onError ->
            // Like the core: from another thread, faster than the collector.
            Thread {
                repeat(10_000) { onValue(it) }
                onError(CarePassException.NotSignedIn("scripted end"))
                onValue(-1) // a stream that broke the rule: never seen
            }.start()
            handle
        }
        val seen = mutableListOf<Int>()

        val error = assertFailsWith<CarePassException.NotSignedIn> {
            withTimeout(10.seconds) { flow.collect { seen += it } }
        }

        assertEquals("scripted end", error.reason)
        assertEquals((0 until 10_000).toList(), seen, "every value, in order, and nothing after the error")
        assertTrue(handle.cancelled.get() && handle.closed.get(), "the handle was cancelled and released")
    }

    @Test
    fun `each collection starts its own core task`() = runBlocking<Unit> {
        var started = 0
        val flow = coreFlow<Int> { onValue, onError ->
            started++
            onValue(started)
            onError(CarePassException.Closed("scripted"))
            Watched()
        }
        val seen = mutableListOf<Int>()

        repeat(2) { assertFailsWith<CarePassException.Closed> { flow.collect { seen += it } } }

        assertEquals(2, started)
        assertEquals(listOf(1, 2), seen)
    }

    private fun listener(onValue: (VoucherCode) -> Unit, onError: (CarePassException) -> Unit) = object : CodeListener {
        override fun onCode(code: VoucherCode) = onValue(code)
        override fun onError(error: CarePassException) = onError(error)
    }

    @Test
    fun `stopping the collection cancels the real core task and releases its handle`() = runBlocking<Unit> {
        CarePass.open(carePassConfig(sandbox.url, dataDir.toFile()), InMemorySecretStore(), null, null).use { core ->
            core.enrol(ZHANG_WEI, CODE)
            val handle = CompletableDeferred<Watched>()
            val codes = coreFlow { onValue, onError ->
                Watched(core.watchCodes(CodePurpose.REGISTRATION, false, listener(onValue, onError))).also { handle.complete(it) }
            }

            val code = withTimeout(5.seconds) { codes.first() }

            assertTrue(code.payload.startsWith("CP1:"))
            val watched = handle.await()
            assertTrue(watched.cancelled.get(), "first() cancelled the task")
            assertTrue(watched.closed.get(), "and released the handle")
            val real = watched.real!!
            eventually("the core task finished") { real.isFinished() }
            real.close()
        }
    }

    @Test
    fun `a core stream's error fails the flow and its task is finished`() = runBlocking<Unit> {
        CarePass.open(carePassConfig(sandbox.url, dataDir.toFile()), InMemorySecretStore(), null, null).use { core ->
            val handle = CompletableDeferred<Watched>()
            val codes = coreFlow { onValue, onError ->
                Watched(core.watchCodes(CodePurpose.REGISTRATION, false, listener(onValue, onError))).also { handle.complete(it) }
            }

            assertFailsWith<CarePassException.NotSignedIn> { withTimeout(5.seconds) { codes.first() } }

            val watched = handle.await()
            assertTrue(watched.closed.get(), "the handle was released")
            val real = watched.real!!
            eventually("the core task finished") { real.isFinished() }
            real.close()
        }
    }

    companion object {
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
