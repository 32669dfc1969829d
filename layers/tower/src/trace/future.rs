use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use opentelemetry::trace::{Status, TraceId};
use pin_project_lite::pin_project;
use tracing::instrument::Instrumented;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{FlushFuture, FlushSpans};
use crate::log_format::{AfterSpan, LineBuffer};

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
        // In scope while the flush runs: its log lines carry the invocation's context.
        after_span: AfterSpan,
        // The invocation's gathered log lines: written at the end, or once they have waited
        // `MAX_LINE_DELAY` while the invocation waits on I/O.
        lines: Arc<LineBuffer>,
        #[pin]
        line_timer: Option<tokio::time::Sleep>,
    }

    impl<F: Future> PinnedDrop for ResponseFuture<F> {
        // A flush dropped before its deliveries were in (the drain cut the invocation off at
        // SIGTERM) logs the spans it leaves: with the invocation's keys, like its other lines.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(flush) = this.flush.take() {
                this.after_span.scope(|| drop(flush));
            }
        }
    }
}

/// How long an invocation's gathered log lines may wait while it waits on I/O (a call that
/// never returns, a slow export) before they are written anyway. Lines logged before a hang are
/// out this soon after; an invocation that does not wait that long writes all its lines at once,
/// at its end.
pub const MAX_LINE_DELAY: Duration = Duration::from_millis(20);

/// Gathered lines are written this long before the invocation's deadline at the latest: Lambda
/// ends a timed-out environment at its deadline.
const LINE_DEADLINE_MARGIN: Duration = Duration::from_millis(5);

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
        after_span: AfterSpan,
        lines: Arc<LineBuffer>,
    ) -> Self {
        Self {
            inner: Some(inner),
            flush: None,
            output: None,
            flusher,
            trace_id,
            deadline,
            after_span,
            lines,
            line_timer: None,
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
                hold_lines(this.lines, this.line_timer, *this.deadline, cx);
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
            let (flusher, trace_id, deadline) = (this.flusher, *this.trace_id, *this.deadline);
            *this.flush = Some(
                this.after_span
                    .scope(|| flusher.flush(trace_id, Some(deadline))),
            );
        }
        if let Some(flush) = this.flush.as_mut() {
            if this
                .after_span
                .scope(|| flush.as_mut().poll(cx))
                .is_pending()
            {
                hold_lines(this.lines, this.line_timer, *this.deadline, cx);
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

/// While the invocation waits: its gathered lines wait too, at most [`MAX_LINE_DELAY`] (and not
/// past its deadline), then are written. Outside a tokio runtime (no timer) they are written at
/// once.
fn hold_lines(
    lines: &LineBuffer,
    mut timer: Pin<&mut Option<tokio::time::Sleep>>,
    deadline: SystemTime,
    cx: &mut Context<'_>,
) {
    if lines.is_empty() {
        return;
    }
    if timer.is_none() {
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(LINE_DEADLINE_MARGIN);
        let delay = MAX_LINE_DELAY.min(left);
        if delay.is_zero() || tokio::runtime::Handle::try_current().is_err() {
            lines.flush();
            return;
        }
        timer.set(Some(tokio::time::sleep(delay)));
    }
    if let Some(sleep) = timer.as_mut().as_pin_mut()
        && sleep.poll(cx).is_ready()
    {
        lines.flush();
        timer.set(None);
    }
}
