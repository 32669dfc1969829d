//! `Telemetry::builder`'s settings reach the pipeline: the sampler decides what is recorded, and a
//! destination given as a build function is built at its first delivery, once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use lambda_observability_tower::export::{Plain, Telemetry};
use opentelemetry::trace::{Span as _, TraceContextExt as _, TraceId, Tracer as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Records and ends a root span and one child; returns their trace.
fn two_spans(telemetry: &Telemetry) -> TraceId {
    let tracer = telemetry.tracer().expect("a destination: enabled");
    let root = tracer.start("root");
    let trace = root.span_context().trace_id();
    let cx = opentelemetry::Context::current_with_span(root);
    tracer.start_with_context("child", &cx).end();
    cx.span().end();
    trace
}

#[tokio::test]
async fn the_sampler_given_to_the_builder_decides_what_is_recorded() {
    for (sampler, expected) in [(Sampler::AlwaysOff, 0), (Sampler::AlwaysOn, 2)] {
        let memory = InMemorySpanExporter::default();
        let telemetry = Telemetry::builder()
            .exporter("memory", TIMEOUT, memory.clone())
            .sampler(sampler.clone())
            .build();
        let trace = two_spans(&telemetry);
        let outcome = telemetry.flusher().flush(trace, None).await;
        let exported = memory.get_finished_spans().expect("spans").len();
        assert_eq!(exported, expected, "{sampler:?}");
        assert_eq!(outcome.exported, expected as u64, "{sampler:?}");
    }
}

#[tokio::test]
async fn a_lazy_destination_is_built_at_its_first_delivery_and_only_then() {
    let memory = InMemorySpanExporter::default();
    let builds = Arc::new(AtomicUsize::new(0));
    let telemetry = Telemetry::builder()
        .deliver_to_lazy("lazy", TIMEOUT, {
            let (memory, builds) = (memory.clone(), builds.clone());
            move || {
                builds.fetch_add(1, Ordering::Relaxed);
                Ok(Plain(memory.clone()))
            }
        })
        .build();
    let first = two_spans(&telemetry);
    assert_eq!(
        builds.load(Ordering::Relaxed),
        0,
        "not built before an export"
    );
    telemetry.flusher().flush(first, None).await;
    let second = two_spans(&telemetry);
    telemetry.flusher().flush(second, None).await;
    assert_eq!(builds.load(Ordering::Relaxed), 1, "built once");
    assert_eq!(memory.get_finished_spans().expect("spans").len(), 4);
}
