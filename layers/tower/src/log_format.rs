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
//! through [`attach`]; any span carrying an [`InvocationLogContext`] provides them (the innermost one, when several do).
//!
//! **Writes.** Inside an invocation run by [`TraceLayer`](crate::TraceLayer), `INFO`, `DEBUG` and
//! `TRACE` lines are gathered and written together, in one `write`: before the answer is posted
//! (by our runtime's `Respond`, through `BeforeAnswer`), when the invocation ends, or once they
//! have waited [`MAX_LINE_DELAY`](crate::trace::MAX_LINE_DELAY) (20 ms, and never past the
//! deadline) while the invocation waits on I/O; a `WARN` or `ERROR` line writes what is gathered
//! and itself at once. So an invocation's lines are out by the time its caller has the response,
//! and a handler stuck on a call until its timeout has its lines before the call written 20 ms
//! into the wait; what a process that aborts (not a panic: those are caught and logged at
//! `ERROR`) had gathered in its last 20 ms is lost. A `write` to a pipe costs several µs of CPU;
//! the example handler logs eight lines per invocation and writes them in two: before its answer,
//! and its end line (`docs/warm-invocation.md` has the measurements). [`LogConfig::buffered`]
//! turns it off: one `write` per line.
//!
//! [`subscriber`] builds the whole subscriber (production, tests and benches use it); [`init`]
//! installs it globally:
//!
//! ```
//! use lambda_observability_tower::log_format::{self, LogConfig, LogFormat};
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
    collections::HashMap,
    fmt::{self, Write as _},
    hash::BuildHasherDefault,
    sync::{Arc, Mutex, OnceLock},
    time::SystemTime,
};

use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{
    Layer, Registry,
    fmt::MakeWriter,
    layer::{Context, SubscriberExt},
    registry::{LookupSpan, SpanRef},
    util::SubscriberInitExt,
};

use crate::{
    BoxError,
    filters::{EventFilter, LogFilter, OtelSpans},
};

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
    unbuffered: bool,
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

    /// Which events are written, as a `RUST_LOG` directive: a level, or `target=level` pairs
    /// (`warn`, `hello_lambda=debug,info`). A directive that names a span or a field
    /// (`warn,[invocation]=debug`) needs the cargo feature `env-filter` ([`check_filter`] says
    /// whether this build takes a directive). Spans are not filtered by it. Defaults to `info`.
    pub fn filter(mut self, directive: impl Into<String>) -> Self {
        self.filter = Some(directive.into());
        self
    }

    /// The `service` key of every line. Defaults to none (the key is left out).
    pub fn service_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Whether an invocation's `INFO`-and-below lines are written together when it yields or
    /// ends (see the [module docs](self)), rather than one `write` each. Defaults to `true`.
    pub fn buffered(mut self, buffered: bool) -> Self {
        self.unbuffered = !buffered;
        self
    }

    /// The configured line format.
    pub fn log_format(&self) -> LogFormat {
        self.format
    }

    fn directive(&self) -> &str {
        self.filter.as_deref().unwrap_or("info")
    }
}

/// Whether this build can filter with `directive` (see [`LogConfig::filter`]); the error says
/// why not.
///
/// ```
/// use lambda_observability_tower::log_format::check_filter;
///
/// assert!(check_filter("info,hello_lambda=debug").is_ok());
/// assert!(check_filter("hello=loud").is_err());
/// ```
pub fn check_filter(directive: &str) -> Result<(), FilterError> {
    parse_filter(directive).map(drop)
}

