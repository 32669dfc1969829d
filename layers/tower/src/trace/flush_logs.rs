//! The flush's log lines carry the invocation's context (`requestId`, `traceId`,
//! `functionName`) and join its gathered lines, though its span has closed; the flush adds no
//! span.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lambda_runtime::LambdaInvocation;
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{SpanData, SpanExporter},
};
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};

use super::TraceLayer;
use crate::{
    export::Telemetry,
    test_support::{FUNCTION, TRACE_HEADER, capturing_subscriber, invocation, json_logs},
};

/// Records every span it is given, and refuses them: each flush drops its spans.
#[derive(Debug, Clone, Default)]
struct Refusing(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Refusing {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().expect("lock").extend(batch);
        Err(OTelSdkError::InternalFailure("collector down".into()))
    }
}

#[tokio::test]
async fn the_warn_line_of_a_flush_that_drops_spans_has_the_request_id_and_no_span_is_added() {
    let exporter = Refusing::default();
    let telemetry = Telemetry::with_exporter(
        exporter.clone(),
        Resource::builder_empty().build(),
        Duration::from_secs(2),
    );
    let (logs, subscriber) = capturing_subscriber(&json_logs(), telemetry.tracer());
    let _guard = tracing::subscriber::set_default(subscriber);
    TraceLayer::new(telemetry.flusher())
        .layer(service_fn(|_: LambdaInvocation| async {
            tracing::info_span!("work").in_scope(|| tracing::info!("working"));
            Ok::<(), lambda_runtime::Error>(())
        }))
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("ok");

    let spans = exporter.0.lock().expect("lock").clone();
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, [FUNCTION, "work"], "the flush adds no span");
    let trace_id = spans[0].span_context.trace_id().to_string();

    let lines: Vec<Value> = logs
        .lines()
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let warnings: Vec<&Value> = lines
        .iter()
        .filter(|line| line["level"] == "WARN")
        .collect();
    assert!(!warnings.is_empty(), "the drop is logged: {lines:#?}");
    for line in warnings {
        assert_eq!(line["requestId"], "req-1", "{line}");
        assert_eq!(line["traceId"], trace_id.as_str(), "{line}");
        assert_eq!(line["functionName"], FUNCTION, "{line}");
    }
}

/// Logs a line while it exports, and takes every span.
#[derive(Debug, Clone, Default)]
struct Chatty;

impl SpanExporter for Chatty {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        tracing::info!(spans = batch.len(), "exporting");
        Ok(())
    }
}

#[tokio::test]
async fn an_info_line_of_the_flush_is_gathered_with_the_invocations_lines() {
    let telemetry = Telemetry::with_exporter(
        Chatty,
        Resource::builder_empty().build(),
        Duration::from_secs(2),
    );
    let (logs, subscriber) = capturing_subscriber(&json_logs(), telemetry.tracer());
    let _guard = tracing::subscriber::set_default(subscriber);
    TraceLayer::new(telemetry.flusher())
        .layer(service_fn(|_: LambdaInvocation| async {
            tracing::info!("working");
            Ok::<(), lambda_runtime::Error>(())
        }))
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("ok");
    tracing::info!("after the invocation");

    let writes: Vec<Vec<Value>> = logs
        .writes()
        .iter()
        .map(|write| {
            write
                .lines()
                .map(|line| serde_json::from_str(line).expect("a JSON line"))
                .collect()
        })
        .collect();
    let messages: Vec<Vec<&str>> = writes
        .iter()
        .map(|lines| {
            lines
                .iter()
                .map(|l| l["message"].as_str().expect("message"))
                .collect()
        })
        .collect();
    assert_eq!(
        messages,
        [vec!["working", "exporting"], vec!["after the invocation"]],
        "the flush's line joins the invocation's write; a line after the invocation has none of its context"
    );
    assert_eq!(writes[0][1]["requestId"], "req-1");
    assert_eq!(writes[0][1]["functionName"], FUNCTION);
    assert!(writes[1][0].get("requestId").is_none(), "{}", writes[1][0]);
}
