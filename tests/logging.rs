//! The real `bootstrap` logging at `AWS_LAMBDA_LOG_LEVEL=WARN` in JSON: the lines that level lets
//! through keep the invocation's context (the `INFO` invocation span is filtered for events
//! only), and each handler error is one line at the level its kind deserves.
//!
//! Only lines this project writes are asserted on: `lambda_runtime` itself still logs an
//! `ERROR` line for every diagnostic it posts (until our own Runtime API loop replaces it), so
//! lines are picked by their message or their `error_type` field, never counted by level alone.

mod support;

use std::sync::Arc;

use serde_json::Value;
use support::{
    BootstrapExt as _, CheckIp, Event, FixtureExt as _, Function, MockRuntimeApi, XrayDaemon,
    otel_trace_id, trace_header, trace_root,
};

/// Runs `bootstrap` over `events` with `env`, the public-IP lookup failing (a WARN line in each
/// invocation) and a tracer exporting to a local daemon socket (so that lines carry trace ids),
/// until it asks for the event after the last: everything the last invocation logs is written.
async fn run_logging(events: Vec<Event>, env: &[(&str, &str)]) -> Function {
    let broken = CheckIp::start(503).await;
    let daemon = Arc::new(XrayDaemon::start());
    let count = events.len();
    let runtime = MockRuntimeApi::start(events).await;
    let address = daemon.address.to_string();
    let mut vars = vec![
        ("CHECKIP_URL", broken.url.as_str()),
        ("OTEL_TRACES_EXPORTER", "xray"),
        ("AWS_XRAY_DAEMON_ADDRESS", address.as_str()),
    ];
    vars.extend_from_slice(env);
    let function = Function::start(&runtime, &vars);
    runtime.outcomes(count).await;
    runtime.wait_next_calls(count + 1).await;
    function
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warn_lines_keep_the_invocation_context_and_errors_log_once_at_their_level() {
    let function = run_logging(
        vec![
            Event::fixture("ok", "success.json").traced(&trace_header(1, true)),
            Event::fixture("throw", "throw-error.json").traced(&trace_header(2, true)),
            Event::fixture("invalid", "invalid.json").traced(&trace_header(3, true)),
        ],
        &[
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ],
    )
    .await;
    let logs = function.json_logs();
    let raw = function.logs();

    // Nothing below WARN, though the invocation span that carries the context is INFO.
    assert!(
        logs.iter().all(|l| l["level"] != "INFO"),
        "INFO lines at WARN:\n{raw}"
    );

    // The public-IP lookup fails in every invocation (the event is validated after it): one WARN
    // line each, with the context of its invocation.
    let lookups: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "public IP lookup failed")
        .collect();
    assert_eq!(lookups.len(), 3, "{raw}");
    for (line, (request_id, n, cold)) in
        lookups
            .iter()
            .zip([("ok", 1, true), ("throw", 2, false), ("invalid", 3, false)])
    {
        assert_eq!(line["level"], "WARN", "{line}");
        assert_eq!(line["requestId"], request_id, "{line}");
        assert_eq!(line["traceId"], otel_trace_id(n).as_str(), "{line}");
        assert_eq!(line["coldStart"], cold, "{line}");
        assert_eq!(line["functionName"], "hello-it", "{line}");
        assert_eq!(line["service"], "hello-it", "{line}");
        assert!(
            line["xrayTraceId"]
                .as_str()
                .is_some_and(|x| x.contains(&trace_root(n))),
            "{line}"
        );
    }

    // One line per handler error, at the level of its kind, inside its invocation.
    let errors: Vec<(&str, &str, &str)> = logs
        .iter()
        .filter_map(|l| {
            Some((
                l["requestId"].as_str()?,
                l["level"].as_str()?,
                l["error_type"].as_str()?,
            ))
        })
        .collect();
    assert_eq!(
        errors,
        [
            ("throw", "ERROR", "SimpleException"),
            ("invalid", "WARN", "InvalidEvent")
        ],
        "{raw}"
    );
    for line in logs.iter().filter(|l| l["error_type"].is_string()) {
        for key in ["traceId", "spanId", "coldStart", "functionName"] {
            assert!(!line[key].is_null(), "{key} missing in {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_scoped_filter_keeps_the_context_on_text_lines() {
    let function = run_logging(
        vec![Event::fixture("ok", "success.json").traced(&trace_header(1, true))],
        &[
            ("RUST_LOG", "hello_lambda=warn"),
            ("AWS_LAMBDA_LOG_FORMAT", "Text"),
        ],
    )
    .await;
    let logs = function.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains('\t')).collect();
    // Only the function's own WARN line passes `hello_lambda=warn`: not the layers' INFO lines.
    assert_eq!(lines.len(), 1, "{logs}");
    let fields: Vec<&str> = lines[0].splitn(4, '\t').collect();
    assert_eq!(fields[1..3], ["ok", "WARN"], "{logs}");
    assert!(fields[3].starts_with("public IP lookup failed"), "{logs}");
    for key in [
        format!("traceId={}", otel_trace_id(1)),
        "coldStart=true".to_owned(),
        "functionName=hello-it".to_owned(),
        "service=hello-it".to_owned(),
    ] {
        assert!(fields[3].contains(&key), "{key} missing in {}", lines[0]);
    }
}
