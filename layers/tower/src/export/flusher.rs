//! The per-invocation export: one trace's spans, after the response, before the next event.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use futures_util::future::join_all;
use opentelemetry::trace::TraceId;
use opentelemetry_sdk::error::OTelSdkError;

use tokio::time::Instant;

use super::{
    DEFAULT_EXPORT_TIMEOUT, DEFAULT_FLUSH_BUDGET,
    breaker::{self, Admission, ProbeGuard, Transition},
    pipeline::{Delivery, Destination, Pipeline, TraceSpans},
};
use crate::{
    metrics::{Metrics, Unit},
    trace::{FlushFuture, FlushSpans},
};

/// The EMF metric (unit `Count`) that carries the spans dropped, for whatever reason.
pub const SPANS_DROPPED_METRIC: &str = "SpansDropped";

/// Spans dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DropCounts {
    /// Ended while [`MAX_BUFFERED_SPANS`](super::MAX_BUFFERED_SPANS) spans were waiting.
    pub buffer_full: u64,
    /// The exporter failed (collector down, daemon unreachable, socket buffer full).
    pub export_failed: u64,
    /// The export did not finish within its bound (the export timeout or the invocation deadline).
    pub timed_out: u64,
    /// Alone too large for one UDP datagram; never truncated.
    pub oversize: u64,
    /// Not sent: the exporter's breaker was open (its backend timed out or refused the
    /// connection, and the next probe is not due yet).
    pub breaker_open: u64,
    /// Taken, but the flush was dropped before it finished: its invocation was cut off (the
    /// shutdown drain's grace ran out) while exporting.
    pub cut_off: u64,
}

impl DropCounts {
    /// All reasons together.
    pub fn total(&self) -> u64 {
        self.buffer_full
            + self.export_failed
            + self.timed_out
            + self.oversize
            + self.breaker_open
            + self.cut_off
    }
}

impl fmt::Display for DropCounts {
    /// `3 export failed, 1 oversize`: the non-zero reasons.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reasons: Vec<String> = [
            (self.buffer_full, "buffer full"),
            (self.export_failed, "export failed"),
            (self.timed_out, "timed out"),
            (self.oversize, "oversize"),
            (self.breaker_open, "breaker open"),
            (self.cut_off, "cut off"),
        ]
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, reason)| format!("{count} {reason}"))
        .collect();
        f.pad(&reasons.join(", "))
    }
}

/// What one flush did. With several exporters each delivery counts: a span sent to two
/// exporters is exported twice, or exported once and dropped once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushOutcome {
    /// Span deliveries that succeeded.
    pub exported: u64,
    /// Spans (or deliveries) lost, by reason.
    pub dropped: DropCounts,
}

impl FlushOutcome {
    /// Nothing was exported and nothing dropped (export disabled, or nothing pending).
    pub fn is_nothing(&self) -> bool {
        self.exported == 0 && self.dropped.total() == 0
    }
}

/// Totals since the pipeline was built; see [`SpanFlusher::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Span deliveries that succeeded.
    pub exported: u64,
    /// Spans (or deliveries) lost, by reason.
    pub dropped: DropCounts,
}

/// The pipeline's running totals.
#[derive(Debug, Default)]
pub(super) struct Counters {
    exported: AtomicU64,
    buffer_full: AtomicU64,
    export_failed: AtomicU64,
    timed_out: AtomicU64,
    oversize: AtomicU64,
    breaker_open: AtomicU64,
    cut_off: AtomicU64,
    /// Dropped since the last [`SpanFlusher::take_dropped`].
    untaken: AtomicU64,
}

impl Counters {
    /// Spans refused by a full buffer (counted when refused, reported by their trace's flush).
    pub(super) fn refused(&self, count: u64) {
        self.buffer_full.fetch_add(count, Ordering::Relaxed);
        self.untaken.fetch_add(count, Ordering::Relaxed);
    }

