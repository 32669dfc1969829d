//! The tower layers on a stock `lambda_runtime::Runtime` with a user-built `SdkTracerProvider`
//! (`examples/stock_runtime.rs`), run as a process against the test-support stand-ins: the mock
//! Runtime API hands out traced events, and the stand-in X-Ray daemon receives the spans the
//! provider's simple exporter (`lambda-observability-daemon`'s OTLP over UDP) sends.

use std::{path::PathBuf, process::Command, sync::Arc};

use lambda_observability_test_support::{
    DEFAULT_FUNCTION_ARN, Event, Function, MockRuntimeApi, OtlpDatagram, Outcome, ResourceSpan,
    TRACE_PARENT, XrayDaemon, hex, otel_trace_id, resource_attr, span_attr, spans_of_trace,
    trace_header,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

const EXAMPLE: &str = "stock_runtime";
const FUNCTION_NAME: &str = "stock-runtime-it";
const NAMES: [&str; 3] = ["Ada", "Grace", "Barbara"];

/// The example's executable, built now (where cargo says it put it): `cargo build` is a no-op
/// when the example is fresh, and a stale binary (`cargo test --test stock_runtime` builds no
/// example) would test old code. Fails the test if it cannot be built.
fn example_exe() -> PathBuf {
    let output = Command::new(env!("CARGO"))
        .args([
            "build",
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            "-p",
            env!("CARGO_PKG_NAME"),
            "--example",
            EXAMPLE,
            "--message-format",
            "json-render-diagnostics",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build --example {EXAMPLE} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == EXAMPLE
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the example's executable (fresh or built)")
}

/// The event for invocation `n` (1-based), traced with `trace_header(n, true)`.
fn event(n: u32) -> Event {
    Event::new(
        &format!("req-{n}"),
        serde_json::json!({ "name": NAMES[n as usize - 1] }).to_string(),
    )
    .traced(&trace_header(n, true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layers_on_a_stock_runtime_send_each_invocations_spans_to_the_daemon() {
    let exe = example_exe();
    assert!(exe.is_file(), "{} missing", exe.display());
    let daemon = Arc::new(XrayDaemon::start());
    let runtime = MockRuntimeApi::start(Vec::new()).await;
    let received = daemon.capture_before_next(&runtime);
    let daemon_address = daemon.address.to_string();
    let runtime_address = runtime.address.to_string();
    let function = Function::start_exe(
        &exe,
        &runtime,
        &[
            ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "7"),
            ("AWS_LAMBDA_RUNTIME_API", &runtime_address),
            ("AWS_XRAY_DAEMON_ADDRESS", &daemon_address),
        ],
    );
    for n in 1..=3 {
        runtime.push(event(n));
    }

    // The responses, in order.
    let outcomes = runtime.outcomes(3).await;
    for (n, outcome) in (1..=3).zip(&outcomes) {
        let request_id = format!("req-{n}");
        let name = NAMES[n - 1];
        match outcome {
            Outcome::Response {
                request_id: id,
                body,
            } => {
                assert_eq!(id, &request_id);
                assert_eq!(
                    body,
                    &serde_json::json!({
                        "message": format!("hello, {name}"),
                        "requestId": request_id,
                    })
                );
            }
            other => panic!("invocation {n}: {other:?}\n{}", function.logs()),
        }
    }
    // Asking for event 4, the function is done with event 3: its spans and lines are out.
    runtime.wait_next_calls(4).await;

    // The spans, each with the number of the /next before which it reached the daemon.
    let received = received.lock().expect("lock").clone();
    let mut spans: Vec<ResourceSpan> = Vec::new();
    for (next, bytes) in &received {
        let datagram = OtlpDatagram::decode(bytes);
        assert_eq!(datagram.header, r#"{"format":"json","version":1}"#);
        assert_eq!(datagram.prefix, "T1S", "sampled spans");
        for (resource, span) in datagram.spans() {
            let n = (1..=3)
                .find(|n| hex(&span.trace_id) == otel_trace_id(*n))
                .unwrap_or_else(|| panic!("a span of an unknown trace: {span:#?}"));
            assert_eq!(
                *next,
                n as usize + 1,
                "invocation {n}'s spans reach the daemon before /next #{}",
                n + 1
            );
            spans.push((resource, span));
        }
    }
    assert_eq!(
        spans.len(),
        6,
        "an invocation span and a child per event: {spans:#?}"
    );
    for (resource, span) in &spans {
        assert_eq!(
            resource_attr(resource, "service.name"),
            Some("stock-runtime"),
            "the provider's resource: {}",
            span.name
        );
    }

    for n in 1..=3 {
        let trace = spans_of_trace(&spans, n);
        assert_eq!(trace.len(), 2, "trace {n}: {trace:#?}");
        // Under Lambda's segment: trace id the header's Root, parent its Parent.
        let invocation = trace
            .iter()
            .find(|s| hex(&s.parent_span_id) == TRACE_PARENT)
            .unwrap_or_else(|| panic!("trace {n}: no span under Lambda's: {trace:#?}"));
        assert_eq!(hex(&invocation.trace_id), otel_trace_id(n));
        assert_eq!(invocation.name, FUNCTION_NAME, "named after the function");
        assert_eq!(invocation.kind(), SpanKind::Internal, "a subsegment");
        let attr = |key: &str| span_attr(invocation, key);
        assert_eq!(
            attr("faas.invocation_id"),
            Some(format!("req-{n}")),
            "{invocation:#?}"
        );
        let cold = (n == 1).to_string();
        assert_eq!(attr("faas.coldstart"), Some(cold.clone()), "invocation {n}");
        assert_eq!(attr("ColdStart"), Some(cold), "invocation {n}");
        assert_eq!(attr("faas.name").as_deref(), Some(FUNCTION_NAME));
        assert_eq!(attr("faas.version").as_deref(), Some("7"));
        assert_eq!(
            attr("faas.max_memory").as_deref(),
            Some("536870912"),
            "512 MiB"
        );
        assert_eq!(attr("cloud.provider").as_deref(), Some("aws"));
        assert_eq!(attr("cloud.region").as_deref(), Some("eu-west-1"));
        assert_eq!(
            attr("aws.lambda.invoked_arn").as_deref(),
            Some(DEFAULT_FUNCTION_ARN)
        );
        assert!(
            attr("lambda.duration_ms").is_some(),
            "TimingLayer's duration: {invocation:#?}"
        );

        let child = trace
            .iter()
            .find(|s| s.name == "greet")
            .unwrap_or_else(|| panic!("trace {n}: no handler span: {trace:#?}"));
        assert_eq!(child.parent_span_id, invocation.span_id);
        assert_eq!(child.trace_id, invocation.trace_id);
        assert_eq!(
            span_attr(child, "greeting.name").as_deref(),
            Some(NAMES[n as usize - 1])
        );
    }

    // The JSON log lines: LoggingLayer's and the handler's, each with its invocation's keys.
    let logs = function.json_logs();
    for n in 1..=3 {
        let request_id = format!("req-{n}");
        let lines: Vec<&serde_json::Value> = logs
            .iter()
            .filter(|line| line["requestId"] == request_id.as_str())
            .collect();
        let messages: Vec<&str> = lines
            .iter()
            .filter_map(|line| line["message"].as_str())
            .collect();
        for expected in ["invocation started", "greeting", "invocation finished"] {
            assert!(
                messages.contains(&expected),
                "invocation {n}: no {expected:?} line in {messages:?}\n{}",
                function.logs()
            );
        }
        for line in lines {
            assert_eq!(line["functionName"], FUNCTION_NAME, "{line}");
            assert_eq!(line["coldStart"], n == 1, "{line}");
            assert_eq!(
                line["xrayTraceId"],
                trace_header(n, true).as_str(),
                "{line}"
            );
            assert_eq!(line["traceId"], otel_trace_id(n).as_str(), "{line}");
        }
    }
    let greeting = logs
        .iter()
        .find(|line| line["message"] == "greeting" && line["requestId"] == "req-1")
        .expect("the handler's line");
    assert_eq!(greeting["name"], "Ada", "the event's fields: {greeting}");
}
