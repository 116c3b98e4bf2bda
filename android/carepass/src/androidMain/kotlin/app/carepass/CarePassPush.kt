package app.carepass

import android.os.Looper
import app.carepass.ffi.CarePassException
import app.carepass.ffi.isCarepassPush
import kotlinx.coroutines.runBlocking

/**
 * The one place push services hand their messages to CarePass: the app's
 * `FirebaseMessagingService`, Huawei `HmsMessageService` and Mi Push `PushMessageReceiver`
 * each pass the message's data map to [onMessageReceived] (or [onMessageReceivedBlocking]),
 * and register their token with [PushService]. This library depends on none of their SDKs.
 *
 * The core decides everything: whether the map is a CarePass doorbell at all, whether it is
 * genuine and for the signed-in person, and what to pull ([CarePassClient.handlePush]). This
 * object only routes the map and turns the outcome into a value, because an exception thrown
 * from a push service's callback crashes the app's process.
 *
 * Firebase Cloud Messaging (`onMessageReceived` runs on a background thread, with about 20
 * seconds to finish):
 * ```
 * class AppMessagingService : FirebaseMessagingService() {
 *     override fun onMessageReceived(message: RemoteMessage) {
 *         val client = (application as App).carePass
 *         when (val outcome = CarePassPush.onMessageReceivedBlocking(client, message.data)) {
 *             PushOutcome.NotCarePass -> handleOtherMessage(message)
 *             is PushOutcome.Handled -> (outcome.result as? PushResult.Pulled)?.let { notifyNewBills(it.changes) }
 *             is PushOutcome.Refused, is PushOutcome.Failed -> Unit // see PushOutcome
 *         }
 *     }
 *
 *     override fun onNewToken(token: String) {
 *         // Needs a signed-in person: register again after each sign-in too.
 *         appScope.launch { (application as App).carePass.registerPushToken(PushService.FCM.id, token) }
 *     }
 * }
 * ```
 * Huawei Push Kit: the same in `HmsMessageService.onMessageReceived(message)` with
 * `message.dataOfMap`, and `onNewToken(token)` with [PushService.HUAWEI].
 *
 * Mi Push: `PushMessageReceiver` is a broadcast receiver, so do not block in it; in
 * `onReceivePassThroughMessage(context, message)` call `goAsync()` and then [onMessageReceived]
 * with `message.extra` in a coroutine that finishes the pending result; register
 * `message.commandArguments[0]` of `onReceiveRegisterResult` with [PushService.XIAOMI].
 */
object CarePassPush {

    /**
     * Routes [data] (the push's data map, exactly as delivered): to the core when it is a
     * CarePass doorbell ([CarePassClient.handlePush]), otherwise [PushOutcome.NotCarePass]
     * with no call to the core's store or network. Never throws a [CarePassException].
     */
    suspend fun onMessageReceived(client: CarePassClient, data: Map<String, String>): PushOutcome {
        if (!isCarepassPush(data)) return PushOutcome.NotCarePass
        return try {
            PushOutcome.Handled(client.handlePush(data))
        } catch (e: CarePassException.InvalidPush) {
            PushOutcome.Refused(e)
        } catch (e: CarePassException) {
            PushOutcome.Failed(e)
        }
    }

    /**
     * [onMessageReceived] on the calling thread, for callbacks that run on a background thread
     * and must finish before they return (FCM, Huawei).
     *
     * @throws IllegalStateException on the main thread: it waits for the network.
     */
    fun onMessageReceivedBlocking(client: CarePassClient, data: Map<String, String>): PushOutcome {
        check(Looper.myLooper() != Looper.getMainLooper()) {
            "onMessageReceivedBlocking waits for the network: call it off the main thread, or use onMessageReceived"
        }
        return runBlocking { onMessageReceived(client, data) }
    }
}

/** What [CarePassPush] did with a push. */
sealed interface PushOutcome {
    /** Not a CarePass doorbell: the app handles the message itself. */
    data object NotCarePass : PushOutcome

    /**
     * A doorbell the core verified and acted on: [PushResult.Pulled] with the changes new to
     * the phone (already in [CarePassClient.inbox]), [PushResult.AlreadySeen] or
     * [PushResult.NotYetReadable] (then [CarePassClient.pullOwed] is true until a sync).
     */
    data class Handled(val result: PushResult) : PushOutcome

    /**
     * A message that looks like a doorbell but that the core refused (forged, stale, or for
     * another person): nothing was pulled or remembered. Nothing to do.
     */
    data class Refused(val error: CarePassException.InvalidPush) : PushOutcome

    /**
     * The core could not handle the doorbell now ([error]: nobody signed in, the session
     * expired, the network…). A doorbell it had verified is remembered, so
     * [CarePassClient.pullOwed] tells the app at its next start to [CarePassClient.syncInbox].
     */
    data class Failed(val error: CarePassException) : PushOutcome
}

/** The push services whose tokens [CarePassClient.registerPushToken] takes, by the [id] it expects. */
enum class PushService(val id: String) {
    /** Firebase Cloud Messaging. */
    FCM("fcm"),

    /** Huawei Push Kit (HMS). */
    HUAWEI("huawei"),

    /** Xiaomi Mi Push. */
    XIAOMI("xiaomi"),
}