    fn record(&self, outcome: &FlushOutcome) {
        let dropped = &outcome.dropped;
        self.exported.fetch_add(outcome.exported, Ordering::Relaxed);
        self.export_failed
            .fetch_add(dropped.export_failed, Ordering::Relaxed);
        self.timed_out
            .fetch_add(dropped.timed_out, Ordering::Relaxed);
        self.oversize.fetch_add(dropped.oversize, Ordering::Relaxed);
        self.breaker_open
            .fetch_add(dropped.breaker_open, Ordering::Relaxed);
        self.cut_off.fetch_add(dropped.cut_off, Ordering::Relaxed);
        // Buffer-full drops were counted when they happened.
        self.untaken
            .fetch_add(dropped.total() - dropped.buffer_full, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> ExportStats {
        ExportStats {
            exported: self.exported.load(Ordering::Relaxed),
            dropped: DropCounts {
                buffer_full: self.buffer_full.load(Ordering::Relaxed),
                export_failed: self.export_failed.load(Ordering::Relaxed),
                timed_out: self.timed_out.load(Ordering::Relaxed),
                oversize: self.oversize.load(Ordering::Relaxed),
                breaker_open: self.breaker_open.load(Ordering::Relaxed),
                cut_off: self.cut_off.load(Ordering::Relaxed),
            },
        }
    }
}

/// The bounds of one export. None at all: no timer (outside a runtime, where none exists).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Bound {
    /// The flusher's own limit (its budget; without a deadline, its export timeout too). Each
    /// destination gets the shorter of this and its own timeout, and timing out on that trips
    /// its breaker.
    pub(super) limit: Option<Duration>,
    /// A cut that says nothing about the backend (the time left until the invocation's
    /// deadline, the shutdown's bound): a timeout cut short by it trips no breaker.
    pub(super) cut: Option<Duration>,
}

impl Bound {
    /// The timer of a destination whose own timeout is `timeout`, and whether it is the cut.
    fn timer(self, timeout: Duration) -> Option<(Duration, bool)> {
        if self.limit.is_none() && self.cut.is_none() {
            return None;
        }
        let allowed = self.limit.map_or(timeout, |limit| limit.min(timeout));
        Some(match self.cut {
            Some(cut) if cut < allowed => (cut, true),
            _ => (allowed, false),
        })
    }
}

impl Pipeline {
    /// Sends `pending` to every destination at once, each within its own timeout and `bound`,
    /// skipping those whose breaker is open. Logs once when a destination starts failing and
    /// once when it recovers, once per change of a breaker's state, and once per flush that
    /// drops spans.
    pub(super) async fn export(
        &self,
        trace_id: Option<TraceId>,
        pending: TraceSpans,
        bound: Bound,
    ) -> FlushOutcome {
        let TraceSpans { spans, refused } = pending;
        let mut outcome = FlushOutcome::default();
        outcome.dropped.buffer_full = refused;
        let count = spans.len() as u64;
        if count > 0 && !self.destinations.is_empty() {
            let now = Instant::now();
            let mut admitted = Vec::with_capacity(self.destinations.len());
            for to in &self.destinations {
                let (admission, transition) = to.breaker.admit(now);
                if let Some(transition) = transition {
                    log_transition(to, transition, None);
                }
                match admission {
                    Admission::Skip => outcome.dropped.breaker_open += count,
                    _ => admitted.push((to, admission)),
                }
            }
            // From here until every delivery is in, a drop of this flush (its invocation cut off
            // by the shutdown drain) would lose the spans taken: the guard counts them.
            let mut abandoned = Abandoned {
                counters: &self.counters,
                trace_id,
                dropped: Some(DropCounts {
                    breaker_open: outcome.dropped.breaker_open,
                    cut_off: count * admitted.len() as u64,
                    ..DropCounts::default()
                }),
            };
            // One copy per destination delivered to, the last one takes the original.
            let mut batches = Vec::with_capacity(admitted.len());
            if !admitted.is_empty() {
                for _ in 1..admitted.len() {
                    batches.push(spans.clone());
                }
                batches.push(spans);
            }
            let deliveries = admitted
                .into_iter()
                .zip(batches)
                .map(|((to, admission), batch)| {
                    let timer = bound.timer(to.timeout);
                    async move {
                        // A probe whose flush is dropped mid-way opens the breaker again.
                        let mut probe = ProbeGuard {
                            breaker: (admission == Admission::Probe).then_some(&to.breaker),
                        };
                        let deliver = to.exporter.deliver(batch);
                        let (delivery, cut_short) = match timer {
                            None => (deliver.await, false),
                            Some((bound, cut)) => {
                                match tokio::time::timeout(bound, deliver).await {
                                    Ok(delivery) => (delivery, false),
                                    Err(_) => (
                                        Delivery {
                                            error: Some(OTelSdkError::Timeout(bound)),
                                            ..Delivery::default()
                                        },
                                        cut,
                                    ),
                                }
                            }
                        };
                        probe.defuse();
                        (to, admission, delivery, cut_short)
                    }
                });
            let delivered = join_all(deliveries).await;
            abandoned.dropped = None;
            for (to, admission, delivery, cut_short) in delivered {
                let lost = count.saturating_sub(delivery.sent + delivery.oversize);
                outcome.exported += delivery.sent;
                outcome.dropped.oversize += delivery.oversize;
                match &delivery.error {
                    Some(OTelSdkError::Timeout(_)) => outcome.dropped.timed_out += lost,
                    Some(_) => outcome.dropped.export_failed += lost,
                    None => {}
                }
                if to.record_outcome(delivery.error.is_some()) {
                    match &delivery.error {
                        Some(err) => {
                            tracing::warn!(target: "lambda_observability::export", exporter = to.name, error = %err, "span export failing; spans of this invocation are dropped")
                        }
                        None => {
                            tracing::info!(target: "lambda_observability::export", exporter = to.name, "span export recovered")
                        }
                    }
                }
                let trips = to.exporter.may_stall()
                    && delivery
                        .error
                        .as_ref()
                        .is_some_and(|err| breaker::trips(err, cut_short));
                if let Some(transition) = to.breaker.record(admission, trips, Instant::now()) {
                    log_transition(to, transition, delivery.error.as_ref());
                }
            }
        }
        self.counters.record(&outcome);
        log_dropped(trace_id, outcome.dropped);
        outcome
    }
}

/// The one WARN line of a flush that dropped spans.
fn log_dropped(trace_id: Option<TraceId>, dropped: DropCounts) {
    if dropped.total() > 0 {
        let trace_id = trace_id.map(|id| id.to_string());
        tracing::warn!(
            target: "lambda_observability::export",
            trace_id,
            dropped = dropped.total(),
            buffer_full = dropped.buffer_full,
            export_failed = dropped.export_failed,
            timed_out = dropped.timed_out,
            oversize = dropped.oversize,
            breaker_open = dropped.breaker_open,
            cut_off = dropped.cut_off,
            "{} spans dropped ({dropped})",
            dropped.total()
        );
    }
}

/// Counts the spans of a flush dropped before its deliveries were in, as
/// [`DropCounts::cut_off`] (and those its open breakers skipped), and logs them: without it they
/// would be lost uncounted.
struct Abandoned<'a> {
    counters: &'a Counters,
    trace_id: Option<TraceId>,
    /// `None` once the deliveries are in.
    dropped: Option<DropCounts>,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(dropped) = self.dropped.take() {
            self.counters.record(&FlushOutcome {
                exported: 0,
                dropped,
            });
            log_dropped(self.trace_id, dropped);
        }
    }
}

