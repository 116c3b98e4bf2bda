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
    ): CarePassConfig = carePassConfig(serverUrl, File(context.noBackupFilesDir, DATA_DIR_NAME)) {
        deviceName = deviceModel()
        configure()
    }

    /**
     * Opens CarePass with [KeystoreSecretStore], [AndroidKeystoreDeviceKey] and [LogcatLogger].
     *
     * @throws CarePassException as [CarePassClient.open].
     */
    suspend fun open(
        context: Context,
        serverUrl: String,
        configure: CarePassConfigBuilder.() -> Unit = {},
    ): CarePassClient = CarePassClient.open(
        config = config(context, serverUrl, configure),
        secretStore = KeystoreSecretStore(context),
        keyStore = AndroidKeystoreDeviceKey(),
        logger = LogcatLogger(),
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
