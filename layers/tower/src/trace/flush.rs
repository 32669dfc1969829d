use std::{fmt, future::Future, pin::Pin, time::SystemTime};

use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The future of a [`FlushSpans::flush`].
pub type FlushFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How [`Trace`](super::Trace) exports an invocation's spans after its response and before the
/// runtime asks for the next event (Lambda may freeze the process then).
///
/// Implemented by:
/// * [`SpanFlusher`](crate::export::SpanFlusher): this crate's per-invocation pipeline, which
///   exports the invocation's own trace, bounded by its deadline, and counts every span it loses;
/// * [`SdkTracerProvider`]: a provider you built yourself, flushed with
///   [`force_flush`](SdkTracerProvider::force_flush) (synchronous: with a `BatchSpanProcessor`
///   the invocation waits for its worker, as `lambda_runtime`'s `OpenTelemetryLayer` does);
/// * [`FlushWith`]: any closure.
pub trait FlushSpans: Send + Sync + 'static {
    /// An invocation of `trace_id` starts: its spans are its own to flush. Does nothing by
    /// default.
    fn open(&self, trace_id: TraceId) {
        let _ = trace_id;
    }

    /// Exports the finished spans of `trace_id`, within the time left until `deadline` when
    /// there is one. Never fails: what is lost is for the implementation to count and log.
    fn flush(&self, trace_id: TraceId, deadline: Option<SystemTime>) -> FlushFuture;
}

impl FlushSpans for SdkTracerProvider {
    fn flush(&self, _trace_id: TraceId, _deadline: Option<SystemTime>) -> FlushFuture {
        if let Err(error) = self.force_flush() {
            tracing::warn!(target: "lambda_observability::export", "span flush failed: {error}");
        }
        Box::pin(std::future::ready(()))
    }
}

/// A [`FlushSpans`] that calls a closure after each invocation.
///
/// ```
/// use lambda_observability_tower::{TraceLayer, trace::FlushWith};
///
/// let layer = TraceLayer::new(FlushWith::new(|| { /* flush your pipeline */ }));
/// # drop(layer);
/// ```
#[derive(Clone)]
pub struct FlushWith<F>(F);

impl<F> FlushWith<F>
where
    F: Fn() + Send + Sync + 'static,
{
    /// Calls `flush` after each invocation.
    pub fn new(flush: F) -> Self {
        Self(flush)
    }
}

impl<F> fmt::Debug for FlushWith<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("FlushWith")
    }
}

impl<F> FlushSpans for FlushWith<F>
where
    F: Fn() + Send + Sync + 'static,
{
    fn flush(&self, _trace_id: TraceId, _deadline: Option<SystemTime>) -> FlushFuture {
        (self.0)();
        Box::pin(std::future::ready(()))
    }
}