/// The one log line of a change of a breaker's state.
fn log_transition(to: &Destination, transition: Transition, error: Option<&OTelSdkError>) {
    let error = error.map(tracing::field::display);
    match transition {
        Transition::Opened { probe_after } => tracing::warn!(
            target: "lambda_observability::export",
            exporter = to.name,
            error,
            probe_in_ms = probe_after.as_millis() as u64,
            "span export breaker opened; this exporter is skipped until a probe succeeds"
        ),
        Transition::Probing => tracing::info!(
            target: "lambda_observability::export",
            exporter = to.name,
            "span export breaker half-open; this flush probes the exporter"
        ),
        Transition::Reopened { probe_after } => tracing::info!(
            target: "lambda_observability::export",
            exporter = to.name,
            error,
            probe_in_ms = probe_after.as_millis() as u64,
            "span export probe failed; the breaker stays open"
        ),
        Transition::Closed => tracing::info!(
            target: "lambda_observability::export",
            exporter = to.name,
            "span export breaker closed; the exporter answers again"
        ),
    }
}

/// Exports finished spans; cheap to clone.
#[derive(Clone)]
pub struct SpanFlusher {
    pub(super) pipeline: Option<Arc<Pipeline>>,
    pub(super) timeout: Duration,
    pub(super) budget: Duration,
    pub(super) metrics: Metrics,
}

impl fmt::Debug for SpanFlusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanFlusher")
            .field("enabled", &self.pipeline.is_some())
            .field("timeout", &self.timeout)
            .field("budget", &self.budget)
            .finish()
    }
}

impl SpanFlusher {
    /// A flusher that never exports anything.
    pub fn disabled() -> Self {
        Self {
            pipeline: None,
            timeout: DEFAULT_EXPORT_TIMEOUT,
            budget: DEFAULT_FLUSH_BUDGET,
            metrics: Metrics::disabled(),
        }
    }

