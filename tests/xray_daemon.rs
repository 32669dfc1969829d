//! Path 1: segment documents sent over UDP to the X-Ray daemon, as Lambda with active tracing
//! runs it. A UDP socket stands in for the daemon; the real `bootstrap` runs against a mock
//! Runtime API; the assertions are on the datagrams it receives.

mod support;

use serde_json::Value;
use support::{CheckIp, Event, FixtureExt as _, TRACE_PARENT, trace_header};

fn parse(datagram: &[u8]) -> Value {
    let text = std::str::from_utf8(datagram).expect("UTF-8 datagram");
    let (header, document) = text.split_once('\n').expect("header line then document");
    assert_eq!(header, r#"{"format": "json", "version": 1}"#);
    assert!(
        datagram.len() <= 64 * 1024,
        "a datagram must fit the daemon's 64 kB"
    );
    serde_json::from_str(document).expect("one JSON document per datagram")
}

fn is_hex_id(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|id| id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_reach_the_daemon_before_the_next_event_with_the_right_tree() {
    let checkip = CheckIp::start(200).await;
    let mut events = support::traced_events();
    events.push(Event::fixture("untraced", "success.json"));
    let (_function, _, received) = support::run_with_segments(events, &checkip.url).await;

    let documents: Vec<(usize, Value)> = received.iter().map(|(n, d)| (*n, parse(d))).collect();
    let for_trace = |n: u32| -> Vec<Value> {
        let root = support::trace_root(n);
        documents
            .iter()
            .filter(|(_, doc)| doc["trace_id"] == root.as_str())
            .map(|(next, doc)| {
                assert_eq!(
                    *next,
                    n as usize + 1,
                    "invocation {n}'s segments must arrive before /next #{}",
                    n + 1
                );
                doc.clone()
            })
            .collect()
    };

    // Invocation 1: the invocation subsegment under Lambda's segment, with two children.
    let docs = for_trace(1);
    assert_eq!(docs.len(), 3, "{docs:#?}");
    for doc in &docs {
        assert!(is_hex_id(&doc["id"]), "{doc}");
        assert!(is_hex_id(&doc["parent_id"]), "{doc}");
        assert_eq!(doc["type"], "subsegment", "{doc}");
    }
    let invocation = docs
        .iter()
        .find(|d| d["parent_id"] == TRACE_PARENT)
        .expect("invocation document");
    assert_eq!(invocation["name"], "hello-it");
    assert_eq!(invocation["annotations"]["ColdStart"], true);
    assert_eq!(invocation["annotations"]["Service"], "hello-it");
    let runtime_info = docs
        .iter()
        .find(|d| d["name"] == "getRuntimeInfo")
        .expect("getRuntimeInfo");
    assert_eq!(runtime_info["parent_id"], invocation["id"]);
    let http = docs
        .iter()
        .find(|d| d["namespace"] == "remote")
        .expect("remote HTTP subsegment");
    assert_eq!(http["parent_id"], invocation["id"]);
    assert_eq!(http["http"]["request"]["method"], "GET");
    assert_eq!(http["http"]["request"]["url"], checkip.url.as_str());
    assert_eq!(http["http"]["response"]["status"], 200);
    // The outgoing request carried this trace and the HTTP subsegment as parent.
    let requests = checkip.requests.lock().expect("lock").clone();
    let header = requests[0]
        .header("x-amzn-trace-id")
        .expect("X-Amzn-Trace-Id");
    assert!(
        header.contains(&format!(
            "Root={}",
            invocation["trace_id"].as_str().unwrap_or_default()
        )),
        "{header}"
    );
    assert!(
        header.contains(&format!(
            "Parent={}",
            http["id"].as_str().unwrap_or_default()
        )),
        "{header}"
    );
    // The event payload is not recorded anywhere.
    for (_, datagram) in &received {
        assert!(
            !String::from_utf8_lossy(datagram).contains("Bogdan"),
            "payload leaked into a segment"
        );
    }

    // Invocation 2: throwError is a fault with the exception as cause.
    let docs = for_trace(2);
    let invocation = docs
        .iter()
        .find(|d| d["parent_id"] == TRACE_PARENT)
        .expect("invocation document");
    assert_eq!(invocation["fault"], true, "{invocation}");
    assert!(
        invocation.get("error").is_none_or(|e| e == false),
        "{invocation}"
    );
    let exception = &invocation["cause"]["exceptions"][0];
    assert_eq!(exception["type"], "SimpleException");
    assert_eq!(
        exception["message"],
        "Sorry, but the caller wants to me to throw an error"
    );
    assert_eq!(invocation["annotations"]["ColdStart"], false);

    // Invocation 3: an invalid event is the caller's error, not a fault.
    let docs = for_trace(3);
    let invocation = docs
        .iter()
        .find(|d| d["parent_id"] == TRACE_PARENT)
        .expect("invocation document");
    assert_eq!(invocation["error"], true, "{invocation}");
    assert!(
        invocation.get("fault").is_none_or(|f| f == false),
        "{invocation}"
    );
    assert_eq!(invocation["cause"]["exceptions"][0]["type"], "InvalidEvent");
    assert_eq!(invocation["annotations"]["ErrorKind"], "client");

    // Invocation 4 (Sampled=0) exported nothing; invocation 5 (no header) started its own trace.
    assert!(for_trace(4).is_empty());
    let known: Vec<String> = (1..=4).map(|n| trace_header(n, true)).collect();
    let fresh: Vec<&Value> = documents
        .iter()
        .map(|(_, d)| d)
        .filter(|d| {
            !known
                .iter()
                .any(|k| k.contains(d["trace_id"].as_str().unwrap_or("?")))
        })
        .collect();
    assert_eq!(
        fresh.len(),
        3,
        "the untraced invocation starts a new sampled trace: {fresh:#?}"
    );
    let root = fresh
        .iter()
        .find(|d| d["name"] == "hello-it")
        .expect("root");
    assert!(
        root.get("parent_id").is_none(),
        "a new trace has no parent: {root}"
    );

    // Keep one captured document for the deploy test (put-trace-segments against moto).
    if std::env::var_os("CAPTURE_XRAY_FIXTURE").is_some() {
        let path = format!(
            "{}/tests/fixtures/xray-segment.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let docs = for_trace(2);
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&docs).unwrap_or_default(),
        )
        .expect("write fixture");
    }
}

/// A failing outbound call is recorded as a faulted remote subsegment and still exported before
/// the next event; a daemon address where nothing listens never fails an invocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_around_the_invocation_neither_lose_spans_nor_fail_it() {
    let events = vec![
        Event::fixture("ok", "success.json").traced(&trace_header(7, true)),
        Event::fixture("ok-2", "success.json").traced(&trace_header(8, true)),
    ];
    // Port 9 on loopback: the public-IP call is refused at once.
    let (_function, outcomes, received) =
        support::run_with_segments(events, "http://127.0.0.1:9/").await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, support::Outcome::Response { .. })),
        "{outcomes:?}"
    );
    let http: Vec<(usize, Value)> = received
        .iter()
        .map(|(n, d)| (*n, parse(d)))
        .filter(|(_, d)| {
            d["namespace"] == "remote" && d["trace_id"] == support::trace_root(7).as_str()
        })
        .collect();
    assert_eq!(http.len(), 1, "{received:?}");
    let (next, http) = &http[0];
    assert_eq!(*next, 2, "exported before /next #2");
    assert_eq!(http["fault"], true, "{http}");
    assert!(
        http["cause"]["exceptions"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("error sending request")),
        "{http}"
    );

    // A daemon that cannot be sent to: every flush fails at once; logged once, not per span.
    let (function, outcomes) =
        support::run_with_daemon_at("xray", support::UNSENDABLE_DAEMON).await;
    assert_answered(&outcomes);
    let failures = function.logs().matches("span export failing").count();
    assert_eq!(
        failures,
        1,
        "logged once, not per span:\n{}",
        function.logs()
    );
    let logs = function.json_logs();
    let drops = support::lines_with_message(&logs, "spans dropped");
    assert_eq!(drops.len(), 3, "one per invocation:\n{}", function.logs());
    for drop in drops {
        assert_eq!(drop["export_failed"], drop["dropped"], "{drop}");
    }
}

