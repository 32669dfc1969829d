//! The breaker of one destination: a span backend that stops answering costs one export
//! timeout, not one per invocation.
//!
//! Closed, every flush delivers. An export that times out on its own bound (not cut short by the
//! invocation's deadline or the shutdown's bound), or whose connection fails (refused), opens
//! it: the next flushes skip the destination at once and count its spans as
//! [`DropCounts::breaker_open`](super::DropCounts::breaker_open). [`FIRST_PROBE_AFTER`] after the
//! open, one flush delivers as a probe (half-open; the flushes meanwhile still skip): an answer,
//! even an error status, closes the breaker; another timeout or refused connection opens it again
//! with twice the wait, up to [`MAX_PROBE_AFTER`]. Times are the pipeline's clock,
//! `tokio::time::Instant` (virtual in tests with a paused clock).

use std::{sync::Mutex, time::Duration};

use opentelemetry_sdk::error::OTelSdkError;
use tokio::time::Instant;

/// How long after a breaker opens the first probe may go.
pub const FIRST_PROBE_AFTER: Duration = Duration::from_secs(1);

/// The longest wait between probes: each failed probe doubles it up to this.
pub const MAX_PROBE_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    /// Skipping until `until`, then probing; a failed probe waits twice `wait`.
    Open {
        until: Instant,
        wait: Duration,
    },
    /// One delivery in flight as the probe; the others skip.
    HalfOpen {
        wait: Duration,
    },
}

/// What a flush does with the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// Deliver as usual.
    Deliver,
    /// Deliver as the probe of an open breaker.
    Probe,
    /// Skip: the breaker is open (or another flush is probing).
    Skip,
}

/// A change of state, worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transition {
    /// Closed to open; the first probe after `probe_after`.
    Opened { probe_after: Duration },
    /// Open to half-open: this delivery is the probe.
    Probing,
    /// The probe failed; the next one after `probe_after`.
    Reopened { probe_after: Duration },
    /// The probe was answered.
    Closed,
}

#[derive(Debug)]
pub(super) struct Breaker {
    state: Mutex<State>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::Closed),
        }
    }
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a flush at `now` delivers, probes or skips; a probe's half-open state is the
    /// [`Transition::Probing`] returned with it.
    pub(super) fn admit(&self, now: Instant) -> (Admission, Option<Transition>) {
        let mut state = self.lock();
        match *state {
            State::Closed => (Admission::Deliver, None),
            State::Open { until, wait } if now >= until => {
                *state = State::HalfOpen { wait };
                (Admission::Probe, Some(Transition::Probing))
            }
            State::Open { .. } | State::HalfOpen { .. } => (Admission::Skip, None),
        }
    }

    /// Records how an admitted delivery ended at `now`: `trips` when it timed out on its own bound
    /// or could not connect. Returns the change of state, if any.
    pub(super) fn record(
        &self,
        admission: Admission,
        trips: bool,
        now: Instant,
    ) -> Option<Transition> {
        let mut state = self.lock();
        match (admission, *state, trips) {
            (Admission::Deliver, State::Closed, true) => {
                *state = State::Open {
                    until: now + FIRST_PROBE_AFTER,
                    wait: FIRST_PROBE_AFTER,
                };
                Some(Transition::Opened {
                    probe_after: FIRST_PROBE_AFTER,
                })
            }
            (Admission::Probe, State::HalfOpen { wait }, true) => {
                let wait = (wait * 2).min(MAX_PROBE_AFTER);
                *state = State::Open {
                    until: now + wait,
                    wait,
                };
                Some(Transition::Reopened { probe_after: wait })
            }
            (Admission::Probe, State::HalfOpen { .. }, false) => {
                *state = State::Closed;
                Some(Transition::Closed)
            }
            // A delivery admitted while closed that ends after another one opened the breaker
            // (invocations running at once), or a plain success: nothing changes.
            _ => None,
        }
    }

    /// A probe that never ended (its flush was dropped): open again with the same wait, so
    /// that a later flush probes.
    pub(super) fn abandon_probe(&self, now: Instant) {
        let mut state = self.lock();
        if let State::HalfOpen { wait } = *state {
            *state = State::Open {
                until: now + wait,
                wait,
            };
        }
    }

    /// Whether the breaker is open or probing.
    #[cfg(test)]
    pub(super) fn is_open(&self) -> bool {
        *self.lock() != State::Closed
    }
}

/// Reverts a probe whose flush is dropped before it records its outcome.
pub(super) struct ProbeGuard<'a> {
    pub(super) breaker: Option<&'a Breaker>,
}