    /// The flush budget: how long a [`flush`](Self::flush) may take after the response, before
    /// the runtime asks for the next event, whatever the exporters' own timeouts. Each export is
    /// bounded by the shortest of this, its exporter's timeout and the time left until the
    /// invocation's deadline. Defaults to [`DEFAULT_FLUSH_BUDGET`].
    pub fn flush_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The metrics the `SpansDropped` count goes to: after each invocation's flush that finds
    /// spans dropped (by it or since the last report: a full buffer, a collector timing out, a
    /// span too large for a datagram), the count is recorded and written at once as its own EMF
    /// line, before the runtime asks for the next event. Defaults to [`Metrics::disabled`] (the
    /// drops are only logged).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        if metrics.is_enabled() {
            crate::metrics::describe_counter!(
                SPANS_DROPPED_METRIC,
                Unit::Count,
                "spans dropped before export"
            );
        }
        self.metrics = metrics;
        self
    }

    /// Marks `trace_id` as an invocation in flight: until its own [`flush`](Self::flush), no
    /// other invocation's flush takes its spans. [`TraceLayer`](crate::TraceLayer) opens its
    /// invocation's trace when the invocation starts.
    pub fn open(&self, trace_id: TraceId) {
        if let Some(pipeline) = &self.pipeline {
            pipeline.open(trace_id);
        }
    }

    /// Exports the finished spans of `trace_id`: invocations running at once in one process
    /// neither export nor wait for each other's spans. Spans of traces no invocation has open
    /// ([`open`](Self::open)) go along — spans that ended after their own invocation's flush
    /// (work that outlived it) or outside any invocation — so that they leave with the next
    /// flush rather than wait for a shutdown flush that may never come.
    ///
    /// Never fails and never outlives its bound: the shortest of each exporter's timeout, the
    /// [flush budget](Self::flush_budget) and the time left until `deadline` (without one, the
    /// export timeout). An exporter whose breaker is open is skipped at once, its spans counted
    /// as [`DropCounts::breaker_open`]. A drop is logged at WARN with its count and reasons.
    pub async fn flush(&self, trace_id: TraceId, deadline: Option<SystemTime>) -> FlushOutcome {
        let Some(pipeline) = &self.pipeline else {
            return FlushOutcome::default();
        };
        let pending = pipeline.take_trace(trace_id);
        let bound = match deadline {
            None => Bound {
                limit: Some(self.budget.min(self.timeout)),
                cut: None,
            },
            Some(deadline) => Bound {
                limit: Some(self.budget),
                cut: Some(
                    deadline
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO),
                ),
            },
        };
        pipeline.export(Some(trace_id), pending, bound).await
    }

    /// Exports every span finished so far, of every trace, within `bound` (and each exporter's
    /// timeout): the shutdown flush.
    pub async fn flush_within(&self, bound: Duration) -> FlushOutcome {
        let Some(pipeline) = &self.pipeline else {
            return FlushOutcome::default();
        };
        let pending = pipeline.take_all();
        let bound = Bound {
            limit: None,
            cut: Some(bound),
        };
        pipeline.export(None, pending, bound).await
    }

    /// Totals since the pipeline was built.
    pub fn stats(&self) -> ExportStats {
        self.pipeline
            .as_ref()
            .map(|p| p.counters.snapshot())
            .unwrap_or_default()
    }

    /// Spans dropped (any reason) since the last call: for a per-invocation `SpansDropped`
    /// metric. A drop is taken once, by whichever invocation asks first.
    pub fn take_dropped(&self) -> u64 {
        self.pipeline
            .as_ref()
            .map_or(0, |p| p.counters.untaken.swap(0, Ordering::Relaxed))
    }

    /// Takes the spans dropped since the last report ([`take_dropped`](Self::take_dropped)) and,
    /// when there are any, records them as [`SPANS_DROPPED_METRIC`] and writes `metrics` at once:
    /// one EMF line before Lambda may freeze the process. Returns the count taken. With metrics
    /// disabled the count is only taken (the WARN line of the flush already said it).
    pub fn report_dropped(&self, metrics: &Metrics) -> u64 {
        let dropped = self.take_dropped();
        if dropped > 0 && metrics.is_enabled() {
            crate::metrics::counter!(SPANS_DROPPED_METRIC).increment(dropped);
            metrics.flush();
        }
        dropped
    }

    /// Spans waiting for export, all traces together.
    pub fn buffered(&self) -> usize {
        self.pipeline.as_ref().map_or(0, |p| p.buffered())
    }
}

impl FlushSpans for SpanFlusher {
    fn open(&self, trace_id: TraceId) {
        SpanFlusher::open(self, trace_id);
    }

