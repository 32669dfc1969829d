//! Every span accounted for: each span of each invocation received exactly once (X-Ray segments
//! over UDP, OTLP over UDP, OTLP/HTTP), the function's own counters agreeing; drops counted in a
//! log line and in the `SpansDropped` EMF metric; concurrent invocations (Lambda Managed
//! Instances) never mixing or waiting for each other's traces. The real `bootstrap` runs against
//! the mock Runtime API.

mod support;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::Value;
use support::{
    BootstrapExt as _, CheckIp, Event, Function, GatedCheckIp, MockRuntimeApi, OtlpDatagram,
    OtlpExport, OtlpMode, OtlpReceiver, Outcome, Response, XrayDaemon, emf_documents, hex,
    lines_with_message, otel_id_of_root, request_trace_ids, serve_http, span_attr, until,
    xray_root,
};

/// Keeps the log files of the long runs small; the export totals at shutdown stay visible.
const QUIET: &str = "warn,lambda_observability::export=info";

/// The 24 hex digits after the time part of invocation `n`'s trace id (`Root=1-<time>-<these>`).
fn unique_part(n: u32) -> String {
    format!("acc0{n:020x}")
}

/// Invocation `n`'s X-Ray trace id.
fn root(n: u32) -> String {
    xray_root(&unique_part(n))
}

/// Invocation `n`'s trace id as OpenTelemetry writes it (32 hex digits).
fn otel_trace_id(n: u32) -> String {
    otel_id_of_root(&root(n))
}

/// The Lambda segment invocation `n` hangs under: its own, so a span under another's is seen.
fn parent(n: u32) -> String {
    format!("{:016x}", 0x5e9d_0000_0000_0000_u64 + u64::from(n))
}

fn header(n: u32) -> String {
    format!("Root={};Parent={};Sampled=1", root(n), parent(n))
}

fn request_id(n: u32) -> String {
    format!("r-{n}")
}

/// Invocation `n`: a fresh trace header; every 7th throws (its spans are exported all the same).
fn event(n: u32) -> Event {
    let body = format!(
        r#"{{"firstName": "P{n}", "lastName": "Q", "age": 30, "throwError": {}}}"#,
        n.is_multiple_of(7)
    );
    Event::new(&request_id(n), body).traced(&header(n))
}

/// A received span, whatever the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Received {
    trace_id: String,
    id: String,
    parent_id: String,
    /// `invocation`, `getRuntimeInfo` or `GET`, as told by the format's own markers.
    role: &'static str,
    /// `faas.invocation_id` (invocation span only; X-Ray does not carry it).
    request_id: Option<String>,
}

fn from_otlp(span: &opentelemetry_proto::tonic::trace::v1::Span) -> Received {
    let role = if span.name == "getRuntimeInfo" {
        "getRuntimeInfo"
    } else if span.kind() == SpanKind::Client {
        "GET"
    } else if span_attr(span, "faas.invocation_id").is_some() {
        "invocation"
    } else {
        "unknown"
    };
    Received {
        trace_id: hex(&span.trace_id),
        id: hex(&span.span_id),
        parent_id: hex(&span.parent_span_id),
        role,
        request_id: span_attr(span, "faas.invocation_id"),
    }
}

fn from_segment(datagram: &[u8]) -> Received {
    let text = std::str::from_utf8(datagram).expect("UTF-8 datagram");
    let (_, document) = text.split_once('\n').expect("header line then document");
    let doc: Value = serde_json::from_str(document).expect("one JSON document per datagram");
    let role = if doc["name"] == "getRuntimeInfo" {
        "getRuntimeInfo"
    } else if doc["namespace"] == "remote" {
        "GET"
    } else if doc["annotations"]["Service"].is_string() {
        "invocation"
    } else {
        "unknown"
    };
    Received {
        // X-Ray's `1-<time>-<unique>`, compared as OpenTelemetry's 32 hex digits.
        trace_id: otel_id_of_root(doc["trace_id"].as_str().unwrap_or_default()),
        id: doc["id"].as_str().unwrap_or_default().to_owned(),
        parent_id: doc["parent_id"].as_str().unwrap_or_default().to_owned(),
        role,
        request_id: None,
    }
}