fn parse_filter(directive: &str) -> Result<LogFilter, FilterError> {
    LogFilter::parse(directive).map_err(|err| FilterError {
        message: format!("invalid log filter {directive:?}: {err}"),
    })
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
    let mut logs = LogLayer::new(config.format, make_writer).buffered(!config.unbuffered);
    if let Some(service) = &config.service_name {
        logs = logs.service_name(service.clone());
    }
    // Global filters, not per-layer ones: see `crate::filters`.
    let logs = EventFilter::new(logs, parse_filter(config.directive())?);
    Ok(tracing_subscriber::registry()
        .with(logs)
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

/// The OpenTelemetry layer: spans at `INFO` and above become OpenTelemetry spans.
///
/// Log events are *not* copied into span events: the log lines already carry `traceId` and
/// `spanId`, so copying them would only double what each invocation sends (and what it costs).
/// Code location, thread and target attributes are left out for the same reason. Errors reach the
/// span through [`ErrorMapLayer`](crate::ErrorMapLayer), which records them explicitly.
///
/// It chooses what it sees without a per-layer filter and disables nothing for the layers beside
/// it (why: the `filters` module, crate-private).
pub fn otel_layer<S>(tracer: opentelemetry_sdk::trace::Tracer) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    OtelSpans(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_target(false),
    )
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
    let keys = Arc::new(InvocationKeys::new(context));
    with_registry_span(span, |span| {
        span.extensions_mut().insert(keys);
    });
}

/// Attaches an invocation's `context` and its gathered `lines` to its span, for every event
/// logged inside it, and returns them for what the invocation logs after the span closed (its
/// flush): [`AfterSpan::scope`].
pub(crate) fn attach_invocation(
    span: &tracing::Span,
    context: InvocationLogContext,
    lines: Arc<LineBuffer>,
) -> AfterSpan {
    let after = AfterSpan {
        keys: Arc::new(InvocationKeys::new(context)),
        lines,
    };
    with_registry_span(span, |span| {
        let mut extensions = span.extensions_mut();
        extensions.insert(after.keys.clone());
        extensions.insert(after.lines.clone());
    });
    after
}

/// An invocation's keys and gathered lines, for the events it logs once its span has closed: the
/// flush's. A span entered around the flush carried them before, at 3.5k instructions per
/// invocation (creating it, entering it twice, closing it); a thread-local set around each poll
/// of the flush costs two swaps.
#[derive(Clone)]
pub(crate) struct AfterSpan {
    keys: Arc<InvocationKeys>,
    lines: Arc<LineBuffer>,
}

thread_local! {
    /// The [`AfterSpan`] whose [`scope`](AfterSpan::scope) runs on this thread: an event in the
    /// current context that no span of an invocation carries keys for takes them from here. It
    /// is set only while the flush's own poll runs (a poll is synchronous: another task's events
    /// come from its own poll, after this one returned).
    static AFTER_SPAN: std::cell::Cell<Option<AfterSpan>> = const { std::cell::Cell::new(None) };
}

impl AfterSpan {
    /// Runs `f` with the invocation's keys and lines on every event it logs outside an
    /// invocation's span.
    pub(crate) fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        /// Puts back what was there, also when `f` panics.
        struct Restore(Option<AfterSpan>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let _ = AFTER_SPAN.try_with(|after| after.set(self.0.take()));
            }
        }
        // Without the thread-local (a poll while the thread exits), the lines go without keys.
        let Ok(previous) = AFTER_SPAN.try_with(|after| after.replace(Some(self.clone()))) else {
            return f();
        };
        let _restore = Restore(previous);
        f()
    }

    /// The one whose scope this thread is in.
    fn current() -> Option<Self> {
        AFTER_SPAN
            .try_with(|after| {
                let current = after.take();
                after.set(current.clone());
                current
            })
            .ok()
            .flatten()
    }
}

/// An invocation's keys, written the first time a line of the invocation needs them (in the
/// log layer's layout, the only one it writes) and copied into each of its lines after that
/// (they were escaped again for every line: 56 JSON strings per invocation of the example, 12k
/// instructions).
struct InvocationKeys {
    context: InvocationLogContext,
    /// `,"requestId":…,"functionName":…,"coldStart":…` and the ids there are.
    json: OnceLock<String>,
    /// ` functionName=… coldStart=…` and the ids there are, but `xrayTraceId` (`traceId` and
    /// `spanId` say the same, shorter).
    text: OnceLock<String>,
}

impl InvocationKeys {
    fn new(context: InvocationLogContext) -> Self {
        Self {
            context,
            json: OnceLock::new(),
            text: OnceLock::new(),
        }
    }

    /// The text layout's second column.
    fn request_id(&self) -> &str {
        &self.context.request_id
    }

    fn json(&self) -> &str {
        self.json.get_or_init(|| {
            let inv = &self.context;
            let mut json = String::with_capacity(256);
            json.push_str(",\"requestId\":");
            push_json_string(&mut json, &inv.request_id);
            json.push_str(",\"functionName\":");
            push_json_string(&mut json, &inv.function_name);
            json.push_str(if inv.cold_start {
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
                    json.push_str(",\"");
                    json.push_str(key);
                    json.push_str("\":");
                    push_json_string(&mut json, value);
                }
            }
            json
        })
    }

    fn text(&self) -> &str {
        self.text.get_or_init(|| {
            let inv = &self.context;
            let mut text = format!(
                " functionName={} coldStart={}",
                inv.function_name, inv.cold_start
            );
            for (key, value) in [
                ("traceId", &inv.trace_id),
                ("spanId", &inv.span_id),
                ("tenantId", &inv.tenant_id),
            ] {
                if let Some(value) = value {
                    write!(text, " {key}={value}").ok();
                }
            }
            text
        })
    }
}

/// Runs `f` on `span`'s entry in the span registry; nothing when the subscriber has none (or
/// `span` is disabled).
fn with_registry_span(span: &tracing::Span, f: impl FnOnce(SpanRef<'_, Registry>)) {
    let mut f = Some(f);
    span.with_subscriber(|(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<Registry>()
            && let Some(span) = registry.span(id)
            && let Some(f) = f.take()
        {
            f(span);
        }
    });
}

/// Where an invocation's gathered lines go: the log layer's writer.
type Sink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// An invocation's gathered lines (see the [module docs](self)): filled by [`LogLayer`], written
/// by [`flush`](Self::flush), which [`TraceLayer`](crate::TraceLayer) calls whenever the
/// invocation yields and when it ends, and on drop.
pub(crate) struct LineBuffer {
    pending: Mutex<Vec<u8>>,
    /// Set by the first line gathered.
    sink: OnceLock<Sink>,
}

/// Gathered lines are written once they reach this size, whatever else happens.
const MAX_GATHERED_BYTES: usize = 16 * 1024;

thread_local! {
    /// The buffer of the last invocation that ended on this thread, for the next one to fill:
    /// one invocation's 4 KB of lines grew a new buffer five times.
    static SPARE_LINES: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self {
            pending: Mutex::new(
                SPARE_LINES
                    .try_with(std::cell::Cell::take)
                    .unwrap_or_default(),
            ),
            sink: OnceLock::new(),
        }
    }
}