    /// [`SpanFlusher::flush`], then the drops reported to [`metrics`](SpanFlusher::metrics):
    /// before the next event, not with the next invocation's metrics, because the environment
    /// may be frozen or shut down before there is one.
    fn flush(&self, trace_id: TraceId, deadline: Option<SystemTime>) -> FlushFuture {
        let flusher = self.clone();
        Box::pin(async move {
            SpanFlusher::flush(&flusher, trace_id, deadline).await;
            flusher.report_dropped(&flusher.metrics);
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::Mutex,
        time::{Duration, SystemTime},
    };

    use opentelemetry_sdk::{
        Resource,
        error::{OTelSdkError, OTelSdkResult},
        trace::{InMemorySpanExporter, SpanData, SpanExporter},
    };

    use super::*;
    use crate::export::{
        Telemetry,
        console::tests::span_in,
        pipeline::{Destination, Plain},
    };

    const TRACE_1: TraceId = TraceId::from_bytes([1; 16]);
    const TRACE_2: TraceId = TraceId::from_bytes([2; 16]);
    const TRACE_3: TraceId = TraceId::from_bytes([3; 16]);

    /// An exporter that never answers, or fails, on demand.
    #[derive(Debug)]
    struct Scripted {
        hang: bool,
    }

    impl SpanExporter for Scripted {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            if self.hang {
                std::future::pending::<()>().await;
            }
            Err(OTelSdkError::InternalFailure("collector down".into()))
        }
    }

    fn flusher(destinations: Vec<Destination>) -> SpanFlusher {
        Telemetry::with_destinations(
            destinations,
            Resource::builder_empty().build(),
            opentelemetry_sdk::trace::Sampler::AlwaysOn,
            Duration::from_secs(5),
        )
        .flusher()
    }

    /// A flusher exporting to an in-memory exporter, and that exporter.
    fn memory_flusher() -> (InMemorySpanExporter, SpanFlusher) {
        let memory = InMemorySpanExporter::default();
        let flusher = flusher(vec![Destination::new(
            "memory",
            Duration::from_secs(5),
            Plain(memory.clone()),
        )]);
        (memory, flusher)
    }

    fn push(flusher: &SpanFlusher, trace: u8, spans: u8) {
        let pipeline = flusher.pipeline.as_ref().expect("enabled");
        for id in 1..=spans {
            pipeline.push(span_in(trace, id));
        }
    }

    fn outcome(exported: u64, dropped: DropCounts) -> FlushOutcome {
        FlushOutcome { exported, dropped }
    }

    /// Every reason counts in the total (the `SpansDropped` metric and the WARN line), each
    /// once, and each is named.
    #[test]
    fn drop_counts_add_up_every_reason() {
        let dropped = DropCounts {
            buffer_full: 1,
            export_failed: 2,
            timed_out: 4,
            oversize: 8,
            breaker_open: 16,
            cut_off: 32,
        };
        assert_eq!(dropped.total(), 63);
        assert_eq!(
            dropped.to_string(),
            "1 buffer full, 2 export failed, 4 timed out, 8 oversize, 16 breaker open, 32 cut off"
        );
        assert_eq!(DropCounts::default().total(), 0);
        assert_eq!(DropCounts::default().to_string(), "");
    }

    /// "Nothing" is no export and no drop: either one alone is something.
    #[test]
    fn an_outcome_is_nothing_only_without_exports_and_drops() {
        assert!(FlushOutcome::default().is_nothing());
        assert!(!outcome(1, DropCounts::default()).is_nothing());
        let dropped = DropCounts {
            oversize: 1,
            ..DropCounts::default()
        };
        assert!(!outcome(0, dropped).is_nothing());
    }

    /// Which timer a destination gets: the shortest of its own timeout, the flusher's limit and
    /// the cut; `true` only when the cut is strictly the shortest (a timeout on it says nothing
    /// about the backend, so it trips no breaker). No bound at all: no timer.
    #[test]
    fn the_timer_is_the_shortest_bound_and_names_the_cut() {
        const S: fn(u64) -> Duration = Duration::from_secs;
        let bound = |limit: Option<u64>, cut: Option<u64>| Bound {
            limit: limit.map(S),
            cut: cut.map(S),
        };
        assert_eq!(bound(None, None).timer(S(5)), None);
        assert_eq!(bound(Some(2), None).timer(S(5)), Some((S(2), false)));
        assert_eq!(bound(Some(9), None).timer(S(5)), Some((S(5), false)));
        assert_eq!(bound(None, Some(1)).timer(S(5)), Some((S(1), true)));
        assert_eq!(bound(None, Some(9)).timer(S(5)), Some((S(5), false)));
        assert_eq!(bound(Some(2), Some(1)).timer(S(5)), Some((S(1), true)));
        assert_eq!(bound(Some(2), Some(3)).timer(S(5)), Some((S(2), false)));
        // A cut equal to the limit: the limit is what timed out, the breaker may trip.
        assert_eq!(bound(Some(2), Some(2)).timer(S(5)), Some((S(2), false)));
    }

    /// Counts the batches it is given; delivers `sent` of each, drops `oversize` for their size
    /// and fails the rest.
    #[derive(Clone, Default)]
    struct Partial {
        batches: std::sync::Arc<std::sync::atomic::AtomicU64>,
        sent: u64,
        oversize: u64,
    }

    impl crate::export::Deliver for Partial {
        fn deliver(&self, _batch: Vec<SpanData>) -> crate::export::DeliveryFuture<'_> {
            self.batches.fetch_add(1, Ordering::Relaxed);
            let delivery = crate::export::Delivery::new(
                self.sent,
                self.oversize,
                Some(OTelSdkError::InternalFailure("socket buffer full".into())),
            );
            Box::pin(std::future::ready(delivery))
        }

        fn set_resource(&mut self, _resource: &Resource) {}
    }

