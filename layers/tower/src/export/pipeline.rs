//! The span processor, the buffer of finished spans it fills (keyed by trace), and the
//! destinations a flush sends them to.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use opentelemetry::trace::TraceId;
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{SpanData, SpanExporter, SpanProcessor},
};

use super::{
    breaker::Breaker,
    flusher::{Bound, Counters},
};

/// How many finished spans may wait for export at once, all traces together. A span that ends
/// while the buffer is full is dropped and counted ([`DropCounts::buffer_full`]).
///
/// [`DropCounts::buffer_full`]: super::DropCounts::buffer_full
pub const MAX_BUFFERED_SPANS: usize = 4096;

/// The finished spans of one trace, waiting for that trace's flush.
#[derive(Default)]
pub(super) struct TraceSpans {
    pub(super) spans: Vec<SpanData>,
    /// Spans of this trace refused because the buffer was full.
    pub(super) refused: u64,
}

#[derive(Default)]
struct Buffer {
    /// Traces of invocations in flight, whose spans only their own flush takes.
    open: HashMap<TraceId, OpenTrace>,
    /// Spans of traces no invocation has open (work that outlived its invocation's flush, or ran
    /// outside any invocation): the next flush takes them, whichever trace it flushes. Kept apart
    /// so that a flush finds them without looking at every trace in flight, which at 64
    /// invocations in flight cost each flush some 45 hash lookups.
    unowned: TraceSpans,
    /// Spans held, all traces together.
    len: usize,
}

/// An invocation's trace and what it has finished so far.
#[derive(Default)]
struct OpenTrace {
    /// Invocations that have the trace open: two may share a root.
    invocations: usize,
    finished: TraceSpans,
}

impl Buffer {
    /// Where a span of `trace_id` waits.
    fn spans_of(&mut self, trace_id: TraceId) -> &mut TraceSpans {
        match self.open.get_mut(&trace_id) {
            Some(open) => &mut open.finished,
            None => &mut self.unowned,
        }
    }
}

/// What one destination did with a batch.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Spans that reached the destination (or left on the wire, for UDP).
    pub sent: u64,
    /// Spans dropped because, alone, they do not fit a datagram.
    pub oversize: u64,
    /// Why the rest of the batch was not delivered.
    pub error: Option<OTelSdkError>,
}

impl Delivery {
    /// `sent` spans delivered, `oversize` dropped for their size, the rest lost to `error`.
    pub fn new(sent: u64, oversize: u64, error: Option<OTelSdkError>) -> Self {
        Self {
            sent,
            oversize,
            error,
        }
    }
}

/// The future of a [`Deliver::deliver`].
pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = Delivery> + Send + 'a>>;

/// An exporter as the pipeline drives it: a delivery report instead of a bare result, so that
/// each span is accounted for (sent, too large, or lost to an error).
pub trait Deliver: Send + Sync + 'static {
    /// Delivers `batch`; never fails, the report says what happened.
    fn deliver(&self, batch: Vec<SpanData>) -> DeliveryFuture<'_>;

    /// The resource the spans are sent with.
    fn set_resource(&mut self, resource: &Resource);

    /// Where the resource comes from. An exporter that is built at once takes the resource now;
    /// one built at its first delivery (`TelemetryBuilder::deliver_to_lazy`) keeps the source and builds
    /// the resource then, after the first response.
    fn set_resource_source(&mut self, source: &ResourceSource) {
        self.set_resource(source.get());
    }

    /// Whether a delivery can wait on the backend (a connection to make, an answer to read), and
    /// so needs the pipeline's breaker: after a timeout or a failed connection the destination
    /// is skipped, then probed with backoff (see `docs/span-export.md`). Defaults to `true`. A
    /// delivery that never waits (UDP: a send, an ICMP "port unreachable" read with the next
    /// ones) answers `false`: its failures are counted at each flush and cost no time.
    fn may_stall(&self) -> bool {
        true
    }
}

/// The resource, built once, the first time an exporter needs it. Nothing before the first export
/// reads it (the SDK's spans do not carry it), so building it then takes it off the cold start.
#[derive(Clone)]
pub struct ResourceSource(Arc<LazyLock<Resource, BuildResource>>);

type BuildResource = Box<dyn FnOnce() -> Resource + Send>;

impl ResourceSource {
    /// Built by `build` when first needed.
    pub fn new(build: impl FnOnce() -> Resource + Send + 'static) -> Self {
        Self(Arc::new(LazyLock::new(Box::new(build))))
    }