impl LineBuffer {
    fn gather(&self, line: &str, sink: &Sink) {
        let sink = self.sink.get_or_init(|| sink.clone());
        self.append(line.as_bytes(), sink);
    }

    /// Gathers `lines` (whole lines written by someone else: the EMF lines) if a log line was
    /// gathered before, so that where they go is known; false, and nothing done, otherwise.
    fn join(&self, lines: &[u8]) -> bool {
        match self.sink.get() {
            Some(sink) => {
                self.append(lines, sink);
                true
            }
            None => false,
        }
    }

    fn append(&self, bytes: &[u8], sink: &Sink) {
        let mut pending = self.lock();
        pending.extend_from_slice(bytes);
        if pending.len() >= MAX_GATHERED_BYTES {
            sink(&pending);
            pending.clear();
        }
    }

    /// Whether nothing is gathered.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Writes the lines gathered so far, in one `write`.
    pub(crate) fn flush(&self) {
        let mut pending = self.lock();
        if !pending.is_empty()
            && let Some(sink) = self.sink.get()
        {
            sink(&pending);
            pending.clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        self.flush();
        let pending = std::mem::take(
            self.pending
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        // `flush` wrote what was pending, unless no line was gathered (no sink): nothing was.
        if pending.is_empty() && pending.capacity() <= MAX_KEPT_SCRATCH {
            let _ = SPARE_LINES.try_with(|spare| spare.set(pending));
        }
    }
}

impl fmt::Debug for LineBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineBuffer")
            .field("pending_bytes", &self.lock().len())
            .finish()
    }
}

/// Gathers `lines` (whole lines) with those of the invocation the current span belongs to, to be
/// written in the same `write` as its next gathered lines; false when there is nothing to join
/// (outside an invocation, gathering off, or no line gathered yet): the caller writes them.
pub(crate) fn join_invocation_lines(lines: &[u8]) -> bool {
    let mut buffer = None;
    with_registry_span(&tracing::Span::current(), |span| {
        buffer = span
            .scope()
            .find_map(|span| span.extensions().get::<Arc<LineBuffer>>().cloned());
    });
    buffer
        .or_else(|| AfterSpan::current().map(|after| after.lines))
        .is_some_and(|buffer| buffer.join(lines))
}

/// A `tracing_subscriber` layer writing one line per event. [`subscriber`] puts it behind the
/// configured filter.
pub struct LogLayer<W> {
    format: LogFormat,
    service: Option<Service>,
    make_writer: Arc<W>,
    /// The writer of gathered lines; `None`: one `write` per line.
    sink: Option<Sink>,
}

impl<W> fmt::Debug for LogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLayer")
            .field("format", &self.format)
            .field("service_name", &self.service.as_ref().map(|s| &s.name))
            .finish()
    }
}

impl<W> LogLayer<W>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    /// Lines in `format`, written through writers `make_writer` makes.
    pub fn new(format: LogFormat, make_writer: W) -> Self {
        let make_writer = Arc::new(make_writer);
        Self {
            format,
            service: None,
            sink: Some(Self::sink(&make_writer)),
            make_writer,
        }
    }

    fn sink(make_writer: &Arc<W>) -> Sink {
        let make_writer = make_writer.clone();
        Arc::new(move |bytes: &[u8]| {
            let _ = std::io::Write::write_all(&mut make_writer.make_writer(), bytes);
        })
    }

    /// The `service` key of every line. Defaults to none (the key is left out).
    pub fn service_name(mut self, name: impl Into<Arc<str>>) -> Self {
        let name = name.into();
        let mut json = String::with_capacity(name.len() + 14);
        json.push_str(",\"service\":");
        push_json_string(&mut json, &name);
        self.service = Some(Service {
            name,
            json: json.into(),
        });
        self
    }

    /// Whether an invocation's `INFO`-and-below lines are gathered and written together (see
    /// the [module docs](self)). Defaults to `true`.
    pub fn buffered(mut self, buffered: bool) -> Self {
        self.sink = buffered.then(|| Self::sink(&self.make_writer));
        self
    }
}

impl<S, W> Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // The innermost span carrying an invocation's keys: walked from the event's span out,
        // which stops at the first (the invocation span itself, for most lines) instead of
        // collecting the whole scope to walk it from the root. Without one, an event in the
        // current context takes the keys of the flush running on the thread, if any; one given
        // its parent (or none) explicitly does not.
        let (invocation, lines) = ctx
            .event_scope(event)
            .and_then(|mut scope| {
                scope.find_map(|span| {
                    let extensions = span.extensions();
                    let context = extensions.get::<Arc<InvocationKeys>>()?.clone();
                    Some((context, extensions.get::<Arc<LineBuffer>>().cloned()))
                })
            })
            .or_else(|| {
                AfterSpan::current()
                    .filter(|_| event.is_contextual())
                    .map(|after| (after.keys, Some(after.lines)))
            })
            .map_or((None, None), |(context, lines)| (Some(context), lines));
        let level = event.metadata().level();
        Scratch::with(|scratch| {
            scratch.fields.clear(self.format);
            event.record(&mut scratch.fields);
            let line = Line {
                level,
                fields: &scratch.fields,
                invocation: invocation.as_deref(),
                service: self.service.as_ref(),
            };
            let out = &mut scratch.line;
            out.clear();
            match self.format {
                LogFormat::Json => line.json(out),
                LogFormat::Text => line.text(out),
            }
            match (&lines, &self.sink) {
                // `INFO` and below: gathered until the invocation yields or ends.
                (Some(lines), Some(sink)) if *level > Level::WARN => lines.gather(out, sink),
                _ => {
                    // What was gathered first, in order.
                    if let Some(lines) = &lines {
                        lines.flush();
                    }
                    let _ = std::io::Write::write_all(
                        &mut self.make_writer.make_writer_for(event.metadata()),
                        out.as_bytes(),
                    );
                }
            }
        });
    }
}