    /// Each span of a partial delivery is counted once: sent, too large, or lost to the error.
    #[tokio::test]
    async fn a_partial_delivery_counts_each_span_once() {
        let partial = Partial {
            sent: 2,
            oversize: 1,
            ..Partial::default()
        };
        let flusher = flusher(vec![Destination::new(
            "udp",
            Duration::from_secs(5),
            partial,
        )]);
        push(&flusher, 1, 6);
        assert_eq!(
            flusher.flush(TRACE_1, None).await,
            outcome(
                2,
                DropCounts {
                    oversize: 1,
                    export_failed: 3,
                    ..DropCounts::default()
                }
            )
        );
        assert_eq!(flusher.take_dropped(), 4);
    }

    /// A flush with nothing pending sends nothing: no empty batch reaches a destination.
    #[tokio::test]
    async fn a_flush_with_nothing_pending_calls_no_exporter() {
        let partial = Partial::default();
        let flusher = flusher(vec![Destination::new(
            "counted",
            Duration::from_secs(5),
            partial.clone(),
        )]);
        assert!(flusher.flush(TRACE_1, None).await.is_nothing());
        assert!(
            flusher
                .flush_within(Duration::from_secs(1))
                .await
                .is_nothing()
        );
        assert_eq!(partial.batches.load(Ordering::Relaxed), 0);
        push(&flusher, 1, 1);
        flusher.flush(TRACE_1, None).await;
        assert_eq!(partial.batches.load(Ordering::Relaxed), 1);
    }

    /// The flusher's `Debug` says whether it exports and its bounds, nothing of the spans.
    #[test]
    fn the_flusher_debugs_as_its_settings() {
        let flusher = SpanFlusher::disabled().flush_budget(Duration::from_millis(300));
        assert_eq!(
            format!("{flusher:?}"),
            "SpanFlusher { enabled: false, timeout: 10s, budget: 300ms }"
        );
        let (_, enabled) = memory_flusher();
        assert!(
            format!("{enabled:?}").starts_with("SpanFlusher { enabled: true, timeout: 5s,"),
            "{enabled:?}"
        );
    }

    #[tokio::test]
    async fn a_flush_exports_its_own_trace_only() {
        let (memory, flusher) = memory_flusher();
        // Two invocations interleaved: trace 1 has ended, trace 2 is still running.
        flusher.open(TRACE_1);
        flusher.open(TRACE_2);
        push(&flusher, 1, 3);
        push(&flusher, 2, 2);
        let first = flusher.flush(TRACE_1, None).await;
        assert_eq!(first, outcome(3, DropCounts::default()));
        let exported = memory.get_finished_spans().expect("spans");
        assert!(
            exported
                .iter()
                .all(|s| s.span_context.trace_id() == TRACE_1),
            "{exported:?}"
        );
        assert_eq!(flusher.buffered(), 2, "trace 2 waits for its own flush");
        push(&flusher, 2, 1);
        assert_eq!(
            flusher.flush(TRACE_2, None).await,
            outcome(3, DropCounts::default())
        );
        assert_eq!(memory.get_finished_spans().expect("spans").len(), 6);
        assert!(flusher.flush(TRACE_1, None).await.is_nothing());
        assert_eq!(flusher.stats().exported, 6);
    }

    #[tokio::test]
    async fn late_spans_leave_with_the_next_flush_but_open_traces_wait_for_their_own() {
        let (memory, flusher) = memory_flusher();
        flusher.open(TRACE_1);
        push(&flusher, 1, 2);
        assert_eq!(flusher.flush(TRACE_1, None).await.exported, 2);
        // Work of trace 1 that outlived its invocation; meanwhile invocations 2 and 3 run.
        flusher.open(TRACE_2);
        flusher.open(TRACE_3);
        flusher
            .pipeline
            .as_ref()
            .expect("enabled")
            .push(span_in(1, 9));
        push(&flusher, 2, 1);
        push(&flusher, 3, 1);
        assert_eq!(
            flusher.flush(TRACE_2, None).await.exported,
            2,
            "its own span and the late one of trace 1"
        );
        assert_eq!(
            flusher.buffered(),
            1,
            "trace 3 is still open: not 2's to export"
        );
        assert_eq!(flusher.flush(TRACE_3, None).await.exported, 1);
        assert_eq!(memory.get_finished_spans().expect("spans").len(), 5);
    }

