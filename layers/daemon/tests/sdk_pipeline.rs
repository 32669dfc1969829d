//! The daemon exporters in plain `opentelemetry_sdk` pipelines, with no Lambda code at all: an
//! `SdkTracerProvider` with a simple exporter or a `BatchSpanProcessor`, spans made through
//! `opentelemetry::trace::Tracer`, and the stand-in daemon (test-support's `XrayDaemon`) decoding
//! what reached its UDP socket. Also: what the segment translator rejects, as `send` reports it,
//! and the crate's normal dependency tree (no HTTP client, no TLS, no Lambda runtime).
#![cfg(all(feature = "otlp-udp", feature = "xray-segments"))]

use std::{
    process::Command,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use lambda_observability_daemon::{OtlpUdpExporter, SegmentExporter};
use lambda_observability_test_support::{
    OtlpDatagram, ResourceSpan, XrayDaemon, hex, resource_attr, span_attr, until,
};
use opentelemetry::{
    Context, KeyValue,
    trace::{
        Span as _, SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceId, Tracer as _,
        TracerProvider as _,
    },
};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_sdk::{
    Resource,
    trace::{
        BatchConfigBuilder, BatchSpanProcessor, IdGenerator, InMemorySpanExporter, SdkTracer,
        SdkTracerProvider, SpanData,
    },
};

/// The header line of every OTLP datagram.
const OTLP_HEADER: &str = r#"{"format":"json","version":1}"#;
/// The header line of every segment document, as the X-Ray SDKs write it.
const SEGMENT_HEADER: &str = r#"{"format": "json", "version": 1}"#;

/// Waits until the daemon has received OTLP datagrams carrying `count` spans, and returns the
/// datagrams, decoded, in the order they arrived.
async fn otlp_datagrams(daemon: &XrayDaemon, count: usize) -> Vec<OtlpDatagram> {
    let received = Mutex::new(Vec::new());
    until(&format!("{count} spans at the daemon"), || {
        let mut received = received.lock().expect("lock");
        received.extend(daemon.drain().iter().map(|d| OtlpDatagram::decode(d)));
        received.iter().map(|d| d.spans().len()).sum::<usize>() >= count
    })
    .await;
    let datagrams = received.into_inner().expect("lock");
    for datagram in &datagrams {
        assert_eq!(datagram.header, OTLP_HEADER);
        assert_eq!(datagram.prefix, "T1S", "sampled spans travel as T1S");
    }
    datagrams
}

/// Waits until the daemon has received `count` segment documents, and returns them parsed, in
/// the order they arrived.
async fn segment_documents(daemon: &XrayDaemon, count: usize) -> Vec<serde_json::Value> {
    let received = Mutex::new(Vec::new());
    until(&format!("{count} segment documents at the daemon"), || {
        let mut received = received.lock().expect("lock");
        received.extend(daemon.drain());
        received.len() >= count
    })
    .await;
    received
        .into_inner()
        .expect("lock")
        .iter()
        .map(|datagram| {
            let text = std::str::from_utf8(datagram).expect("UTF-8");
            let (header, document) = text.split_once('\n').expect("a header line");
            assert_eq!(header, SEGMENT_HEADER);
            serde_json::from_str(document).expect("a JSON segment document")
        })
        .collect()
}

/// Every span of `datagrams`, with its batch's resource.
fn spans_of(datagrams: &[OtlpDatagram]) -> Vec<ResourceSpan> {
    datagrams.iter().flat_map(OtlpDatagram::spans).collect()
}

/// The span named `name`.
fn named<'a>(spans: &'a [ResourceSpan], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .map(|(_, span)| span)
        .filter(|span| span.name == name)
        .collect();
    assert_eq!(found.len(), 1, "one span named {name}: {spans:#?}");
    found[0]
}

/// The ids of a span as the exporters write them: 32 and 16 hex digits.
fn ids(context: &SpanContext) -> (String, String) {
    (
        context.trace_id().to_string(),
        context.span_id().to_string(),
    )
}

/// Seconds since the epoch.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs()
}

