//! Path 2: OTLP/HTTP (protobuf) export, as to the ADOT collector Lambda layer on
//! `localhost:4318`. A real OTLP receiver decodes `ExportTraceServiceRequest`s; the real
//! `bootstrap` runs against a mock Runtime API.

mod support;

use std::sync::{Arc, Mutex};

use support::{
    BootstrapExt as _, CheckIp, Event, FixtureExt as _, Function, MockRuntimeApi, OtlpMode,
    OtlpReceiver, Outcome, TracedSpans, resource_attr, span_attr, trace_header,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_export_carries_the_span_tree_resource_and_trace_ids() {
    let receiver = OtlpReceiver::start(OtlpMode::Accept).await;
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start(support::traced_events()).await;
    // Spans of invocation N must have been received when the function asks for N+1.
    let counts_at_next: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    {
        let (receiver, counts) = (receiver.clone(), counts_at_next.clone());
        runtime.on_next(move |number| {
            counts
                .lock()
                .expect("lock")
                .push((number, receiver.spans().len()))
        });
    }
    let _function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", &checkip.url),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=abc123"),
            ("OTEL_SERVICE_NAME", "hello-otlp"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
        ],
    );
    runtime.outcomes(4).await;
    runtime.wait_next_calls(5).await;

    let counts = counts_at_next.lock().expect("lock").clone();
    assert_eq!(
        counts,
        vec![(1, 0), (2, 3), (3, 6), (4, 9), (5, 9)],
        "spans per invocation, flushed before /next"
    );

    let exports = receiver.exports.lock().expect("lock").clone();
    assert!(
        exports.iter().all(|e| e.path == "/v1/traces"),
        "default path under OTEL_EXPORTER_OTLP_ENDPOINT"
    );
    assert!(exports.iter().all(|e| {
        e.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("x-collector-token") && v == "abc123")
    }));
    assert!(exports.iter().all(|e| {
        e.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "application/x-protobuf")
    }));

    if std::env::var_os("PRINT_OTLP_EXPORT").is_some() {
        eprintln!("{:#?}", exports[0].request);
    }

    let spans = receiver.spans();
    let TracedSpans {
        resource,
        invocation,
        http,
        thrown,
        invalid,
    } = support::assert_traced_span_tree(&spans, &checkip.url);
    assert_eq!(
        resource_attr(&resource, "cloud.platform"),
        Some("aws_lambda")
    );
    assert_eq!(resource_attr(&resource, "faas.version"), Some("$LATEST"));
    // What describes the function is in the resource, once, not again on the invocation span.
    for key in lambda_observability::layers::trace::FUNCTION_ATTRIBUTES {
        assert!(
            resource_attr(&resource, key).is_some(),
            "{key} in the resource"
        );
        assert_eq!(
            span_attr(&invocation, key),
            None,
            "{key} on the invocation span"
        );
    }
    assert_eq!(
        span_attr(&invocation, "faas.coldstart").as_deref(),
        Some("true")
    );
    assert_eq!(
        span_attr(&invocation, "cloud.account.id").as_deref(),
        Some("123456789012")
    );
    assert_eq!(
        span_attr(&http, "http.request.method").as_deref(),
        Some("GET")
    );
    for (_, span) in &spans {
        for kv in &span.attributes {
            assert!(
                !support::any_value_text(kv.value.as_ref()).contains("Bogdan"),
                "the payload is not recorded"
            );
        }
    }

    assert_eq!(span_attr(&thrown, "ErrorKind").as_deref(), Some("fault"));
    let exception = thrown
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("exception event");
    assert!(
        exception
            .attributes
            .iter()
            .any(|kv| kv.key == "exception.type"
                && support::any_value_text(kv.value.as_ref()) == "SimpleException")
    );

    assert_eq!(
        span_attr(&invalid, "error.type").as_deref(),
        Some("InvalidEvent")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traces_endpoint_variable_wins() {
    let receiver = OtlpReceiver::start(OtlpMode::Accept).await;
    let runtime = MockRuntimeApi::start(vec![Event::fixture("ok", "success.json")]).await;
    let endpoint = format!("{}/custom/traces", receiver.endpoint);
    receiver.serve_traces_at("/custom/traces");
    let _function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", "http://127.0.0.1:9/"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
        ],
    );
    runtime.outcomes(1).await;
    runtime.wait_next_calls(2).await;
    let exports = receiver.exports.lock().expect("lock").clone();
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0].path, "/custom/traces");
}