/// Checks that `received` holds, for each of invocations `1..=count`, exactly its invocation
/// span (under its own Lambda segment), `getRuntimeInfo` and the GET (under the invocation
/// span), each span id once and nothing else.
fn assert_exactly_once(received: &[Received], count: u32) {
    let mut ids = HashSet::new();
    for span in received {
        assert!(ids.insert(span.id.clone()), "span received twice: {span:?}");
    }
    let mut by_trace: HashMap<&str, Vec<&Received>> = HashMap::new();
    for span in received {
        by_trace
            .entry(span.trace_id.as_str())
            .or_default()
            .push(span);
    }
    let expected: HashSet<String> = (1..=count).map(otel_trace_id).collect();
    let unknown: Vec<&&str> = by_trace
        .keys()
        .filter(|t| !expected.contains(**t))
        .collect();
    assert!(unknown.is_empty(), "spans of unknown traces: {unknown:?}");
    for n in 1..=count {
        let spans = by_trace
            .get(otel_trace_id(n).as_str())
            .unwrap_or_else(|| panic!("no span of invocation {n}"));
        let mut roles: Vec<&str> = spans.iter().map(|s| s.role).collect();
        roles.sort_unstable();
        assert_eq!(
            roles,
            ["GET", "getRuntimeInfo", "invocation"],
            "invocation {n}: {spans:#?}"
        );
        let invocation = spans
            .iter()
            .find(|s| s.role == "invocation")
            .expect("sorted above");
        assert_eq!(invocation.parent_id, parent(n), "invocation {n}");
        if let Some(id) = &invocation.request_id {
            assert_eq!(*id, request_id(n));
        }
        for child in spans.iter().filter(|s| s.role != "invocation") {
            assert_eq!(child.parent_id, invocation.id, "invocation {n}: {child:?}");
        }
    }
    assert_eq!(received.len(), 3 * count as usize);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    XraySegments,
    OtlpUdp,
    OtlpHttp,
}

/// What a run saw: spans the function sent (its own count), received, dropped (its own count).
#[derive(Debug)]
struct Figure {
    sent: u64,
    received: usize,
    dropped: u64,
}

/// The totals line `Telemetry::shutdown` logs on SIGTERM: (exported, dropped).
fn export_totals(function: &mut Function) -> (u64, u64) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &function.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    function
        .wait_exit(support::TIMEOUT)
        .expect("exits after SIGTERM");
    let logs = function.json_logs();
    let totals: Vec<&Value> = logs
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("span export totals"))
        })
        .collect();
    assert_eq!(totals.len(), 1, "one totals line at shutdown");
    (
        totals[0]["exported"].as_u64().expect("exported"),
        totals[0]["dropped"].as_u64().expect("dropped"),
    )
}

/// Asserts that each OTLP/HTTP export holds the spans of one trace: one invocation's flush.
fn assert_one_trace_per_export(exports: &[OtlpExport]) {
    for export in exports {
        assert_eq!(
            request_trace_ids(&export.request).len(),
            1,
            "one trace per export"
        );
    }
}

/// Sum of metric `name` over the EMF documents (a counter is a number per document).
fn emf_sum(docs: &[Value], name: &str) -> u64 {
    docs.iter().filter_map(|d| d[name].as_u64()).sum()
}