/// Makes `parent` with `order.id`, `child` under it with `step`, `grandchild` under that with
/// `ok`, and returns their ids in that order.
fn nested_spans(tracer: &SdkTracer) -> Vec<(String, String)> {
    tracer.in_span("parent", |cx| {
        cx.span().set_attribute(KeyValue::new("order.id", 42));
        let parent = ids(cx.span().span_context());
        tracer.in_span("child", |cx| {
            cx.span().set_attribute(KeyValue::new("step", "validate"));
            let child = ids(cx.span().span_context());
            tracer.in_span("grandchild", |cx| {
                cx.span().set_attribute(KeyValue::new("ok", true));
                vec![parent, child, ids(cx.span().span_context())]
            })
        })
    })
}

/// Asserts the three spans of [`nested_spans`] among `spans`: names, one trace, parent and child
/// ids, attributes, and the resource's `service.name`.
fn assert_nested(spans: &[ResourceSpan], expected: &[(String, String)], service: &str) {
    let [parent_ids, child_ids, grandchild_ids] = expected else {
        panic!("three spans expected: {expected:?}");
    };
    let parent = named(spans, "parent");
    let child = named(spans, "child");
    let grandchild = named(spans, "grandchild");
    for (span, (trace_id, span_id)) in [
        (parent, parent_ids),
        (child, child_ids),
        (grandchild, grandchild_ids),
    ] {
        assert_eq!(&hex(&span.trace_id), trace_id, "{}", span.name);
        assert_eq!(&hex(&span.span_id), span_id, "{}", span.name);
    }
    assert!(parent.parent_span_id.is_empty(), "parent is the root");
    assert_eq!(child.parent_span_id, parent.span_id);
    assert_eq!(grandchild.parent_span_id, child.span_id);
    assert_eq!(span_attr(parent, "order.id").as_deref(), Some("42"));
    assert_eq!(span_attr(child, "step").as_deref(), Some("validate"));
    assert_eq!(span_attr(grandchild, "ok").as_deref(), Some("true"));
    for (resource, span) in spans {
        assert_eq!(
            resource_attr(resource, "service.name"),
            Some(service),
            "{}",
            span.name
        );
    }
}

#[tokio::test]
async fn otlp_udp_with_a_simple_exporter_sends_each_span_as_it_ends() {
    let daemon = XrayDaemon::start();
    let exporter = OtlpUdpExporter::connect(daemon.address).expect("socket");
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("plain-sdk")
                .with_attribute(KeyValue::new("deployment.environment", "test"))
                .build(),
        )
        .build();
    let tracer = provider.tracer("sdk_pipeline");

    let expected = nested_spans(&tracer);

    let datagrams = otlp_datagrams(&daemon, 3).await;
    // One export per span, in the order they ended: one datagram each.
    assert_eq!(datagrams.len(), 3, "{datagrams:#?}");
    let spans = spans_of(&datagrams);
    let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
    assert_eq!(names, ["grandchild", "child", "parent"]);
    assert_nested(&spans, &expected, "plain-sdk");
    let (resource, _) = &spans[0];
    assert_eq!(
        resource_attr(resource, "deployment.environment"),
        Some("test")
    );
    for datagram in &datagrams {
        let scopes: Vec<&str> = datagram
            .request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .filter_map(|s| s.scope.as_ref())
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(scopes, ["sdk_pipeline"], "the tracer's scope");
    }
    provider.shutdown().expect("shutdown");
    assert!(daemon.drain().is_empty(), "nothing more was sent");
}

#[tokio::test]
async fn otlp_udp_with_a_batch_processor_sends_at_force_flush_and_shutdown() {
    let daemon = XrayDaemon::start();
    let exporter = OtlpUdpExporter::connect(daemon.address).expect("socket");
    // No timer export during the test: only force_flush and shutdown export.
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_secs(3600))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_id_generator(XrayIdGenerator::default())
        .with_resource(Resource::builder().with_service_name("plain-batch").build())
        .build();
    let tracer = provider.tracer("sdk_pipeline");

    let first = nested_spans(&tracer);
    assert!(
        daemon.drain().is_empty(),
        "a batch processor holds spans until flushed"
    );
    provider.force_flush().expect("force_flush");
    let datagrams = otlp_datagrams(&daemon, 3).await;
    assert_eq!(
        datagrams.len(),
        1,
        "one batch, one datagram: {datagrams:#?}"
    );
    let spans = spans_of(&datagrams);
    assert_eq!(spans.len(), 3);
    assert_nested(&spans, &first, "plain-batch");
    // XrayIdGenerator: the trace id starts with the time it was made.
    let (trace_id, _) = &first[0];
    let time = u64::from_str_radix(&trace_id[..8], 16).expect("hex");
    assert!(time.abs_diff(now_secs()) < 3600, "{trace_id}");

    // What is still queued at shutdown is exported then.
    let second = nested_spans(&tracer);
    assert_ne!(second[0].0, first[0].0, "a new trace");
    provider.shutdown().expect("shutdown");
    let datagrams = otlp_datagrams(&daemon, 3).await;
    let spans = spans_of(&datagrams);
    assert_eq!(spans.len(), 3, "only the second trace: {spans:#?}");
    assert_nested(&spans, &second, "plain-batch");
}

