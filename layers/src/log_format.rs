//! The log subscriber: one line per event on stdout, as Lambda's log formats expect.
//!
//! * `AWS_LAMBDA_LOG_FORMAT=JSON` → one JSON object per line with `timestamp` (RFC 3339, UTC),
//!   `level`, `message`, the event's fields, and — inside an invocation — `requestId`,
//!   `xrayTraceId`, `traceId`, `spanId`, `coldStart` and `functionName`.
//! * `Text` (the default) → `timestamp<TAB>requestId<TAB>LEVEL<TAB>message key=value…`.
//! * The level comes from `AWS_LAMBDA_LOG_LEVEL` (`TRACE`…`FATAL`), else `RUST_LOG`, else `INFO`.
//!
//! Field names that look like secrets (`token`, `secret`, `password`, `authorization`,
//! `credential`, `access_key`, `session`) are written as `[REDACTED]`.
//!
//! The invocation fields are attached to the invocation span by [`TraceLayer`](crate::TraceLayer)
//! through [`attach`]; any span carrying an [`InvocationLogContext`] provides them.

use std::{
    fmt::{self, Write as _},
    sync::Arc,
    time::SystemTime,
};

use serde_json::Value;
use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    layer::{Context, SubscriberExt},
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::BoxError;

/// Line format, from `AWS_LAMBDA_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Tab-separated text (Lambda's default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging configuration, read once at init.
#[derive(Debug, Clone)]
pub struct LogConfig {
    format: LogFormat,
    filter: String,
}

impl LogConfig {
    /// Reads `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), with variables from `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let format = match lookup("AWS_LAMBDA_LOG_FORMAT") {
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let filter = lookup("AWS_LAMBDA_LOG_LEVEL")
            .and_then(|level| lambda_level(&level))
            .map(str::to_owned)
            .or_else(|| lookup("RUST_LOG").filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| "info".to_owned());
        Self { format, filter }
    }

    /// The line format. Defaults to `AWS_LAMBDA_LOG_FORMAT`, else text.
    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// An `EnvFilter` directive. Defaults to `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`.
    pub fn filter(mut self, directive: impl Into<String>) -> Self {
        self.filter = directive.into();
        self
    }

    /// The configured line format.
    pub fn log_format(&self) -> LogFormat {
        self.format
    }
}

fn lambda_level(level: &str) -> Option<&'static str> {
    Some(match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

/// Installs the global subscriber: the log lines, and — with a tracer — the OpenTelemetry layer.
/// Spans reach OpenTelemetry at `INFO` and above whatever the log level, so quieter logs never
/// mean missing traces.
pub fn init(
    config: &LogConfig,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
) -> Result<(), BoxError> {
    let filter = EnvFilter::try_new(&config.filter)
        .map_err(|err| format!("invalid log filter {:?}: {err}", config.filter))?;
    let otel = tracer.map(otel_layer);
    tracing_subscriber::registry()
        .with(LogLayer::new(config.format, std::io::stdout).with_filter(filter))
        .with(otel)
        .try_init()
        .map_err(|err| err.into())
}

/// The OpenTelemetry layer: spans at `INFO` and above become OpenTelemetry spans.
///
/// Log events are *not* copied into span events: the log lines already carry `traceId` and
/// `spanId`, so copying them would only double what each invocation sends (and what it costs).
/// Code location, thread and target attributes are left out for the same reason. Errors reach the
/// span through [`ErrorMapLayer`](crate::ErrorMapLayer), which records them explicitly.
pub fn otel_layer<S>(tracer: opentelemetry_sdk::trace::Tracer) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.is_span() && *metadata.level() <= Level::INFO
        }))
}

/// What an invocation adds to each of its log lines.
#[derive(Debug, Clone, Default)]
pub struct InvocationLogContext {
    /// `requestId`.
    pub request_id: String,
    /// `xrayTraceId`, the raw `Lambda-Runtime-Trace-Id`.
    pub xray_trace_id: Option<String>,
    /// `traceId` (32 hex digits), when the span is traced.
    pub trace_id: Option<String>,
    /// `spanId` (16 hex digits), when the span is traced.
    pub span_id: Option<String>,
    /// `coldStart`.
    pub cold_start: bool,
    /// `functionName`.
    pub function_name: String,
}