async fn every_span_once(transport: Transport, count: u32) -> Figure {
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start((1..=count).map(event).collect()).await;
    let daemon = Arc::new(XrayDaemon::start());
    let datagrams = daemon.capture_before_next(&runtime);
    let receiver = OtlpReceiver::start(OtlpMode::Accept).await;
    let address = daemon.address.to_string();
    let mut env = vec![("CHECKIP_URL", checkip.url.as_str()), ("RUST_LOG", QUIET)];
    match transport {
        Transport::XraySegments => {
            env.extend([
                ("OTEL_TRACES_EXPORTER", "xray"),
                ("AWS_XRAY_DAEMON_ADDRESS", &address),
            ]);
        }
        Transport::OtlpUdp => {
            env.extend([
                ("OTEL_TRACES_EXPORTER", "otlp"),
                ("AWS_XRAY_DAEMON_ADDRESS", &address),
            ]);
        }
        Transport::OtlpHttp => {
            env.extend([
                ("OTEL_TRACES_EXPORTER", "otlp"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint),
            ]);
        }
    }
    let mut function = Function::start(&runtime, &env);
    runtime.wait_outcome_count(count as usize).await;
    // The datagrams of the last invocation are taken at the /next that follows it.
    runtime.wait_next_calls(count as usize + 1).await;

    // Over UDP, each span with the number of the /next before which it had arrived.
    let udp: Vec<(usize, Received)> = match transport {
        Transport::XraySegments => datagrams
            .lock()
            .expect("lock")
            .iter()
            .map(|(next, d)| (*next, from_segment(d)))
            .collect(),
        Transport::OtlpUdp => datagrams
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|(next, d)| {
                OtlpDatagram::decode(d)
                    .spans()
                    .into_iter()
                    .map(move |(_, s)| (*next, from_otlp(&s)))
            })
            .collect(),
        Transport::OtlpHttp => Vec::new(),
    };
    if transport != Transport::OtlpHttp {
        // Sent before the function asked for the next event: nothing left for a frozen process.
        let number: HashMap<String, u32> = (1..=count).map(|n| (otel_trace_id(n), n)).collect();
        for (next, span) in &udp {
            if let Some(n) = number.get(&span.trace_id) {
                assert_eq!(*next, *n as usize + 1, "invocation {n}: {span:?}");
            }
        }
    }
    let received: Vec<Received> = match transport {
        Transport::XraySegments | Transport::OtlpUdp => {
            udp.into_iter().map(|(_, span)| span).collect()
        }
        Transport::OtlpHttp => {
            let exports = receiver.exports.lock().expect("lock").clone();
            // One request per invocation flush, holding that invocation's trace only.
            assert_eq!(exports.len(), count as usize);
            assert_one_trace_per_export(&exports);
            receiver.spans().iter().map(|(_, s)| from_otlp(s)).collect()
        }
    };
    assert_exactly_once(&received, count);
    let outcomes = runtime.outcomes(count as usize).await;
    let errors = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Error { .. }))
        .count();
    assert_eq!(errors, (count / 7) as usize, "every 7th throws");

    // The function's own account agrees: nothing dropped, nothing logged as dropped.
    let docs = emf_documents(function.json_logs());
    assert_eq!(emf_sum(&docs, "SpansDropped"), 0);
    assert!(!function.logs().contains("spans dropped"));
    let (sent, dropped) = export_totals(&mut function);
    assert_eq!(sent, received.len() as u64);
    assert_eq!(dropped, 0);
    Figure {
        sent,
        received: received.len(),
        dropped,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_received_exactly_once_as_xray_segments() {
    every_span_once(Transport::XraySegments, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_received_exactly_once_over_otlp_udp() {
    every_span_once(Transport::OtlpUdp, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_received_exactly_once_over_otlp_http() {
    every_span_once(Transport::OtlpHttp, 300).await;
}

/// The long version, for each transport: `SOAK_INVOCATIONS` (default 10 000) invocations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: 10 000 invocations per transport; run with --ignored"]
async fn soak_every_span_received_exactly_once_10k_invocations() {
    let count = std::env::var("SOAK_INVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    for transport in [
        Transport::XraySegments,
        Transport::OtlpUdp,
        Transport::OtlpHttp,
    ] {
        let started = Instant::now();
        let figure = every_span_once(transport, count).await;
        println!(
            "{transport:?}: {count} invocations, {} spans sent, {} received, {} dropped ({:.1?})",
            figure.sent,
            figure.received,
            figure.dropped,
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_times_out_shows_as_spans_dropped_in_a_log_line_and_emf() {
    const COUNT: u32 = 3;
    let receiver = OtlpReceiver::start(OtlpMode::Hang).await;
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start((1..=COUNT).map(event).collect()).await;
    let mut function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", &checkip.url),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint),
            // Generous: each request must reach the receiver within it, the first connect
            // included, however loaded the machine; nothing below depends on its value.
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2000"),
        ],
    );
    runtime.outcomes(COUNT as usize).await;
    runtime.wait_next_calls(COUNT as usize + 1).await;
    let logs = function.json_logs();

    // One WARN line per invocation, with its trace and count: the first timed out and opened
    // the collector's breaker; the next ones were skipped at once (`breaker open`), unless one
    // came late enough to be the breaker's probe, which times out like the first.
    let warnings = lines_with_message(&logs, "spans dropped");
    assert_eq!(warnings.len(), COUNT as usize, "{warnings:#?}");
    let mut timed_out = 0;
    for (n, warning) in (1..=COUNT).zip(&warnings) {
        assert_eq!(warning["level"], "WARN");
        assert_eq!(warning["trace_id"], otel_trace_id(n).as_str());
        if n == 1 || warning["timed_out"] == 3 {
            assert_eq!(warning["message"], "3 spans dropped (3 timed out)");
            assert_eq!(warning["timed_out"], 3);
            timed_out += 1;
        } else {
            assert_eq!(warning["message"], "3 spans dropped (3 breaker open)");
            assert_eq!(warning["breaker_open"], 3);
        }
    }
    let probes = lines_with_message(&logs, "span export breaker half-open").len();
    assert_eq!(timed_out, 1 + probes, "{warnings:#?}");
    // And one EMF line per invocation carrying its count, written before the next event.
    let dropped: Vec<&Value> = logs
        .iter()
        .filter(|l| l.get("_aws").is_some() && l.get("SpansDropped").is_some())
        .collect();
    assert_eq!(dropped.len(), COUNT as usize, "{dropped:#?}");
    for doc in &dropped {
        assert_eq!(doc["SpansDropped"], 3, "{doc}");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        let metric = directive["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .find(|m| m["Name"] == "SpansDropped")
            .expect("declared in the directive");
        assert_eq!(metric["Unit"], "Count");
    }
    assert_eq!(
        receiver.exports.lock().expect("lock").len(),
        timed_out,
        "each flush that timed out reached the collector; the others did not try"
    );
    let (exported, total_dropped) = export_totals(&mut function);
    assert_eq!((exported, total_dropped), (0, 3 * u64::from(COUNT)));
}

/// A public-IP stand-in that holds the requests of the invocations in `slow` (told by their
/// trace id, propagated in the request headers) until released, and answers the others at once.
async fn selective_checkip(slow: &[u32]) -> GatedCheckIp {
    let slow: Vec<String> = slow.iter().copied().map(unique_part).collect();
    GatedCheckIp::holding(move |request| {
        request
            .headers
            .iter()
            .any(|(_, value)| slow.iter().any(|s| value.contains(s.as_str())))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_export_their_own_traces_without_waiting_for_each_other() {
    const SLOW: [u32; 2] = [1, 2];
    const COUNT: u32 = 12;
    let checkip = selective_checkip(&SLOW).await;
    let receiver = OtlpReceiver::start(OtlpMode::Accept).await;
    let runtime = MockRuntimeApi::start((1..=COUNT).map(event).collect()).await;
    let function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", &checkip.url),
            ("CHECKIP_TIMEOUT_MS", "20000"),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint),
        ],
    );
    // The slow invocations hold two of the four slots; the fast ones go through the other two,
    // and their spans arrive while the slow ones are still in flight.
    until("both slow invocations held", || {
        checkip.held() == SLOW.len()
    })
    .await;
    let fast = (COUNT as usize) - SLOW.len();
    runtime.wait_outcome_count(fast).await;
    until("the fast invocations' spans", || {
        receiver.exports.lock().expect("lock").len() == fast
    })
    .await;
    assert_eq!(checkip.held(), SLOW.len(), "still held");
    let answered: Vec<String> = runtime
        .outcomes(fast)
        .await
        .iter()
        .map(|o| o.request_id().to_owned())
        .collect();
    for n in SLOW {
        assert!(!answered.contains(&request_id(n)), "{answered:?}");
    }
    let early: HashSet<String> = receiver
        .spans()
        .iter()
        .map(|(_, s)| hex(&s.trace_id))
        .collect();
    let fast_traces: HashSet<String> = (1..=COUNT)
        .filter(|n| !SLOW.contains(n))
        .map(otel_trace_id)
        .collect();
    assert_eq!(early, fast_traces, "only the fast traces, all of them");

    checkip.release(SLOW.len());
    runtime.wait_outcome_count(COUNT as usize).await;
    runtime.wait_next_calls(COUNT as usize + 4).await;
    assert_eq!(runtime.max_in_flight(), 4);

    // One export per invocation, holding that invocation's trace only, each span once, under
    // its own Lambda segment.
    let exports = receiver.exports.lock().expect("lock").clone();
    assert_eq!(exports.len(), COUNT as usize);
    assert_one_trace_per_export(&exports);
    let spans = receiver.spans();
    let received: Vec<Received> = spans.iter().map(|(_, s)| from_otlp(s)).collect();
    assert_exactly_once(&received, COUNT);
    let cold: Vec<&str> = spans
        .iter()
        .filter(|(_, s)| span_attr(s, "ColdStart").as_deref() == Some("true"))
        .map(|(_, s)| s.name.as_str())
        .collect();
    assert_eq!(cold.len(), 1, "one cold start per environment");

    // Log lines under interleaving: each names its own invocation and trace.
    let logs = function.json_logs();
    let mut lines_per_invocation: HashMap<String, usize> = HashMap::new();
    for line in &logs {
        let Some(id) = line["requestId"].as_str() else {
            continue;
        };
        let n: u32 = id
            .trim_start_matches("r-")
            .parse()
            .expect("a request id of this test");
        assert_eq!(line["traceId"], otel_trace_id(n).as_str(), "{line}");
        assert_eq!(line["xrayTraceId"], header(n).as_str(), "{line}");
        if let Some(greeting) = line["greeting"].as_str() {
            assert!(greeting.starts_with(&format!("Hello P{n} Q,")), "{line}");
        }
        *lines_per_invocation.entry(id.to_owned()).or_default() += 1;
    }
    assert_eq!(lines_per_invocation.len(), COUNT as usize);
    // The environment's cold start and init time, once.
    let docs = emf_documents(logs);
    assert_eq!(emf_sum(&docs, "ColdStart"), 1, "{docs:#?}");
    let init: usize = docs
        .iter()
        .filter_map(|d| d["InitDuration"].as_array().map(Vec::len))
        .sum();
    assert_eq!(init, 1, "{docs:#?}");
    assert_eq!(emf_sum(&docs, "SpansDropped"), 0);
}

/// An OTLP/HTTP receiver that holds the exports of the given invocations (told by their trace
/// id) until released, and accepts the others at once.
struct GatedOtlpReceiver {
    endpoint: String,
    /// Every export received, held ones included, in order of arrival: its trace ids.
    arrived: Arc<std::sync::Mutex<Vec<HashSet<String>>>>,
    held: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl GatedOtlpReceiver {
    async fn start(slow: Vec<u32>) -> Self {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message;
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let held = Arc::new(AtomicUsize::new(0));
        let arrived: Arc<std::sync::Mutex<Vec<HashSet<String>>>> = Arc::default();
        let slow: Arc<HashSet<String>> = Arc::new(slow.into_iter().map(otel_trace_id).collect());
        let (g, h, a) = (gate.clone(), held.clone(), arrived.clone());
        let address = serve_http(move |request| {
            let (gate, held) = (g.clone(), h.clone());
            let decoded = ExportTraceServiceRequest::decode(request.body.as_slice())
                .expect("a valid ExportTraceServiceRequest");
            let traces = request_trace_ids(&decoded);
            let is_slow = traces.iter().any(|t| slow.contains(t));
            a.lock().expect("lock").push(traces);
            async move {
                if is_slow {
                    held.fetch_add(1, Ordering::SeqCst);
                    gate.acquire().await.ok()?.forget();
                    held.fetch_sub(1, Ordering::SeqCst);
                }
                Some(Response::export_accepted())
            }
        })
        .await;
        Self {
            endpoint: format!("http://{address}"),
            arrived,
            held,
            gate,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_export_holds_up_no_other_invocation_under_concurrency() {
    const SLOW: [u32; 2] = [1, 2];
    const COUNT: u32 = 10;
    let receiver = GatedOtlpReceiver::start(SLOW.to_vec()).await;
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start((1..=COUNT).map(event).collect()).await;
    let mut function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", &checkip.url),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint),
            // Longer than the test: a held export is never cut short.
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "25000"),
        ],
    );
    // Two exports are held at the collector; the other invocations run, answer and export
    // through the remaining two slots meanwhile.
    until("an export from every invocation", || {
        receiver.arrived.lock().expect("lock").len() == COUNT as usize
    })
    .await;
    runtime.wait_outcome_count(COUNT as usize).await;
    assert_eq!(
        receiver.held.load(Ordering::SeqCst),
        SLOW.len(),
        "still held"
    );
    let arrived = receiver.arrived.lock().expect("lock").clone();
    for traces in &arrived {
        assert_eq!(traces.len(), 1, "one trace per export: {traces:?}");
    }
    let traces: HashSet<String> = arrived.into_iter().flatten().collect();
    assert_eq!(traces, (1..=COUNT).map(otel_trace_id).collect());

    receiver.gate.add_permits(SLOW.len());
    runtime.wait_next_calls(COUNT as usize + 4).await;
    assert_eq!(receiver.held.load(Ordering::SeqCst), 0);
    let (exported, dropped) = export_totals(&mut function);
    assert_eq!((exported, dropped), (3 * u64::from(COUNT), 0));
}
