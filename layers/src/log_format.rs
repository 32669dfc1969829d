//! The log subscriber: one line per event on stdout, as Lambda's log formats expect.
//!
//! * [`LogFormat::Json`] → one JSON object per line with `timestamp` (RFC 3339, UTC), `level`,
//!   `message`, `service`, the event's fields, and — inside an invocation — `requestId`,
//!   `functionName`, `coldStart`, `xrayTraceId`, `traceId`, `spanId` and `tenantId`.
//! * [`LogFormat::Text`] (the default) →
//!   `timestamp<TAB>requestId<TAB>LEVEL<TAB>message key=value…`, the invocation's keys last.
//!
//! The invocation keys are on every line written inside an invocation, at every level and with
//! any filter: the filter ([`LogConfig::filter`]) decides which *events* are written, never which
//! spans the log layer sees, so the `INFO` invocation span still carries its context into a `WARN`
//! line when the level is `WARN`. Spans reach OpenTelemetry at `INFO` and above, whatever the log
//! level.
//!
//! Field names that look like secrets (`token`, `secret`, `password`, `authorization`,
//! `credential`, `access_key`, `session`) are written as `[REDACTED]`.
//!
//! The invocation keys are attached to the invocation span by [`TraceLayer`](crate::TraceLayer)
//! through [`attach`]; any span carrying an [`InvocationLogContext`] provides them.
//!
//! [`subscriber`] builds the whole subscriber (production, tests and benches use it); [`init`]
//! installs it globally:
//!
//! ```
//! use lambda_observability::log_format::{self, LogConfig, LogFormat};
//!
//! let config = LogConfig::new()
//!     .format(LogFormat::Json)
//!     .filter("warn")
//!     .service_name("hello");
//! let subscriber = log_format::subscriber(&config, std::io::stdout, None)?;
//! tracing::subscriber::with_default(subscriber, || tracing::warn!("written, with its context"));
//! # Ok::<(), log_format::FilterError>(())
//! ```

use std::{
    fmt::{self, Write as _},
    sync::Arc,
    time::SystemTime,
};

use serde_json::Value;
use tracing::{Event, Level, Metadata, Subscriber, field::Field, span, subscriber::Interest};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::LevelFilter,
    fmt::MakeWriter,
    layer::{Context, Filter, SubscriberExt},
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::BoxError;

/// Line format (Lambda's `AWS_LAMBDA_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Tab-separated text (Lambda's default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// What the log subscriber writes: pure data, filled from the environment's configuration.
#[derive(Debug, Clone, Default)]
pub struct LogConfig {
    format: LogFormat,
    filter: Option<String>,
    service_name: Option<Arc<str>>,
}

impl LogConfig {
    /// Text lines at `INFO` and above, without a `service` key.
    pub fn new() -> Self {
        Self::default()
    }

    /// The line format. Defaults to [`LogFormat::Text`].
    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// Which events are written, as an `EnvFilter` directive (`warn`, `hello_lambda=debug,info`).
    /// Spans are not filtered by it. Defaults to `info`.
    pub fn filter(mut self, directive: impl Into<String>) -> Self {
        self.filter = Some(directive.into());
        self
    }

    /// The `service` key of every line. Defaults to none (the key is left out).
    pub fn service_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The configured line format.
    pub fn log_format(&self) -> LogFormat {
        self.format
    }

    fn env_filter(&self) -> Result<EnvFilter, FilterError> {
        let directive = self.filter.as_deref().unwrap_or("info");
        EnvFilter::try_new(directive).map_err(|err| FilterError {
            message: format!("invalid log filter {directive:?}: {err}"),
        })
    }
}

/// The log filter directive could not be parsed.
#[derive(Debug)]
pub struct FilterError {
    message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.message)
    }
}

impl std::error::Error for FilterError {}