/// The buffers a line is written in, kept by each thread from one event to the next: a warm
/// invocation's lines then allocate nothing. Writing each line into new strings grew them some
/// 70 times per invocation of the example (8 lines), about 30k instructions of `realloc` and
/// copying, 7% of a warm invocation's instructions.
#[derive(Default)]
struct Scratch {
    fields: Fields,
    line: String,
}

/// A buffer grown past this by one long line (a logged payload) is not kept.
const MAX_KEPT_SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

impl Scratch {
    /// Runs `write` with this thread's buffers, or with new ones when they are in use (an event
    /// logged while a field of another is formatted) or gone (the thread is ending).
    fn with(write: impl FnOnce(&mut Scratch)) {
        let mut write = Some(write);
        let _ = SCRATCH.try_with(|cell| {
            if let Ok(mut scratch) = cell.try_borrow_mut() {
                if let Some(write) = write.take() {
                    write(&mut scratch);
                }
                scratch.trim();
            }
        });
        if let Some(write) = write {
            write(&mut Scratch::default());
        }
    }

    fn trim(&mut self) {
        for buffer in [
            &mut self.fields.message,
            &mut self.fields.rest,
            &mut self.line,
        ] {
            if buffer.capacity() > MAX_KEPT_SCRATCH {
                *buffer = String::new();
            }
        }
    }
}

/// Keys the JSON line writes itself; event fields with these names are left out. A `match`, not
/// a list searched for each field of each line.
fn is_json_key(name: &str) -> bool {
    matches!(
        name,
        "timestamp"
            | "level"
            | "message"
            | "service"
            | "requestId"
            | "functionName"
            | "coldStart"
            | "xrayTraceId"
            | "traceId"
            | "spanId"
            | "tenantId"
    )
}

struct Line<'a> {
    level: &'a Level,
    fields: &'a Fields,
    invocation: Option<&'a InvocationKeys>,
    service: Option<&'a Service>,
}

/// The `service` key: the name, and its JSON member written once (not escaped for each line).
struct Service {
    name: Arc<str>,
    /// `,"service":"name"`.
    json: Box<str>,
}

impl Line<'_> {
    /// Writes the line into one buffer: no intermediate JSON tree, no string per value (the first
    /// invocation writes eight of these lines, so their cost is part of every cold start).
    fn json(&self, out: &mut String) {
        let fields = self.fields;
        out.reserve(320 + fields.message.len() + fields.rest.len());
        out.push_str("{\"timestamp\":\"");
        push_rfc3339(out, SystemTime::now());
        out.push_str("\",\"level\":\"");
        out.push_str(self.level.as_str());
        out.push_str("\",\"message\":");
        push_json_string(out, &fields.message);
        if let Some(service) = self.service {
            out.push_str(&service.json);
        }
        if let Some(inv) = self.invocation {
            out.push_str(inv.json());
        }
        // `,"key":value` for each field, written as they were recorded.
        out.push_str(&fields.rest);
        out.push_str("}\n");
    }

    /// Lambda's text layout, then the event's fields, then the invocation's keys. `xrayTraceId`
    /// is left out: `traceId` and `spanId` say the same, shorter.
    fn text(&self, text: &mut String) {
        let fields = self.fields;
        text.reserve(160 + fields.message.len() + fields.rest.len());
        push_rfc3339(text, SystemTime::now());
        text.push('\t');
        text.push_str(self.invocation.map_or("-", InvocationKeys::request_id));
        text.push('\t');
        text.push_str(self.level.as_str());
        text.push('\t');
        text.push_str(&fields.message);
        // ` key=value` for each field, written as they were recorded.
        text.push_str(&fields.rest);
        if let Some(service) = self.service {
            text.push_str(" service=");
            text.push_str(&service.name);
        }
        if let Some(inv) = self.invocation {
            text.push_str(inv.text());
        }
        // One event, one line: a message or field holding a line break (a payload logged with
        // LOG_EVENT_PAYLOAD, an error's text) must not start a line of its own in CloudWatch.
        if text.contains(['\n', '\r']) {
            *text = text.replace('\r', "\\r").replace('\n', "\\n");
        }
        text.push('\n');
    }
}

/// Appends `value` as a JSON string: quoted, with `"`, `\` and the control characters escaped
/// (what `serde_json` escapes), the runs between them copied whole. EMF documents use it too.
pub(crate) fn push_json_string(out: &mut String, value: &str) {
    out.reserve(value.len() + 2);
    out.push('"');
    push_json_string_contents(out, value);
    out.push('"');
}

