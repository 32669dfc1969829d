//! The OTLP/HTTP export timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`), measured in virtual time: the
//! pipeline `export::init` builds from the environment, against a server that takes the request
//! and never answers, with tokio's clock paused. The flush ends at the configured timeout, to
//! the millisecond, whatever the machine's speed.
//!
//! What bounds the export: opentelemetry-otlp applies its own `with_timeout` only to a reqwest
//! client it builds itself; given a client (the function's shared one, or the one `init` builds
//! when there is none) it sends with that client's timeout, and ours have none. The bound is the
//! pipeline's, a `tokio::time::timeout` per destination set to the OTLP timeout: tokio's timer,
//! so the paused clock applies to it.
#![cfg(feature = "otlp-http")]

use std::time::{Duration, SystemTime};

use lambda_observability::{
    config::{Config, telemetry::TracesExporter},
    export,
};
use lambda_observability_test_support::HangingServer;
use opentelemetry::trace::{Span as _, Tracer as _};
use tokio::time::Instant;

const TIMEOUT_MS: u64 = 400;

/// The settings the environment gives: OTLP to `endpoint`, `OTEL_EXPORTER_OTLP_TIMEOUT=400`.
fn settings(endpoint: &str) -> lambda_observability::config::TelemetrySettings {
    let timeout = TIMEOUT_MS.to_string();
    let config = Config::from_lookup(|name| {
        match name {
            "OTEL_TRACES_EXPORTER" => Some("otlp"),
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint),
            "OTEL_EXPORTER_OTLP_TIMEOUT" => Some(timeout.as_str()),
            _ => None,
        }
        .map(str::to_owned)
    })
    .expect("config");
    assert!(
        matches!(
            config.telemetry.exporters.as_slice(),
            [TracesExporter::OtlpHttp(otlp)] if otlp.timeout == Duration::from_millis(TIMEOUT_MS)
        ),
        "{:?}",
        config.telemetry.exporters
    );
    config.telemetry
}

/// One invocation's flush to a collector that never answers, with a deadline far away (as
/// Lambda's): it ends at the OTLP timeout, having sent the request, and counts the spans as
/// timed out.
async fn flush_to_a_hanging_collector(http: Option<reqwest::Client>) {
    let collector = HangingServer::start();
    let telemetry = export::init(&settings(&collector.url), http).expect("init");
    let tracer = telemetry.tracer().expect("enabled");
    let mut span = tracer.start("invocation");
    let trace = span.span_context().trace_id();
    span.end();

    let request = collector.next_request();
    let deadline = SystemTime::now() + Duration::from_secs(30);
    let started = Instant::now();
    let outcome = telemetry.flusher().flush(trace, Some(deadline)).await;
    let elapsed = started.elapsed();

    let timeout = Duration::from_millis(TIMEOUT_MS);
    assert!(
        elapsed >= timeout && elapsed <= timeout + Duration::from_millis(1),
        "took {elapsed:?} of virtual time, OTEL_EXPORTER_OTLP_TIMEOUT {timeout:?}"
    );
    assert_eq!(outcome.exported, 0, "{outcome:?}");
    assert_eq!(outcome.dropped.timed_out, 1, "{outcome:?}");
    assert_eq!(outcome.dropped.total(), 1, "{outcome:?}");
    let head = request.await.expect("the collector read a request");
    assert!(head.starts_with("POST /v1/traces HTTP/1.1\r\n"), "{head}");
    assert_eq!(collector.accepted(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_export_to_a_collector_that_never_answers_ends_at_the_otlp_timeout() {
    flush_to_a_hanging_collector(None).await;
}

#[tokio::test(start_paused = true)]
async fn through_the_functions_shared_client_too() {
    let http = lambda_observability::http_client::client(false).expect("client");
    flush_to_a_hanging_collector(Some(http)).await;
}