/// The whole subscriber: log lines written through `make_writer` (one writer per line), and —
/// with a tracer — the OpenTelemetry layer. Production ([`init`]), tests and benches all build it
/// here, so they all filter the same way.
pub fn subscriber<W>(
    config: &LogConfig,
    make_writer: W,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
) -> Result<impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static, FilterError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let mut logs = LogLayer::new(config.format, make_writer);
    if let Some(service) = &config.service_name {
        logs = logs.service_name(service.clone());
    }
    let filter = EventFilter(config.env_filter()?);
    Ok(tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(tracer.map(otel_layer)))
}

/// Installs [`subscriber`] globally, writing to stdout.
pub fn init(
    config: &LogConfig,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
) -> Result<(), BoxError> {
    subscriber(config, std::io::stdout, tracer)?
        .try_init()
        .map_err(|err| err.into())
}

/// The log layer's filter: `EnvFilter` decides on events only. Spans at `INFO` and above are
/// always visible to the log layer, since they carry the invocation's context; a filter that
/// disabled them (`warn`, `hello_lambda=debug`) would strip that context from the lines it lets
/// through. The span hooks are still delegated, so span-scoped directives
/// (`[invocation]=debug`) keep working.
struct EventFilter(EnvFilter);

impl EventFilter {
    fn always(metadata: &Metadata<'_>) -> bool {
        metadata.is_span() && *metadata.level() <= Level::INFO
    }
}

impl<S: Subscriber> Filter<S> for EventFilter {
    fn enabled(&self, metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        Self::always(metadata) || Filter::enabled(&self.0, metadata, cx)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if Self::always(metadata) {
            // Still registered with the inner filter, which records span-scoped directives here.
            let _ = Filter::<S>::callsite_enabled(&self.0, metadata);
            Interest::always()
        } else {
            Filter::<S>::callsite_enabled(&self.0, metadata)
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // INFO spans must be created even when no event below WARN is wanted.
        Filter::<S>::max_level_hint(&self.0).map(|hint| hint.max(LevelFilter::INFO))
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        Filter::event_enabled(&self.0, event, cx)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        Filter::on_new_span(&self.0, attrs, id, cx)
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        Filter::on_record(&self.0, id, values, cx)
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        Filter::on_enter(&self.0, id, cx)
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        Filter::on_exit(&self.0, id, cx)
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        Filter::on_close(&self.0, id, cx)
    }
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
    /// `tenantId`, for tenant-isolated functions.
    pub tenant_id: Option<String>,
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

/// A `tracing_subscriber` layer writing one line per event. [`subscriber`] puts it behind the
/// configured filter.
pub struct LogLayer<W> {
    format: LogFormat,
    service_name: Option<Arc<str>>,
    make_writer: W,
}

impl<W> fmt::Debug for LogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLayer")
            .field("format", &self.format)
            .field("service_name", &self.service_name)
            .finish()
    }
}

impl<W> LogLayer<W>
where
    W: for<'a> MakeWriter<'a> + 'static,
{
    /// Lines in `format`, each written to a writer `make_writer` makes.
    pub fn new(format: LogFormat, make_writer: W) -> Self {
        Self {
            format,
            service_name: None,
            make_writer,
        }
    }

    /// The `service` key of every line. Defaults to none (the key is left out).
    pub fn service_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.service_name = Some(name.into());
        self
    }
}

impl<S, W> Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
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
        let line = Line {
            level: event.metadata().level(),
            fields,
            invocation: invocation.as_deref(),
            service_name: self.service_name.as_deref(),
        };
        let line = match self.format {
            LogFormat::Json => line.json(),
            LogFormat::Text => line.text(),
        };
        let _ = std::io::Write::write_all(
            &mut self.make_writer.make_writer_for(event.metadata()),
            line.as_bytes(),
        );
    }
}

/// Keys the JSON line writes itself; event fields with these names are left out.
const JSON_KEYS: &[&str] = &[
    "timestamp",
    "level",
    "message",
    "service",
    "requestId",
    "functionName",
    "coldStart",
    "xrayTraceId",
    "traceId",
    "spanId",
    "tenantId",
];

struct Line<'a> {
    level: &'a Level,
    fields: Fields,
    invocation: Option<&'a InvocationLogContext>,
    service_name: Option<&'a str>,
}

