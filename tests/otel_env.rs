//! The OpenTelemetry (and Powertools, and Lambda) environment variables as the real `bootstrap`
//! reads them: one process per behaviour, against the mock Runtime API, with the X-Ray daemon,
//! an OTLP receiver and the public-IP service standing by. Every variable's rule is in
//! `docs/environment.md`; the unit tests of `lambda_observability::config` cover the parsing,
//! these tests that the process does what the parsed value says.

mod support;

use std::sync::Arc;

use serde_json::Value;
use support::{
    BootstrapExt as _, CheckIp, Event, FixtureExt as _, Function, MockRuntimeApi, OtlpDatagram,
    OtlpExport, OtlpMode, OtlpReceiver, Outcome, ResourceSpan, TRACE_PARENT, XrayDaemon,
    emf_documents, hex, lines_with_message, otel_trace_id, resource_attr, trace_header, trace_root,
};

/// A sampled invocation of the success event in trace `n`.
fn sampled(request_id: &str, n: u32) -> Event {
    Event::fixture(request_id, "success.json").traced(&trace_header(n, true))
}

/// Where the function may send things: the daemon, an OTLP receiver, the public-IP service.
struct Sinks {
    daemon: Arc<XrayDaemon>,
    otlp: OtlpReceiver,
    checkip: CheckIp,
}

/// The names of the spans of trace 1 among `spans`.
fn span_names_of_trace_1(spans: impl IntoIterator<Item = ResourceSpan>) -> Vec<String> {
    spans
        .into_iter()
        .filter(|(_, s)| hex(&s.trace_id) == otel_trace_id(1))
        .map(|(_, s)| s.name)
        .collect()
}

/// Runs `event` with `env`, the public-IP service answering `checkip_status`.
async fn run_event(checkip_status: u16, event: Event, env: &[(&str, &str)]) -> Run {
    Sinks::with(OtlpMode::Accept, checkip_status)
        .await
        .run(vec![event], env)
        .await
}

/// [`run_event`] with a success event, request id `ok`, without a trace header.
async fn run_success(checkip_status: u16, env: &[(&str, &str)]) -> Run {
    run_event(checkip_status, Event::fixture("ok", "success.json"), env).await
}

/// One `bootstrap` after its invocations: what it answered, logged and sent to the daemon.
struct Run {
    function: Function,
    outcomes: Vec<Outcome>,
    datagrams: Vec<Vec<u8>>,
}

impl Sinks {
    async fn start() -> Self {
        Self::with(OtlpMode::Accept, 200).await
    }

    async fn with(otlp: OtlpMode, checkip_status: u16) -> Self {
        Self {
            daemon: Arc::new(XrayDaemon::start()),
            otlp: OtlpReceiver::start(otlp).await,
            checkip: CheckIp::start(checkip_status).await,
        }
    }

    /// Runs `bootstrap` with `env` over `events` (the daemon address and the public-IP URL are
    /// set first, `env` may override them), until it asks for the event after the last.
    async fn run(&self, events: Vec<Event>, env: &[(&str, &str)]) -> Run {
        self.run_unsetting(events, env, &[]).await
    }

    /// Runs one sampled invocation (trace 1) with `env`, and asserts that it was answered.
    async fn run_sampled(&self, env: &[(&str, &str)]) -> Run {
        let run = self.run(vec![sampled("ok", 1)], env).await;
        run.assert_all_answered();
        run
    }