    /// Already built.
    pub(super) fn ready(resource: Resource) -> Self {
        Self::new(move || resource)
    }

    /// The resource, built now if it was not yet.
    pub fn get(&self) -> &Resource {
        &self.0
    }
}

impl fmt::Debug for ResourceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("ResourceSource")
    }
}

impl From<Resource> for ResourceSource {
    fn from(resource: Resource) -> Self {
        Self::ready(resource)
    }
}

/// Any SDK [`SpanExporter`] as a [`Deliver`]: each batch delivered whole, or lost whole.
#[derive(Debug)]
pub struct Plain<E>(pub E);

impl<E: SpanExporter + 'static> Deliver for Plain<E> {
    fn deliver(&self, batch: Vec<SpanData>) -> DeliveryFuture<'_> {
        let count = batch.len() as u64;
        let export = self.0.export(batch);
        Box::pin(async move {
            match export.await {
                Ok(()) => Delivery {
                    sent: count,
                    ..Delivery::default()
                },
                Err(err) => Delivery {
                    error: Some(err),
                    ..Delivery::default()
                },
            }
        })
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// One configured exporter, with its bound, its own failing/recovered state and its breaker.
pub(crate) struct Destination {
    pub(super) name: &'static str,
    pub(super) timeout: Duration,
    pub(super) exporter: Box<dyn Deliver>,
    failing: AtomicBool,
    pub(super) breaker: Breaker,
}

impl Destination {
    pub(super) fn new(name: &'static str, timeout: Duration, exporter: impl Deliver) -> Self {
        Self {
            name,
            timeout,
            exporter: Box::new(exporter),
            failing: AtomicBool::new(false),
            breaker: Breaker::default(),
        }
    }

    /// Returns `true` when this outcome changes the failing state, i.e. when it is worth a log line.
    pub(super) fn record_outcome(&self, failed: bool) -> bool {
        self.failing.swap(failed, Ordering::Relaxed) != failed
    }
}

/// Everything the processor and the flushers share: buffer, destinations, counters.
pub(super) struct Pipeline {
    buffer: Mutex<Buffer>,
    capacity: usize,
    pub(super) destinations: Vec<Destination>,
    pub(super) counters: Counters,
}

impl Pipeline {
    pub(super) fn new(
        mut destinations: Vec<Destination>,
        resource: impl Into<ResourceSource>,
        capacity: usize,
    ) -> Self {
        let resource = resource.into();
        for destination in &mut destinations {
            destination.exporter.set_resource_source(&resource);
        }
        Self {
            buffer: Mutex::new(Buffer::default()),
            capacity,
            destinations,
            counters: Counters::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Buffers a finished span under its trace, or drops and counts it when the buffer is full.
    pub(super) fn push(&self, span: SpanData) {
        let trace_id = span.span_context.trace_id();
        let mut buffer = self.lock();
        if buffer.len >= self.capacity {
            // Counted where its trace's spans wait too, so that the flush that takes them reports
            // the loss.
            buffer.spans_of(trace_id).refused += 1;
            drop(buffer);
            self.counters.refused(1);
            return;
        }
        buffer.len += 1;
        buffer.spans_of(trace_id).spans.push(span);
    }

    /// Marks `trace_id` as an invocation in flight until its [`take_trace`](Self::take_trace).
    pub(super) fn open(&self, trace_id: TraceId) {
        self.lock().open.entry(trace_id).or_default().invocations += 1;
    }

    /// Closes `trace_id` and takes its spans finished so far, with those of every trace no
    /// invocation has open: spans that ended after their invocation's flush (work that outlived
    /// it) or outside any invocation. They leave with the next flush instead of filling the
    /// buffer until the shutdown flush, which without an extension never comes.
    pub(super) fn take_trace(&self, trace_id: TraceId) -> TraceSpans {
        let mut buffer = self.lock();
        let mut taken = match buffer.open.get_mut(&trace_id) {
            Some(open) => {
                open.invocations -= 1;
                let taken = std::mem::take(&mut open.finished);
                if open.invocations == 0 {
                    buffer.open.remove(&trace_id);
                }
                taken
            }
            None => TraceSpans::default(),
        };
        let unowned = std::mem::take(&mut buffer.unowned);
        taken.spans.extend(unowned.spans);
        taken.refused += unowned.refused;
        buffer.len -= taken.spans.len();
        taken
    }

    /// Takes every span finished so far, of every trace.
    pub(super) fn take_all(&self) -> TraceSpans {
        let mut buffer = self.lock();
        buffer.len = 0;
        let mut all = std::mem::take(&mut buffer.unowned);
        for open in buffer.open.values_mut() {
            let trace = std::mem::take(&mut open.finished);
            all.spans.extend(trace.spans);
            all.refused += trace.refused;
        }
        all
    }

    /// Spans waiting for export.
    pub(super) fn buffered(&self) -> usize {
        self.lock().len
    }
}

/// A [`SpanProcessor`] that buffers finished, sampled spans, per trace, until
/// [`SpanFlusher::flush`](super::SpanFlusher::flush) exports that trace's spans.
pub struct InvocationSpanProcessor {
    pub(super) pipeline: Arc<Pipeline>,
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
            self.pipeline.push(span);
        }
    }

