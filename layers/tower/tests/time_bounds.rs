//! The span pipeline's time bounds, measured in virtual time: tokio's clock is paused
//! (`start_paused`), the exporter never answers, and each test asserts how much virtual time the
//! flush took. Nothing here depends on how fast the machine is: with the clock paused, tokio
//! jumps it to the next timer when there is nothing else to do, so a bounded flush takes its
//! bound exactly, and one that ignored its bound would take the next longer one (the exporter's
//! timeout) or never end.

use std::time::{Duration, SystemTime};

use lambda_observability_tower::export::{DEFAULT_FLUSH_BUDGET, SHUTDOWN_FLUSH_BOUND, Telemetry};
use opentelemetry::trace::{Span as _, TraceContextExt as _, TraceId, Tracer as _};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};
use tokio::time::Instant;

/// The exporter's timeout: longer than every bound under test, so that a flush ending at it
/// means the bound was ignored.
const EXPORTER_TIMEOUT: Duration = Duration::from_secs(5);

/// tokio's timer resolution: a timer fires at the first millisecond tick at or after its
/// deadline.
const TICK: Duration = Duration::from_millis(1);

/// An exporter whose export never completes.
#[derive(Debug)]
struct Hangs;

impl SpanExporter for Hangs {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        std::future::pending().await
    }
}

/// A pipeline to [`Hangs`] with `timeout` as its export timeout, and a flush budget longer than
/// it (the budget's own bound is tested with the breaker, in `export/breaker.rs`).
fn hanging(timeout: Duration) -> Telemetry {
    Telemetry::builder()
        .exporter("hangs", timeout, Hangs)
        .export_timeout(timeout)
        .flush_budget(timeout * 2)
        .build()
}

/// Records and ends `count` spans of one new trace; returns the trace.
fn spans(telemetry: &Telemetry, count: usize) -> TraceId {
    let tracer = telemetry.tracer().expect("enabled");
    let root = tracer.start("root");
    let trace = root.span_context().trace_id();
    let cx = opentelemetry::Context::current_with_span(root);
    for _ in 1..count {
        tracer.start_with_context("child", &cx).end();
    }
    cx.span().end();
    trace
}

/// Asserts that `elapsed` is `bound`, to the timer's tick.
fn assert_ends_at(elapsed: Duration, bound: Duration) {
    assert!(
        elapsed >= bound && elapsed <= bound + TICK,
        "took {elapsed:?} of virtual time, bound {bound:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_flush_ends_at_the_invocation_deadline_not_at_the_exporter_timeout() {
    const DEADLINE_IN: Duration = Duration::from_millis(1_500);
    let telemetry = hanging(EXPORTER_TIMEOUT);
    let trace = spans(&telemetry, 3);
    // The deadline is wall-clock time (Lambda's `Lambda-Runtime-Deadline-Ms`); the flush reads
    // the wall clock once, somewhere between these two readings, and waits what was left.
    let wall_before = SystemTime::now();
    let deadline = wall_before + DEADLINE_IN;
    let started = Instant::now();
    let outcome = telemetry.flusher().flush(trace, Some(deadline)).await;
    let elapsed = started.elapsed();
    let wall_after = SystemTime::now();
    let least = deadline.duration_since(wall_after).unwrap_or_default();
    assert!(
        elapsed >= least && elapsed <= DEADLINE_IN + TICK,
        "took {elapsed:?} of virtual time; the deadline left between {least:?} and {DEADLINE_IN:?}"
    );
    assert_eq!(outcome.exported, 0);
    assert_eq!(outcome.dropped.timed_out, 3, "{outcome:?}");
    assert_eq!(outcome.dropped.total(), 3, "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn a_flush_without_a_deadline_ends_at_the_exporter_timeout() {
    let telemetry = hanging(EXPORTER_TIMEOUT);
    let trace = spans(&telemetry, 2);
    let started = Instant::now();
    let outcome = telemetry.flusher().flush(trace, None).await;
    assert_ends_at(started.elapsed(), EXPORTER_TIMEOUT);
    assert_eq!(outcome.dropped.timed_out, 2, "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn by_default_a_flush_ends_at_the_flush_budget_when_the_exporter_timeout_is_longer() {
    let telemetry = Telemetry::builder()
        .exporter("hangs", EXPORTER_TIMEOUT, Hangs)
        .export_timeout(EXPORTER_TIMEOUT)
        .build();
    let trace = spans(&telemetry, 2);
    let deadline = SystemTime::now() + Duration::from_secs(30);
    let started = Instant::now();
    let outcome = telemetry.flusher().flush(trace, Some(deadline)).await;
    assert!(DEFAULT_FLUSH_BUDGET < EXPORTER_TIMEOUT);
    assert_ends_at(started.elapsed(), DEFAULT_FLUSH_BUDGET);
    assert_eq!(outcome.dropped.timed_out, 2, "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_further_than_the_exporter_timeout_leaves_the_timeout_as_the_bound() {
    let telemetry = hanging(EXPORTER_TIMEOUT);
    let trace = spans(&telemetry, 1);
    let deadline = SystemTime::now() + Duration::from_secs(30);
    let started = Instant::now();
    let outcome = telemetry.flusher().flush(trace, Some(deadline)).await;
    assert_ends_at(started.elapsed(), EXPORTER_TIMEOUT);
    assert_eq!(outcome.dropped.timed_out, 1, "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_flush_ends_at_its_bound_against_a_hanging_exporter() {
    assert!(SHUTDOWN_FLUSH_BOUND < EXPORTER_TIMEOUT);
    let telemetry = hanging(EXPORTER_TIMEOUT);
    // Two traces pending (work that outlived its invocations): the shutdown takes them all.
    spans(&telemetry, 2);
    spans(&telemetry, 1);
    let started = Instant::now();
    let outcome = telemetry.shutdown().await;
    assert_ends_at(started.elapsed(), SHUTDOWN_FLUSH_BOUND);
    assert_eq!(outcome.exported, 0);
    assert_eq!(outcome.dropped.timed_out, 3, "{outcome:?}");
    assert_eq!(telemetry.flusher().stats().dropped.timed_out, 3);
}

#[tokio::test(start_paused = true)]
async fn flush_within_ends_at_its_bound_or_at_a_shorter_exporter_timeout() {
    let telemetry = hanging(EXPORTER_TIMEOUT);
    spans(&telemetry, 2);
    let started = Instant::now();
    let outcome = telemetry.flusher().flush_within(SHUTDOWN_FLUSH_BOUND).await;
    assert_ends_at(started.elapsed(), SHUTDOWN_FLUSH_BOUND);
    assert_eq!(outcome.dropped.timed_out, 2, "{outcome:?}");

    // An exporter whose own timeout is shorter than the bound is cut at its timeout.
    let short = SHUTDOWN_FLUSH_BOUND / 5;
    let telemetry = hanging(short);
    spans(&telemetry, 1);
    let started = Instant::now();
    let outcome = telemetry.flusher().flush_within(SHUTDOWN_FLUSH_BOUND).await;
    assert_ends_at(started.elapsed(), short);
    assert_eq!(outcome.dropped.timed_out, 1, "{outcome:?}");
}
