//! SIGTERM and SIGINT drain `bootstrap`: no more `/next`, the invocations in flight answered and
//! their traces exported, what outlives its grace cut off and logged with its request id, the
//! spans left exported, `SpansDropped` written, exit 0. The order of events is asserted, not
//! durations; the drain's timing is printed.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    BootstrapExt as _, Event, Function, GatedCheckIp, MockRuntimeApi, OtlpDatagram, Outcome,
    TRACE_PARENT, XrayDaemon, hex, spans_of_trace, trace_header, until,
};

fn person_event(i: u32) -> Event {
    Event::new(
        &format!("d-{i}"),
        format!(r#"{{"firstName": "P{i}", "lastName": "Q", "age": {i}}}"#),
    )
    .traced(&trace_header(i, true))
}

fn signal(function: &Function, name: &str) -> Instant {
    let sent = Instant::now();
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &function.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    sent
}

/// The index of the first JSON log line whose message starts with `prefix`.
fn line_of(logs: &[Value], prefix: &str) -> usize {
    logs.iter()
        .position(|l| l["message"].as_str().is_some_and(|m| m.starts_with(prefix)))
        .unwrap_or_else(|| panic!("no log line starting with {prefix:?}: {logs:#?}"))
}

async fn wait_for_line(function: &Function, prefix: &str) {
    until(&format!("the log line {prefix:?}"), || {
        function
            .json_logs()
            .iter()
            .any(|l| l["message"].as_str().is_some_and(|m| m.starts_with(prefix)))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_four_invocations_in_flight_answers_them_and_exports_their_traces() {
    let checkip = GatedCheckIp::start().await;
    let daemon = XrayDaemon::start();
    let runtime = MockRuntimeApi::start((1..=4).map(person_event).collect()).await;
    let address = daemon.address.to_string();
    let mut function = Function::start(
        &runtime,
        &[
            ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
            ("CHECKIP_URL", &checkip.url),
            ("CHECKIP_TIMEOUT_MS", "20000"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("AWS_XRAY_DAEMON_ADDRESS", &address),
            ("OTEL_SERVICE_NAME", "hello-drain"),
            // The logging layer's end lines (DEBUG by default) show each invocation finishing.
            ("RUST_LOG", "info,lambda_observability_tower::logging=debug"),
        ],
    );
    // Four invocations in flight, each held in its outbound call.
    runtime.wait_in_flight(4).await;
    until("four held check-ip requests", || checkip.held() == 4).await;

    let sent = signal(&function, "TERM");
    // The runtime saw the signal before any outbound call returns.
    wait_for_line(&function, "SIGTERM: stopping").await;
    checkip.release(4);
    let exit = function
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the drain");
    let wall = sent.elapsed();
    assert!(exit.success(), "exit 0: {exit:?}\n{}", function.logs());

    // Every invocation answered, with its own greeting.
    let outcomes = runtime.outcomes(4).await;
    for outcome in &outcomes {
        let Outcome::Response { request_id, body } = outcome else {
            panic!("expected a response: {outcome:?}");
        };
        let i = request_id.trim_start_matches("d-");
        assert!(
            body["greeting"]
                .as_str()
                .is_some_and(|g| g.starts_with(&format!("Hello P{i} Q,"))),
            "{request_id}: {body}"
        );
    }
    assert_eq!(runtime.next_calls(), 4, "no /next after the signal");

    // Every trace complete: the invocation span under Lambda's, the outbound GET under it.
    let spans: Vec<_> = daemon
        .drain()
        .iter()
        .flat_map(|d| OtlpDatagram::decode(d).spans())
        .collect();
    for i in 1..=4 {
        let trace = spans_of_trace(&spans, i);
        let invocation = trace
            .iter()
            .find(|s| hex(&s.parent_span_id) == TRACE_PARENT)
            .unwrap_or_else(|| panic!("trace {i}: no invocation span in {trace:#?}"));
        assert_eq!(invocation.name, "hello-drain");
        let client = trace
            .iter()
            .find(|s| s.name.starts_with("GET"))
            .unwrap_or_else(|| panic!("trace {i}: no outbound span in {trace:#?}"));
        assert_eq!(client.parent_span_id, invocation.span_id, "trace {i}");
    }

    // In order: the signal, the four invocations finishing, the drain's summary, the export
    // of what is left, its totals.
    let logs = function.json_logs();
    let signalled = line_of(&logs, "SIGTERM: stopping; draining 4 invocations in flight");
    let finished: Vec<usize> = logs
        .iter()
        .enumerate()
        .filter(|(_, l)| l["message"] == "invocation finished")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(finished.len(), 4, "{logs:#?}");
    let stopped = line_of(&logs, "stopped (SIGTERM): 4 invocations in flight drained");
    let exporting = line_of(&logs, "shutting down: exporting pending spans");
    let totals = line_of(&logs, "span export totals");
    assert!(finished.iter().all(|&n| signalled < n && n < stopped));
    assert!(stopped < exporting && exporting < totals);
    assert_eq!(logs[stopped]["finished"], 4);
    assert_eq!(logs[stopped]["cut_off"], 0);
    assert_eq!(logs[totals]["dropped"], 0);
    println!(
        "drain: {} ms in process (signal to the last invocation's end), {} ms from kill to exit \
         (polled every 20 ms)",
        logs[stopped]["took_ms"],
        wall.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_cuts_off_what_outlives_its_grace_logs_its_request_id_and_reports_spans_dropped() {
    let checkip = Arc::new(GatedCheckIp::start().await);
    let runtime = MockRuntimeApi::start((1..=2).map(person_event).collect()).await;
    // The spans cannot be exported: every drop is counted and reported.
    let mut function = Function::start(
        &runtime,
        &[
            ("AWS_LAMBDA_MAX_CONCURRENCY", "2"),
            ("CHECKIP_URL", &checkip.url),
            ("CHECKIP_TIMEOUT_MS", "20000"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:9/v1/traces",
            ),
        ],
    );
    runtime.wait_in_flight(2).await;
    until("two held check-ip requests", || checkip.held() == 2).await;
    signal(&function, "INT");
    wait_for_line(&function, "SIGINT: stopping").await;
    // One of the two gets its answer from the public-IP service; the other never does.
    checkip.release(1);
    let exit = function
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the grace");
    assert!(exit.success(), "exit 0: {exit:?}\n{}", function.logs());

    // One is answered by its handler; the other, cut off before its answer started, gets a
    // `Runtime.CutOff` error from the runtime rather than waiting for its deadline.
    let outcomes = runtime.outcomes(2).await;
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    let answered = outcomes
        .iter()
        .find(|o| matches!(o, Outcome::Response { .. }))
        .expect("one answered")
        .request_id()
        .to_owned();
    let stuck = if answered == "d-1" { "d-2" } else { "d-1" };
    let cut_off = outcomes.iter().find(|o| o.request_id() == stuck);
    assert!(
        matches!(
            cut_off,
            Some(Outcome::Error { error_type_header: Some(t), body, .. })
                if t == "Runtime.CutOff" && body["errorType"] == "Runtime.CutOff"
        ),
        "{outcomes:?}"
    );

    let logs = function.json_logs();
    let cut = line_of(&logs, &format!("invocation {stuck} was cut off"));
    assert_eq!(logs[cut]["request_id"], stuck);
    let stopped = line_of(&logs, "stopped (SIGINT): 2 invocations in flight drained");
    assert_eq!(logs[stopped]["cut_off"], 1);
    let exporting = line_of(&logs, "shutting down: exporting pending spans");
    let totals = line_of(&logs, "span export totals");
    assert!(cut < stopped && stopped < exporting && exporting < totals);
    assert!(logs[totals]["dropped"].as_u64().is_some_and(|d| d > 0));
    // The cut-off invocation's spans were dropped at shutdown, after the drain, and written as
    // SpansDropped then.
    let spans_dropped_at_shutdown = logs[exporting..]
        .iter()
        .filter(|l| l["_aws"].is_object() && l["SpansDropped"].as_u64().is_some_and(|d| d > 0))
        .count();
    assert_eq!(spans_dropped_at_shutdown, 1, "{logs:#?}");
    assert_eq!(runtime.next_calls(), 2, "no /next after the signal");
}
