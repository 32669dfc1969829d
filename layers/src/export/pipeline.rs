//! The span processor and the buffer of finished spans it fills.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use opentelemetry_sdk::{
    error::{OTelSdkError, OTelSdkResult},
    trace::{SpanData, SpanExporter, SpanProcessor},
};

use std::sync::Arc;

/// Finished spans waiting for the end of the invocation, and the exporter they go to.
pub(super) struct Pending<E> {
    pub(super) exporter: E,
    pub(super) spans: Mutex<Vec<SpanData>>,
    pub(super) failing: AtomicBool,
}

/// Object-safe view of [`Pending`], so the processor and flusher do not carry the exporter type.
pub(super) trait PendingSpans: Send + Sync {
    fn push(&self, span: SpanData);
    /// Takes every span finished so far.
    fn take(&self) -> Vec<SpanData>;
    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_>;
    /// Returns `true` when this outcome changes the failing state, i.e. when it is worth a log line.
    fn record_outcome(&self, result: &OTelSdkResult) -> bool;
}

type ExportFuture<'a> = Pin<Box<dyn Future<Output = OTelSdkResult> + Send + 'a>>;

impl<E: SpanExporter> PendingSpans for Pending<E> {
    fn push(&self, span: SpanData) {
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(span);
    }

    fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut *self.spans.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        Box::pin(self.exporter.export(batch))
    }

    fn record_outcome(&self, result: &OTelSdkResult) -> bool {
        self.failing.swap(result.is_err(), Ordering::Relaxed) != result.is_err()
    }
}

/// A [`SpanProcessor`] that buffers finished, sampled spans until [`SpanFlusher::flush`].
pub struct InvocationSpanProcessor {
    pub(super) pending: Arc<dyn PendingSpans>,
}

impl fmt::Debug for InvocationSpanProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvocationSpanProcessor")
            .finish_non_exhaustive()
    }
}

impl SpanProcessor for InvocationSpanProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.pending.push(span);
        }
    }

    /// Exports synchronously, which is only safe outside a tokio runtime: inside one, an exporter
    /// that needs the runtime (OTLP) would wait on itself. Inside an invocation the
    /// [`TraceLayer`](crate::TraceLayer) uses [`SpanFlusher::flush`], which is async.
    fn force_flush(&self) -> OTelSdkResult {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(OTelSdkError::InternalFailure(
                "force_flush inside a tokio runtime could deadlock; await SpanFlusher::flush instead"
                    .into(),
            ));
        }
        let batch = self.pending.take();
        if batch.is_empty() {
            return Ok(());
        }
        futures_executor::block_on(self.pending.export(batch))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
