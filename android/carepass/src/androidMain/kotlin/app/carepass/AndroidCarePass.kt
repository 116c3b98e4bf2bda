package app.carepass

import android.content.Context
import android.os.Build
import android.util.Log
import java.io.File

/** CarePass wired with the Android adapters and defaults. */
object AndroidCarePass {
    /**
     * A config for this device: the store in `noBackupFilesDir/carepass` (its key cannot
     * leave the device, so it must not be restored elsewhere), the device named after its
     * model, platform `android`.
     */
    fun config(
        context: Context,
        serverUrl: String,
        configure: CarePassConfigBuilder.() -> Unit = {},
    ): CarePassConfig = carePassConfig(serverUrl, dataDir(context)) {
        deviceName = deviceModel()
        configure()
    }

    /** Where [config] puts the store: `noBackupFilesDir/carepass`. */
    fun dataDir(context: Context): File = File(context.noBackupFilesDir, DATA_DIR_NAME)

    /**
     * Opens CarePass on [config]'s directory with the Android adapters: by default
     * [KeystoreSecretStore], [AndroidKeystoreDeviceKey] and [LogcatLogger]. Apps keep the
     * defaults; the parameters exist so that tests on the host JVM, which has no Android
     * Keystore, can pass software keys through the same adapters.
     *
     * Open it once per process (e.g. in `Application.onCreate`, off the main thread) and share
     * it: a second open of the same directory fails with `Storage` until the first is closed.
     * Nothing needs to happen when the process dies: the next process opens the same
     * directory and finds what the core committed (changes of its last second or so, not yet
     * flushed, are pulled again; [CarePassClient.pullOwed] tells of a doorbell whose pull was
     * cut short).
     *
     * @throws CarePassException as [CarePassClient.open].
     */
    suspend fun open(
        context: Context,
        serverUrl: String,
        secretStore: SecretStore = KeystoreSecretStore(context),
        deviceKey: DeviceKeyStore = AndroidKeystoreDeviceKey(),
        logger: Logger? = LogcatLogger(),
        configure: CarePassConfigBuilder.() -> Unit = {},
    ): CarePassClient = CarePassClient.open(
        config = config(context, serverUrl, configure),
        secretStore = secretStore,
        keyStore = deviceKey,
        logger = logger,
    )

    private fun deviceModel(): String {
        val model = Build.MODEL.orEmpty().trim()
        val manufacturer = Build.MANUFACTURER.orEmpty().trim()
        return when {
            model.isEmpty() -> "Android device"
            manufacturer.isEmpty() || model.startsWith(manufacturer, ignoreCase = true) -> model
            else -> "$manufacturer $model"
        }
    }

    private const val DATA_DIR_NAME = "carepass"
}

/** Writes the core's log lines to Logcat under [tag]. */
class LogcatLogger @JvmOverloads constructor(private val tag: String = "CarePass") : Logger {
    override fun log(level: LogLevel, target: String, message: String) {
        val priority = when (level) {
            LogLevel.ERROR -> Log.ERROR
            LogLevel.WARN -> Log.WARN
            LogLevel.INFO -> Log.INFO
            LogLevel.DEBUG -> Log.DEBUG
        }
        // A callback without an error type must not throw back into the core.
        runCatching { Log.println(priority, tag, "$target: $message") }
    }
}
