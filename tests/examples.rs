//! The examples (`examples/api_gateway.rs`, `examples/sqs_batch.rs`) run as real Lambda
//! executables against the mock Runtime API, exporting OTLP over UDP to a stand-in daemon (as in
//! `tests/otlp_udp.rs`): their responses, the spans they export and their JSON log lines.
//!
//! The executables are the ones cargo built into `target/<profile>/examples/` (`cargo test`
//! builds the examples along with the tests); when one is missing (`cargo test --test
//! examples` builds this test only), it is built once with `cargo build --example NAME`.

mod support;

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};
use serde_json::{Value, json};
use support::{
    Event, Function, MockRuntimeApi, OtlpDatagram, OtlpUdpDaemon, Outcome, TRACE_PARENT, hex,
    otel_id_of_root, otel_trace_id, span_attr, trace_header, xray_root,
};

/// The example's executable, built on the first call when cargo has not built it yet.
fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("the test executable");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .join("examples")
        .join(name);
    if !path.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", name, "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .status()
            .expect("cargo build --example");
        assert!(status.success(), "cargo build --example {name}: {status}");
    }
    assert!(path.exists(), "{} after the build", path.display());
    path
}

/// Runs `name` over `events`, exporting OTLP over UDP, until it asks for the event after the
/// last. Returns the process (for its logs), what it answered, and the spans it exported.
async fn run(name: &str, events: Vec<Event>) -> (Function, Vec<Outcome>, Vec<Span>) {
    let count = events.len();
    let daemon = Arc::new(OtlpUdpDaemon::start());
    let runtime = MockRuntimeApi::start(events).await;
    let received = daemon.capture_before_next(&runtime);
    let address = daemon.address.to_string();
    let function = Function::start_exe(
        example(name),
        &runtime,
        &[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("AWS_XRAY_DAEMON_ADDRESS", &address),
        ],
    );
    let outcomes = runtime.outcomes(count).await;
    // Each invocation's spans reach the daemon before the function asks for the next event.
    runtime.wait_next_calls(count + 1).await;
    let spans = received
        .lock()
        .expect("lock")
        .iter()
        .flat_map(|(_, datagram)| OtlpDatagram::decode(datagram).spans())
        .map(|(_, span)| span)
        .collect();
    (function, outcomes, spans)
}

/// The invocation span of trace `n` (the one under Lambda's segment), and all of that trace.
fn invocation(spans: &[Span], n: u32) -> (Span, Vec<Span>) {
    let trace: Vec<Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == otel_trace_id(n))
        .cloned()
        .collect();
    let invocation = trace
        .iter()
        .find(|s| hex(&s.parent_span_id) == TRACE_PARENT)
        .unwrap_or_else(|| panic!("trace {n}'s invocation span in {spans:#?}"))
        .clone();
    (invocation, trace)
}

/// `(trace id, span id)` of each of the span's links, as hex.
fn links(span: &Span) -> Vec<(String, String)> {
    span.links
        .iter()
        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
        .collect()
}

fn status_code(span: &Span) -> StatusCode {
    span.status
        .as_ref()
        .map_or(StatusCode::Unset, |status| status.code())
}

fn response(outcome: &Outcome) -> (&str, &Value) {
    match outcome {
        Outcome::Response { request_id, body } => (request_id, body),
        Outcome::Error { .. } => panic!("a response, not a Lambda error: {outcome:?}"),
    }
}