impl Line<'_> {
    /// Writes the line straight into one buffer (no intermediate JSON tree).
    fn json(self) -> String {
        fn string(out: &mut String, value: &str) {
            // Serializing a &str into a String cannot fail.
            out.push_str(&serde_json::to_string(value).unwrap_or_default());
        }
        let mut out = String::with_capacity(320);
        out.push_str("{\"timestamp\":\"");
        out.push_str(&rfc3339(SystemTime::now()));
        out.push_str("\",\"level\":\"");
        out.push_str(self.level.as_str());
        out.push_str("\",\"message\":");
        string(&mut out, self.fields.message.as_deref().unwrap_or_default());
        if let Some(service) = self.service_name {
            out.push_str(",\"service\":");
            string(&mut out, service);
        }
        if let Some(inv) = self.invocation {
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
                ("tenantId", &inv.tenant_id),
            ] {
                if let Some(value) = value {
                    write!(out, ",\"{key}\":").ok();
                    string(&mut out, value);
                }
            }
        }
        for (key, value) in &self.fields.values {
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

    /// Lambda's text layout, then the event's fields, then the invocation's keys. `xrayTraceId`
    /// is left out: `traceId` and `spanId` say the same, shorter.
    fn text(self) -> String {
        let mut text = format!(
            "{}\t{}\t{}\t{}",
            rfc3339(SystemTime::now()),
            self.invocation.map_or("-", |inv| inv.request_id.as_str()),
            self.level,
            self.fields.message.unwrap_or_default()
        );
        for (key, value) in &self.fields.values {
            match value {
                Value::String(s) => write!(text, " {key}={s}"),
                other => write!(text, " {key}={other}"),
            }
            .ok();
        }
        if let Some(service) = self.service_name {
            write!(text, " service={service}").ok();
        }
        if let Some(inv) = self.invocation {
            write!(
                text,
                " functionName={} coldStart={}",
                inv.function_name, inv.cold_start
            )
            .ok();
            for (key, value) in [
                ("traceId", &inv.trace_id),
                ("spanId", &inv.span_id),
                ("tenantId", &inv.tenant_id),
            ] {
                if let Some(value) = value {
                    write!(text, " {key}={value}").ok();
                }
            }
        }
        // One event, one line: a message or field holding a line break (a payload logged with
        // LOG_EVENT_PAYLOAD, an error's text) must not start a line of its own in CloudWatch.
        if text.contains(['\n', '\r']) {
            text = text.replace('\r', "\\r").replace('\n', "\\n");
        }
        text.push('\n');
        text
    }
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

    const KEYS: [&str; 5] = [
        "requestId",
        "traceId",
        "coldStart",
        "functionName",
        "tenantId",
    ];

    fn capture(config: &LogConfig, body: impl FnOnce()) -> Vec<String> {
        let out = SharedBuf::default();
        let writer = out.clone();
        let subscriber = subscriber(config, move || writer.clone(), None).expect("valid filter");
        tracing::subscriber::with_default(subscriber, body);
        out.lines()
    }

    fn context() -> InvocationLogContext {
        InvocationLogContext {
            request_id: "req-1".into(),
            xray_trace_id: Some(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into(),
            ),
            trace_id: Some("5759e988bd862e3fe1be46a994272793".into()),
            span_id: Some("0123456789abcdef".into()),
            cold_start: true,
            function_name: "hello".into(),
            tenant_id: Some("blue".into()),
        }
    }

    /// Logs at every level from target `hello_lambda` inside an `INFO` invocation span.
    fn log_every_level_in_an_invocation() {
        let span = tracing::info_span!(target: "lambda_observability::invocation", "invocation");
        attach(&span, context());
        let _entered = span.enter();
        tracing::debug!(target: "hello_lambda", "debug line");
        tracing::info!(target: "hello_lambda", "info line");
        tracing::warn!(target: "hello_lambda", "warn line");
        tracing::error!(target: "hello_lambda", "error line");
        tracing::warn!(target: "other_crate", "other warn line");
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
        let config = LogConfig::new()
            .format(LogFormat::Json)
            .service_name("hello-service");
        let lines = capture(&config, || {
            let span = tracing::info_span!("invocation");
            attach(&span, context());
            let _entered = span.enter();
            tracing::info!(count = 3, aws_session_token = "abc", "hello {}", "world");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: Value = serde_json::from_str(&lines[0]).expect("valid JSON");
        assert_eq!(line["message"], "hello world");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["service"], "hello-service");
        assert_eq!(line["requestId"], "req-1");
        assert_eq!(line["functionName"], "hello");
        assert_eq!(line["coldStart"], true);
        assert_eq!(line["traceId"], "5759e988bd862e3fe1be46a994272793");
        assert_eq!(line["spanId"], "0123456789abcdef");
        assert_eq!(line["tenantId"], "blue");
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
    fn a_line_break_in_a_text_line_cannot_forge_another_line() {
        let lines = capture(&LogConfig::new(), || {
            tracing::warn!(
                payload = "{}\n2026-01-01T00:00:00.000Z\tforged\tERROR\tx",
                "first\r\nsecond"
            )
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("first\\r\\nsecond payload={}\\n2026-01-01"),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn text_lines_outside_an_invocation_have_no_request_id() {
        let lines = capture(&LogConfig::new(), || tracing::warn!(answer = 42, "plain"));
        assert_eq!(lines.len(), 1);
        let parts: Vec<&str> = lines[0].split('\t').collect();
        assert_eq!(parts[1..], ["-", "WARN", "plain answer=42"]);
    }

    /// The filter decides on events only: every line it lets through keeps the context of the
    /// `INFO` span around it, in both formats.
    #[test]
    fn every_level_and_filter_keeps_the_invocation_context() {
        for (filter, expected) in [
            ("warn", &["warn line", "error line", "other warn line"][..]),
            ("error", &["error line"][..]),
            ("hello_lambda=warn", &["warn line", "error line"][..]),
        ] {
            let json = capture(
                &LogConfig::new().format(LogFormat::Json).filter(filter),
                log_every_level_in_an_invocation,
            );
            let messages: Vec<String> = json
                .iter()
                .map(|line| {
                    let line: Value = serde_json::from_str(line).expect("valid JSON");
                    for key in KEYS {
                        assert!(!line[key].is_null(), "{filter}: {key} missing in {line}");
                    }
                    assert_eq!(line["requestId"], "req-1");
                    assert_eq!(line["tenantId"], "blue");
                    line["message"].as_str().unwrap_or_default().to_owned()
                })
                .collect();
            assert_eq!(messages, expected, "{filter}");

            let text = capture(
                &LogConfig::new().filter(filter),
                log_every_level_in_an_invocation,
            );
            assert_eq!(text.len(), expected.len(), "{filter}: {text:?}");
            for line in &text {
                assert_eq!(line.split('\t').nth(1), Some("req-1"), "{line}");
                for key in [
                    "traceId=",
                    "coldStart=true",
                    "functionName=hello",
                    "tenantId=blue",
                ] {
                    assert!(line.contains(key), "{filter}: {key} missing in {line}");
                }
            }
        }
    }

    #[test]
    fn span_scoped_directives_still_select_events() {
        let lines = capture(
            &LogConfig::new()
                .format(LogFormat::Json)
                .filter("warn,[invocation]=debug"),
            || {
                tracing::debug!("debug outside");
                log_every_level_in_an_invocation();
            },
        );
        let messages: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).expect("json")["message"].clone())
            .collect();
        assert_eq!(
            messages,
            [
                "debug line",
                "info line",
                "warn line",
                "error line",
                "other warn line"
            ]
        );
    }

    #[test]
    fn a_bad_filter_is_a_typed_error() {
        let err = subscriber(&LogConfig::new().filter("=[oops"), std::io::sink, None)
            .err()
            .expect("rejected");
        let text = err.to_string();
        assert!(text.starts_with("invalid log filter \"=[oops\""), "{text}");
        assert_eq!(format!("{err:>1}"), text, "padding keeps the message");
    }
}