/// [`push_json_string`] without the quotes.
fn push_json_string_contents(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let mut run_start = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Eight bytes at a time, straight to the first that needs escaping: most of a line is
        // plain text, and a JSON document logged as a string (the reserved variables) has a
        // quote every few bytes, which a byte-by-byte walk after each one made the costliest part
        // of a line.
        let escape_at = match bytes.get(at..at + 8) {
            Some(word) => {
                let mask = escape_mask(u64::from_le_bytes(word.try_into().unwrap_or_default()));
                if mask == 0 {
                    at += 8;
                    continue;
                }
                at + (mask.trailing_zeros() / 8) as usize
            }
            None => match bytes[at..].iter().position(|&byte| needs_escape(byte)) {
                Some(offset) => at + offset,
                None => break,
            },
        };
        // Every byte that needs escaping is ASCII, so `escape_at` is on a character boundary.
        out.push_str(&value[run_start..escape_at]);
        match bytes[escape_at] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            control => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[usize::from(control >> 4)] as char);
                out.push(HEX[usize::from(control & 0xf)] as char);
            }
        }
        at = escape_at + 1;
        run_start = at;
    }
    out.push_str(&value[run_start..]);
}

/// Whether JSON writes `byte` escaped in a string: a control byte, `"` or `\`.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The high bit of each of the eight bytes in `word` (little-endian) that is below 0x20, `"` or
/// `\`, and possibly of bytes after the first of those; the lowest bit set is always exact (the
/// classic "has a byte less than n" and "has a zero byte" word tests, whose false positives
/// only ever follow a true one).
fn escape_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    below_space | has_zero(quote) | has_zero(backslash)
}

/// Escapes what is formatted into it as JSON string contents (a `Display` or `Debug` value
/// written straight into the line, with no string of its own).
struct JsonEscaped<'a>(&'a mut String);

impl fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_json_string_contents(self.0, s);
        Ok(())
    }
}

/// One event's fields, written as they are recorded: the message apart (it comes first in a
/// line), the others already in the line's format in `rest`.
#[derive(Default)]
struct Fields {
    format: LogFormat,
    message: String,
    rest: String,
    names: Names,
    escapes: Escapes,
}

/// The JSON strings of the last few long values recorded, with the values: a value logged at
/// every invocation (the example's reserved variables, a JSON document with a quote every few
/// bytes) is escaped once and copied after that, where escaping it took 4.5k instructions per
/// invocation. A value seen once costs two copies more than escaping it.
#[derive(Default)]
struct Escapes {
    /// (value, its JSON string), at most [`KEPT_ESCAPES`].
    kept: Vec<(String, String)>,
    /// The one replaced next when all are taken.
    next: usize,
}

/// Values shorter than this are escaped each time: comparing them costs about what escaping does.
const MIN_KEPT_ESCAPE: usize = 128;
/// Values longer than this are escaped each time: a bound on what a thread keeps, at most
/// [`KEPT_ESCAPES`] values and their JSON strings (up to six times as long: a control byte is
/// written `\u00XX`), 112 KB. They are copies of what was logged, which stdout has already.
const MAX_KEPT_ESCAPE: usize = 4096;
const KEPT_ESCAPES: usize = 4;

impl Escapes {
    /// Appends `value` as a JSON string, copied from the one kept when it was recorded lately.
    fn push_json_string(&mut self, out: &mut String, value: &str) {
        if !(MIN_KEPT_ESCAPE..=MAX_KEPT_ESCAPE).contains(&value.len()) {
            return push_json_string(out, value);
        }
        if let Some((_, escaped)) = self.kept.iter().find(|(kept, _)| kept == value) {
            return out.push_str(escaped);
        }
        let start = out.len();
        push_json_string(out, value);
        let escaped = &out[start..];
        if self.kept.len() < KEPT_ESCAPES {
            self.kept.push((value.to_owned(), escaped.to_owned()));
        } else {
            let (kept, kept_escaped) = &mut self.kept[self.next];
            kept.clear();
            kept.push_str(value);
            kept_escaped.clear();
            kept_escaped.push_str(escaped);
            self.next = (self.next + 1) % KEPT_ESCAPES;
        }
    }
}

/// What a field's name decides (left out, redacted, its JSON key), worked out the first time the
/// thread sees the name. Names are `&'static str`s, so an address and a length identify one; the
/// same few recur in every line, and checking them for secret markers and escaping them as keys
/// at each event was two thirds of what recording a field cost.
#[derive(Default)]
struct Names(HashMap<(usize, usize), Name, BuildHasherDefault<AddressHasher>>);

/// More names than this (a program has as many as its call sites' fields) and the map starts
/// over: a bound on what a thread keeps.
const MAX_NAMES: usize = 4096;

struct Name {
    /// One of the keys the JSON line writes itself ([`is_json_key`]).
    json_key: bool,
    /// Its value is written as `[REDACTED]` ([`is_secret_name`]).
    secret: bool,
    /// `,"name":` for a name JSON must escape; a plain one (nearly all) is copied as it is.
    escaped: Option<Box<str>>,
}

impl Name {
    fn push_json_key(&self, name: &str, out: &mut String) {
        match &self.escaped {
            Some(key) => out.push_str(key),
            None => {
                out.push_str(",\"");
                out.push_str(name);
                out.push_str("\":");
            }
        }
    }
}

/// Room for the names of a few dozen call sites before the map grows: the first invocation
/// meets most of a function's names, and growing the map then added to its cold start.
const NAMES_AT_FIRST: usize = 32;

