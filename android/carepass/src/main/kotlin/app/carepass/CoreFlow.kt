package app.carepass

import app.carepass.ffi.CarePassException
import app.carepass.ffi.TaskHandle
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

/**
 * The one adapter from a core stream to a [Flow]: [start] subscribes a listener that calls
 * `onValue` for each value and `onError` once for the error that ends the stream, and
 * returns the core task's [TaskHandle].
 *
 * Cold: each collection starts its own core task. Values come in the core's order, every
 * one of them (buffered without limit: the listener runs on the core's thread and must never
 * block it). The flow fails with the exception the core sent, and nothing follows it.
 * Stopping the collection (cancelling it, `first()`, `take(n)`) cancels the core task and
 * releases its handle.
 */
internal fun <T> coreFlow(
    start: (onValue: (T) -> Unit, onError: (CarePassException) -> Unit) -> TaskHandle,
): Flow<T> = callbackFlow {
    // trySend on an unlimited channel fails only once the collection has stopped.
    val handle = start({ value -> trySend(value) }, { error -> close(error) })
    awaitClose {
        handle.cancel()
        handle.close()
    }
}.buffer(Channel.UNLIMITED)
