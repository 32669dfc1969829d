//! Trace ids as Lambda hands them out (`Lambda-Runtime-Trace-Id`) and as OpenTelemetry writes
//! them, and the span tree every OTLP transport carries for the export tests' invocations.

use std::{sync::OnceLock, time::SystemTime};

use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};

use crate::otlp::{ResourceSpan, hex, resource_attr, span_attr};

/// The `Parent` of every [`trace_header`]: Lambda's segment, the invocation span's parent.
pub const TRACE_PARENT: &str = "53995c3f42cd8ad8";

/// A `Lambda-Runtime-Trace-Id` for the `n`th invocation: distinct roots, one parent. The root's
/// time part is now, as Lambda's is: X-Ray rejects trace ids older than 30 days.
pub fn trace_header(n: u32, sampled: bool) -> String {
    format!(
        "Root={};Parent={TRACE_PARENT};Sampled={}",
        trace_root(n),
        u8::from(sampled)
    )
}

/// The X-Ray trace id (`1-<epoch hex>-<24 hex>`) of [`trace_header`]`(n, _)`.
pub fn trace_root(n: u32) -> String {
    xray_root(&format!("bd862e3fe1be46a9942727{n:02x}"))
}

/// An X-Ray trace id, `1-<time>-<unique>`: the time part is the test process's start, as
/// Lambda's is now (X-Ray rejects trace ids older than 30 days); `unique` is 24 hex digits.
pub fn xray_root(unique: &str) -> String {
    static EPOCH: OnceLock<u64> = OnceLock::new();
    let epoch = EPOCH.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!("1-{epoch:08x}-{unique}")
}

/// An X-Ray trace id as OpenTelemetry writes it: `1-<8 hex>-<24 hex>` as 32 hex digits.
pub fn otel_id_of_root(root: &str) -> String {
    root.trim_start_matches("1-").replace('-', "")
}

/// [`trace_root`]`(n)` as OpenTelemetry writes it.
pub fn otel_trace_id(n: u32) -> String {
    otel_id_of_root(&trace_root(n))
}

/// The spans of trace `n` (of [`trace_header`]) among `spans`.
pub fn spans_of_trace(spans: &[ResourceSpan], n: u32) -> Vec<Span> {
    spans
        .iter()
        .map(|(_, s)| s.clone())
        .filter(|s| hex(&s.trace_id) == otel_trace_id(n))
        .collect()
}

/// The span of `trace` right under Lambda's segment: the invocation's.
fn invocation_span(trace: &[Span]) -> Span {
    trace
        .iter()
        .find(|s| hex(&s.parent_span_id) == TRACE_PARENT)
        .expect("invocation span under Lambda's")
        .clone()
}

/// Invocations 1 to 3 of the export tests (success, `throwError`, an invalid event, traced with
/// [`trace_header`]`(1..=3, true)`) as an OTLP transport sent them: the resource of the first
/// batch, and the spans the callers check further.
#[derive(Debug, Clone)]
pub struct TracedSpans {
    /// The resource attributes of the first batch.
    pub resource: Vec<(String, String)>,
    /// Invocation 1's span, under Lambda's segment.
    pub invocation: Span,
    /// Invocation 1's GET to the public-IP service.
    pub http: Span,
    /// Invocation 2's span (`throwError`).
    pub thrown: Span,
    /// Invocation 3's span (an invalid event).
    pub invalid: Span,
}

/// Asserts the span tree every OTLP transport carries for the export tests' invocations 1 to 4
/// (success, `throwError`, an invalid event, then an unsampled success; traces 1 to 4 of
/// [`trace_header`]), run with `OTEL_SERVICE_NAME=hello-otlp`,
/// `OTEL_RESOURCE_ATTRIBUTES=deployment.environment=test` and the public-IP service at
/// `checkip_url`: the resource; invocation 1's three spans (the invocation's under Lambda's
/// segment, `getRuntimeInfo` and the GET under it); invocation 2's error status and exception
/// event; invocation 3's client error; nothing of the unsampled invocation 4.
pub fn assert_traced_span_tree(spans: &[ResourceSpan], checkip_url: &str) -> TracedSpans {
    let (resource, _) = spans.first().expect("spans");
    let resource_value = |key: &str| resource_attr(resource, key);
    assert_eq!(resource_value("service.name"), Some("hello-otlp"));
    assert_eq!(resource_value("cloud.provider"), Some("aws"));
    assert_eq!(resource_value("cloud.region"), Some("eu-west-1"));
    assert_eq!(resource_value("faas.name"), Some("hello-it"));
    assert_eq!(resource_value("deployment.environment"), Some("test"));

    let first = spans_of_trace(spans, 1);
    assert_eq!(first.len(), 3);
    let invocation = invocation_span(&first);
    assert_eq!(
        invocation.name, "hello-otlp",
        "the service name names the span"
    );
    assert_eq!(invocation.kind(), SpanKind::Internal);
    assert_eq!(
        span_attr(&invocation, "faas.invocation_id").as_deref(),
        Some("ok")
    );
    assert_eq!(span_attr(&invocation, "ColdStart").as_deref(), Some("true"));
    let runtime_info = first
        .iter()
        .find(|s| s.name == "getRuntimeInfo")
        .expect("getRuntimeInfo");
    assert_eq!(runtime_info.parent_span_id, invocation.span_id);
    let http = first
        .iter()
        .find(|s| s.kind() == SpanKind::Client)
        .expect("client span")
        .clone();
    assert_eq!(http.parent_span_id, invocation.span_id);
    assert_eq!(span_attr(&http, "url.full").as_deref(), Some(checkip_url));
    assert_eq!(
        span_attr(&http, "http.response.status_code").as_deref(),
        Some("200")
    );

    let thrown = invocation_span(&spans_of_trace(spans, 2));
    assert_eq!(
        thrown.status.as_ref().map(|s| s.code()),
        Some(StatusCode::Error)
    );
    assert!(thrown.events.iter().any(|e| e.name == "exception"));

    let invalid = invocation_span(&spans_of_trace(spans, 3));
    assert_eq!(span_attr(&invalid, "ErrorKind").as_deref(), Some("client"));

    assert!(
        spans_of_trace(spans, 4).is_empty(),
        "Sampled=0 sends nothing"
    );
    TracedSpans {
        resource: resource.clone(),
        invocation,
        http,
        thrown,
        invalid,
    }
}
