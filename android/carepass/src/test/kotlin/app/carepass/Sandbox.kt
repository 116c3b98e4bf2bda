package app.carepass

import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import java.util.UUID
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException

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
) : AutoCloseable {

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
            val builder = ProcessBuilder(
                bin.path, "serve",
                "--listen", "127.0.0.1:0",
                "--data", dir.resolve("platform").toString(),
                "--seed", "demo",
                "--admin-token", UUID.randomUUID().toString(),
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
                return Sandbox(process, dir, url.trim())
            } catch (e: Throwable) {
                process.destroyForcibly()
                dir.toFile().deleteRecursively()
                throw e
            }
        }
    }
}
