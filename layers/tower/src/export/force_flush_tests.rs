//! `InvocationSpanProcessor::force_flush` outside a runtime: bounded by the exporter's timeout.

use std::time::{Duration, Instant};

use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter, SpanProcessor},
};

use super::{Destination, InvocationSpanProcessor, Pipeline, Plain};
use crate::export::console::tests::span_in;

/// An exporter that never answers.
#[derive(Debug)]
struct Hanging;

impl SpanExporter for Hanging {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[test]
fn force_flush_outside_a_runtime_gives_up_at_the_exporters_timeout() {
    let processor = InvocationSpanProcessor {
        pipeline: std::sync::Arc::new(Pipeline::new(
            vec![Destination::new(
                "hanging",
                Duration::from_millis(100),
                Plain(Hanging),
            )],
            Resource::builder_empty().build(),
            16,
        )),
    };
    processor.on_end(span_in(1, 1));
    let started = Instant::now();
    let outcome = processor.force_flush();
    let took = started.elapsed();
    assert!(outcome.is_err(), "the span was not exported: {outcome:?}");
    assert!(took < Duration::from_secs(5), "bounded, took {took:?}");
    assert_eq!(processor.pipeline.counters.snapshot().dropped.timed_out, 1);
}