    #[tokio::test]
    async fn a_full_buffer_drops_and_counts_per_trace() {
        let memory = InMemorySpanExporter::default();
        let telemetry = Telemetry::with_destinations(
            vec![Destination::new(
                "memory",
                Duration::from_secs(5),
                Plain(memory.clone()),
            )],
            Resource::builder_empty().build(),
            opentelemetry_sdk::trace::Sampler::AlwaysOn,
            Duration::from_secs(5),
        );
        let flusher = telemetry.flusher();
        let capacity = crate::export::MAX_BUFFERED_SPANS;
        let pipeline = flusher.pipeline.as_ref().expect("enabled");
        flusher.open(TRACE_1);
        flusher.open(TRACE_2);
        for n in 0..capacity {
            pipeline.push(span_in(2, (n % 250) as u8 + 1));
        }
        push(&flusher, 1, 5);
        assert_eq!(flusher.buffered(), capacity);
        assert_eq!(
            flusher.flush(TRACE_1, None).await,
            outcome(
                0,
                DropCounts {
                    buffer_full: 5,
                    ..DropCounts::default()
                }
            )
        );
        assert_eq!(flusher.take_dropped(), 5);
        assert_eq!(flusher.take_dropped(), 0, "taken once");
        assert_eq!(flusher.flush(TRACE_2, None).await.exported, capacity as u64);
        assert_eq!(flusher.stats().dropped.buffer_full, 5);
    }

    #[tokio::test]
    async fn each_batch_goes_to_each_exporter_with_its_own_failure_state() {
        let (first, second) = (
            InMemorySpanExporter::default(),
            InMemorySpanExporter::default(),
        );
        let flusher = flusher(vec![
            Destination::new("first", Duration::from_secs(5), Plain(first.clone())),
            Destination::new(
                "failing",
                Duration::from_secs(5),
                Plain(Scripted { hang: false }),
            ),
            Destination::new("second", Duration::from_secs(5), Plain(second.clone())),
        ]);
        push(&flusher, 1, 4);
        let logs = crate::test_support::capture_logs(async {
            assert_eq!(
                flusher.flush(TRACE_1, None).await,
                outcome(
                    8,
                    DropCounts {
                        export_failed: 4,
                        ..DropCounts::default()
                    }
                )
            );
        })
        .await;
        for exporter in [&first, &second] {
            let spans = exporter.get_finished_spans().expect("spans");
            assert_eq!(spans.len(), 4);
        }
        let failing: Vec<&String> = logs
            .iter()
            .filter(|l| l.contains("span export failing"))
            .collect();
        assert_eq!(failing.len(), 1, "{logs:#?}");
        assert!(failing[0].contains("\"exporter\":\"failing\""), "{logs:#?}");
        let dropped: Vec<&String> = logs
            .iter()
            .filter(|l| l.contains("4 spans dropped (4 export failed)"))
            .collect();
        assert_eq!(dropped.len(), 1, "{logs:#?}");
        assert_eq!(flusher.take_dropped(), 4);
    }

    #[tokio::test]
    async fn drops_are_reported_once_as_a_spans_dropped_emf_line() {
        let (metrics, out, _guard) = crate::metrics::test_support::metrics().await;
        let flusher = flusher(vec![Destination::new(
            "fails",
            Duration::from_secs(5),
            Plain(Scripted { hang: false }),
        )]);
        push(&flusher, 1, 4);
        flusher.flush(TRACE_1, None).await;
        assert_eq!(flusher.report_dropped(&metrics), 4);
        let lines = out.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let doc: serde_json::Value = serde_json::from_str(&lines[0]).expect("EMF");
        assert_eq!(doc[SPANS_DROPPED_METRIC], 4, "{doc}");
        assert_eq!(flusher.report_dropped(&metrics), 0, "reported once");
        assert_eq!(out.lines().len(), 1, "nothing to report: no line");
    }

