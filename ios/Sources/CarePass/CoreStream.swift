// The one adapter from a core stream to Swift concurrency. The core runs every live stream
// (codes, inbox, session, payment) as a task that calls a listener: the values in order, the
// current value first, then at most one error, then nothing. `coreStream(of:_:)` turns that
// into an `AsyncThrowingStream` and cancels the core's `TaskHandle` when the stream
// terminates.

import Foundation
import CarePassFFI

extension CarePassClient {
    /// An `AsyncThrowingStream` fed by one core stream.
    ///
    /// `start` hands the relay to one of the core's `watch…` calls and returns its
    /// `TaskHandle`. The stream then yields every value the core sends, in order (unbounded
    /// buffer: a slow reader misses nothing), and throws the core's error when the core ends
    /// the stream; nothing follows. When the stream terminates for any reason (the core's
    /// error, the reader leaving the loop, its task being cancelled, the stream being
    /// dropped), the handle is cancelled, which stops the core's task.
    static func coreStream<Value>(
        of type: Value.Type,
        _ start: @escaping (StreamRelay<Value>) -> TaskHandle
    ) -> AsyncThrowingStream<Value, Error> {
        AsyncThrowingStream(type, bufferingPolicy: .unbounded) { continuation in
            let task = RunningTask()
            // Set before the core starts: the core may end the stream before `start` returns.
            continuation.onTermination = { _ in
                task.cancel()
            }
            task.keep(start(StreamRelay(continuation)))
        }
    }
}

/// The listener the core calls for one stream: each value goes to the stream's continuation,
/// the error finishes it. One class for the four listener protocols; which one it is follows
/// from its `Value`. The core calls it on its own threads, one call at a time.
final class StreamRelay<Value>: @unchecked Sendable {
    // @unchecked: the only stored property is a continuation, which is thread-safe.

    private let continuation: AsyncThrowingStream<Value, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<Value, Error>.Continuation) {
        self.continuation = continuation
    }

    func send(_ value: Value) {
        _ = continuation.yield(value)
    }

    /// The core's stream ended with `error`; it sends nothing after this.
    func onError(error: CarePassError) {
        continuation.finish(throwing: error)
    }
}

extension StreamRelay: CodeListener where Value == VoucherCode {
    func onCode(code: VoucherCode) {
        send(code)
    }
}

extension StreamRelay: InboxListener where Value == InboxUpdate {
    func onUpdate(update: InboxUpdate) {
        send(update)
    }
}

extension StreamRelay: SessionListener where Value == SessionState {
    func onState(state: SessionState) {
        send(state)
    }
}

// `onUpdate(payment:)`, not the inbox's `onUpdate(update:)`: the two protocols' methods differ
// by their argument label, so each conformance has its own method.
extension StreamRelay: PaymentListener where Value == Payment {
    func onUpdate(payment: Payment) {
        send(payment)
    }
}

/// Keeps a stream's `TaskHandle` alive while the stream runs (dropping the handle would
/// cancel the core's task) and cancels it when the stream terminates, also when that
/// happens before the handle is known.
final class RunningTask: @unchecked Sendable {
    // @unchecked: `handle` and `cancelled` are only touched with `lock` held.

    private let lock = NSLock()
    private var handle: TaskHandle?
    private var cancelled = false

    /// Keeps `handle`, or cancels it at once if the stream has already terminated.
    func keep(_ handle: TaskHandle) {
        lock.lock()
        let cancelNow = cancelled
        if !cancelNow {
            self.handle = handle
        }
        lock.unlock()
        if cancelNow {
            handle.cancel()
        }
    }

    /// The stream terminated: cancel the core's task and let go of the handle.
    func cancel() {
        lock.lock()
        cancelled = true
        let running = handle
        handle = nil
        lock.unlock()
        running?.cancel()
    }
}