    /// Exports synchronously, which is only safe outside a tokio runtime: inside one, an exporter
    /// that needs the runtime (OTLP) would wait on itself. Inside an invocation the
    /// [`TraceLayer`](crate::TraceLayer) uses [`SpanFlusher::flush`](super::SpanFlusher::flush),
    /// which is async.
    ///
    /// Bounded by each exporter's timeout: the export runs on a current-thread runtime of its
    /// own, for its timers (and the I/O of exporters that need one).
    fn force_flush(&self) -> OTelSdkResult {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(OTelSdkError::InternalFailure(
                "force_flush inside a tokio runtime could deadlock; await SpanFlusher::flush instead"
                    .into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| {
                OTelSdkError::InternalFailure(format!("no runtime to flush on: {err}"))
            })?;
        let pending = self.pipeline.take_all();
        // Each destination's own timeout is the bound (`Bound::default()` would be none at all).
        let bound = Bound {
            limit: Some(Duration::MAX),
            cut: None,
        };
        let outcome = runtime.block_on(self.pipeline.export(None, pending, bound));
        match outcome.dropped.total() {
            0 => Ok(()),
            dropped => Err(OTelSdkError::InternalFailure(format!(
                "{dropped} spans dropped"
            ))),
        }
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
#[path = "force_flush_tests.rs"]
mod force_flush_tests;

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;

    use super::*;
    use crate::export::console::tests::span_in;

    fn pipeline(capacity: usize) -> Pipeline {
        Pipeline::new(Vec::new(), Resource::builder_empty().build(), capacity)
    }

    /// An SDK exporter that keeps the resource it is given.
    #[derive(Debug, Default, Clone)]
    struct Keeps(Arc<Mutex<Option<Resource>>>);

    impl SpanExporter for Keeps {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            Ok(())
        }

        fn set_resource(&mut self, resource: &Resource) {
            *self.0.lock().expect("lock") = Some(resource.clone());
        }
    }

    fn named(name: &'static str) -> Resource {
        Resource::builder_empty()
            .with_attribute(KeyValue::new("service.name", name))
            .build()
    }

    fn service_name(kept: &Keeps) -> Option<String> {
        kept.0.lock().expect("lock").as_ref().and_then(|r| {
            r.get(&opentelemetry::Key::new("service.name"))
                .map(|v| v.to_string())
        })
    }

    /// Every destination is handed the pipeline's resource: an SDK exporter (`Plain`, through
    /// `Deliver`'s default `set_resource_source`) sends its spans with it.
    #[test]
    fn each_destination_gets_the_pipelines_resource() {
        let kept = Keeps::default();
        let _pipeline = Pipeline::new(
            vec![Destination::new(
                "keeps",
                Duration::from_secs(1),
                Plain(kept.clone()),
            )],
            named("hello"),
            16,
        );
        assert_eq!(service_name(&kept).as_deref(), Some("hello"));
        let mut plain = Plain(Keeps::default());
        plain.set_resource(&named("again"));
        assert_eq!(service_name(&plain.0).as_deref(), Some("again"));
    }

    /// An SDK exporter may wait on its backend: it is under the breaker unless it says
    /// otherwise.
    #[test]
    fn a_plain_exporter_may_stall() {
        assert!(Plain(Keeps::default()).may_stall());
    }

    #[test]
    fn debug_output_names_the_type_only() {
        assert_eq!(
            format!("{:?}", ResourceSource::from(named("x"))),
            "ResourceSource"
        );
        let processor = InvocationSpanProcessor {
            pipeline: Arc::new(pipeline(1)),
        };
        assert_eq!(format!("{processor:?}"), "InvocationSpanProcessor { .. }");
    }

    /// While the buffer is full, a refused span is counted against its trace when an invocation
    /// has it open (its flush reports the loss), and otherwise with the spans no invocation owns
    /// (the next flush reports it); a flood of refused spans of new traces adds no bookkeeping.
    #[test]
    fn refusals_are_counted_where_their_trace_waits() {
        let (one, two) = (TraceId::from_bytes([1; 16]), TraceId::from_bytes([2; 16]));
        let full = pipeline(1);
        full.open(one);
        full.open(two);
        full.push(span_in(1, 1));
        full.push(span_in(2, 1));
        full.push(span_in(2, 2));
        for trace in 3..=200 {
            full.push(span_in(trace, 1));
        }
        assert_eq!(full.counters.snapshot().dropped.buffer_full, 200);
        assert_eq!(
            full.lock().open.len(),
            2,
            "only the open traces have entries"
        );
        let taken = full.take_trace(two);
        assert_eq!(
            (taken.spans.len(), taken.refused),
            (0, 2 + 198),
            "its own two refusals and the unowned ones"
        );
        let taken = full.take_trace(one);
        assert_eq!((taken.spans.len(), taken.refused), (1, 0));
    }

    /// Refusals of traces no invocation has open leave with the next flush, like their spans;
    /// the shutdown flush takes every trace's.
    #[test]
    fn refusals_leave_with_the_spans_they_belong_with() {
        let pipeline = pipeline(2);
        pipeline.push(span_in(1, 1));
        pipeline.push(span_in(1, 2));
        pipeline.push(span_in(1, 3));
        let taken = pipeline.take_trace(TraceId::from_bytes([3; 16]));
        assert_eq!((taken.spans.len(), taken.refused), (2, 1));
        assert_eq!(pipeline.buffered(), 0);

        pipeline.push(span_in(4, 1));
        pipeline.push(span_in(4, 2));
        pipeline.push(span_in(4, 3));
        let all = pipeline.take_all();
        assert_eq!((all.spans.len(), all.refused), (2, 1));
        assert_eq!(pipeline.buffered(), 0);
    }

    #[test]
    fn each_trace_is_taken_on_its_own() {
        let pipeline = pipeline(16);
        pipeline.open(TraceId::from_bytes([1; 16]));
        pipeline.open(TraceId::from_bytes([2; 16]));
        for id in 1..=3 {
            pipeline.push(span_in(1, id));
            pipeline.push(span_in(2, id));
        }
        pipeline.push(span_in(1, 4));
        let first = pipeline.take_trace(TraceId::from_bytes([1; 16]));
        assert_eq!(first.spans.len(), 4);
        assert!(
            first
                .spans
                .iter()
                .all(|s| s.span_context.trace_id() == TraceId::from_bytes([1; 16]))
        );
        assert_eq!(pipeline.buffered(), 3, "trace 2 is left alone");
        assert!(
            pipeline
                .take_trace(TraceId::from_bytes([1; 16]))
                .spans
                .is_empty()
        );
        assert_eq!(
            pipeline
                .take_trace(TraceId::from_bytes([2; 16]))
                .spans
                .len(),
            3
        );
        assert_eq!(pipeline.buffered(), 0);
    }

    #[test]
    fn a_full_buffer_refuses_and_counts_against_the_trace() {
        let pipeline = pipeline(3);
        pipeline.open(TraceId::from_bytes([1; 16]));
        pipeline.open(TraceId::from_bytes([2; 16]));
        for id in 1..=3 {
            pipeline.push(span_in(1, id));
        }
        pipeline.push(span_in(1, 4));
        pipeline.push(span_in(2, 1));
        pipeline.push(span_in(2, 2));
        assert_eq!(pipeline.buffered(), 3);
        assert_eq!(pipeline.counters.snapshot().dropped.buffer_full, 3);
        let first = pipeline.take_trace(TraceId::from_bytes([1; 16]));
        assert_eq!((first.spans.len(), first.refused), (3, 1));
        // Room again: the next span is buffered.
        pipeline.push(span_in(2, 3));
        let second = pipeline.take_trace(TraceId::from_bytes([2; 16]));
        assert_eq!((second.spans.len(), second.refused), (1, 2));
    }
}