impl Names {
    fn get(&mut self, name: &'static str) -> &Name {
        if self.0.len() >= MAX_NAMES {
            self.0.clear();
        }
        if self.0.capacity() == 0 {
            self.0.reserve(NAMES_AT_FIRST);
        }
        self.0
            .entry((name.as_ptr() as usize, name.len()))
            .or_insert_with(|| {
                let plain = !name.bytes().any(needs_escape);
                Name {
                    json_key: is_json_key(name),
                    secret: is_secret_name(name),
                    escaped: (!plain).then(|| {
                        let mut key = String::with_capacity(name.len() + 8);
                        key.push(',');
                        push_json_string(&mut key, name);
                        key.push(':');
                        key.into_boxed_str()
                    }),
                }
            })
    }
}

/// Hashes an address and a length with two multiplications: the map is keyed by what the
/// program's own static data are, so it needs no defence against chosen keys.
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u8(byte);
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_usize(usize::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
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

/// For each byte, the markers of [`SECRET_MARKERS`] that start with it (either case), as bits.
const SECRET_INITIALS: [u8; 256] = {
    let mut initials = [0u8; 256];
    let mut at = 0;
    while at < SECRET_MARKERS.len() {
        let first = SECRET_MARKERS[at].as_bytes()[0];
        initials[first as usize] |= 1 << at;
        initials[first.to_ascii_uppercase() as usize] |= 1 << at;
        at += 1;
    }
    initials
};

/// `true` for field names that must never be logged with their value.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let name = name.as_bytes();
    // Only the markers starting with the letter at hand are tried: this runs for every field of
    // every line.
    (0..name.len()).any(|at| {
        let mut markers = SECRET_INITIALS[usize::from(name[at])];
        while markers != 0 {
            let marker = SECRET_MARKERS[markers.trailing_zeros() as usize].as_bytes();
            if name
                .get(at..at + marker.len())
                .is_some_and(|window| window.eq_ignore_ascii_case(marker))
            {
                return true;
            }
            markers &= markers - 1;
        }
        false
    })
}