/// Attaches `context` to `span`, for every event logged inside it. A no-op when the current
/// subscriber has no span registry.
pub fn attach(span: &tracing::Span, context: InvocationLogContext) {
    let mut context = Some(context);
    span.with_subscriber(|(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<Registry>()
            && let Some(span) = registry.span(id)
            && let Some(context) = context.take()
        {
            span.extensions_mut().insert(Arc::new(context));
        }
    });
}

/// A `tracing_subscriber` layer writing one line per event.
pub struct LogLayer<W> {
    format: LogFormat,
    make_writer: W,
}

impl<W> fmt::Debug for LogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLayer")
            .field("format", &self.format)
            .finish()
    }
}

impl<W, O> LogLayer<W>
where
    W: Fn() -> O + 'static,
    O: std::io::Write,
{
    /// Lines in `format`, written to the writer that `make_writer` returns for each line.
    pub fn new(format: LogFormat, make_writer: W) -> Self {
        Self {
            format,
            make_writer,
        }
    }
}

impl<S, W, O> Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: Fn() -> O + 'static,
    O: std::io::Write,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let invocation = ctx.event_scope(event).and_then(|scope| {
            scope.from_root().find_map(|span| {
                span.extensions()
                    .get::<Arc<InvocationLogContext>>()
                    .cloned()
            })
        });
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = match self.format {
            LogFormat::Json => json_line(event.metadata().level(), fields, invocation.as_deref()),
            LogFormat::Text => text_line(event.metadata().level(), fields, invocation.as_deref()),
        };
        let _ = (self.make_writer)().write_all(line.as_bytes());
    }
}

/// Keys the JSON line writes itself; event fields with these names are left out.
const JSON_KEYS: &[&str] = &[
    "timestamp",
    "level",
    "message",
    "requestId",
    "functionName",
    "coldStart",
    "xrayTraceId",
    "traceId",
    "spanId",
];

/// Writes the line straight into one buffer (no intermediate JSON tree).
fn json_line(level: &Level, fields: Fields, invocation: Option<&InvocationLogContext>) -> String {
    fn string(out: &mut String, value: &str) {
        // Serializing a &str into a String cannot fail.
        out.push_str(&serde_json::to_string(value).unwrap_or_default());
    }
    let mut out = String::with_capacity(256);
    out.push_str("{\"timestamp\":\"");
    out.push_str(&rfc3339(SystemTime::now()));
    out.push_str("\",\"level\":\"");
    out.push_str(level.as_str());
    out.push_str("\",\"message\":");
    string(&mut out, fields.message.as_deref().unwrap_or_default());
    if let Some(inv) = invocation {
        out.push_str(",\"requestId\":");
        string(&mut out, &inv.request_id);
        out.push_str(",\"functionName\":");
        string(&mut out, &inv.function_name);
        out.push_str(if inv.cold_start {
            ",\"coldStart\":true"
        } else {
            ",\"coldStart\":false"
        });
        for (key, value) in [
            ("xrayTraceId", &inv.xray_trace_id),
            ("traceId", &inv.trace_id),
            ("spanId", &inv.span_id),
        ] {
            if let Some(value) = value {
                write!(out, ",\"{key}\":").ok();
                string(&mut out, value);
            }
        }
    }
    for (key, value) in &fields.values {
        if JSON_KEYS.contains(key) {
            continue;
        }
        out.push(',');
        string(&mut out, key);
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push_str("}\n");
    out
}

fn text_line(level: &Level, fields: Fields, invocation: Option<&InvocationLogContext>) -> String {
    let mut text = format!(
        "{}\t{}\t{}\t{}",
        rfc3339(SystemTime::now()),
        invocation.map_or("-", |inv| inv.request_id.as_str()),
        level,
        fields.message.unwrap_or_default()
    );
    for (key, value) in &fields.values {
        match value {
            Value::String(s) => write!(text, " {key}={s}"),
            other => write!(text, " {key}={other}"),
        }
        .ok();
    }
    text.push('\n');
    text
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    values: Vec<(&'static str, Value)>,
}

const SECRET_MARKERS: &[&str] = &[
    "token",
    "secret",
    "password",
    "authorization",
    "credential",
    "access_key",
    "session",
];

/// `true` for field names that must never be logged with their value.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.as_bytes();
    SECRET_MARKERS.iter().any(|marker| {
        name.windows(marker.len())
            .any(|window| window.eq_ignore_ascii_case(marker.as_bytes()))
    })
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if is_secret_name(name) {
            self.values.push((name, "[REDACTED]".into()));
        } else {
            self.values.push((name, value));
        }
    }
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, value.to_string().into());
    }
}

