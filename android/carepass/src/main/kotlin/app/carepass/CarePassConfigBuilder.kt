package app.carepass

import java.io.File
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds

/**
 * Builds a [CarePassConfig] with defaults for everything but the server and the directory:
 *
 * ```
 * val config = carePassConfig("https://api.example.cn", File(context.noBackupFilesDir, "carepass")) {
 *     deviceName = Build.MODEL
 *     requestTimeout = 10.seconds
 * }
 * ```
 *
 * The core checks the values when [CarePassClient.open] runs (e.g. it refuses plain `http`
 * to anything but a loopback address); the builder only converts types.
 *
 * @param serverUrl the platform's base URL: `https://…`, or `http://` to a loopback
 *   address (the sandbox).
 * @param dataDir a directory private to the app, created if missing. On Android, prefer
 *   `noBackupFilesDir`: the store is sealed under a key that never leaves the device, so a
 *   copy restored on another device could not be opened.
 * @throws IllegalArgumentException if [CarePassConfigBuilder.requestTimeout] is not positive.
 */
fun carePassConfig(
    serverUrl: String,
    dataDir: File,
    configure: CarePassConfigBuilder.() -> Unit = {},
): CarePassConfig = CarePassConfigBuilder(serverUrl, dataDir).apply(configure).build()

/** The optional settings of [carePassConfig]. */
class CarePassConfigBuilder(
    /** The platform's base URL. */
    var serverUrl: String,
    /** The app-private directory of the store. */
    var dataDir: File,
) {
    /** Shown in the user's list of devices. */
    var deviceName: String = "Android device"

    /** `android`, `ios` or `terminal`; this library is the Android shell. */
    var platform: String = PLATFORM_ANDROID

    /** Whole-request timeout; `null` keeps the core's default (15 s). Rounded up to whole ms. */
    var requestTimeout: Duration? = null

    /** PEM root certificates to pin; empty trusts the operating system's verifier. */
    var pinnedRootsPem: List<String> = emptyList()

    fun build(): CarePassConfig {
        val timeoutMs = requestTimeout?.let { timeout ->
            require(timeout.isPositive()) { "requestTimeout must be positive: $timeout" }
            // Rounded up: 0 would mean "the default" to the core.
            val whole = timeout.inWholeMilliseconds
            if (whole.milliseconds < timeout) whole + 1 else whole
        } ?: 0L
        return CarePassConfig(
            serverUrl = serverUrl,
            dataDir = dataDir.absolutePath,
            deviceName = deviceName,
            platform = platform,
            requestTimeoutMs = timeoutMs.toULong(),
            pinnedRootsPem = pinnedRootsPem.toList(),
        )
    }

    companion object {
        const val PLATFORM_ANDROID: String = "android"
    }
}