    /// [`Sinks::run_sampled`] with `OTEL_TRACES_EXPORTER=exporters`, the OTLP receiver as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, and `env` on top.
    async fn run_sampled_exporting(&self, exporters: &str, env: &[(&str, &str)]) -> Run {
        let mut vars = vec![
            ("OTEL_TRACES_EXPORTER", exporters),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.otlp.endpoint.as_str()),
        ];
        vars.extend_from_slice(env);
        self.run_sampled(&vars).await
    }

    /// The requests the OTLP receiver got, asserted to be some.
    fn exports(&self, run: &Run) -> Vec<OtlpExport> {
        let exports = self.otlp.exports.lock().expect("lock").clone();
        assert!(!exports.is_empty(), "{}", run.raw_logs());
        exports
    }

    /// Asserts that the OTLP receiver got requests, every one at `path`.
    fn assert_all_exported_to(&self, run: &Run, path: &str) {
        let exports = self.exports(run);
        assert!(
            exports.iter().all(|e| e.path == path),
            "all to {path}: {:?}",
            exports.iter().map(|e| &e.path).collect::<Vec<_>>()
        );
    }

    /// [`Sinks::run`] with the variables in `unset` removed from the environment.
    async fn run_unsetting(&self, events: Vec<Event>, env: &[(&str, &str)], unset: &[&str]) -> Run {
        let count = events.len();
        let runtime = MockRuntimeApi::start(events).await;
        let received = self.daemon.capture_before_next(&runtime);
        let daemon = self.daemon.address.to_string();
        let mut vars = vec![
            ("CHECKIP_URL", self.checkip.url.as_str()),
            ("AWS_XRAY_DAEMON_ADDRESS", daemon.as_str()),
        ];
        vars.extend_from_slice(env);
        let function = Function::start_unsetting(&runtime, &vars, unset);
        let outcomes = runtime.outcomes(count).await;
        // Asking for the next event: everything the last invocation exports and logs is out.
        runtime.wait_next_calls(count + 1).await;
        let mut datagrams: Vec<Vec<u8>> = received
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, d)| d.clone())
            .collect();
        datagrams.extend(self.daemon.drain());
        Run {
            function,
            outcomes,
            datagrams,
        }
    }
}

impl Run {
    /// The X-Ray segment documents received by the daemon.
    fn segments(&self) -> Vec<Value> {
        self.datagrams
            .iter()
            .map(|datagram| {
                let text = std::str::from_utf8(datagram).expect("UTF-8 datagram");
                let (header, document) = text.split_once('\n').expect("header line");
                assert_eq!(header, r#"{"format": "json", "version": 1}"#, "{text}");
                serde_json::from_str(document).expect("a segment document")
            })
            .collect()
    }

    /// The segment documents of trace `n`.
    fn segments_of(&self, n: u32) -> Vec<Value> {
        let root = trace_root(n);
        self.segments()
            .into_iter()
            .filter(|doc| doc["trace_id"] == root.as_str())
            .collect()
    }

    /// The invocation's subsegment in trace `n` (under Lambda's segment).
    fn invocation_segment(&self, n: u32) -> Value {
        self.segments_of(n)
            .into_iter()
            .find(|doc| doc["parent_id"] == TRACE_PARENT)
            .unwrap_or_else(|| panic!("no invocation subsegment in {:#?}", self.segments()))
    }

    fn logs(&self) -> Vec<Value> {
        self.function.json_logs()
    }

    fn raw_logs(&self) -> String {
        self.function.logs()
    }

    /// The log lines (any level, any format) that mention `text`.
    fn lines_mentioning(&self, text: &str) -> Vec<String> {
        self.raw_logs()
            .lines()
            .filter(|line| line.contains(text))
            .map(str::to_owned)
            .collect()
    }

    /// Asserts that exactly one line mentions `variable`, a `WARN` line that names `value` too.
    fn assert_one_warning(&self, variable: &str, value: &str) {
        let lines = self.lines_mentioning(variable);
        assert_eq!(
            lines.len(),
            1,
            "one line names {variable}:\n{}",
            self.raw_logs()
        );
        let line: Value = serde_json::from_str(&lines[0]).expect("a JSON log line");
        assert_eq!(line["level"], "WARN", "{line}");
        assert!(
            line["message"].as_str().is_some_and(|m| m.contains(value)),
            "the warning names the value {value:?}: {line}"
        );
    }

    fn assert_all_answered(&self) {
        assert!(
            self.outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Response { .. })),
            "{:?}\n{}",
            self.outcomes,
            self.raw_logs()
        );
    }

    /// The EMF documents among the log lines.
    fn emf(&self) -> Vec<Value> {
        emf_documents(self.logs())
    }
}

// --- Turning tracing off -------------------------------------------------------------------