/// Formats `time` as RFC 3339 in UTC with milliseconds, e.g. `2026-11-27T15:21:42.123Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::SharedBuf;
    use std::time::Duration;

    fn capture(format: LogFormat, body: impl FnOnce()) -> Vec<String> {
        let out = SharedBuf::default();
        let writer = out.clone();
        let subscriber =
            tracing_subscriber::registry().with(LogLayer::new(format, move || writer.clone()));
        tracing::subscriber::with_default(subscriber, body);
        out.lines()
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_792_902_123);
        assert_eq!(rfc3339(t), "2026-11-27T15:21:42.123Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn json_lines_carry_the_invocation_context_and_redact_secrets() {
        let lines = capture(LogFormat::Json, || {
            let span = tracing::info_span!("invocation");
            attach(
                &span,
                InvocationLogContext {
                    request_id: "req-1".into(),
                    xray_trace_id: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into()),
                    trace_id: Some("5759e988bd862e3fe1be46a994272793".into()),
                    span_id: Some("0123456789abcdef".into()),
                    cold_start: true,
                    function_name: "hello".into(),
                },
            );
            let _entered = span.enter();
            tracing::info!(count = 3, aws_session_token = "abc", "hello {}", "world");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: Value = serde_json::from_str(&lines[0]).expect("valid JSON");
        assert_eq!(line["message"], "hello world");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["requestId"], "req-1");
        assert_eq!(line["functionName"], "hello");
        assert_eq!(line["coldStart"], true);
        assert_eq!(line["traceId"], "5759e988bd862e3fe1be46a994272793");
        assert_eq!(line["spanId"], "0123456789abcdef");
        assert_eq!(line["count"], 3);
        assert_eq!(line["aws_session_token"], "[REDACTED]");
        assert!(
            line["xrayTraceId"]
                .as_str()
                .is_some_and(|v| v.starts_with("Root=1-"))
        );
        assert!(
            line["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.len() == 24)
        );
    }

    #[test]
    fn text_lines_outside_an_invocation_have_no_request_id() {
        let lines = capture(LogFormat::Text, || tracing::warn!(answer = 42, "plain"));
        assert_eq!(lines.len(), 1);
        let parts: Vec<&str> = lines[0].split('\t').collect();
        assert_eq!(parts[1..], ["-", "WARN", "plain answer=42"]);
    }

    #[test]
    fn lambda_log_level_wins_over_rust_log() {
        let config = LogConfig::from_lookup(|name| match name {
            "AWS_LAMBDA_LOG_LEVEL" => Some("FATAL".into()),
            "AWS_LAMBDA_LOG_FORMAT" => Some("JSON".into()),
            "RUST_LOG" => Some("debug".into()),
            _ => None,
        });
        assert_eq!(config.filter, "error");
        assert_eq!(config.format, LogFormat::Json);
        let config = LogConfig::from_lookup(|name| (name == "RUST_LOG").then(|| "debug".into()));
        assert_eq!(
            (config.filter.as_str(), config.format),
            ("debug", LogFormat::Text)
        );
        assert_eq!(LogConfig::from_lookup(|_| None).filter, "info");
    }
}
