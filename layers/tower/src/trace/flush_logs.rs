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
    test_support::{
        FUNCTION, SharedBuf, TRACE_HEADER, capturing_subscriber, invocation, json_logs,
    },
};

/// A pipeline exporting to `exporter` (with a 2 s export bound) and the production subscriber
/// logging JSON lines into the returned buffer, its spans through that pipeline.
fn pipeline_to(exporter: impl SpanExporter + 'static) -> (Telemetry, SharedBuf, tracing::Dispatch) {
    let telemetry = Telemetry::with_exporter(
        exporter,
        Resource::builder_empty().build(),
        Duration::from_secs(2),
    );
    let (logs, subscriber) = capturing_subscriber(&json_logs(), telemetry.tracer());
    (telemetry, logs, tracing::Dispatch::new(subscriber))
}

/// Each line written, parsed.
fn json_lines(logs: &SharedBuf) -> Vec<Value> {
    logs.lines()
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

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
    let (telemetry, logs, dispatch) = pipeline_to(exporter.clone());
    let _guard = tracing::dispatcher::set_default(&dispatch);
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

    let lines = json_lines(&logs);
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
    let (telemetry, logs, dispatch) = pipeline_to(Chatty);
    let _guard = tracing::dispatcher::set_default(&dispatch);
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

/// Yields twice while it exports, then logs the trace it exported.
#[derive(Debug, Clone, Default)]
struct Yielding;

impl SpanExporter for Yielding {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        let trace = batch.first().map(|span| span.span_context.trace_id());
        tracing::info!(exported = %trace.unwrap_or(opentelemetry::trace::TraceId::INVALID), "exporting");
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_in_flight_together_each_log_with_their_own_invocations_keys() {
    use tracing::instrument::WithSubscriber;

    let (telemetry, logs, dispatch) = pipeline_to(Yielding);
    // Eight invocations in flight at once: four tasks of their own (on both threads), four
    // joined in one task (their flushes take turns on one thread).
    let call = |n: u32| {
        let header = format!(
            "Root=1-5759e988-bd862e3fe1be46a9942727{n:02x};Parent=53995c3f42cd8ad8;Sampled=1"
        );
        let mut request = invocation(b"{}", Some(&header));
        request.context.request_id = format!("req-{n}");
        TraceLayer::new(telemetry.flusher())
            .layer(service_fn(|_: LambdaInvocation| async {
                tracing::info!("working");
                Ok::<(), lambda_runtime::Error>(())
            }))
            .oneshot(request)
    };
    let tasks: Vec<_> = (0..4)
        .map(|n| tokio::spawn(call(n).with_subscriber(dispatch.clone())))
        .collect();
    let joined = futures_util::future::join_all((4..8).map(call)).with_subscriber(dispatch.clone());
    for result in joined.await {
        result.expect("ok");
    }
    for task in tasks {
        task.await.expect("joined").expect("ok");
    }

    let lines = json_lines(&logs);
    let exporting: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "exporting")
        .collect();
    assert_eq!(exporting.len(), 8, "{lines:#?}");
    let mut requests: Vec<&str> = exporting
        .iter()
        .map(|line| {
            // The line's keys are those of the invocation whose trace its flush exported.
            assert_eq!(line["traceId"], line["exported"], "{line}");
            let trace = line["exported"].as_str().expect("a trace id");
            let n = u32::from_str_radix(&trace[trace.len() - 2..], 16).expect("hex");
            assert_eq!(line["requestId"], format!("req-{n}"), "{line}");
            line["requestId"].as_str().expect("a request id")
        })
        .collect();
    requests.sort_unstable();
    requests.dedup();
    assert_eq!(requests.len(), 8);
}

/// Never finishes an export.
#[derive(Debug, Clone, Default)]
struct Hanging;

impl SpanExporter for Hanging {
    async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
        std::future::pending().await
    }
}

#[tokio::test]
async fn the_warn_line_of_a_flush_cut_off_mid_export_has_the_request_id() {
    let (telemetry, logs, dispatch) = pipeline_to(Hanging);
    let _guard = tracing::dispatcher::set_default(&dispatch);
    let mut call = Box::pin(
        TraceLayer::new(telemetry.flusher())
            .layer(service_fn(|_: LambdaInvocation| async {
                Ok::<(), lambda_runtime::Error>(())
            }))
            .oneshot(invocation(b"{}", Some(TRACE_HEADER))),
    );
    assert!(
        futures_util::poll!(call.as_mut()).is_pending(),
        "the export hangs"
    );
    // What the drain does to an invocation still in flight at the end of its grace.
    drop(call);

    let lines = json_lines(&logs);
    let cut_off: Vec<&Value> = lines
        .iter()
        .filter(|line| line["level"] == "WARN" && line["cut_off"].as_u64() > Some(0))
        .collect();
    assert_eq!(cut_off.len(), 1, "{lines:#?}");
    assert_eq!(cut_off[0]["requestId"], "req-1", "{}", cut_off[0]);
    assert_eq!(cut_off[0]["functionName"], FUNCTION, "{}", cut_off[0]);
}