/// Runs one sampled invocation exported to the daemon and the OTLP receiver, with `disabled`
/// set to `true`, and asserts that it was answered and that nothing was sent.
async fn assert_disabled_sends_nothing(disabled: &str) {
    let sinks = Sinks::start().await;
    let run = sinks
        .run_sampled_exporting("xray,otlp", &[(disabled, "true")])
        .await;
    assert!(run.datagrams.is_empty(), "{:?}", run.segments());
    assert!(sinks.otlp.spans().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_sdk_disabled_sends_nothing_even_with_an_exporter_chosen() {
    assert_disabled_sends_nothing("OTEL_SDK_DISABLED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powertools_trace_disabled_sends_nothing_even_with_an_exporter_chosen() {
    assert_disabled_sends_nothing("POWERTOOLS_TRACE_DISABLED").await;
}

// --- OTEL_TRACES_EXPORTER ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_exporter_in_the_list_warns_once_and_the_known_one_still_sends() {
    let sinks = Sinks::start().await;
    let run = sinks
        .run_sampled(&[("OTEL_TRACES_EXPORTER", " XRAY , jaeger")])
        .await;
    let invocation = run.invocation_segment(1);
    assert_eq!(invocation["name"], "hello-it", "{invocation}");
    assert_eq!(run.segments_of(1).len(), 3, "{:#?}", run.segments());
    run.assert_one_warning("OTEL_TRACES_EXPORTER", "jaeger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_exporters_sends_each_invocation_to_each_of_them() {
    let sinks = Sinks::start().await;
    let run = sinks.run_sampled_exporting("xray,otlp", &[]).await;
    assert_eq!(run.segments_of(1).len(), 3, "{:#?}", run.segments());
    let spans = span_names_of_trace_1(sinks.otlp.spans());
    assert_eq!(spans.len(), 3, "{spans:?}");
    assert!(spans.iter().any(|name| name == "hello-it"), "{spans:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_inside_lambda_without_an_endpoint_sends_otlp_over_udp_to_the_daemon() {
    let sinks = Sinks::start().await;
    let run = sinks
        .run_unsetting(vec![sampled("ok", 1)], &[], &["OTEL_TRACES_EXPORTER"])
        .await;
    run.assert_all_answered();
    assert!(!run.datagrams.is_empty(), "{}", run.raw_logs());
    let spans = span_names_of_trace_1(
        run.datagrams
            .iter()
            .flat_map(|d| OtlpDatagram::decode(d).spans()),
    );
    assert_eq!(spans.len(), 3, "{spans:?}");
    assert!(sinks.otlp.spans().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_with_an_otlp_endpoint_sends_otlp_over_http_only() {
    let sinks = Sinks::start().await;
    let endpoint = sinks.otlp.endpoint.clone();
    let run = sinks
        .run_unsetting(
            vec![sampled("ok", 1)],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
            &["OTEL_TRACES_EXPORTER"],
        )
        .await;
    run.assert_all_answered();
    let spans = sinks.otlp.spans();
    assert_eq!(spans.len(), 3, "{}", run.raw_logs());
    assert!(run.datagrams.is_empty(), "nothing goes to the daemon");
}

// --- OTEL_TRACES_SAMPLER -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_off_sends_nothing_even_for_a_sampled_invocation() {
    let sinks = Sinks::start().await;
    let run = sinks
        .run_sampled(&[
            ("OTEL_TRACES_EXPORTER", "xray"),
            ("OTEL_TRACES_SAMPLER", "always_off"),
        ])
        .await;
    assert!(run.datagrams.is_empty(), "{:#?}", run.segments());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parentbased_always_on_follows_lambdas_sampled_flag() {
    let sinks = Sinks::start().await;
    let run = sinks
        .run(
            vec![
                Event::fixture("unsampled", "success.json").traced(&trace_header(1, false)),
                sampled("sampled", 2),
            ],
            &[
                ("OTEL_TRACES_EXPORTER", "xray"),
                ("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
            ],
        )
        .await;
    run.assert_all_answered();
    assert!(run.segments_of(1).is_empty(), "{:#?}", run.segments());
    assert_eq!(run.segments_of(2).len(), 3, "{:#?}", run.segments());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceidratio_with_a_bad_argument_warns_and_samples_everything() {
    let sinks = Sinks::start().await;
    let run = sinks
        .run(
            vec![Event::fixture("unsampled", "success.json").traced(&trace_header(1, false))],
            &[
                ("OTEL_TRACES_EXPORTER", "xray"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ],
        )
        .await;
    run.assert_all_answered();
    run.assert_one_warning("OTEL_TRACES_SAMPLER_ARG", "1.5");
    // The ratio falls back to 1.0, and `traceidratio` (not parent-based) ignores `Sampled=0`.
    assert_eq!(run.segments_of(1).len(), 3, "{:#?}", run.segments());
}

// --- OTEL_PROPAGATORS ----------------------------------------------------------------------

/// The trace headers of the one outbound public-IP request made with `propagators` (`None`:
/// the variable unset, as the defaults of [`Function::start`] leave it): (`traceparent`,
/// `X-Amzn-Trace-Id`).
async fn outbound_trace_headers(propagators: Option<&str>) -> (Option<String>, Option<String>) {
    let sinks = Sinks::start().await;
    let mut env = vec![("OTEL_TRACES_EXPORTER", "xray")];
    if let Some(propagators) = propagators {
        env.push(("OTEL_PROPAGATORS", propagators));
    }
    let _run = sinks.run_sampled(&env).await;
    let requests = sinks.checkip.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let header = |name: &str| requests[0].header(name).map(str::to_owned);
    (header("traceparent"), header("x-amzn-trace-id"))
}

/// Asserts that `traceparent` was sent and names trace 1.
fn assert_traceparent_of_trace_1(traceparent: Option<&str>) {
    assert!(
        traceparent.is_some_and(|t| t.contains(&otel_trace_id(1))),
        "{traceparent:?}"
    );
}

/// Asserts that `X-Amzn-Trace-Id` was sent and names trace 1's root.
fn assert_xray_header_of_trace_1(xray: Option<&str>) {
    assert!(
        xray.is_some_and(|x| x.contains(&format!("Root={}", trace_root(1)))),
        "{xray:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracecontext_propagates_traceparent_only() {
    let (traceparent, xray) = outbound_trace_headers(Some("tracecontext")).await;
    assert_traceparent_of_trace_1(traceparent.as_deref());
    assert_eq!(xray, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xray_propagates_x_amzn_trace_id_only() {
    let (traceparent, xray) = outbound_trace_headers(Some("xray")).await;
    assert_eq!(traceparent, None);
    assert_xray_header_of_trace_1(xray.as_deref());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_propagates_both_headers() {
    let (traceparent, xray) = outbound_trace_headers(None).await;
    assert_traceparent_of_trace_1(traceparent.as_deref());
    assert_xray_header_of_trace_1(xray.as_deref());
}

// --- The service name ----------------------------------------------------------------------

/// Runs one invocation exported to both the daemon and the OTLP receiver, with JSON logs, and
/// asserts that `expected` is the one service name: the OTLP resource's `service.name`, the
/// invocation span's name (OTLP span, X-Ray subsegment under Lambda's segment, X-Ray segment
/// without one), the `Service` annotation, every log line of the invocation and every EMF
/// document.
async fn assert_service_name(env: &[(&str, &str)], expected: &str) {
    let sinks = Sinks::start().await;
    let endpoint = sinks.otlp.endpoint.clone();
    let mut vars = vec![
        ("OTEL_TRACES_EXPORTER", "xray,otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
    ];
    vars.extend_from_slice(env);
    // The second invocation has no trace header: its span is the root, an X-Ray segment.
    let events = vec![sampled("ok", 1), Event::fixture("untraced", "success.json")];
    let run = sinks.run(events, &vars).await;
    run.assert_all_answered();

    let spans = sinks.otlp.spans();
    assert!(!spans.is_empty(), "{}", run.raw_logs());
    for (resource, _) in &spans {
        assert_eq!(
            resource_attr(resource, "service.name"),
            Some(expected),
            "{resource:?}"
        );
    }
    let invocation = spans
        .iter()
        .find(|(_, s)| hex(&s.parent_span_id) == TRACE_PARENT)
        .map(|(_, s)| s)
        .expect("the invocation span");
    assert_eq!(invocation.name, expected);

    let segment = run.invocation_segment(1);
    assert_eq!(segment["name"], expected, "{segment}");
    assert_eq!(segment["annotations"]["Service"], expected, "{segment}");
    let roots: Vec<Value> = run
        .segments()
        .into_iter()
        .filter(|doc| doc.get("parent_id").is_none())
        .collect();
    assert_eq!(roots.len(), 1, "{:#?}", run.segments());
    assert_eq!(roots[0]["name"], expected, "{}", roots[0]);
    assert_eq!(roots[0]["annotations"]["Service"], expected, "{}", roots[0]);

    let logs = run.logs();
    let lines: Vec<&Value> = logs.iter().filter(|l| l["requestId"] == "ok").collect();
    assert!(!lines.is_empty(), "{}", run.raw_logs());
    for line in lines {
        assert_eq!(line["service"], expected, "{line}");
    }
    let emf = run.emf();
    assert!(!emf.is_empty(), "{}", run.raw_logs());
    for doc in emf {
        assert_eq!(doc["service"], expected, "{doc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_service_name_wins_over_every_other_name() {
    assert_service_name(
        &[
            ("OTEL_SERVICE_NAME", "from-otel"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource"),
            ("POWERTOOLS_SERVICE_NAME", "from-powertools"),
        ],
        "from-otel",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_name_in_resource_attributes_wins_over_powertools() {
    assert_service_name(
        &[
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=test,service.name=from-resource",
            ),
            ("POWERTOOLS_SERVICE_NAME", "from-powertools"),
        ],
        "from-resource",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powertools_service_name_wins_over_the_function_name() {
    assert_service_name(
        &[("POWERTOOLS_SERVICE_NAME", "from-powertools")],
        "from-powertools",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_name_is_the_service_name_when_none_is_set() {
    assert_service_name(&[], "hello-it").await;
}

// --- OTLP endpoint, headers, timeout, protocol ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traces_endpoint_is_used_as_is_and_wins_over_the_generic_one() {
    let sinks = Sinks::start().await;
    let generic = OtlpReceiver::start(OtlpMode::Accept).await;
    let traces = format!("{}/custom/traces", sinks.otlp.endpoint);
    sinks.otlp.serve_traces_at("/custom/traces");
    let run = sinks
        .run_sampled(&[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &generic.endpoint),
        ])
        .await;
    // No `/v1/traces` appended.
    sinks.assert_all_exported_to(&run, "/custom/traces");
    assert!(generic.spans().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_traces_endpoint_counts_as_unset_and_the_generic_one_gets_v1_traces() {
    let sinks = Sinks::start().await;
    let endpoint = format!("{}/base/", sinks.otlp.endpoint);
    sinks.otlp.serve_traces_at("/base/v1/traces");
    let run = sinks
        .run_sampled(&[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ])
        .await;
    sinks.assert_all_exported_to(&run, "/base/v1/traces");
    assert!(run.datagrams.is_empty(), "not sent over UDP instead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traces_headers_win_whole_over_the_generic_ones() {
    let sinks = Sinks::start().await;
    let run = sinks
        .run_sampled_exporting(
            "otlp",
            &[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                    "x-traces-token=t%20one",
                ),
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-generic-token=g"),
            ],
        )
        .await;
    for export in &sinks.exports(&run) {
        let header = |name: &str| {
            export
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-traces-token"), Some("t one"), "percent-decoded");
        assert_eq!(header("x-generic-token"), None, "{:?}", export.headers);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traces_timeout_bounds_an_export_to_a_hanging_receiver() {
    let sinks = Sinks::with(OtlpMode::Hang, 200).await;
    let run = sinks
        .run_sampled_exporting(
            "otlp",
            &[
                // Generous: the request must reach the receiver within it, the first connect
                // included, however loaded the machine.
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2000"),
                // Were the generic one used, the export would hang past the invocation's deadline.
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "600000"),
            ],
        )
        .await;
    // The receiver got the request.
    sinks.exports(&run);
    let logs = run.logs();
    let drops = lines_with_message(&logs, "spans dropped");
    assert_eq!(drops.len(), 1, "{}", run.raw_logs());
    assert_eq!(drops[0]["level"], "WARN", "{}", drops[0]);
    assert_eq!(drops[0]["timed_out"], 3, "{}", drops[0]);
    assert_eq!(drops[0]["export_failed"], 0, "{}", drops[0]);
    // The bound that cut the export is the configured one (not the deadline's, nor the generic).
    let failing = lines_with_message(&logs, "span export failing");
    assert_eq!(failing.len(), 1, "{}", run.raw_logs());
    assert_eq!(
        failing[0]["error"], "Operation timed out after 2s",
        "{}",
        failing[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_protocol_warns_once_and_http_protobuf_is_sent() {
    let sinks = Sinks::start().await;
    let run = sinks
        .run_sampled_exporting("otlp", &[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")])
        .await;
    run.assert_one_warning("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc");
    assert_eq!(sinks.otlp.spans().len(), 3, "{}", run.raw_logs());
}

// --- Log levels ----------------------------------------------------------------------------

/// Levels of the log lines the function and its layers write (EMF documents have none).
fn levels(logs: &[Value]) -> Vec<&str> {
    logs.iter().filter_map(|l| l["level"].as_str()).collect()
}

/// The `public IP lookup failed` lines: the function's WARN line when the service answers 503.
fn lookup_failures(logs: &[Value]) -> Vec<&Value> {
    logs.iter()
        .filter(|l| l["message"] == "public IP lookup failed")
        .collect()
}

/// Asserts that the public-IP lookup failure, a WARN line, is logged, and nothing below WARN.
fn assert_warn_level(run: &Run) {
    let logs = run.logs();
    assert_eq!(lookup_failures(&logs).len(), 1, "{}", run.raw_logs());
    assert!(
        levels(&logs)
            .iter()
            .all(|level| matches!(*level, "WARN" | "ERROR")),
        "{}",
        run.raw_logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_lambda_log_level_error_hides_info_and_warn_and_errors_keep_the_request_id() {
    let run = run_event(
        503,
        Event::fixture("throw", "throw-error.json"),
        &[("AWS_LAMBDA_LOG_LEVEL", "ERROR")],
    )
    .await;
    let logs = run.logs();
    assert!(
        levels(&logs).iter().all(|level| *level == "ERROR"),
        "{}",
        run.raw_logs()
    );
    let errors: Vec<&Value> = logs
        .iter()
        .filter(|l| l["error_type"] == "SimpleException")
        .collect();
    assert_eq!(errors.len(), 1, "{}", run.raw_logs());
    assert_eq!(errors[0]["requestId"], "throw", "{}", errors[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powertools_log_level_applies_when_aws_lambda_log_level_is_unset() {
    let run = run_success(503, &[("POWERTOOLS_LOG_LEVEL", "WARN")]).await;
    assert_warn_level(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_lambda_log_level_wins_over_powertools_log_level() {
    let run = run_success(
        503,
        &[
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ("POWERTOOLS_LOG_LEVEL", "ERROR"),
        ],
    )
    .await;
    // At ERROR (Powertools' level) this WARN line would be hidden; at INFO, INFO lines shown.
    assert_warn_level(&run);
}

// --- Payload logging and metrics -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powertools_logger_log_event_logs_the_payload_in_its_invocation() {
    let run = run_success(200, &[("POWERTOOLS_LOGGER_LOG_EVENT", "true")]).await;
    let logs = run.logs();
    let payloads: Vec<&Value> = logs
        .iter()
        .filter(|l| {
            l["payload"]
                .as_str()
                .is_some_and(|p| p.contains("Bogdan-Eugen"))
        })
        .collect();
    assert_eq!(payloads.len(), 1, "{}", run.raw_logs());
    assert_eq!(payloads[0]["requestId"], "ok", "{}", payloads[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powertools_metrics_namespace_is_the_emf_namespace() {
    let run = run_success(200, &[("POWERTOOLS_METRICS_NAMESPACE", "EnvTestNamespace")]).await;
    let emf = run.emf();
    assert!(!emf.is_empty(), "{}", run.raw_logs());
    for doc in emf {
        for directive in doc["_aws"]["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics directives")
        {
            assert_eq!(directive["Namespace"], "EnvTestNamespace", "{doc}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powertools_metrics_disabled_writes_no_emf() {
    let run = run_success(200, &[("POWERTOOLS_METRICS_DISABLED", "true")]).await;
    run.assert_all_answered();
    assert!(
        run.logs().iter().any(|l| l["requestId"] == "ok"),
        "the function logged: {}",
        run.raw_logs()
    );
    assert!(run.emf().is_empty(), "{:?}", run.emf());
}
