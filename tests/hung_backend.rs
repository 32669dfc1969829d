//! A span backend that accepts the connection and never answers (a wedged ADOT collector
//! extension) costs one export timeout, not one per invocation: the real `bootstrap` against the
//! mock Runtime API, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` at a local listener that reads each
//! request and never answers, `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=2000`.

mod support;

use std::time::{Duration, Instant};

use support::{
    BootstrapExt as _, Event, FixtureExt as _, Function, MockRuntimeApi, OtlpMode, OtlpReceiver,
    Outcome, lines_with_message, trace_header,
};

const INVOCATIONS: u32 = 6;

/// The first probe's delay after the breaker opens; each failed probe doubles it.
const FIRST_PROBE: Duration = Duration::from_secs(1);

/// The most probes the backoff allows within `elapsed` of the breaker opening: probe `k` comes
/// at the earliest 1 + 2 + … + 2^(k-1) seconds after the open.
fn probes_allowed(elapsed: Duration) -> usize {
    let mut at = FIRST_PROBE;
    let mut step = FIRST_PROBE;
    let mut probes = 0;
    while at <= elapsed {
        probes += 1;
        step *= 2;
        at += step;
    }
    probes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_never_answers_costs_one_timeout_not_one_per_invocation() {
    let backend = OtlpReceiver::start(OtlpMode::Hang).await;
    let runtime = MockRuntimeApi::start(
        (1..=INVOCATIONS)
            .map(|n| {
                Event::fixture(&format!("r-{n}"), "success.json").traced(&trace_header(n, true))
            })
            .collect(),
    )
    .await;
    let endpoint = format!("{}/v1/traces", backend.endpoint);
    let started = Instant::now();
    let function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", "http://127.0.0.1:9/"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2000"),
        ],
    );
    let outcomes = runtime.outcomes(INVOCATIONS as usize).await;
    runtime.wait_next_calls(INVOCATIONS as usize + 1).await;
    let elapsed = started.elapsed();
    // Measured, not asserted: the figure for the report.
    eprintln!("{INVOCATIONS} invocations against a hung span backend: {elapsed:.2?}");

    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Response { body, .. } if body["result"] == "Your age in hexadecimal is 0x22")),
        "every invocation answered: {outcomes:#?}"
    );
    let logs = function.json_logs();
    let raw = function.logs();
    let opened = lines_with_message(&logs, "span export breaker opened");
    assert_eq!(
        opened.len(),
        1,
        "one opened line, not one per invocation:\n{raw}"
    );
    assert_eq!(opened[0]["level"], "WARN", "{}", opened[0]);
    assert_eq!(opened[0]["exporter"], "otlp-http", "{}", opened[0]);
    let failing = lines_with_message(&logs, "span export failing");
    assert_eq!(failing.len(), 1, "{raw}");
    let probes = lines_with_message(&logs, "span export breaker half-open").len();
    assert!(
        probes <= probes_allowed(elapsed),
        "{probes} probes in {elapsed:?}:\n{raw}"
    );
    assert!(
        lines_with_message(&logs, "span export breaker closed").is_empty(),
        "the backend never answered:\n{raw}"
    );
    let exports = backend.exports.lock().expect("lock").len();
    assert_eq!(
        exports,
        1 + probes,
        "one export, then only the probes the backoff allows:\n{raw}"
    );

    // Every invocation's spans are accounted for: the first and the probes timed out, the others
    // were skipped by the open breaker; one WARN line and one `SpansDropped` EMF line each.
    let drops = lines_with_message(&logs, "spans dropped");
    assert_eq!(drops.len(), INVOCATIONS as usize, "{raw}");
    let timed_out = drops.iter().filter(|l| l["timed_out"] == 3).count();
    let skipped = drops
        .iter()
        .filter(|l| l["breaker_open"] == 3 && l["message"] == "3 spans dropped (3 breaker open)")
        .count();
    assert_eq!(
        (timed_out, skipped),
        (exports, INVOCATIONS as usize - exports),
        "{raw}"
    );
    let emf: Vec<&serde_json::Value> = logs
        .iter()
        .filter(|l| l.get("_aws").is_some() && l.get("SpansDropped").is_some())
        .collect();
    assert_eq!(emf.len(), INVOCATIONS as usize, "{raw}");
    assert!(emf.iter().all(|doc| doc["SpansDropped"] == 3), "{emf:#?}");
}

/// UDP's equivalent, an ICMP "port unreachable" from a daemon that is not there, costs nothing
/// (a send never waits): each flush counts its spans as failed and moves on, with no breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_daemon_is_counted_each_flush_with_no_breaker() {
    for exporter in ["otlp", "xray"] {
        let (function, outcomes) = support::run_with_unreachable_daemon(exporter).await;
        assert_eq!(outcomes.len(), 3);
        let logs = function.json_logs();
        let raw = function.logs();
        assert!(
            lines_with_message(&logs, "breaker").is_empty(),
            "{exporter}:\n{raw}"
        );
        let failed = lines_with_message(&logs, "spans dropped")
            .iter()
            .filter(|l| l["export_failed"].as_u64() > Some(0) && l["breaker_open"] == 0)
            .count();
        assert_eq!(failed, 3, "{exporter}: every flush tried:\n{raw}");
    }
}
