//! Span data for the exporters' tests.

use std::time::{Duration, SystemTime};

use opentelemetry::{KeyValue, trace::SpanId};
use opentelemetry_sdk::trace::SpanData;

#[cfg(feature = "otlp-udp")]
pub(crate) fn span_in(trace: u8, id: u8) -> SpanData {
    let mut span = span_data(id, 0, "span", 0);
    span.span_context = opentelemetry::trace::SpanContext::new(
        opentelemetry::trace::TraceId::from_bytes([trace; 16]),
        span.span_context.span_id(),
        span.span_context.trace_flags(),
        false,
        Default::default(),
    );
    span
}

pub(crate) fn span_data(id: u8, parent: u8, name: &'static str, offset_ms: u64) -> SpanData {
    use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([id; 8]),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from_bytes([parent; 8]),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: name.into(),
        start_time: SystemTime::UNIX_EPOCH + Duration::from_millis(offset_ms),
        end_time: SystemTime::UNIX_EPOCH + Duration::from_millis(offset_ms + 2),
        attributes: vec![KeyValue::new("ColdStart", true)],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: Default::default(),
    }
}