/// The three invocations of [`support::run_with_daemon_at`] were answered: a success, the
/// `throwError` event's error, a success.
fn assert_answered(outcomes: &[support::Outcome]) {
    assert!(matches!(&outcomes[0], support::Outcome::Response { .. }));
    assert!(
        matches!(&outcomes[1], support::Outcome::Error { body, .. } if body["errorType"] == "SimpleException")
    );
    assert!(matches!(&outcomes[2], support::Outcome::Response { .. }));
}

/// Nothing listens at the daemon address, with real sockets: each datagram costs an ICMP "port
/// unreachable", which the exporter sees only once the kernel has delivered it, at the flush
/// that sent the datagram or a later one (on a loaded machine it may come late, or after the
/// last flush). Asserted is only what holds whenever it comes: every invocation is answered, no
/// flush waits (a drop is never a timeout), a failure is only ever reported by a flush that
/// dropped spans, and never per span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_where_nothing_listens_never_fails_an_invocation_whenever_the_icmp_comes() {
    let (function, outcomes) = support::run_with_unreachable_daemon("xray").await;
    assert_answered(&outcomes);
    let logs = function.json_logs();
    let drops = support::lines_with_message(&logs, "spans dropped");
    assert!(
        drops.len() <= 3,
        "at most one per flush:\n{}",
        function.logs()
    );
    for drop in &drops {
        assert_eq!(drop["level"], "WARN", "{drop}");
        assert_eq!(drop["export_failed"], drop["dropped"], "{drop}");
        assert_eq!(drop["timed_out"], 0, "{drop}");
    }
    let failing = support::lines_with_message(&logs, "span export failing");
    let recovered = support::lines_with_message(&logs, "span export recovered");
    // Each flush that failed dropped spans: the failing exporter's spans are never counted as
    // sent. Failing and recovering alternate, so over three flushes at most two failing lines,
    // where one per span would be one per segment document.
    assert!(failing.len() <= drops.len(), "{}", function.logs());
    assert!(failing.len() <= 2, "not per span:\n{}", function.logs());
    assert!(recovered.len() <= failing.len(), "{}", function.logs());
}
