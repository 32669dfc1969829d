//! A readable timeline of each invocation's spans, for local runs.

use std::{fmt, io::Write, sync::Mutex, time::SystemTime};

use opentelemetry::{KeyValue, trace::SpanId};
use opentelemetry_sdk::{
    error::{OTelSdkError, OTelSdkResult},
    trace::{SpanData, SpanExporter},
};

/// Prints each flushed batch as an indented timeline, for `OTEL_TRACES_EXPORTER=console`.
pub struct ConsoleExporter {
    out: Mutex<Box<dyn Write + Send>>,
}

impl fmt::Debug for ConsoleExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleExporter").finish_non_exhaustive()
    }
}

impl ConsoleExporter {
    /// Writes to stderr, so that stdout stays the function's log stream.
    pub fn stderr() -> Self {
        Self::new(Box::new(std::io::stderr()))
    }

    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let text = render_timeline(&batch);
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|err| OTelSdkError::InternalFailure(err.to_string()))
    }
}

/// Renders spans as a tree ordered by start time: offset from the first span, duration, name,
/// status and the attributes that matter when reading a trace.
pub(crate) fn render_timeline(batch: &[SpanData]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let Some(t0) = batch.iter().map(|s| s.start_time).min() else {
        return out;
    };
    let ids: Vec<SpanId> = batch.iter().map(|s| s.span_context.span_id()).collect();
    let mut roots: Vec<&SpanData> = batch
        .iter()
        .filter(|s| !ids.contains(&s.parent_span_id))
        .collect();
    roots.sort_by_key(|s| s.start_time);
    fn walk(out: &mut String, batch: &[SpanData], span: &SpanData, t0: SystemTime, depth: usize) {
        let offset = span.start_time.duration_since(t0).unwrap_or_default();
        let took = span
            .end_time
            .duration_since(span.start_time)
            .unwrap_or_default();
        let status = match &span.status {
            opentelemetry::trace::Status::Error { description } => format!(" ERROR {description}"),
            _ => String::new(),
        };
        let attrs: Vec<String> = span
            .attributes
            .iter()
            .filter(|kv| TIMELINE_ATTRIBUTES.contains(&kv.key.as_str()))
            .map(|KeyValue { key, value, .. }| format!("{key}={value}"))
            .collect();
        let _ = writeln!(
            out,
            "  +{:>8.3} ms {:>8.3} ms {:indent$}{}{} [{}]",
            offset.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3,
            "",
            span.name,
            status,
            attrs.join(" "),
            indent = depth * 2
        );
        let mut children: Vec<&SpanData> = batch
            .iter()
            .filter(|c| c.parent_span_id == span.span_context.span_id())
            .collect();
        children.sort_by_key(|c| c.start_time);
        for child in children {
            walk(out, batch, child, t0, depth + 1);
        }
    }
    for root in roots {
        let _ = writeln!(
            out,
            "trace {} (parent {}):",
            root.span_context.trace_id(),
            root.parent_span_id
        );
        walk(&mut out, batch, root, t0, 0);
    }
    out
}

const TIMELINE_ATTRIBUTES: &[&str] = &[
    "faas.invocation_id",
    "ColdStart",
    "http.request.method",
    "url.full",
    "http.response.status_code",
    "error.type",
];

#[cfg(test)]
pub(super) mod tests {
    use std::time::{Duration, SystemTime};

    use opentelemetry::{KeyValue, trace::SpanId};
    use opentelemetry_sdk::trace::SpanData;

    use super::*;

    /// A sampled span `id` of trace `[trace; 16]`, under span 0.
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
        use opentelemetry::trace::{
            SpanContext, SpanKind, Status, TraceFlags, TraceId, TraceState,
        };
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

    /// A failed span says so on its line, with the status's description: the one thing a
    /// reader of a local run looks for.
    #[test]
    fn the_timeline_marks_failed_spans_with_their_error() {
        let mut failed = span_data(1, 9, "root", 0);
        failed.status = opentelemetry::trace::Status::error("disk full");
        let text = render_timeline(&[failed, span_data(2, 1, "child", 1)]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains(" root ERROR disk full [ColdStart=true]"),
            "{text}"
        );
        assert!(!lines[2].contains("ERROR"), "{text}");
    }

    /// The exporter's `Debug` names it without its writer (stderr, or any `Write`).
    #[test]
    fn the_console_exporter_debugs_as_itself() {
        let exporter = ConsoleExporter::new(Box::new(Vec::new()));
        assert_eq!(format!("{exporter:?}"), "ConsoleExporter { .. }");
    }

    #[test]
    fn the_timeline_nests_children_under_their_parents() {
        let text = render_timeline(&[span_data(2, 1, "child", 1), span_data(1, 9, "root", 0)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("trace 01010101"), "{text}");
        assert!(lines[1].contains(" root [ColdStart=true]"), "{text}");
        assert!(lines[2].contains("   child"), "{text}");
    }
}
