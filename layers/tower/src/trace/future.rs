use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::SystemTime,
};

use opentelemetry::trace::{Status, TraceId};
use pin_project_lite::pin_project;
use tracing::instrument::Instrumented;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{FlushFuture, FlushSpans};
use crate::log_format::LineBuffer;

pin_project! {
    /// Response future of [`Trace`](super::Trace): runs the invocation, closes its span, then
    /// exports the spans before resolving.
    pub struct ResponseFuture<F: Future> {
        #[pin]
        inner: Option<Instrumented<F>>,
        flush: Option<FlushFuture>,
        output: Option<F::Output>,
        flusher: Arc<dyn FlushSpans>,
        trace_id: TraceId,
        deadline: SystemTime,
        // Entered while the flush runs: its log lines carry the invocation's context.
        flush_span: tracing::Span,
        // The invocation's gathered log lines: written whenever it yields, and at the end.
        lines: Arc<LineBuffer>,
    }
}

impl<F: Future> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F: Future> ResponseFuture<F> {
    pub(super) fn new(
        inner: Instrumented<F>,
        flusher: Arc<dyn FlushSpans>,
        trace_id: TraceId,
        deadline: SystemTime,
        flush_span: tracing::Span,
        lines: Arc<LineBuffer>,
    ) -> Self {
        Self {
            inner: Some(inner),
            flush: None,
            output: None,
            flusher,
            trace_id,
            deadline,
            flush_span,
            lines,
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    type Output = Result<(), E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(inner) = this.inner.as_mut().as_pin_mut() {
            let Poll::Ready(output) = inner.poll(cx) else {
                // Nothing logged is held across an await: a call that never returns leaves
                // every line before it written.
                this.lines.flush();
                return Poll::Pending;
            };
            if let Err(err) = &output {
                // The runtime could not complete the invocation (e.g. posting the response failed).
                let span = this
                    .inner
                    .as_ref()
                    .get_ref()
                    .as_ref()
                    .map(|i| i.span().clone());
                if let Some(span) = span {
                    span.set_status(Status::error(err.to_string()));
                }
            }
            // Drop the inner future first: that closes the invocation span, so the flush below
            // exports it together with its children (this invocation's trace only).
            this.inner.set(None);
            *this.output = Some(output);
            let _entered = this.flush_span.enter();
            *this.flush = Some(this.flusher.flush(*this.trace_id, Some(*this.deadline)));
        }
        if let Some(flush) = this.flush.as_mut() {
            let _entered = this.flush_span.enter();
            if flush.as_mut().poll(cx).is_pending() {
                this.lines.flush();
                return Poll::Pending;
            }
            *this.flush = None;
        }
        this.lines.flush();
        match this.output.take() {
            Some(output) => Poll::Ready(output),
            None => panic!("ResponseFuture polled after completion"),
        }
    }
}