/// How a recorded value is written.
enum Recorded<'a> {
    /// Quoted in JSON.
    Text(&'a str),
    /// Formatted, then quoted in JSON.
    Formatted(fmt::Arguments<'a>),
    /// As is in both formats, formatted (floats).
    Bare(fmt::Arguments<'a>),
    /// As is in both formats, already text (integers, booleans, `null`).
    BareText(&'a str),
}

impl Fields {
    /// Empty, for an event in `format` (the buffers keep their capacity).
    fn clear(&mut self, format: LogFormat) {
        self.format = format;
        self.message.clear();
        self.rest.clear();
    }

    fn record(&mut self, field: &Field, value: Recorded<'_>) {
        let name = field.name();
        if name == "message" {
            match value {
                Recorded::Text(text) | Recorded::BareText(text) => self.message.push_str(text),
                Recorded::Formatted(args) | Recorded::Bare(args) => {
                    self.message.write_fmt(args).ok();
                }
            }
            return;
        }
        let known = self.names.get(name);
        let value = if known.secret {
            Recorded::Text("[REDACTED]")
        } else {
            value
        };
        match self.format {
            LogFormat::Json => {
                if known.json_key {
                    return;
                }
                known.push_json_key(name, &mut self.rest);
                match value {
                    Recorded::Text(text) => self.escapes.push_json_string(&mut self.rest, text),
                    Recorded::Formatted(args) => {
                        self.rest.push('"');
                        JsonEscaped(&mut self.rest).write_fmt(args).ok();
                        self.rest.push('"');
                    }
                    Recorded::Bare(args) => {
                        self.rest.write_fmt(args).ok();
                    }
                    Recorded::BareText(text) => self.rest.push_str(text),
                }
            }
            LogFormat::Text => {
                self.rest.push(' ');
                self.rest.push_str(name);
                self.rest.push('=');
                match value {
                    Recorded::Text(text) | Recorded::BareText(text) => self.rest.push_str(text),
                    Recorded::Formatted(args) | Recorded::Bare(args) => {
                        self.rest.write_fmt(args).ok();
                    }
                }
            }
        }
    }
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, Recorded::Formatted(format_args!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, Recorded::Text(value));
    }
    // Integers through `itoa`, not `core::fmt`'s formatting machinery: most lines have some.
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, Recorded::BareText(itoa::Buffer::new().format(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(field, Recorded::BareText(itoa::Buffer::new().format(value)));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.record(field, Recorded::Bare(format_args!("{value}")));
        } else {
            // JSON has no NaN or infinity.
            self.record(field, Recorded::BareText("null"));
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(
            field,
            Recorded::BareText(if value { "true" } else { "false" }),
        );
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record(field, Recorded::Formatted(format_args!("{value}")));
    }
}

/// Formats `time` as RFC 3339 in UTC with milliseconds, e.g. `2026-11-27T15:21:42.123Z`.
#[cfg(test)]
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339(&mut out, time);
    out
}

/// Appends `time` to `out` as RFC 3339 in UTC with milliseconds (`2026-11-27T15:21:42.123Z`),
/// digit by digit (no formatting machinery). The date and time to the second are kept per thread
/// from one call to the next: an invocation's lines nearly always fall within one second, and
/// only their milliseconds are then written anew.
fn push_rfc3339(out: &mut String, time: SystemTime) {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const {
            std::cell::Cell::new((u64::MAX, [0; 19]))
        };
    }
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let second = SECOND
        .try_with(|cached| match cached.get() {
            (kept, text) if kept == secs => text,
            _ => {
                let text = date_and_time(secs);
                cached.set((secs, text));
                text
            }
        })
        .unwrap_or_else(|_| date_and_time(secs));
    let mut text = *b"0000-00-00T00:00:00.000Z";
    text[..19].copy_from_slice(&second);
    write_digits(&mut text[20..23], u64::from(since.subsec_millis()));
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// `secs` after the epoch as `YYYY-MM-DDTHH:MM:SS`, in UTC.
fn date_and_time(secs: u64) -> [u8; 19] {
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
    // The digits written in place in a template, no division by a power of ten.
    let mut text = *b"0000-00-00T00:00:00";
    for (at, width, value) in [
        (0, 4, year.clamp(0, 9_999) as u64),
        (5, 2, month as u64),
        (8, 2, day as u64),
        (11, 2, rem / 3_600),
        (14, 2, rem % 3_600 / 60),
        (17, 2, rem % 60),
    ] {
        write_digits(&mut text[at..at + width], value);
    }
    text
}

/// Writes the last `digits.len()` decimal digits of `value` into `digits`.
fn write_digits(digits: &mut [u8], mut value: u64) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::capturing_subscriber;
    use serde_json::Value;
    use std::time::Duration;

    const KEYS: [&str; 5] = [
        "requestId",
        "traceId",
        "coldStart",
        "functionName",
        "tenantId",
    ];

    fn capture(config: &LogConfig, body: impl FnOnce()) -> Vec<String> {
        let (out, subscriber) = capturing_subscriber(config, None);
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
    fn buffers_in_use_are_not_lent_again() {
        // A global subscriber lets an event logged while a field of another is formatted reach
        // the log layer again (tracing's scoped dispatch does not): it gets buffers of its own.
        Scratch::with(|outer| {
            outer.line.clear();
            outer.line.push_str("outer");
            Scratch::with(|inner| {
                assert!(inner.line.is_empty() && inner.fields.rest.is_empty());
                inner.line.push_str("inner");
            });
            assert_eq!(outer.line, "outer");
        });
    }

    #[test]
    fn the_next_invocation_fills_the_buffer_of_the_last_after_it_is_written() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink: Sink = {
            let written = written.clone();
            Arc::new(move |bytes: &[u8]| written.lock().expect("lock").extend_from_slice(bytes))
        };
        let first = LineBuffer::default();
        first.gather("one\n", &sink);
        drop(first);
        assert_eq!(*written.lock().expect("lock"), b"one\n");
        let second = LineBuffer::default();
        assert!(second.is_empty());
        assert!(second.lock().capacity() >= 4, "the buffer was not kept");
        second.gather("two\n", &sink);
        drop(second);
        assert_eq!(*written.lock().expect("lock"), b"one\ntwo\n");
    }

    #[test]
    fn a_line_has_nothing_of_the_longer_lines_before_it() {
        let long = "x".repeat(2 * MAX_KEPT_SCRATCH);
        let lines = capture(&LogConfig::new().format(LogFormat::Json), || {
            tracing::info!(field = %long, extra = 1, "long line");
            tracing::info!(field = "medium", "medium line");
            tracing::info!("short");
        });
        let parsed: Vec<Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).expect("whole JSON"))
            .collect();
        assert_eq!(parsed[0]["field"].as_str().map(str::len), Some(long.len()));
        assert_eq!(parsed[1]["field"], "medium");
        assert_eq!(parsed[1].get("extra"), None, "{}", lines[1]);
        assert_eq!(parsed[2]["message"], "short");
        assert_eq!(parsed[2].get("field"), None, "{}", lines[2]);
        SCRATCH.with_borrow(|scratch| {
            for buffer in [&scratch.fields.message, &scratch.fields.rest, &scratch.line] {
                assert!(
                    buffer.capacity() <= MAX_KEPT_SCRATCH,
                    "{}",
                    buffer.capacity()
                );
            }
        });
    }

    fn json_string(value: &str) -> String {
        let mut out = String::new();
        push_json_string(&mut out, value);
        out
    }

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        for value in [
            "",
            "plain",
            "quote \" and backslash \\",
            "line\nbreak\r\ttab",
            "\u{0}\u{1f}\u{8}\u{c}\u{7f}",
            "ünïcödé ✓ and \"",
            "\"",
            "ends with a control\u{1}",
        ] {
            assert_eq!(
                json_string(value),
                serde_json::to_string(value).expect("a string serializes"),
                "{value:?}"
            );
        }
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn any_string_is_written_as_the_json_string_of_itself(
            // Plain letters around the bytes that need escaping and multi-byte characters, so
            // that both the eight-byte steps and the byte steps meet them at every offset.
            value in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "bcdefgh", "\"", "\\", "\n", "\u{1}", "\u{1f}", " ", "é", "✓", "\u{7f}",
                ]),
                0..40,
            )
            .prop_map(|parts| parts.concat())
        ) {
            let written = json_string(&value);
            proptest::prop_assert_eq!(&written, &serde_json::to_string(&value).expect("a string serializes"));
            let read: String = serde_json::from_str(&written).expect("valid JSON");
            proptest::prop_assert_eq!(read, value);
        }
    }

    proptest::proptest! {
        #[test]
        fn secret_names_are_found_wherever_a_marker_is(
            name in "[a-zA-Z_]{0,6}(TOKEN|Secret|passWord|authorization|credential|ACCESS_KEY|session|tok|sess|x)?[a-zA-Z_]{0,6}"
        ) {
            // The plain definition: some window of the name is a marker, ignoring case.
            let reference = SECRET_MARKERS.iter().any(|marker| {
                name.as_bytes()
                    .windows(marker.len())
                    .any(|window| window.eq_ignore_ascii_case(marker.as_bytes()))
            });
            proptest::prop_assert_eq!(is_secret_name(&name), reference);
        }
    }

    #[test]
    fn a_long_value_recorded_again_is_written_as_escaping_it_writes() {
        // More long values than are kept, several rounds, equal lengths with other contents,
        // values at the bounds and past them: each is written as escaping it afresh writes.
        let value = |i: usize, len: usize| {
            let mut value = format!("{{\"n\":{i},\"text\":\"a\\tb\"}}\n");
            while value.len() < len {
                value.push(char::from(b'a' + (i % 26) as u8));
            }
            value.truncate(len);
            value
        };
        let values: Vec<String> = (0..KEPT_ESCAPES + 2)
            .flat_map(|i| {
                [
                    MIN_KEPT_ESCAPE - 1,
                    MIN_KEPT_ESCAPE,
                    300,
                    MAX_KEPT_ESCAPE,
                    MAX_KEPT_ESCAPE + 1,
                ]
                .map(|len| value(i, len))
            })
            .collect();
        let mut escapes = Escapes::default();
        for round in 0..3 {
            for (at, value) in values.iter().enumerate() {
                // Twice in a row (the second from what is kept), then on with the next one.
                for _ in 0..2 {
                    let mut out = String::from("before");
                    escapes.push_json_string(&mut out, value);
                    let mut fresh = String::from("before");
                    push_json_string(&mut fresh, value);
                    assert_eq!(out, fresh, "value {at} in round {round}");
                }
            }
        }
        assert!(escapes.kept.len() <= KEPT_ESCAPES);
    }

    #[test]
    fn each_name_gets_its_own_facts() {
        // Many names, each asked for twice (the second time from the map), past the bound at
        // which the map starts over; equal names at two addresses too.
        let words = [
            "password",
            "level",
            "user",
            "session_id",
            "timestamp",
            "x\"y",
            "token",
            "count",
        ];
        let names: Vec<&'static str> = (0..MAX_NAMES + 100)
            .map(|i| &*String::leak(format!("{}{}", words[i % words.len()], i / words.len())))
            .chain(words.iter().map(|word| &*String::leak(word.to_string())))
            .chain(words)
            // One address, three names: only the length tells them apart.
            .chain(["level_token", &"level_token"[..5], &"level_token"[..4]])
            .collect();
        let mut known = Names::default();
        for round in 0..2 {
            for &name in &names {
                let got = known.get(name);
                assert_eq!(got.secret, is_secret_name(name), "{name} in round {round}");
                assert_eq!(got.json_key, is_json_key(name), "{name} in round {round}");
                let mut key = String::new();
                got.push_json_key(name, &mut key);
                assert_eq!(
                    key,
                    format!(",{}:", serde_json::to_string(name).expect("a string")),
                    "{name} in round {round}"
                );
            }
        }
    }

    #[test]
    fn json_fields_keep_their_types() {
        let lines = capture(&LogConfig::new().format(LogFormat::Json), || {
            tracing::info!(
                count = 3_u64,
                delta = -2_i64,
                ratio = 0.5_f64,
                nan = f64::NAN,
                ok = true,
                name = "x\"y",
                shown = %"displayed",
                "typed"
            )
        });
        let line: Value = serde_json::from_str(&lines[0]).expect("valid JSON");
        assert_eq!(line["count"], 3);
        assert_eq!(line["delta"], -2);
        assert_eq!(line["ratio"], 0.5);
        assert!(line["nan"].is_null());
        assert_eq!(line["ok"], true);
        assert_eq!(line["name"], "x\"y");
        assert_eq!(line["shown"], "displayed");
        assert_eq!(line["message"], "typed");
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
    fn rfc3339_keeps_the_second_only_while_it_lasts() {
        let at = |ms: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        // The same second twice (the second kept), the next one, then back to an earlier one.
        assert_eq!(at(1_795_792_902_123), "2026-11-27T15:21:42.123Z");
        assert_eq!(at(1_795_792_902_999), "2026-11-27T15:21:42.999Z");
        assert_eq!(at(1_795_792_903_000), "2026-11-27T15:21:43.000Z");
        assert_eq!(at(1_795_792_902_001), "2026-11-27T15:21:42.001Z");
        assert_eq!(
            at(1_795_792_902_001 + 86_400_000),
            "2026-11-28T15:21:42.001Z"
        );
    }

    #[test]
    fn json_lines_carry_the_invocation_context_and_redact_secrets() {
        let config = LogConfig::new()
            .format(LogFormat::Json)
            // A name JSON must escape: the key is written once, escaped.
            .service_name("hello \"service\"");
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
        assert_eq!(line["service"], "hello \"service\"");
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

    #[cfg(feature = "env-filter")]
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
