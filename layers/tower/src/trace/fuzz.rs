//! Fuzzing the X-Ray header (`Lambda-Runtime-Trace-Id`, as `Context::xray_trace_id`) on the
//! path [`TraceLayer`] takes it: no panic, and the invocation span continues a trace only when
//! the header names it (a `Root` and a `Parent`); otherwise it is a root (`SpanKind::Server`).
//!
//! Short in `make test` (proptest's 256 cases), long in `make fuzz`
//! (`PROPTEST_CASES=20000 cargo test --workspace fuzz`).

use lambda_runtime::LambdaInvocation;
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_aws::trace::xray_propagator::span_context_from_str;
use proptest::prelude::*;
use tower::{Layer, ServiceExt, service_fn};

use super::TraceLayer;
use crate::test_support::{TestTelemetry, invocation};

/// The `key=value` fields of a header, as X-Ray writes them (`;`-separated), read as
/// `opentelemetry-aws` reads them: the key up to the first `=`, the value after every `=` that
/// follows it (`Parent==x` names `x`).
fn fields(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|field| {
        field
            .split_once('=')
            .map(|(key, value)| (key, value.trim_start_matches('=')))
    })
}

/// Whether `header` names `trace_id` in a `Root` (`version-time-id`: the time and id digits
/// together, as the parser reads them) and `span_id` in a `Parent` (the
/// parser takes any number of hex digits that fits).
fn names(header: &str, trace_id: TraceId, span_id: SpanId) -> bool {
    let trace = u128::from_be_bytes(trace_id.to_bytes());
    let span = u64::from_be_bytes(span_id.to_bytes());
    let root = fields(header).any(|(key, value)| {
        let parts: Vec<&str> = value.split_terminator('-').collect();
        key == "Root"
            && parts.len() == 3
            && u128::from_str_radix(&format!("{}{}", parts[1], parts[2]), 16) == Ok(trace)
    });
    let parent = fields(header)
        .any(|(key, value)| key == "Parent" && u64::from_str_radix(value, 16) == Ok(span));
    root && parent
}

/// Lowercase hex of `len` digits.
fn hex(len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&b"0123456789abcdef"[..]), len)
        .prop_map(|digits| digits.into_iter().map(char::from).collect())
}

/// A header as Lambda sends it: `Root`, `Parent`, `Sampled`, sometimes `Lineage`, in any order.
fn well_formed() -> impl Strategy<Value = (String, String, String)> {
    (
        hex(8),
        hex(24),
        hex(16),
        prop::sample::select(&["0", "1", "?"][..]),
        prop::option::of("[0-9a-f]{8}:[0-9]"),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(time, id, parent, sampled, lineage, order)| {
            let mut fields = vec![
                format!("Root=1-{time}-{id}"),
                format!("Parent={parent}"),
                format!("Sampled={sampled}"),
            ];
            if let Some(lineage) = lineage {
                fields.push(format!("Lineage={lineage}"));
            }
            let first = order.index(fields.len());
            fields.rotate_left(first);
            (fields.join(";"), format!("{time}{id}"), parent)
        })
}

/// Anything: arbitrary text, text made of the header's own characters, a well-formed header
/// with bytes replaced, inserted or cut.
fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[Root=Parent;Sampled0-9a-fA-F?:-]{0,80}",
        (
            well_formed(),
            any::<prop::sample::Index>(),
            "[ -~]{0,3}",
            0usize..4
        )
            .prop_map(|((header, _, _), at, insert, cut)| {
                let mut bytes = header.into_bytes();
                let at = at.index(bytes.len() + 1);
                let end = (at + cut).min(bytes.len());
                bytes.splice(at..end, insert.into_bytes());
                String::from_utf8_lossy(&bytes).into_owned()
            }),
    ]
}

/// The invocation span TraceLayer exports for an invocation whose header is `header`; `None`
/// when it is not sampled, which only a valid header with `Sampled=0` may decide.
fn invocation_span(
    runtime: &tokio::runtime::Runtime,
    telemetry: &TestTelemetry,
    header: &str,
) -> Option<opentelemetry_sdk::trace::SpanData> {
    telemetry.exporter.reset();
    let mut request: LambdaInvocation = invocation(b"{}", None);
    request.context.xray_trace_id = Some(header.to_owned());
    let service =
        TraceLayer::new(telemetry.flusher()).layer(service_fn(|_: LambdaInvocation| async {
            Ok::<_, String>(())
        }));
    runtime
        .block_on(service.oneshot(request))
        .expect("the handler succeeds");
    let mut spans = telemetry.exported();
    if spans.is_empty() {
        let parent = span_context_from_str(header).expect("a parent decided the sampling");
        assert!(
            parent.is_valid() && !parent.is_sampled(),
            "{header:?}: no span, yet no valid unsampled parent: {parent:?}"
        );
        return None;
    }
    assert_eq!(spans.len(), 1, "one invocation span for {header:?}");
    Some(spans.remove(0))
}

proptest! {
    /// The parser alone, on anything: what it returns comes from the header.
    #[test]
    fn fuzz_xray_header_parser_gives_only_what_the_header_names(header in header()) {
        if let Some(context) = span_context_from_str(&header)
            && context.is_valid()
        {
            prop_assert!(
                names(&header, context.trace_id(), context.span_id()),
                "{header:?} gave {context:?}"
            );
        }
    }
}

#[test]
fn fuzz_xray_header_through_the_trace_layer() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let telemetry = TestTelemetry::new();
    proptest!(|(header in header())| {
        let Some(span) = invocation_span(&runtime, &telemetry, &header) else { return Ok(()) };
        if span.parent_span_id == SpanId::INVALID {
            prop_assert_eq!(&span.span_kind, &SpanKind::Server, "a root span for {:?}", header);
        } else {
            prop_assert!(span.parent_span_is_remote);
            prop_assert!(
                names(&header, span.span_context.trace_id(), span.parent_span_id),
                "{header:?} gave parent {} in trace {}",
                span.parent_span_id,
                span.span_context.trace_id()
            );
            prop_assert_eq!(&span.span_kind, &SpanKind::Internal);
        }
    });
    proptest!(|((header, trace, parent) in well_formed())| {
        let span = invocation_span(&runtime, &telemetry, &header);
        let zero = trace.bytes().all(|b| b == b'0') || parent.bytes().all(|b| b == b'0');
        if let (false, Some(span)) = (zero, span) {
            prop_assert_eq!(span.span_context.trace_id().to_string(), trace);
            prop_assert_eq!(span.parent_span_id.to_string(), parent);
            prop_assert_eq!(&span.span_kind, &SpanKind::Internal);
        }
    });
}

#[test]
fn fuzz_xray_header_without_a_parent_makes_a_root_span() {
    // A Root but no usable Parent: nothing to hang under, so the span is a segment of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let telemetry = TestTelemetry::new();
    for header in [
        "Root=1-5759e988-bd862e3fe1be46a994272793",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000;Sampled=1",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=xyz;Sampled=1",
    ] {
        let span = invocation_span(&runtime, &telemetry, header).expect("sampled");
        assert_eq!(span.parent_span_id, SpanId::INVALID, "{header}");
        assert_eq!(span.span_kind, SpanKind::Server, "{header}");
    }
}
