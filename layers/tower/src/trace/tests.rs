use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use lambda_runtime::LambdaInvocation;
use opentelemetry::trace::{SpanKind, Status, TraceId};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

use super::{FUNCTION_ATTRIBUTES, TraceLayer};
use crate::{
    HttpTraceLayer, ObservabilityLayer, TimingLayer,
    cold_start::InitializationType,
    facts::{EnvironmentFacts, InvocationFacts},
    log_format::{LogConfig, LogFormat},
    metrics::test_support::metrics as test_metrics,
    test_support::{
        TRACE_HEADER, TestTelemetry, attr, http_server, invocation, json_logs, tenant_invocation,
    },
};

/// A stand-in for the function: a `getRuntimeInfo` span and an outbound call to `url`.
async fn handler_like(url: String) -> Result<(), lambda_runtime::Error> {
    tracing::info_span!("getRuntimeInfo").in_scope(|| tracing::info!("runtime info"));
    crate::test_support::install_crypto_provider();
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
    let service =
        TraceLayer::new(telemetry.flusher()).layer(service_fn(move |_: LambdaInvocation| {
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
async fn without_function_attributes_the_span_keeps_only_what_describes_the_invocation() {
    for on in [true, false] {
        let telemetry = TestTelemetry::new();
        TraceLayer::new(telemetry.flusher())
            .function_attributes(on)
            .layer(service_fn(|_: LambdaInvocation| async {
                Ok::<(), lambda_runtime::Error>(())
            }))
            .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
            .await
            .expect("invocation succeeds");
        let spans = telemetry.exported();
        let root = spans.first().expect("the invocation span");
        for key in FUNCTION_ATTRIBUTES {
            assert_eq!(
                attr(root, key).is_some(),
                on,
                "{key}, function attributes {on}"
            );
        }
        for key in [
            "faas.invocation_id",
            "faas.trigger",
            "faas.coldstart",
            "cloud.account.id",
            "cloud.resource_id",
            "aws.lambda.invoked_arn",
            "ColdStart",
            "Service",
        ] {
            assert!(attr(root, key).is_some(), "{key}, function attributes {on}");
        }
    }
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

/// What the handler of these tests saw of its invocation's facts.
type Seen = Arc<Mutex<Vec<InvocationFacts>>>;

fn recording(
    seen: &Seen,
) -> impl Fn(LambdaInvocation) -> std::future::Ready<Result<(), lambda_runtime::Error>> + Clone {
    let seen = seen.clone();
    move |req: LambdaInvocation| {
        let facts = InvocationFacts::of(&req).cloned().expect("facts attached");
        // The context's deadline agrees with the facts': one normalized deadline.
        let context_deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(req.context.deadline);
        let drift = facts
            .deadline
            .duration_since(context_deadline)
            .unwrap_or_else(|e| e.duration());
        assert!(drift < Duration::from_millis(1), "{drift:?}");
        seen.lock().expect("lock").push(facts);
        std::future::ready(Ok(()))
    }
}

#[tokio::test]
async fn attaches_facts_when_absent_once_per_environment() {
    let telemetry = TestTelemetry::new();
    let seen = Seen::default();
    let environment = Arc::new(EnvironmentFacts::new(
        InitializationType::OnDemand,
        Instant::now(),
    ));
    environment.init_done();
    let mut service = TraceLayer::new(telemetry.flusher())
        .environment(environment)
        .layer(service_fn(recording(&seen)));
    for _ in 0..2 {
        let mut req = invocation(b"{}", None);
        // An emulator's relative deadline: made absolute once, for the facts and the context.
        req.context.deadline = 600_000;
        service.ready().await.expect("ready");
        service.call(req).await.expect("ok");
    }
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen.iter()
            .map(|f| (f.cold_start, f.init_duration.is_some()))
            .collect::<Vec<_>>(),
        [(true, true), (false, false)]
    );
    assert!(
        seen[0].deadline > SystemTime::now() + Duration::from_secs(500),
        "a relative deadline counts from now"
    );
}

#[tokio::test]
async fn facts_already_attached_are_read_not_replaced() {
    let telemetry = TestTelemetry::new();
    let seen = Seen::default();
    // The runtime loop's environment already served its cold start…
    let runtime_environment = EnvironmentFacts::new(InitializationType::OnDemand, Instant::now());
    let _first = runtime_environment.next_invocation(600_000);
    // …so this invocation is warm, whatever the layer's own (fresh) environment would say.
    let mut req = invocation(b"{}", Some(TRACE_HEADER));
    runtime_environment
        .next_invocation(req.context.deadline)
        .attach(&mut req);
    TraceLayer::new(telemetry.flusher())
        .layer(service_fn(recording(&seen)))
        .oneshot(req)
        .await
        .expect("ok");
    assert!(!seen.lock().expect("lock")[0].cold_start);
    let spans = telemetry.exported();
    assert_eq!(attr(&spans[0], "ColdStart"), Some(false.into()));
    assert_eq!(attr(&spans[0], "faas.coldstart"), Some(false.into()));
}

/// Trace, logging and timing layers agree on the one cold start: the span, every log line and the
/// `ColdStart` metric of the first invocation, and none of the second's.
#[tokio::test]
async fn one_cold_start_across_the_layers() {
    let (metrics, emf, _guard) = test_metrics().await;
    let telemetry = TestTelemetry::new();
    let mut service = ObservabilityLayer::new(telemetry.flusher())
        .timing(TimingLayer::new().metrics(metrics))
        .layer(service_fn(|_: LambdaInvocation| async {
            tracing::info!("handled");
            Ok::<(), lambda_runtime::Error>(())
        }));
    for _ in 0..2 {
        service.ready().await.expect("ready");
        service
            .call(invocation(b"{}", Some(TRACE_HEADER)))
            .await
            .expect("ok");
    }
    let spans = telemetry.exported();
    let cold: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "hello-test")
        .map(|s| attr(s, "ColdStart"))
        .collect();
    assert_eq!(cold, [Some(true.into()), Some(false.into())]);
    let lines: Vec<serde_json::Value> = telemetry
        .logs
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let handled: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "handled")
        .map(|l| &l["coldStart"])
        .collect();
    assert_eq!(handled, [true, false]);
    let emf = emf.lines();
    assert_eq!(emf.len(), 1, "ColdStart once, nothing else: {emf:?}");
    assert!(emf[0].contains("\"ColdStart\":1"), "{emf:?}");
}

/// The production subscriber at `WARN`, at `ERROR` and with a target-scoped filter, in JSON and
/// text: every line the handler writes carries the invocation's context.
#[tokio::test]
async fn handler_lines_keep_their_context_at_every_level_and_filter() {
    for (filter, expected) in [
        ("warn", 2),
        ("error", 1),
        ("hello_lambda=warn", 2),
        ("info", 3),
        ("info,lambda_observability_tower::logging=debug", 5),
    ] {
        for format in [LogFormat::Json, LogFormat::Text] {
            let telemetry =
                TestTelemetry::with_logs(&LogConfig::new().format(format).filter(filter));
            ObservabilityLayer::new(telemetry.flusher())
                .layer(service_fn(|_: LambdaInvocation| async {
                    tracing::info!(target: "hello_lambda", "info line");
                    tracing::warn!(target: "hello_lambda", "warn line");
                    tracing::error!(target: "hello_lambda", "error line");
                    Ok::<(), lambda_runtime::Error>(())
                }))
                .oneshot(tenant_invocation(b"{}", Some(TRACE_HEADER), Some("blue")))
                .await
                .expect("ok");
            let lines = telemetry.logs.lines();
            // With the logging layer's target at `debug`, its start and end lines are written too.
            assert_eq!(lines.len(), expected, "{filter} {format:?}: {lines:?}");
            for line in &lines {
                match format {
                    LogFormat::Json => {
                        let line: serde_json::Value = serde_json::from_str(line).expect("json");
                        assert_eq!(line["requestId"], "req-1", "{filter}: {line}");
                        assert_eq!(line["traceId"], "5759e988bd862e3fe1be46a994272793");
                        assert_eq!(line["coldStart"], true);
                        assert_eq!(line["functionName"], "hello-test");
                        assert_eq!(line["tenantId"], "blue");
                    }
                    LogFormat::Text => {
                        assert_eq!(line.split('\t').nth(1), Some("req-1"), "{line}");
                        for key in [
                            "traceId=5759e988bd862e3fe1be46a994272793",
                            "coldStart=true",
                            "functionName=hello-test",
                            "tenantId=blue",
                        ] {
                            assert!(line.contains(key), "{filter}: {key} missing in {line}");
                        }
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn the_tenant_is_on_the_span_and_absent_without_one() {
    let telemetry = TestTelemetry::with_logs(&json_logs());
    let service =
        TraceLayer::new(telemetry.flusher()).layer(service_fn(|_: LambdaInvocation| async {
            Ok::<(), lambda_runtime::Error>(())
        }));
    service
        .clone()
        .oneshot(tenant_invocation(b"{}", Some(TRACE_HEADER), Some("blue")))
        .await
        .expect("ok");
    service
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("ok");
    let spans = telemetry.exported();
    assert_eq!(spans.len(), 2);
    assert_eq!(
        attr(&spans[0], "aws.lambda.tenant_id").map(|v| v.to_string()),
        Some("blue".into())
    );
    assert_eq!(attr(&spans[1], "aws.lambda.tenant_id"), None);
}

#[tokio::test]
async fn the_service_name_names_the_span_and_the_annotation_else_the_function_name() {
    let telemetry = TestTelemetry::new();
    let handler = service_fn(|_: LambdaInvocation| async { Ok::<(), lambda_runtime::Error>(()) });
    TraceLayer::new(telemetry.flusher())
        .service_name("checkout")
        .layer(handler)
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("ok");
    TraceLayer::new(telemetry.flusher())
        .layer(handler)
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("ok");
    let spans = telemetry.exported();
    let named: Vec<(String, Option<String>)> = spans
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                attr(s, "Service").map(|v| v.to_string()),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            ("checkout".to_owned(), Some("checkout".to_owned())),
            ("hello-test".to_owned(), Some("hello-test".to_owned())),
        ]
    );
}