    /// Through `FlushSpans`, as `TraceLayer` drives it: `open` keeps a running invocation's
    /// spans for its own flush, `flush` exports the finished ones.
    #[tokio::test]
    async fn the_trace_layers_handle_opens_and_flushes_like_the_flusher() {
        let (memory, flusher) = memory_flusher();
        FlushSpans::open(&flusher, TRACE_1);
        FlushSpans::open(&flusher, TRACE_2);
        push(&flusher, 1, 2);
        push(&flusher, 2, 1);
        FlushSpans::flush(&flusher, TRACE_1, None).await;
        assert_eq!(memory.get_finished_spans().expect("spans").len(), 2);
        assert_eq!(
            flusher.buffered(),
            1,
            "trace 2 is open: left to its own flush"
        );
        FlushSpans::flush(&flusher, TRACE_2, None).await;
        assert_eq!(memory.get_finished_spans().expect("spans").len(), 3);
        assert_eq!(flusher.buffered(), 0);
    }

    /// Without a drop, reporting writes nothing: the metrics the invocation recorded meanwhile
    /// are left for its own flush, in one line, instead of being written early.
    #[tokio::test]
    async fn no_drop_no_metrics_line() {
        let (metrics, out, _guard) = crate::metrics::test_support::metrics().await;
        let (_, flusher) = memory_flusher();
        push(&flusher, 1, 1);
        assert_eq!(flusher.flush(TRACE_1, None).await.exported, 1);
        crate::metrics::counter!("Handled").increment(1);
        assert_eq!(flusher.report_dropped(&metrics), 0);
        assert!(out.lines().is_empty(), "{:?}", out.lines());
        metrics.flush();
        let lines = out.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("Handled") && !lines[0].contains(SPANS_DROPPED_METRIC),
            "{lines:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_dropped_mid_export_counts_the_spans_it_took_as_cut_off() {
        let flusher = flusher(vec![
            Destination::new(
                "hangs",
                Duration::from_secs(5),
                Plain(Scripted { hang: true }),
            ),
            Destination::new(
                "also",
                Duration::from_secs(5),
                Plain(Scripted { hang: true }),
            ),
        ]);
        push(&flusher, 1, 3);
        // The drain's grace ends while both deliveries are still out: the flush is dropped.
        let cut = tokio::time::timeout(Duration::from_millis(200), flusher.flush(TRACE_1, None));
        assert!(cut.await.is_err(), "the flush was still exporting");
        let cut_off = DropCounts {
            cut_off: 6,
            ..DropCounts::default()
        };
        assert_eq!(
            flusher.stats().dropped,
            cut_off,
            "three spans, two deliveries each"
        );
        assert_eq!(flusher.take_dropped(), 6, "reported as SpansDropped");
        assert!(
            flusher.flush(TRACE_1, None).await.is_nothing(),
            "the spans were taken; nothing is counted twice"
        );
        assert_eq!(cut_off.to_string(), "6 cut off");
    }

    #[tokio::test(start_paused = true)]
    async fn a_passed_deadline_leaves_no_time_and_counts_what_is_dropped() {
        let flusher = flusher(vec![Destination::new(
            "hangs",
            Duration::from_secs(5),
            Plain(Scripted { hang: true }),
        )]);
        push(&flusher, 1, 3);
        let past = SystemTime::now() - Duration::from_secs(1);
        // In virtual time: were the deadline ignored, the flush would take the exporter's 5 s.
        let started = tokio::time::Instant::now();
        let flushed = flusher.flush(TRACE_1, Some(past)).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "no time at all");
        assert_eq!(
            flushed,
            outcome(
                0,
                DropCounts {
                    timed_out: 3,
                    ..DropCounts::default()
                }
            )
        );
        assert!(
            flusher.flush(TRACE_1, None).await.is_nothing(),
            "the batch was taken"
        );
    }

    #[tokio::test]
    async fn failures_are_logged_once_and_an_empty_flush_changes_nothing() {
        let flusher = flusher(vec![Destination::new(
            "fails",
            Duration::from_secs(5),
            Plain(Scripted { hang: false }),
        )]);
        let seen = Mutex::new(Vec::new());
        let logs = crate::test_support::capture_logs(async {
            push(&flusher, 1, 2);
            let first = flusher.flush(TRACE_1, None).await;
            let empty = flusher.flush(TRACE_1, None).await;
            push(&flusher, 2, 1);
            let second = flusher.flush(TRACE_2, None).await;
            *seen.lock().expect("lock") = vec![first, empty, second];
        })
        .await;
        let seen = seen.into_inner().expect("lock");
        assert_eq!(seen[0].dropped.export_failed, 2);
        assert!(seen[1].is_nothing());
        assert_eq!(seen[2].dropped.export_failed, 1);
        assert_eq!(
            logs.iter()
                .filter(|l| l.contains("span export failing"))
                .count(),
            1,
            "still failing after an empty flush: no second line\n{logs:#?}"
        );
        assert_eq!(
            logs.iter().filter(|l| l.contains("spans dropped")).count(),
            2,
            "{logs:#?}"
        );
    }
}