/// Makes a `checkout` server span (an X-Ray segment: X-Ray takes a span without a parent only as
/// a segment) with `k` and `other`, and a `charge` internal span under it (a subsegment) with `k`.
/// Returns their contexts.
fn checkout(tracer: &SdkTracer) -> (SpanContext, SpanContext) {
    let root = tracer
        .span_builder("checkout")
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("k", "v1"), KeyValue::new("other", "x")])
        .start(tracer);
    let root_context = root.span_context().clone();
    let cx = Context::current_with_span(root);
    let mut child = tracer
        .span_builder("charge")
        .with_kind(SpanKind::Internal)
        .with_attributes([KeyValue::new("k", 7)])
        .start_with_context(tracer, &cx);
    let child_context = child.span_context().clone();
    child.end();
    cx.span().end();
    (root_context, child_context)
}

/// `id` as X-Ray writes it: `1-<8 hex>-<24 hex>`.
fn xray_trace_id(id: TraceId) -> String {
    let hex = id.to_string();
    format!("1-{}-{}", &hex[..8], &hex[8..])
}

#[tokio::test]
async fn segment_exporter_sends_one_document_per_span_with_annotations() {
    let daemon = XrayDaemon::start();
    let exporter = SegmentExporter::connect(daemon.address)
        .expect("socket")
        .annotations(["k"]);
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        // X-Ray takes only trace ids that start with a recent time.
        .with_id_generator(XrayIdGenerator::default())
        .with_resource(
            Resource::builder()
                .with_service_name("plain-segments")
                .build(),
        )
        .build();
    let tracer = provider.tracer("sdk_pipeline");

    let (root, child) = checkout(&tracer);

    let documents = segment_documents(&daemon, 2).await;
    assert_eq!(documents.len(), 2, "{documents:#?}");
    // Ended child first: one datagram each, in that order.
    let (charge, segment) = (&documents[0], &documents[1]);

    let trace_id = xray_trace_id(root.trace_id());
    let parts: Vec<&str> = trace_id.split('-').collect();
    assert_eq!(parts[0], "1");
    assert_eq!(parts[1].len(), 8);
    assert_eq!(parts[2].len(), 24);
    let time = u64::from_str_radix(parts[1], 16).expect("hex");
    assert!(time.abs_diff(now_secs()) < 3600, "{trace_id}");

    // A server span's segment is named after the service, as X-Ray names segments.
    assert_eq!(segment["name"], "plain-segments", "{segment:#}");
    assert_eq!(segment["trace_id"], trace_id.as_str());
    assert_eq!(segment["id"], root.span_id().to_string().as_str());
    assert!(segment.get("type").is_none(), "a segment: {segment:#}");
    assert!(segment.get("parent_id").is_none(), "{segment:#}");
    assert_eq!(segment["annotations"]["k"], "v1", "{segment:#}");
    // An attribute not listed is not indexed; nor, with no metadata option, kept at all.
    assert_eq!(
        segment["annotations"].as_object().map(|a| a.len()),
        Some(1),
        "{segment:#}"
    );
    assert!(!segment.to_string().contains("other"), "{segment:#}");
    assert!(
        segment["start_time"].as_f64().expect("start_time")
            <= segment["end_time"].as_f64().expect("end_time")
    );

    assert_eq!(charge["name"], "charge");
    assert_eq!(charge["type"], "subsegment", "{charge:#}");
    assert_eq!(charge["trace_id"], trace_id.as_str());
    assert_eq!(charge["id"], child.span_id().to_string().as_str());
    assert_eq!(charge["parent_id"], root.span_id().to_string().as_str());
    assert_eq!(charge["annotations"]["k"], 7, "{charge:#}");

    provider.shutdown().expect("shutdown");
    assert!(daemon.drain().is_empty(), "nothing more was sent");
}

