use std::time::Duration;

use lambda_runtime::LambdaInvocation;
use opentelemetry::trace::{SpanKind, Status, TraceId};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

use super::TraceLayer;
use crate::{
    HttpTraceLayer,
    cold_start::InitializationType,
    test_support::{TRACE_HEADER, TestTelemetry, attr, http_server, invocation},
};

/// A stand-in for the function: a `getRuntimeInfo` span and an outbound call to `url`.
async fn handler_like(url: String) -> Result<(), lambda_runtime::Error> {
    tracing::info_span!("getRuntimeInfo").in_scope(|| tracing::info!("runtime info"));
    crate::http_client::install_crypto_provider();
    let client = reqwest::Client::new();
    let request = client.get(&url).build()?;
    let traced = ServiceBuilder::new()
        .layer(HttpTraceLayer::new())
        .service(client);
    traced.oneshot(request).await?.text().await?;
    Ok(())
}

#[tokio::test]
async fn invocation_span_continues_the_xray_trace_and_nests_children() {
    let telemetry = TestTelemetry::new();
    let (url, request_head) = http_server(200).await;
    let service = TraceLayer::new(telemetry.flusher())
        .initialization_type(InitializationType::OnDemand)
        .layer(service_fn(move |_: LambdaInvocation| {
            handler_like(url.clone())
        }));
    service
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("invocation succeeds");

    // Exported before the future resolved: nothing is left for a later flush.
    let spans = telemetry.exported();
    assert_eq!(
        spans.len(),
        3,
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let root = spans
        .iter()
        .find(|s| s.name == "hello-test")
        .expect("invocation span");
    let runtime_info = spans
        .iter()
        .find(|s| s.name == "getRuntimeInfo")
        .expect("custom span");
    let http = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .expect("client span");

    let trace_id = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").expect("hex");
    for span in &spans {
        assert_eq!(span.span_context.trace_id(), trace_id, "{}", span.name);
    }
    assert_eq!(format!("{}", root.parent_span_id), "53995c3f42cd8ad8");
    assert!(root.parent_span_is_remote);
    assert_eq!(runtime_info.parent_span_id, root.span_context.span_id());
    assert_eq!(http.parent_span_id, root.span_context.span_id());

    assert_eq!(
        attr(root, "faas.invocation_id").map(|v| v.to_string()),
        Some("req-1".into())
    );
    assert_eq!(
        attr(root, "cloud.provider").map(|v| v.to_string()),
        Some("aws".into())
    );
    assert_eq!(
        attr(root, "cloud.region").map(|v| v.to_string()),
        Some("eu-west-1".into())
    );
    assert_eq!(
        attr(root, "cloud.account.id").map(|v| v.to_string()),
        Some("123456789012".into())
    );
    assert_eq!(attr(root, "ColdStart"), Some(true.into()));
    assert_eq!(
        attr(http, "http.request.method").map(|v| v.to_string()),
        Some("GET".into())
    );
    assert_eq!(attr(http, "http.response.status_code"), Some(200i64.into()));

    // The outgoing request carried the client span's context in both formats.
    let head = request_head
        .await
        .expect("server task")
        .to_ascii_lowercase();
    let http_span = format!("{}", http.span_context.span_id());
    assert!(
        head.contains(&format!(
            "x-amzn-trace-id: root=1-5759e988-bd862e3fe1be46a994272793;parent={http_span};sampled=1"
        )),
        "{head}"
    );
    assert!(
        head.contains(&format!("traceparent: 00-{trace_id}-{http_span}-01")),
        "{head}"
    );

    // Logs inside the invocation carry its identifiers.
    let logs = telemetry.logs.lines();
    let line = logs
        .iter()
        .find(|l| l.contains("runtime info"))
        .expect("log line");
    let line: serde_json::Value = serde_json::from_str(line).expect("json");
    assert_eq!(line["requestId"], "req-1");
    assert_eq!(line["traceId"], trace_id.to_string());
    assert_eq!(line["spanId"], root.span_context.span_id().to_string());
}

#[tokio::test]
async fn not_sampled_exports_nothing_and_missing_header_starts_a_sampled_trace() {
    let telemetry = TestTelemetry::new();
    let mut service =
        TraceLayer::new(telemetry.flusher()).layer(service_fn(|_: LambdaInvocation| async {
            tracing::info_span!("getRuntimeInfo").in_scope(|| ());
            Ok::<(), lambda_runtime::Error>(())
        }));
    let unsampled = TRACE_HEADER.replace("Sampled=1", "Sampled=0");
    service.ready().await.expect("ready");
    service
        .call(invocation(b"{}", Some(&unsampled)))
        .await
        .expect("ok");
    assert!(telemetry.exported().is_empty());

    service.ready().await.expect("ready");
    service.call(invocation(b"{}", None)).await.expect("ok");
    let spans = telemetry.exported();
    assert_eq!(spans.len(), 2);
    let root = spans.iter().find(|s| s.name == "hello-test").expect("root");
    assert!(!root.parent_span_is_remote);
    assert_eq!(root.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    assert_eq!(
        attr(root, "ColdStart"),
        Some(false.into()),
        "second invocation is warm"
    );
}

#[tokio::test]
async fn runtime_failures_mark_the_span_and_are_still_flushed() {
    let telemetry = TestTelemetry::new();
    let result = TraceLayer::new(telemetry.flusher())
        .layer(service_fn(|_: LambdaInvocation| async {
            Err::<(), lambda_runtime::Error>("response post failed".into())
        }))
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await;
    assert!(result.is_err());
    let spans = telemetry.exported();
    assert_eq!(spans.len(), 1);
    assert!(
        matches!(&spans[0].status, Status::Error { description } if description.contains("response post failed"))
    );
}

#[test]
fn flush_does_not_deadlock_on_a_current_thread_runtime_or_one_worker() {
    for multi in [false, true] {
        let runtime = if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .expect("runtime");
        let exported = runtime.block_on(async {
            let telemetry = TestTelemetry::new();
            let service = TraceLayer::new(telemetry.flusher()).layer(service_fn(
                |_: LambdaInvocation| async { Ok::<(), lambda_runtime::Error>(()) },
            ));
            tokio::time::timeout(
                Duration::from_secs(10),
                service.oneshot(invocation(b"{}", None)),
            )
            .await
            .expect("no deadlock")
            .expect("ok");
            telemetry.exported().len()
        });
        assert_eq!(exported, 1, "multi_thread={multi}");
    }
}
