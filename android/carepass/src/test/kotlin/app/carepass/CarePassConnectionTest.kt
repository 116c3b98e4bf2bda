package app.carepass

import app.carepass.ffi.CarePassException
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Path
import java.util.Collections
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.measureTime

/** How the core treats the server it is given; no sandbox needed. */
class CarePassConnectionTest {

    @TempDir
    lateinit var dataDir: Path

    @Test
    fun `plain http to a remote host is InsecureServerUrl at open`() {
        assertFailsWith<CarePassException.InsecureServerUrl> {
            CarePassClient.openBlocking(carePassConfig("http://example.com", dataDir.toFile()), InMemorySecretStore())
        }
    }

    @Test
    fun `a server that never answers is Timeout after the request timeout`() = runBlocking {
        val accepted = Collections.synchronizedList(mutableListOf<Socket>())
        ServerSocket(0, 50, InetAddress.getLoopbackAddress()).use { silent ->
            val acceptor = Thread {
                // Accept and hold every connection, never writing a byte.
                runCatching { while (true) accepted += silent.accept() }
            }.apply { isDaemon = true; start() }

            val config = carePassConfig("http://127.0.0.1:${silent.localPort}", dataDir.toFile()) {
                requestTimeout = 500.milliseconds
            }
            assertEquals(500uL, config.requestTimeoutMs)
            CarePassClient.openBlocking(config, InMemorySecretStore()).use { client ->
                val elapsed = measureTime {
                    assertFailsWith<CarePassException.Timeout> {
                        client.requestVerificationCode(Sandbox.ZHANG_WEI)
                    }
                }
                assertTrue(elapsed >= 400.milliseconds && elapsed < 10.seconds, "timed out after $elapsed")
            }
            silent.close()
            acceptor.join(5_000)
        }
        accepted.forEach { it.close() }
        assertTrue(accepted.isNotEmpty(), "the core did connect")
    }

    companion object {
        @JvmStatic
        @BeforeAll
        fun nativeLibraryIsBuilt() {
            requireNativeLibrary()
        }
    }
}
