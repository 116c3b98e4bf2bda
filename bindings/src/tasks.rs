//! The one task handle of the FFI, and the one way a core stream reaches a foreign listener:
//! [`forward`] reads the core's stream and calls the listener for each value, then once for
//! the error that ended it. The stream's timers, de-duplication and state are the core's.

use std::sync::Arc;

use carepass_core::app::streams::{self, CoreStream};

use crate::error::CarePassError;

/// A running task of the core (a code, inbox, session or payment stream). `cancel()` stops
/// it; dropping the handle does too. Cancelling twice, or after it ended, does nothing.
#[derive(uniffi::Object)]
pub struct TaskHandle {
    inner: streams::TaskHandle,
}

#[uniffi::export]
impl TaskHandle {
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether the task has ended (its stream failed or completed, or it was cancelled).
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

/// Feeds `stream` to a listener: `on_item` for each value in order, `on_error` once for the
/// error that ends it (nothing follows). Cancelling the handle ends both tasks.
pub(crate) fn forward<T, I, E>(stream: CoreStream<T>, on_item: I, on_error: E) -> Arc<TaskHandle>
where
    T: Send + 'static,
    I: Fn(T) + Send + 'static,
    E: FnOnce(CarePassError) + Send + 'static,
{
    let (mut rx, producer) = stream.into_parts();
    let inner = streams::spawn(async move {
        let _producer = producer; // cancelled with this task
        while let Some(item) = rx.recv().await {
            match item {
                Ok(value) => on_item(value),
                Err(e) => {
                    on_error(e.into());
                    return;
                }
            }
        }
    });
    Arc::new(TaskHandle { inner })
}