/// An API Gateway HTTP API request (payload format 2.0).
fn http_request(method: &str, path: &str, query: &[(&str, &str)], headers: Value) -> Vec<u8> {
    let query: HashMap<&str, &str> = query.iter().copied().collect();
    let raw_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "queryStringParameters": query,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "tests"
            },
            "requestId": "apigw-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1_795_000_000_000_i64
        },
        "isBase64Encoded": false
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_gateway_answers_http_and_names_the_span_after_the_route() {
    // The callers' traces: a W3C one and an X-Ray one, neither Lambda's.
    let (w3c_trace, w3c_parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let xray_caller = xray_root("a1b2c3d4e5f6a7b8c9d0e1f2");
    let events = vec![
        Event::new(
            "hello",
            http_request(
                "GET",
                "/hello/Ada",
                &[],
                json!({ "traceparent": format!("00-{w3c_trace}-{w3c_parent}-01") }),
            ),
        )
        .traced(&trace_header(1, true)),
        Event::new(
            "missing",
            http_request(
                "GET",
                "/nowhere",
                &[],
                json!({ "x-amzn-trace-id": format!("Root={xray_caller};Parent=1111222233334444;Sampled=1") }),
            ),
        )
        .traced(&trace_header(2, true)),
        Event::new(
            "failing",
            http_request("GET", "/hello/Ada", &[("throwError", "true")], json!({})),
        )
        .traced(&trace_header(3, true)),
        Event::new("post", http_request("POST", "/hello/Ada", &[], json!({})))
            .traced(&trace_header(4, true)),
    ];
    let (function, outcomes, spans) = run("api_gateway", events).await;

    // HTTP responses, each of them, including the handler's failure: no Lambda error.
    let expected = [
        ("hello", 200, json!({ "greeting": "Hello, Ada!" })),
        ("missing", 404, json!({ "message": "Not Found" })),
        (
            "failing",
            500,
            json!({ "message": "Internal Server Error" }),
        ),
        ("post", 404, json!({ "message": "Not Found" })),
    ];
    for (outcome, (id, status, body)) in outcomes.iter().zip(expected) {
        let (request_id, response) = response(outcome);
        assert_eq!(request_id, id);
        assert_eq!(response["statusCode"], status, "{response}");
        assert_eq!(response["headers"]["content-type"], "application/json");
        let text = response["body"].as_str().expect("a text body");
        assert_eq!(
            serde_json::from_str::<Value>(text).expect("JSON"),
            body,
            "{id}"
        );
    }

    // The matched route names the invocation span (renamed after it started) and is on it.
    let (hello, trace) = invocation(&spans, 1);
    assert_eq!(hello.name, "GET /hello/{name}");
    assert_eq!(
        span_attr(&hello, "faas.invocation_id").as_deref(),
        Some("hello")
    );
    assert_eq!(
        span_attr(&hello, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        span_attr(&hello, "http.route").as_deref(),
        Some("/hello/{name}")
    );
    assert_eq!(span_attr(&hello, "url.path").as_deref(), Some("/hello/Ada"));
    assert_eq!(
        span_attr(&hello, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(status_code(&hello), StatusCode::Unset);
    // The caller's traceparent is a link; the parent stays Lambda's segment, in Lambda's trace.
    assert_eq!(
        links(&hello),
        [(w3c_trace.to_owned(), w3c_parent.to_owned())]
    );
    assert!(trace.iter().all(|s| hex(&s.trace_id) != w3c_trace));

    // No route matched: the span keeps its name, has no route; the X-Ray caller is linked.
    let (missing, _) = invocation(&spans, 2);
    assert_eq!(missing.name, "hello-it");
    assert_eq!(span_attr(&missing, "http.route"), None);
    assert_eq!(
        span_attr(&missing, "http.response.status_code").as_deref(),
        Some("404")
    );
    assert_eq!(
        links(&missing),
        [(otel_id_of_root(&xray_caller), "1111222233334444".to_owned())]
    );

    // The handler's failure: a 500 and an error status; no headers, no link.
    let (failing, _) = invocation(&spans, 3);
    assert_eq!(failing.name, "GET /hello/{name}");
    assert_eq!(
        span_attr(&failing, "http.response.status_code").as_deref(),
        Some("500")
    );
    assert_eq!(status_code(&failing), StatusCode::Error);
    assert!(failing.links.is_empty());

    let (post, _) = invocation(&spans, 4);
    assert_eq!(
        span_attr(&post, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(span_attr(&post, "http.route"), None);

    // The failure's log line carries its invocation's request id and trace.
    let logs = function.json_logs();
    let failed: Vec<&Value> = support::lines_with_message(&logs, "the greeting failed");
    assert_eq!(failed.len(), 1, "{}", function.logs());
    assert_eq!(failed[0]["level"], "ERROR");
    assert_eq!(failed[0]["requestId"], "failing");
    assert_eq!(failed[0]["traceId"], otel_trace_id(3).as_str());
}

/// An SQS message of the batch.
fn message(id: &str, body: &str, trace_header: Option<&str>) -> Value {
    let mut attributes = json!({
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1795000000000",
        "SenderId": "AIDAEXAMPLE",
        "ApproximateFirstReceiveTimestamp": "1795000000001"
    });
    if let Some(header) = trace_header {
        attributes["AWSTraceHeader"] = header.into();
    }
    json!({
        "messageId": id,
        "receiptHandle": format!("receipt-{id}"),
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:greetings",
        "awsRegion": "eu-west-1"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batch_reports_the_failed_messages_and_links_each_to_its_sender() {
    let senders = [
        xray_root("0123456789abcdef01234567"),
        xray_root("fedcba9876543210fedcba98"),
    ];
    let header = |n: usize| format!("Root={};Parent=5555666677778888;Sampled=1", senders[n]);
    let ok = r#"{"firstName": "Ada", "lastName": "Lovelace", "age": 36}"#;
    let throw = r#"{"firstName": "Ada", "lastName": "Lovelace", "age": 36, "throwError": true}"#;
    let batch = json!({ "Records": [
        message("m-ok", ok, Some(&header(0))),
        message("m-not-json", "{oops", Some(&header(1))),
        message("m-rejected", throw, None),
        message("m-ok-2", ok, None),
    ]});
    let events = vec![
        Event::new("batch", batch.to_string()).traced(&trace_header(1, true)),
        // A second invocation: the first one's spans are flushed before it.
        Event::new("empty", json!({ "Records": [] }).to_string()).traced(&trace_header(2, true)),
    ];
    let (function, outcomes, spans) = run("sqs_batch", events).await;

    // The two failed messages, exactly, for redelivery; the invocation itself succeeds.
    let (request_id, body) = response(&outcomes[0]);
    assert_eq!(request_id, "batch");
    assert_eq!(
        body,
        &json!({ "batchItemFailures": [
            { "itemIdentifier": "m-not-json" },
            { "itemIdentifier": "m-rejected" },
        ]})
    );
    assert_eq!(
        response(&outcomes[1]).1,
        &json!({ "batchItemFailures": [] })
    );

    // The batch: the invocation span, with its counts.
    let (invocation, trace) = invocation(&spans, 1);
    assert_eq!(
        span_attr(&invocation, "messaging.batch.message_count").as_deref(),
        Some("4")
    );
    assert_eq!(
        span_attr(&invocation, "batch.succeeded_count").as_deref(),
        Some("2")
    );
    assert_eq!(
        span_attr(&invocation, "batch.failed_count").as_deref(),
        Some("2")
    );

    // One span per message, under the batch, in Lambda's trace.
    let messages: HashMap<String, &Span> = trace
        .iter()
        .filter(|s| s.parent_span_id == invocation.span_id)
        .map(|s| (span_attr(s, "messaging.message.id").unwrap_or_default(), s))
        .collect();
    assert_eq!(messages.len(), 4, "{trace:#?}");
    for (id, span) in &messages {
        assert_eq!(span.name, "process greetings", "{id}");
        assert_eq!(
            span_attr(span, "messaging.system").as_deref(),
            Some("aws_sqs")
        );
        assert_eq!(
            span_attr(span, "messaging.operation.type").as_deref(),
            Some("process")
        );
        assert_eq!(
            span_attr(span, "messaging.destination.name").as_deref(),
            Some("greetings")
        );
        let failed = id == "m-not-json" || id == "m-rejected";
        let expected = if failed {
            StatusCode::Error
        } else {
            StatusCode::Unset
        };
        assert_eq!(status_code(span), expected, "{id}");
    }
    // Each message's sender is a link, not the parent.
    let sender = |n: usize| (otel_id_of_root(&senders[n]), "5555666677778888".to_owned());
    assert_eq!(links(messages["m-ok"]), [sender(0)]);
    assert_eq!(links(messages["m-not-json"]), [sender(1)]);
    assert!(messages["m-rejected"].links.is_empty());
    assert!(messages["m-ok-2"].links.is_empty());

    // A line per failed message, with the invocation's request id.
    let logs = function.json_logs();
    let failed = support::lines_with_message(&logs, "message failed");
    assert_eq!(failed.len(), 2, "{}", function.logs());
    for line in failed {
        assert_eq!(line["level"], "WARN", "{line}");
        assert_eq!(line["requestId"], "batch", "{line}");
        assert_eq!(line["traceId"], otel_trace_id(1).as_str(), "{line}");
    }
}
