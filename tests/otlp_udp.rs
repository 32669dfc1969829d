//! Path 3: OTLP protobuf over UDP to the Lambda daemon, as ADOT's Lambda distributions send it
//! (`OTEL_TRACES_EXPORTER=otlp` inside Lambda, no OTLP endpoint). A UDP socket stands in for the
//! daemon and decodes each datagram back to an `ExportTraceServiceRequest`; the real `bootstrap`
//! runs against a mock Runtime API.

mod support;

use std::sync::Arc;

use support::{
    BootstrapExt as _, CheckIp, Function, MockRuntimeApi, OtlpDatagram, OtlpUdpDaemon, Outcome,
    ResourceSpan, TracedSpans, hex, otel_trace_id,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_carry_the_span_tree_before_the_next_event() {
    let daemon = Arc::new(OtlpUdpDaemon::start());
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start(support::traced_events()).await;
    let received = daemon.capture_before_next(&runtime);
    let address = daemon.address.to_string();
    let _function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", &checkip.url),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("AWS_XRAY_DAEMON_ADDRESS", &address),
            ("OTEL_SERVICE_NAME", "hello-otlp"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
        ],
    );
    runtime.outcomes(4).await;
    runtime.wait_next_calls(5).await;
    let received = received.lock().expect("lock").clone();
    assert!(!received.is_empty());

    // (number of the /next before which it arrived, resource, span)
    let mut spans = Vec::new();
    for (next, bytes) in &received {
        let datagram = OtlpDatagram::decode(bytes);
        assert_eq!(datagram.header, r#"{"format":"json","version":1}"#);
        assert_eq!(datagram.prefix, "T1S", "sampled spans");
        assert!(datagram.len <= 64 * 1024, "{} bytes", datagram.len);
        spans.extend(
            datagram
                .spans()
                .into_iter()
                .map(|(resource, span)| (*next, resource, span)),
        );
    }
    for (next, _, span) in &spans {
        let n = (1..=4)
            .find(|n| hex(&span.trace_id) == otel_trace_id(*n))
            .expect("a known trace");
        assert_eq!(
            *next,
            n as usize + 1,
            "invocation {n}'s spans arrive before /next #{}",
            n + 1
        );
    }

    let spans: Vec<ResourceSpan> = spans
        .into_iter()
        .map(|(_, resource, span)| (resource, span))
        .collect();
    let TracedSpans { http, .. } = support::assert_traced_span_tree(&spans, &checkip.url);
    // The outgoing request carried the client span as parent, in both default formats.
    let requests = checkip.requests.lock().expect("lock").clone();
    let traceparent = requests[0].header("traceparent").expect("traceparent");
    assert_eq!(
        traceparent,
        format!("00-{}-{}-01", otel_trace_id(1), hex(&http.span_id))
    );
    assert!(requests[0].header("x-amzn-trace-id").is_some());
}

/// The daemon cannot be sent to (every flush fails at once, whatever the kernel's timing:
/// [`support::UNSENDABLE_DAEMON`]): every invocation still answers, each flush that loses spans
/// says so, and the failing exporter is logged once. A daemon address where nothing listens, whose
/// failure shows only once the kernel's ICMP has arrived, is `tests/xray_daemon.rs`'s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_cannot_be_sent_to_never_fails_or_stalls_an_invocation() {
    let (function, outcomes) =
        support::run_with_daemon_at("otlp", support::UNSENDABLE_DAEMON).await;
    assert!(
        matches!(&outcomes[0], Outcome::Response { body, .. } if body["result"] == "Your age in hexadecimal is 0x22")
    );
    assert!(
        matches!(&outcomes[1], Outcome::Error { body, .. } if body["errorType"] == "SimpleException")
    );
    assert!(matches!(&outcomes[2], Outcome::Response { .. }));
    let logs = function.json_logs();
    let failing = logs
        .iter()
        .filter(|l| l["message"] == "span export failing; spans of this invocation are dropped")
        .count();
    assert_eq!(failing, 1, "{}", function.logs());
    let dropped: Vec<&serde_json::Value> = logs
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("spans dropped (3 export failed)"))
        })
        .collect();
    assert_eq!(
        dropped.len(),
        3,
        "one line per invocation:\n{}",
        function.logs()
    );
    assert!(dropped.iter().all(|l| l["level"] == "WARN"), "{dropped:?}");
}