/// Trace ids whose time part is 1970: X-Ray rejects traces older than 30 days.
#[derive(Debug, Default)]
struct EpochIds(AtomicU64);

impl IdGenerator for EpochIds {
    fn new_trace_id(&self) -> TraceId {
        TraceId::from(0x0000_0001_0123_4567_89ab_cdef_0000_0000 + u128::from(self.next()))
    }

    fn new_span_id(&self) -> SpanId {
        SpanId::from(self.next())
    }
}

impl EpochIds {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The spans [`checkout`] makes with `ids`, recorded in memory.
fn recorded_checkout(ids: impl IdGenerator + 'static) -> Vec<SpanData> {
    let memory = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(memory.clone())
        .with_id_generator(ids)
        .build();
    checkout(&provider.tracer("sdk_pipeline"));
    memory.get_finished_spans().expect("finished spans")
}

#[tokio::test]
async fn what_the_segment_translator_rejects_is_reported_by_send() {
    let daemon = XrayDaemon::start();
    let exporter = SegmentExporter::connect(daemon.address).expect("socket");

    // Trace ids older than 30 days: neither span translates, nothing is sent.
    let report = exporter.send(recorded_checkout(EpochIds::default()));
    assert_eq!(
        (report.batch, report.sent, report.oversize, report.failed()),
        (2, 0, 0, 2),
        "{report}"
    );
    assert!(report.error.is_some(), "{report:?}");
    assert!(report.into_result().is_err());

    // X-Ray trace ids, but a root that is not a server span: a subsegment without a parent,
    // rejected; its child is sent.
    let mut spans = recorded_checkout(XrayIdGenerator::default());
    let root = spans
        .iter_mut()
        .find(|s| s.name == "checkout")
        .expect("checkout");
    root.span_kind = SpanKind::Internal;
    let report = exporter.send(spans);
    assert_eq!(
        (report.batch, report.sent, report.failed()),
        (2, 1, 1),
        "{report}"
    );
    assert!(report.error.is_some(), "{report:?}");
    let documents = segment_documents(&daemon, 1).await;
    assert_eq!(documents.len(), 1, "{documents:#?}");
    assert_eq!(documents[0]["name"], "charge");

    // The same spans as OTLP: no X-Ray constraint applies.
    let otlp = OtlpUdpExporter::connect(daemon.address).expect("socket");
    let report = otlp.send(recorded_checkout(EpochIds::default()));
    assert_eq!((report.batch, report.sent, report.failed()), (2, 2, 0));
    assert!(report.into_result().is_ok());
    let datagrams = otlp_datagrams(&daemon, 2).await;
    assert_eq!(spans_of(&datagrams).len(), 2);
}

/// Runs `cargo tree` on this crate's normal dependencies with `args`, and returns the package
/// names it lists. Fails the test if cargo cannot run or fails.
fn normal_dependencies(args: &[&str]) -> Vec<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--manifest-path",
            manifest,
            "-p",
            env!("CARGO_PKG_NAME"),
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names: Vec<String> = String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn normal_dependencies_have_no_http_client_tls_or_lambda_runtime() {
    for args in [&[][..], &["--all-features", "--target", "all"][..]] {
        let names = normal_dependencies(args);
        // Not vacuous: the tree is this crate's, with the SDK in it.
        for expected in [
            env!("CARGO_PKG_NAME"),
            "opentelemetry_sdk",
            "opentelemetry-aws",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing from cargo tree {args:?}: {names:?}"
            );
        }
        let forbidden: Vec<&String> = names
            .iter()
            .filter(|name| {
                ["reqwest", "hyper", "rustls", "lambda_runtime"]
                    .iter()
                    .any(|family| {
                        name.strip_prefix(family)
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '_']))
                    })
            })
            .collect();
        assert!(
            forbidden.is_empty(),
            "cargo tree {args:?} lists {forbidden:?}"
        );
    }
}