impl ProbeGuard<'_> {
    pub(super) fn defuse(&mut self) {
        self.breaker = None;
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if let Some(breaker) = self.breaker {
            breaker.abandon_probe(Instant::now());
        }
    }
}

/// Whether a failed delivery says the backend does not answer: it timed out on its own bound
/// (`cut_short`: the bound was the invocation's deadline or the shutdown's, which says nothing
/// about the backend), or the connection failed. opentelemetry-otlp's HTTP exporter reports
/// every connection failure (refused, reset, DNS) as `network error`; other exporters' errors say
/// `connection refused`. A status answered (`500`) or a build that failed does not trip it.
pub(super) fn trips(error: &OTelSdkError, cut_short: bool) -> bool {
    match error {
        OTelSdkError::Timeout(_) => !cut_short,
        other => {
            let text = other.to_string().to_ascii_lowercase();
            text.contains("connection refused")
                || text.contains("connectionrefused")
                || text.contains("network error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_thirty_measured_from_each_open() {
        let breaker = Breaker::default();
        let start = Instant::now();
        assert_eq!(breaker.admit(start), (Admission::Deliver, None));
        assert_eq!(
            breaker.record(Admission::Deliver, true, start),
            Some(Transition::Opened {
                probe_after: Duration::from_secs(1)
            })
        );
        let mut opened = start;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let wait = [1, 2, 4, 8, 16, 30, 30, 30][waits.len()];
            let wait = Duration::from_secs(wait);
            let just_before = opened + wait - Duration::from_millis(1);
            assert_eq!(breaker.admit(just_before), (Admission::Skip, None));
            let at = opened + wait;
            assert_eq!(
                breaker.admit(at),
                (Admission::Probe, Some(Transition::Probing))
            );
            assert_eq!(breaker.admit(at), (Admission::Skip, None), "one probe");
            // The probe waits out a 2 s timeout; the next wait runs from its end.
            opened = at + Duration::from_secs(2);
            match breaker.record(Admission::Probe, true, opened) {
                Some(Transition::Reopened { probe_after }) => waits.push(probe_after),
                other => panic!("{other:?}"),
            }
        }
        let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [2, 4, 8, 16, 30, 30, 30, 30]);
    }

    #[test]
    fn an_answered_probe_closes_and_a_late_outcome_changes_nothing() {
        let breaker = Breaker::default();
        let now = Instant::now();
        breaker.record(Admission::Deliver, true, now);
        // Another invocation's delivery, admitted while closed, ends timed out too: no new line.
        assert_eq!(breaker.record(Admission::Deliver, true, now), None);
        assert_eq!(breaker.record(Admission::Deliver, false, now), None);
        assert!(breaker.is_open());
        let later = now + FIRST_PROBE_AFTER;
        assert_eq!(breaker.admit(later).0, Admission::Probe);
        assert_eq!(
            breaker.record(Admission::Probe, false, later),
            Some(Transition::Closed)
        );
        assert_eq!(breaker.admit(later), (Admission::Deliver, None));
        assert!(!breaker.is_open());
    }

    #[test]
    fn an_abandoned_probe_lets_a_later_flush_probe() {
        let breaker = Breaker::default();
        let now = Instant::now();
        breaker.record(Admission::Deliver, true, now);
        let at = now + FIRST_PROBE_AFTER;
        assert_eq!(breaker.admit(at).0, Admission::Probe);
        drop(ProbeGuard {
            breaker: Some(&breaker),
        });
        assert_eq!(breaker.admit(at).0, Admission::Skip, "open again");
        assert_eq!(
            breaker.admit(at + FIRST_PROBE_AFTER * 2).0,
            Admission::Probe
        );
    }

    #[test]
    fn timeouts_and_failed_connections_trip_it_answers_and_cut_short_bounds_do_not() {
        let timeout = OTelSdkError::Timeout(Duration::from_secs(2));
        assert!(trips(&timeout, false));
        assert!(!trips(&timeout, true), "the deadline cut it short");
        for text in [
            "HTTP export failed: network error",
            "sending: Connection refused (os error 111)",
        ] {
            assert!(trips(&OTelSdkError::InternalFailure(text.into()), false));
        }
        for text in [
            "HTTP export failed with status code: 500",
            "the exporter could not be built: no AWS credentials",
        ] {
            assert!(!trips(&OTelSdkError::InternalFailure(text.into()), false));
        }
    }
}

