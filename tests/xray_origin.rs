//! The root segment's origin (docs/guide.md, "Traces: four ways to X-Ray"): an invocation without
//! `Lambda-Runtime-Trace-Id` (a local run) starts its own trace, and the X-Ray segment exporter
//! writes its span as a root segment with origin `AWS::Lambda::Function`; under Lambda's trace
//! header the same span is a subsegment of Lambda's segment, which has no origin of its own. The
//! real `bootstrap` runs against a mock Runtime API; a UDP socket stands in for the daemon.

mod support;

use serde_json::Value;
use support::{CheckIp, Event, FixtureExt as _, TRACE_PARENT, trace_header};

/// The segment document of one daemon datagram (header line, then the JSON document).
fn document(datagram: &[u8]) -> Value {
    let text = std::str::from_utf8(datagram).expect("UTF-8 datagram");
    let (header, document) = text.split_once('\n').expect("header line then document");
    assert_eq!(header, r#"{"format": "json", "version": 1}"#);
    serde_json::from_str(document).expect("one JSON document per datagram")
}

/// `1-<8 hex>-<24 hex>`, as X-Ray takes trace ids.
fn is_xray_trace_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    matches!(parts.as_slice(), ["1", time, unique]
        if time.len() == 8 && unique.len() == 24
            && time.chars().chain(unique.chars()).all(|c| c.is_ascii_hexdigit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_lambda_trace_header_the_invocation_is_a_root_segment_of_origin_lambda_function()
{
    let checkip = CheckIp::start(200).await;
    let events = vec![
        Event::fixture("untraced", "success.json"),
        Event::fixture("traced", "success.json").traced(&trace_header(1, true)),
    ];
    let (_function, _, received) = support::run_with_segments(events, &checkip.url).await;
    // Invocation 1's documents arrived before `/next` #2, invocation 2's before #3.
    let of_invocation = |n: usize| -> Vec<Value> {
        received
            .iter()
            .filter(|(next, _)| *next == n + 1)
            .map(|(_, datagram)| document(datagram))
            .collect()
    };

    // Untraced: a trace of its own, the invocation span its root segment.
    let untraced = of_invocation(1);
    assert_eq!(untraced.len(), 3, "{untraced:#?}");
    let roots: Vec<&Value> = untraced
        .iter()
        .filter(|d| d.get("parent_id").is_none())
        .collect();
    let [root] = roots.as_slice() else {
        panic!("one root segment: {untraced:#?}");
    };
    assert_eq!(root["name"], "hello-it", "{root}");
    assert_eq!(
        root.get("type"),
        None,
        "a segment, not a subsegment: {root}"
    );
    assert_eq!(root["origin"], "AWS::Lambda::Function", "{root}");
    let trace_id = root["trace_id"].as_str().expect("trace_id");
    assert!(is_xray_trace_id(trace_id), "{trace_id}");
    for child in untraced.iter().filter(|d| d["id"] != root["id"]) {
        assert_eq!(child["type"], "subsegment", "{child}");
        assert_eq!(child["parent_id"], root["id"], "{child}");
        assert_eq!(child["trace_id"], trace_id, "{child}");
        assert_eq!(child.get("origin"), None, "only segments have one: {child}");
    }
    assert!(
        untraced.iter().any(|d| d["name"] == "getRuntimeInfo"),
        "{untraced:#?}"
    );
    assert!(
        untraced.iter().any(|d| d["namespace"] == "remote"),
        "{untraced:#?}"
    );

    // Traced: the same span is a subsegment of Lambda's segment, in Lambda's trace; the origin
    // is Lambda's segment's to give.
    let traced = of_invocation(2);
    assert_eq!(traced.len(), 3, "{traced:#?}");
    let invocation = traced
        .iter()
        .find(|d| d["parent_id"] == TRACE_PARENT)
        .unwrap_or_else(|| panic!("the invocation under Lambda's segment: {traced:#?}"));
    assert_eq!(invocation["type"], "subsegment", "{invocation}");
    assert_eq!(invocation["trace_id"], support::trace_root(1).as_str());
    assert_eq!(invocation.get("origin"), None, "{invocation}");
}
