//! Live streams owned by the core: every stream the shells show (the rotating code, the
//! inbox, the session state, a payment's progress) is a [`CoreStream`] — a task the core runs
//! that yields the current value first and then each change, ending with at most one error.
//! The FFI forwards a stream to a foreign listener and hands the shell a [`TaskHandle`]; the
//! terminal reads it directly. Shells hold no timers and no state of their own.
//!
//! The rule every consumer follows (`docs/architecture.md` § Streams): values arrive in order;
//! an error ends the stream and nothing follows it; cancelling (or dropping the handle) ends it
//! quietly. Signed-in state is never inferred from a failure: the session stream says it.

use std::future::Future;
use std::sync::OnceLock;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::app::error::{CoreError, CoreResult};

/// How many values may wait for a slow consumer before the producer waits too.
const BUFFER: usize = 16;

/// A running stream: values in order, then possibly one error.
pub struct CoreStream<T> {
    rx: mpsc::Receiver<CoreResult<T>>,
    task: TaskHandle,
}

impl<T> CoreStream<T> {
    /// The next value, the error that ended the stream, or `None` once it is over.
    pub async fn next(&mut self) -> Option<CoreResult<T>> {
        self.rx.recv().await
    }

    /// Stops the stream's task now (also done when the stream is dropped).
    pub fn cancel(&self) {
        self.task.cancel();
    }

    /// Splits into the receiving end and the task's handle (the FFI keeps the handle).
    pub fn into_parts(self) -> (mpsc::Receiver<CoreResult<T>>, TaskHandle) {
        (self.rx, self.task)
    }
}

/// Where a stream's task sends; `send` says whether anyone still listens.
pub struct Sink<T> {
    tx: mpsc::Sender<CoreResult<T>>,
}

impl<T: Send + 'static> Sink<T> {
    /// Sends a value; `false` when the consumer has gone (the task should end).
    pub async fn send(&self, value: T) -> bool {
        self.tx.send(Ok(value)).await.is_ok()
    }

    /// Ends the stream with `error`.
    pub async fn fail(&self, error: CoreError) {
        let _ = self.tx.send(Err(error)).await;
    }

    /// Resolves when the consumer has gone.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// A handle on a task the core runs: [`TaskHandle::cancel`] stops it, and so does dropping
/// the handle. Cancelling twice, or after the task ended, does nothing.
pub struct TaskHandle {
    abort: AbortHandle,
}

impl TaskHandle {
    pub fn cancel(&self) {
        self.abort.abort();
    }

    /// Whether the task has ended (finished, failed or cancelled).
    pub fn is_finished(&self) -> bool {
        self.abort.is_finished()
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// Starts `body` as a stream: it gets a [`Sink`] and returns when the stream is over; an
/// error it returns is the stream's last item.
pub fn stream<T, F, Fut>(body: F) -> CoreStream<T>
where
    T: Send + 'static,
    F: FnOnce(Sink<T>) -> Fut + Send + 'static,
    Fut: Future<Output = CoreResult<()>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(BUFFER);
    let sink = Sink { tx: tx.clone() };
    let task = spawn(async move {
        if let Err(e) = body(sink).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    CoreStream { rx, task }
}

/// Runs `future` on the caller's tokio runtime when there is one, else on the core's own
/// background runtime (calls from a shell's thread, outside any runtime).
pub fn spawn<F>(future: F) -> TaskHandle
where
    F: Future<Output = ()> + Send + 'static,
{
    let handle = match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn(future),
        Err(_) => background().spawn(future),
    };
    TaskHandle { abort: handle.abort_handle() }
}

/// The core's background runtime: one worker thread, started on first use.
pub fn background() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("carepass-bg")
            .enable_all()
            .build()
            // Fails only when the OS refuses a thread; nothing can run without one.
            .expect("the core's background runtime starts")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_come_in_order_then_the_error_ends_the_stream() {
        let mut s = stream(|sink: Sink<u32>| async move {
            for i in 0..3 {
                sink.send(i).await;
            }
            Err(CoreError::NotSignedIn)
        });
        for i in 0..3 {
            assert_eq!(s.next().await.unwrap().unwrap(), i);
        }
        assert!(matches!(s.next().await, Some(Err(CoreError::NotSignedIn))));
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn dropping_the_stream_stops_its_task() {
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (dropped_tx, dropped) = tokio::sync::oneshot::channel::<()>();
        struct Flag(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        let s = stream(move |_sink: Sink<u32>| async move {
            let _flag = Flag(Some(dropped_tx));
            let _ = started_tx.send(());
            std::future::pending::<()>().await;
            Ok(())
        });
        started.await.unwrap();
        drop(s);
        tokio::time::timeout(std::time::Duration::from_secs(5), dropped).await.unwrap().unwrap();
    }

    #[test]
    fn outside_a_runtime_streams_run_on_the_background_runtime() {
        let mut s = stream(|sink: Sink<&'static str>| async move {
            sink.send("from the background").await;
            Ok(())
        });
        let got = background().block_on(async { s.next().await });
        assert_eq!(got.unwrap().unwrap(), "from the background");
    }
}