/// A collector that refuses, fails or hangs never fails or stalls an invocation, and the failure
/// is logged once, not once per span or per invocation. What ended each flush is what the process
/// says (the error and the drop reason), not how long the test waited: the hanging collector's
/// export is cut by `OTEL_EXPORTER_OTLP_TIMEOUT` (400 ms, not the 10 s default). That the cut
/// comes at 400 ms of time is tested in virtual time by
/// `layers/observability/tests/otlp_timeout.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_failures_never_fail_or_hang_invocations() {
    let failing = OtlpReceiver::start(OtlpMode::Fail).await;
    let hanging = OtlpReceiver::start(OtlpMode::Hang).await;
    for (label, endpoint, timed_out) in [
        ("refused", "http://127.0.0.1:9".to_owned(), false),
        ("500", failing.endpoint.clone(), false),
        ("hang", hanging.endpoint.clone(), true),
    ] {
        let runtime = MockRuntimeApi::start(vec![
            Event::fixture("a", "success.json").traced(&trace_header(1, true)),
            Event::fixture("b", "throw-error.json").traced(&trace_header(2, true)),
            Event::fixture("c", "success.json").traced(&trace_header(3, true)),
        ])
        .await;
        let function = Function::start(
            &runtime,
            &[
                ("CHECKIP_URL", "http://127.0.0.1:9/"),
                ("OTEL_TRACES_EXPORTER", "otlp"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "400"),
            ],
        );
        let outcomes = runtime.outcomes(3).await;
        runtime.wait_next_calls(4).await;
        assert!(
            matches!(&outcomes[0], Outcome::Response { body, .. } if body["result"] == "Your age in hexadecimal is 0x22"),
            "{label}"
        );
        assert!(
            matches!(&outcomes[1], Outcome::Error { body, .. } if body["errorType"] == "SimpleException"),
            "{label}"
        );
        assert!(matches!(&outcomes[2], Outcome::Response { .. }), "{label}");
        let logs = function.json_logs();
        let failures: Vec<&serde_json::Value> = logs
            .iter()
            .filter(|l| l["message"] == "span export failing; spans of this invocation are dropped")
            .collect();
        assert_eq!(
            failures.len(),
            1,
            "{label}: the export failure is logged once:\n{}",
            function.logs()
        );
        if timed_out {
            assert_eq!(
                failures[0]["error"], "Operation timed out after 400ms",
                "{label}: cut by the configured timeout"
            );
        }
        // Each invocation's flush ended, and says why: one drop line per invocation, every span
        // dropped for the one reason.
        let drops: Vec<&serde_json::Value> = logs
            .iter()
            .filter(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("spans dropped ("))
            })
            .collect();
        assert_eq!(drops.len(), 3, "{label}:\n{}", function.logs());
        let (reason, other) = if timed_out {
            ("timed_out", "export_failed")
        } else {
            ("export_failed", "timed_out")
        };
        // A collector that refuses or hangs opens the destination's breaker: the invocations
        // after the first skip it, and say so (a probe, allowed by the backoff, fails like the
        // first). One that answers 500 is tried every time.
        let breaker_opens = label != "500";
        for (n, drop) in drops.iter().enumerate() {
            assert!(drop["dropped"].as_u64().is_some_and(|n| n > 0), "{drop}");
            let reason = if n > 0 && breaker_opens && drop["breaker_open"] == drop["dropped"] {
                "breaker_open"
            } else {
                reason
            };
            assert_eq!(drop[reason], drop["dropped"], "{label}: {drop}");
            assert_eq!(drop[other], 0, "{label}: {drop}");
        }
    }
    assert_eq!(
        failing.exports.lock().expect("lock").len(),
        3,
        "one attempt per invocation, no retry storm"
    );
}

/// `{:?}` of a `Duration` (`1.4982s`, `998.1ms`, `12µs`, `0ns`) read back.
fn parse_debug_duration(text: &str) -> Option<std::time::Duration> {
    let units = [("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)];
    let (number, scale) = units
        .iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, *scale)))?;
    Some(std::time::Duration::from_secs_f64(
        number.parse::<f64>().ok()? * scale,
    ))
}

/// An invocation 1.5 s from its deadline whose collector never answers, with the default export
/// timeout (10 s): the flush is cut by the deadline, and says so. (That the cut comes at the
/// deadline in time is tested in virtual time in `layers/tower/tests/time_bounds.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_the_deadline_the_flush_is_cut_by_the_deadline_not_the_export_timeout() {
    const DEADLINE_IN: std::time::Duration = std::time::Duration::from_millis(1_500);
    let hanging = OtlpReceiver::start(OtlpMode::Hang).await;
    let runtime = MockRuntimeApi::start(vec![
        Event::fixture("a", "success.json")
            .traced(&trace_header(1, true))
            .deadline_in(DEADLINE_IN),
    ])
    .await;
    let function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", "http://127.0.0.1:9/"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &hanging.endpoint),
        ],
    );
    let outcomes = runtime.outcomes(1).await;
    runtime.wait_next_calls(2).await;
    assert!(
        matches!(&outcomes[0], Outcome::Response { body, .. } if body["result"] == "Your age in hexadecimal is 0x22"),
        "{outcomes:?}"
    );
    let logs = function.json_logs();
    let failing: Vec<&serde_json::Value> = logs
        .iter()
        .filter(|l| l["message"] == "span export failing; spans of this invocation are dropped")
        .collect();
    assert_eq!(failing.len(), 1, "{}", function.logs());
    let error = failing[0]["error"].as_str().unwrap_or_default();
    let bound = error
        .strip_prefix("Operation timed out after ")
        .and_then(parse_debug_duration)
        .unwrap_or_else(|| panic!("a timeout: {error}"));
    assert!(
        bound <= DEADLINE_IN,
        "cut by the deadline ({DEADLINE_IN:?} away at most), not the 10 s export timeout: {error}"
    );
    let drops = support::lines_with_message(&logs, "spans dropped");
    assert_eq!(drops.len(), 1, "{}", function.logs());
    assert_eq!(drops[0]["timed_out"], drops[0]["dropped"], "{}", drops[0]);
    assert_eq!(drops[0]["dropped"], 3, "{}", drops[0]);
}