/// The breaker in the pipeline, on virtual time: flushes to a backend that hangs, refuses,
/// answers with an error or answers, as the test switches it.
#[cfg(test)]
mod pipeline_tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicU8, AtomicU64, Ordering},
        },
        time::SystemTime,
    };

    use opentelemetry::trace::TraceId;
    use opentelemetry_sdk::{Resource, trace::SpanData};

    use super::*;
    use crate::export::{
        DEFAULT_FLUSH_BUDGET, DropCounts, FlushOutcome, SPANS_DROPPED_METRIC, SpanFlusher,
        Telemetry,
        console::tests::span_in,
        pipeline::{Deliver, Delivery, DeliveryFuture, Destination},
    };

    const HANG: u8 = 0;
    const REFUSE: u8 = 1;
    const STATUS_500: u8 = 2;
    const ANSWER: u8 = 3;

    /// A backend as the exporter sees it; counts the deliveries it was given.
    #[derive(Clone, Default)]
    struct Backend {
        mode: Arc<AtomicU8>,
        calls: Arc<AtomicU64>,
        received: Arc<AtomicU64>,
        /// What [`Deliver::may_stall`] answers is `!datagrams`.
        datagrams: bool,
    }

    impl Backend {
        fn new(mode: u8) -> Self {
            let backend = Self::default();
            backend.set(mode);
            backend
        }

        fn set(&self, mode: u8) {
            self.mode.store(mode, Ordering::Relaxed);
        }

        fn calls(&self) -> u64 {
            self.calls.load(Ordering::Relaxed)
        }
    }

    impl Deliver for Backend {
        fn deliver(&self, batch: Vec<SpanData>) -> DeliveryFuture<'_> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mode = self.mode.load(Ordering::Relaxed);
            let count = batch.len() as u64;
            Box::pin(async move {
                let failed = |text: &str| Delivery {
                    error: Some(OTelSdkError::InternalFailure(text.into())),
                    ..Delivery::default()
                };
                match mode {
                    HANG => std::future::pending().await,
                    REFUSE => failed("HTTP export failed: network error"),
                    STATUS_500 => failed("HTTP export failed with status code: 500"),
                    _ => {
                        self.received.fetch_add(count, Ordering::Relaxed);
                        Delivery::new(count, 0, None)
                    }
                }
            })
        }

        fn set_resource(&mut self, _resource: &Resource) {}

        fn may_stall(&self) -> bool {
            !self.datagrams
        }
    }

    fn flusher(timeout: Duration, backend: &Backend) -> SpanFlusher {
        Telemetry::with_destinations(
            vec![Destination::new("backend", timeout, backend.clone())],
            Resource::builder_empty().build(),
            opentelemetry_sdk::trace::Sampler::AlwaysOn,
            Duration::from_secs(10),
        )
        .flusher()
    }

    /// One invocation: 3 spans of trace `n`, then its flush with a deadline far off; returns the
    /// outcome and how much (virtual) time the flush took.
    async fn invocation(flusher: &SpanFlusher, n: u8) -> (FlushOutcome, Duration) {
        let trace = TraceId::from_bytes([n; 16]);
        flusher.open(trace);
        let pipeline = flusher.pipeline.as_ref().expect("enabled");
        for id in 1..=3 {
            pipeline.push(span_in(n, id));
        }
        let deadline = SystemTime::now() + Duration::from_secs(600);
        let started = Instant::now();
        let outcome = flusher.flush(trace, Some(deadline)).await;
        (outcome, started.elapsed())
    }

    fn dropped(timed_out: u64, export_failed: u64, breaker_open: u64) -> DropCounts {
        DropCounts {
            timed_out,
            export_failed,
            breaker_open,
            ..DropCounts::default()
        }
    }

    fn count(logs: &[String], text: &str) -> usize {
        logs.iter().filter(|l| l.contains(text)).count()
    }

    #[tokio::test(start_paused = true)]
    async fn a_backend_that_never_answers_costs_one_timeout_then_probes_with_backoff() {
        let backend = Backend::new(HANG);
        let flusher = flusher(Duration::from_secs(2), &backend);
        let mut outcomes = Vec::new();
        let mut flushing = Duration::ZERO;
        let logs = crate::test_support::capture_logs(async {
            for n in 1..=6 {
                let (outcome, took) = invocation(&flusher, n).await;
                outcomes.push(outcome.dropped);
                flushing += took;
                // The next invocation's work.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
        .await;
        // Before the breaker: 6 × 2 s = 12 s. Now: the first export's 2 s, and the probe's 2 s
        // one second after the open; the others skip at once.
        assert_eq!(flushing, Duration::from_secs(4), "{outcomes:?}");
        assert!(flushing < Duration::from_secs(5));
        assert_eq!(backend.calls(), 2, "one export and one probe");
        assert_eq!(
            outcomes,
            [
                dropped(3, 0, 0), // 0 s → 2 s, opens; first probe due at 3 s
                dropped(0, 0, 3), // 2.5 s
                dropped(3, 0, 0), // 3 s: the probe, 3 s → 5 s; the next one due at 7 s
                dropped(0, 0, 3), // 5.5 s
                dropped(0, 0, 3), // 6 s
                dropped(0, 0, 3), // 6.5 s
            ]
        );
        assert_eq!(count(&logs, "span export breaker opened"), 1, "{logs:#?}");
        let opened = logs
            .iter()
            .find(|l| l.contains("span export breaker opened"))
            .expect("opened");
        for field in [
            r#""level":"WARN""#,
            r#""exporter":"backend""#,
            r#""probe_in_ms":1000"#,
            r#""error":"Operation timed out after 2s""#,
        ] {
            assert!(opened.contains(field), "{field}: {opened}");
        }
        assert_eq!(count(&logs, "breaker half-open"), 1, "{logs:#?}");
        assert_eq!(count(&logs, "probe failed"), 1, "{logs:#?}");
        assert!(
            logs.iter()
                .any(|l| l.contains("probe failed") && l.contains(r#""probe_in_ms":2000"#)),
            "{logs:#?}"
        );
        assert_eq!(count(&logs, "span export failing"), 1, "{logs:#?}");
        assert_eq!(count(&logs, "breaker closed"), 0, "{logs:#?}");
        // Every flush that dropped says so, with the reason.
        assert_eq!(
            count(&logs, "3 spans dropped (3 breaker open)"),
            4,
            "{logs:#?}"
        );
        assert_eq!(
            count(&logs, "3 spans dropped (3 timed out)"),
            2,
            "{logs:#?}"
        );
        assert!(
            logs.iter()
                .filter(|l| l.contains("(3 breaker open)"))
                .all(|l| l.contains(r#""breaker_open":3"#)),
            "{logs:#?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_flush_budget_bounds_a_long_exporter_timeout_and_opens_the_breaker() {
        let backend = Backend::new(HANG);
        // The OTLP default: 10 s.
        let flusher = flusher(Duration::from_secs(10), &backend);
        let (outcome, took) = invocation(&flusher, 1).await;
        assert_eq!(took, DEFAULT_FLUSH_BUDGET);
        assert_eq!(outcome.dropped, dropped(3, 0, 0));
        let (outcome, took) = invocation(&flusher, 2).await;
        assert_eq!((outcome.dropped, took), (dropped(0, 0, 3), Duration::ZERO));
        assert_eq!(backend.calls(), 1);

        // A budget set by hand.
        let backend = Backend::new(HANG);
        let flusher = flusher_with_budget(&backend, Duration::from_millis(300));
        let (_, took) = invocation(&flusher, 1).await;
        assert_eq!(took, Duration::from_millis(300));
    }

    fn flusher_with_budget(backend: &Backend, budget: Duration) -> SpanFlusher {
        flusher(Duration::from_secs(10), backend).flush_budget(budget)
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_cut_short_by_the_deadline_opens_no_breaker() {
        let backend = Backend::new(HANG);
        let flusher = flusher(Duration::from_secs(2), &backend);
        let pipeline = flusher.pipeline.as_ref().expect("enabled");
        for n in 1..=2 {
            pipeline.push(span_in(n, 1));
            let passed = SystemTime::now() - Duration::from_secs(1);
            let outcome = flusher
                .flush(TraceId::from_bytes([n; 16]), Some(passed))
                .await;
            assert_eq!(outcome.dropped.timed_out, 1);
        }
        assert_eq!(backend.calls(), 2, "the backend was never judged");
        assert!(
            !flusher.pipeline.as_ref().expect("enabled").destinations[0]
                .breaker
                .is_open()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_opens_the_breaker_and_later_flushes_skip_it() {
        let backend = Backend::new(REFUSE);
        let flusher = flusher(Duration::from_secs(2), &backend);
        let (first, took) = invocation(&flusher, 1).await;
        assert_eq!((first.dropped, took), (dropped(0, 3, 0), Duration::ZERO));
        for n in 2..=4 {
            let (outcome, _) = invocation(&flusher, n).await;
            assert_eq!(outcome.dropped, dropped(0, 0, 3));
        }
        assert_eq!(backend.calls(), 1);
        // Probed after a second: refused again, skipped for two more.
        tokio::time::sleep(FIRST_PROBE_AFTER).await;
        assert_eq!(invocation(&flusher, 5).await.0.dropped, dropped(0, 3, 0));
        tokio::time::sleep(FIRST_PROBE_AFTER).await;
        assert_eq!(invocation(&flusher, 6).await.0.dropped, dropped(0, 0, 3));
        assert_eq!(backend.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_backend_that_answers_an_error_is_tried_every_time() {
        let backend = Backend::new(STATUS_500);
        let flusher = flusher(Duration::from_secs(2), &backend);
        for n in 1..=3 {
            assert_eq!(invocation(&flusher, n).await.0.dropped, dropped(0, 3, 0));
        }
        assert_eq!(backend.calls(), 3, "it answers: no breaker");
    }

    #[tokio::test(start_paused = true)]
    async fn datagrams_are_counted_and_retried_each_flush_with_no_breaker() {
        // UDP: an ICMP "port unreachable" reads as a refused connection, but a send never waits.
        let backend = Backend {
            datagrams: true,
            ..Backend::new(REFUSE)
        };
        let flusher = flusher(Duration::from_secs(2), &backend);
        for n in 1..=3 {
            let (outcome, took) = invocation(&flusher, n).await;
            assert_eq!((outcome.dropped, took), (dropped(0, 3, 0), Duration::ZERO));
        }
        assert_eq!(backend.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn once_the_backend_answers_again_the_probe_closes_the_breaker_and_spans_flow() {
        let backend = Backend::new(HANG);
        let flusher = flusher(Duration::from_secs(2), &backend);
        let mut outcomes = Vec::new();
        let logs = crate::test_support::capture_logs(async {
            outcomes.push(invocation(&flusher, 1).await.0);
            outcomes.push(invocation(&flusher, 2).await.0);
            backend.set(ANSWER);
            outcomes.push(invocation(&flusher, 3).await.0);
            tokio::time::sleep(FIRST_PROBE_AFTER).await;
            outcomes.push(invocation(&flusher, 4).await.0);
            outcomes.push(invocation(&flusher, 5).await.0);
        })
        .await;
        let exported: Vec<u64> = outcomes.iter().map(|o| o.exported).collect();
        assert_eq!(exported, [0, 0, 0, 3, 3], "{outcomes:?}");
        assert_eq!(outcomes[2].dropped, dropped(0, 0, 3), "not probed yet");
        assert_eq!(backend.calls(), 3, "the first, the probe, then as usual");
        assert_eq!(backend.received.load(Ordering::Relaxed), 6);
        for (text, times) in [
            ("span export breaker opened", 1),
            ("breaker half-open", 1),
            ("span export breaker closed", 1),
            ("span export recovered", 1),
            ("probe failed", 0),
        ] {
            assert_eq!(count(&logs, text), times, "{text}: {logs:#?}");
        }
        assert!(
            !flusher.pipeline.as_ref().expect("enabled").destinations[0]
                .breaker
                .is_open()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_drops_are_counted_in_the_stats_and_reported_as_spans_dropped() {
        let (metrics, out, _guard) = crate::metrics::test_support::metrics().await;
        let backend = Backend::new(HANG);
        let flusher = flusher(Duration::from_secs(2), &backend);
        invocation(&flusher, 1).await;
        assert_eq!(flusher.report_dropped(&metrics), 3);
        invocation(&flusher, 2).await;
        invocation(&flusher, 3).await;
        let stats = flusher.stats();
        assert_eq!(stats.exported, 0);
        assert_eq!(stats.dropped, dropped(3, 0, 6));
        assert_eq!(stats.dropped.total(), 9);
        assert_eq!(stats.dropped.to_string(), "3 timed out, 6 breaker open");
        assert_eq!(flusher.report_dropped(&metrics), 6);
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let last: serde_json::Value = serde_json::from_str(&lines[1]).expect("EMF");
        assert_eq!(last[SPANS_DROPPED_METRIC], 6, "{last}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_mid_flight_lets_a_later_flush_probe() {
        let backend = Backend::new(HANG);
        let flusher = flusher(Duration::from_secs(2), &backend);
        invocation(&flusher, 1).await;
        tokio::time::sleep(FIRST_PROBE_AFTER).await;
        // The probe's flush is abandoned half-way (its invocation future dropped).
        let probing = tokio::time::timeout(Duration::from_millis(100), invocation(&flusher, 2));
        assert!(probing.await.is_err());
        assert_eq!(backend.calls(), 2);
        assert_eq!(invocation(&flusher, 3).await.0.dropped, dropped(0, 0, 3));
        tokio::time::sleep(FIRST_PROBE_AFTER).await;
        backend.set(ANSWER);
        assert_eq!(invocation(&flusher, 4).await.0.exported, 3, "probed again");
    }
}
