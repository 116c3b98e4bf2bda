package app.carepass

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * A [Flow] collected on another thread as it emits: [next] takes the values in order, and
 * [ended] the way the flow ended. Cancel [job] when done (or let the flow end).
 */
internal class Collected<T>(scope: CoroutineScope, flow: Flow<T>) {
    private val values = Channel<T>(Channel.UNLIMITED)

    /** Completes with the exception the flow failed with, or `null` when it completed. */
    val end = CompletableDeferred<Throwable?>()

    val job: Job = scope.launch(Dispatchers.Default) {
        val outcome = try {
            flow.collect { values.send(it) }
            null
        } catch (e: CancellationException) {
            values.close()
            throw e
        } catch (e: Throwable) {
            e
        }
        // Closed before [end] completes, so whoever sees the end sees every value.
        values.close()
        end.complete(outcome)
    }

    /** The next value; fails when none comes within [timeout] or the flow ended first. */
    suspend fun next(timeout: Duration = 5.seconds): T = withTimeout(timeout) {
        values.receiveCatching().getOrNull() ?: fail("the flow ended (${end.await()}) before another value")
    }

    /** The exception the flow ended with (`null`: it completed), within [timeout]. */
    suspend fun ended(timeout: Duration = 5.seconds): Throwable? = withTimeout(timeout) { end.await() }

    /**
     * Asserts the flow ended with an [E] and that every value it emitted was taken by [next]:
     * nothing came after the values the test saw.
     */
    suspend inline fun <reified E : Throwable> assertEndsWith(timeout: Duration = 5.seconds): E {
        val error = assertIs<E>(ended(timeout))
        assertNoMoreValues()
        return error
    }

    /** Once the flow has ended: asserts no value is left untaken. */
    fun assertNoMoreValues() {
        check(end.isCompleted) { "the flow is still running" }
        val left = values.tryReceive()
        assertTrue(left.isClosed && left.getOrNull() == null, "a value came that the test did not take: ${left.getOrNull()}")
    }
}

/**
 * Waits until [condition] holds, looking every few milliseconds; fails after [timeout]. For
 * what has no event to wait on (a native listener being released).
 */
internal suspend fun eventually(what: String, timeout: Duration = 5.seconds, condition: () -> Boolean) {
    try {
        withTimeout(timeout) {
            while (!condition()) delay(10.milliseconds)
        }
    } catch (e: kotlinx.coroutines.TimeoutCancellationException) {
        fail("not within $timeout: $what")
    }
}

/** Waits until [CarePassClient.sessionState] is [expected] (the session stream brings it). */
internal suspend fun CarePassClient.awaitSession(expected: SessionState, timeout: Duration = 5.seconds) {
    eventually("the session state $expected (it is ${sessionState.value})", timeout) { sessionState.value == expected }
}
