//! The span export pipeline, built once per execution environment.
//!
//! Lambda freezes the process as soon as the runtime asks for the next event, so a background
//! batch exporter can lose spans, and a synchronous `force_flush` from inside the invocation has
//! deadlocked on single-threaded runtimes (opentelemetry-rust #3176). This pipeline does neither:
//! [`InvocationSpanProcessor`] only buffers finished spans, and [`SpanFlusher::flush`] exports them
//! *asynchronously, inside the invocation future*, after the response has been sent and before the
//! runtime polls for the next event. No thread is spawned and nothing blocks, so it works on a
//! current-thread runtime, and the export is bounded by a timeout.
//!
//! The exporter is chosen by `OTEL_TRACES_EXPORTER` ([`TelemetryConfig::from_env`]):
//!
//! | value | exporter |
//! |---|---|
//! | `xray` | UDP segment documents to the X-Ray daemon at `AWS_XRAY_DAEMON_ADDRESS` |
//! | `otlp` | OTLP HTTP/protobuf (the ADOT collector Lambda layer listens on `localhost:4318`) |
//! | `console` | a human-readable timeline of each invocation's spans on stderr |
//! | `none` | spans are not recorded |
//!
//! Unset, it is `xray` when `AWS_XRAY_DAEMON_ADDRESS` is set (Lambda with active tracing), else `none`.

use std::{
    fmt,
    future::Future,
    io::Write,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use opentelemetry::{
    KeyValue,
    trace::{SpanId, TracerProvider as _},
};
use opentelemetry_aws::{
    detector::LambdaResourceDetector,
    trace::XrayIdGenerator,
    xray_exporter::{SegmentTranslator, XrayExporter, daemon_client::XrayDaemonClient},
};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor, Tracer},
};

use crate::BoxError;

/// Span attributes that the X-Ray exporter turns into indexed annotations.
pub const ANNOTATIONS: &[&str] = &["ColdStart", "Service", "ErrorKind"];

/// Bound on the export at shutdown (SIGTERM).
pub const SHUTDOWN_FLUSH_BOUND: Duration = Duration::from_millis(250);

/// Default bound on one export, when neither the config nor the deadline is tighter.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// A telemetry setting that cannot be used; the message names the variable and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    fn new(message: String) -> Self {
        Self { message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Which exporter the pipeline uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExporterKind {
    /// UDP to the X-Ray daemon at this address.
    Xray(SocketAddr),
    /// OTLP over HTTP/protobuf; endpoint, headers and timeout from the `OTEL_EXPORTER_OTLP_*` variables.
    Otlp,
    /// A readable timeline on stderr, for local runs.
    Console,
    /// Spans are not recorded at all.
    None,
}

/// Configuration of the export pipeline.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    exporter: ExporterKind,
    service_name: Option<String>,
    export_timeout: Duration,
    otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// A configuration for `exporter`, with the defaults below.
    pub fn new(exporter: ExporterKind) -> Self {
        Self {
            exporter,
            service_name: None,
            export_timeout: DEFAULT_EXPORT_TIMEOUT,
            otlp_endpoint: None,
        }
    }

    /// Reads `OTEL_TRACES_EXPORTER`, `AWS_XRAY_DAEMON_ADDRESS`, `OTEL_SERVICE_NAME` and
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds). An unknown exporter name or a daemon address
    /// that does not parse is an error: better to fail the init than to lose every trace silently.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), with variables from `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let daemon = lookup("AWS_XRAY_DAEMON_ADDRESS").filter(|v| !v.is_empty());
        let exporter = match lookup("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
            Some("xray") => ExporterKind::Xray(parse_daemon_address(
                daemon.as_deref().unwrap_or("127.0.0.1:2000"),
            )?),
            Some("otlp") => ExporterKind::Otlp,
            Some("console") => ExporterKind::Console,
            Some("none") => ExporterKind::None,
            Some("") | None => match daemon {
                Some(address) => ExporterKind::Xray(parse_daemon_address(&address)?),
                None => ExporterKind::None,
            },
            Some(other) => {
                return Err(ConfigError::new(format!(
                    "OTEL_TRACES_EXPORTER={other:?} is not one of xray, otlp, console, none"
                )));
            }
        };
        let mut config = Self::new(exporter);
        config.service_name = lookup("OTEL_SERVICE_NAME").filter(|v| !v.is_empty());
        config.otlp_endpoint = lookup("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| lookup("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .filter(|v| !v.is_empty());
        if let Some(ms) = lookup("OTEL_EXPORTER_OTLP_TIMEOUT").and_then(|v| v.parse::<u64>().ok()) {
            config.export_timeout = Duration::from_millis(ms);
        }
        Ok(config)
    }

    /// The service name on the resource. Defaults to `OTEL_SERVICE_NAME`, else the function name.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Upper bound on one export; the invocation deadline may cut it shorter.
    /// Defaults to `OTEL_EXPORTER_OTLP_TIMEOUT`, else 2 seconds.
    pub fn export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = timeout;
        self
    }

    /// The configured exporter.
    pub fn exporter(&self) -> &ExporterKind {
        &self.exporter
    }

    /// Whether the export needs TLS: OTLP to an `https://` endpoint. The default OTLP endpoint
    /// (the collector layer on `http://localhost:4318`) and the X-Ray daemon (UDP) do not, so a
    /// function can skip loading the system's root certificates at init.
    pub fn needs_tls(&self) -> bool {
        self.exporter == ExporterKind::Otlp
            && self
                .otlp_endpoint
                .as_deref()
                .is_some_and(crate::http_client::is_https)
    }
}

/// `AWS_XRAY_DAEMON_ADDRESS` is `host:port`, or `tcp:host:port udp:host:port` in the two-address form.
fn parse_daemon_address(value: &str) -> Result<SocketAddr, ConfigError> {
    let udp = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(value.trim());
    udp.parse().map_err(|err| {
        ConfigError::new(format!(
            "AWS_XRAY_DAEMON_ADDRESS={value:?} is not host:port ({err})"
        ))
    })
}

/// The telemetry pipeline of one execution environment: tracer provider and span flusher.
#[derive(Debug, Clone)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    flusher: SpanFlusher,
}

impl Telemetry {
    /// Builds the pipeline. `http_client` is reused by the OTLP exporter so that the function's
    /// single HTTP client (and its connection pool) serves both; without one a new client is built.
    pub fn init(
        config: TelemetryConfig,
        http_client: Option<reqwest::Client>,
    ) -> Result<Self, BoxError> {
        let resource = resource(config.service_name.as_deref());
        let timeout = config.export_timeout;
        match config.exporter {
            ExporterKind::None => Ok(Self {
                provider: None,
                flusher: SpanFlusher::disabled(),
            }),
            ExporterKind::Xray(address) => {
                let translator = SegmentTranslator::new()
                    .with_indexed_attrs(ANNOTATIONS.iter().map(|a| (*a).to_owned()));
                let exporter =
                    XrayExporter::new(XrayDaemonClient::new(address)?).with_translator(translator);
                Ok(Self::with_exporter(exporter, resource, timeout))
            }
            ExporterKind::Otlp => {
                use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
                let client = match http_client {
                    Some(client) => client,
                    None => {
                        crate::http_client::install_crypto_provider();
                        reqwest::Client::new()
                    }
                };
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(client)
                    .with_timeout(timeout)
                    .build()?;
                Ok(Self::with_exporter(exporter, resource, timeout))
            }
            ExporterKind::Console => Ok(Self::with_exporter(
                ConsoleExporter::stderr(),
                resource,
                timeout,
            )),
        }
    }

    /// A pipeline exporting to any [`SpanExporter`] (tests use the SDK's in-memory exporter).
    pub fn with_exporter<E>(mut exporter: E, resource: Resource, export_timeout: Duration) -> Self
    where
        E: SpanExporter + 'static,
    {
        exporter.set_resource(&resource);
        let shared = Arc::new(Pending {
            exporter,
            spans: Mutex::new(Vec::new()),
            failing: AtomicBool::new(false),
        });
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_id_generator(XrayIdGenerator::default())
            // Honour the `Sampled` flag of the invocation's `Lambda-Runtime-Trace-Id`;
            // a trace started here (no header, local runs) is sampled.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_span_processor(InvocationSpanProcessor {
                pending: shared.clone(),
            })
            .build();
        Self {
            provider: Some(provider),
            flusher: SpanFlusher {
                pending: Some(shared),
                timeout: export_timeout,
            },
        }
    }

    /// The tracer for `tracing-opentelemetry`, `None` when export is disabled.
    pub fn tracer(&self) -> Option<Tracer> {
        self.provider
            .as_ref()
            .map(|provider| provider.tracer("lambda-observability"))
    }

    /// A handle that exports the finished spans, for [`TraceLayer`](crate::TraceLayer).
    pub fn flusher(&self) -> SpanFlusher {
        self.flusher.clone()
    }

    /// Exports what is pending, then shuts the provider down (on SIGTERM). Bounded by
    /// [`SHUTDOWN_FLUSH_BOUND`]: Lambda gives a runtime only a few hundred milliseconds after
    /// SIGTERM, and with the ADOT layer the collector still needs its share to forward the spans.
    pub async fn shutdown(&self) {
        self.flusher.flush_within(SHUTDOWN_FLUSH_BOUND).await;
        if let Some(provider) = &self.provider {
            let _ = provider.shutdown();
        }
    }
}

/// Exports pending spans and shuts the pipeline down on SIGTERM or SIGINT, then exits.
///
/// Lambda sends SIGTERM before it shuts an execution environment down, but only when an extension
/// is registered (the ADOT collector layer is one). Spans still pending then — from work that
/// outlived its invocation — are exported instead of lost. Needs a tokio runtime with signals.
pub fn spawn_shutdown_flush(telemetry: Telemetry) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!(
            "could not install the SIGTERM handler; pending spans may be lost at shutdown"
        );
        return;
    };
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: exporting pending spans");
        telemetry.shutdown().await;
        std::process::exit(0);
    });
}

/// The resource describing this function: `service.name`, `cloud.*` and `faas.*` from the
/// reserved Lambda variables, plus `OTEL_RESOURCE_ATTRIBUTES`.
pub fn resource(service_name: Option<&str>) -> Resource {
    let mut builder = Resource::builder().with_detector(Box::new(LambdaResourceDetector));
    let name = service_name
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok());
    if let Some(name) = name {
        builder = builder.with_service_name(name);
    }
    builder.build()
}

/// Finished spans waiting for the end of the invocation, and the exporter they go to.
struct Pending<E> {
    exporter: E,
    spans: Mutex<Vec<SpanData>>,
    failing: AtomicBool,
}

/// Object-safe view of [`Pending`], so the processor and flusher do not carry the exporter type.
trait PendingSpans: Send + Sync {
    fn push(&self, span: SpanData);
    /// Takes every span finished so far.
    fn take(&self) -> Vec<SpanData>;
    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_>;
    /// Returns `true` when this outcome changes the failing state, i.e. when it is worth a log line.
    fn record_outcome(&self, result: &OTelSdkResult) -> bool;
}

type ExportFuture<'a> = Pin<Box<dyn Future<Output = OTelSdkResult> + Send + 'a>>;

impl<E: SpanExporter> PendingSpans for Pending<E> {
    fn push(&self, span: SpanData) {
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(span);
    }

    fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut *self.spans.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        Box::pin(self.exporter.export(batch))
    }

    fn record_outcome(&self, result: &OTelSdkResult) -> bool {
        self.failing.swap(result.is_err(), Ordering::Relaxed) != result.is_err()
    }
}

/// A [`SpanProcessor`] that buffers finished, sampled spans until [`SpanFlusher::flush`].
pub struct InvocationSpanProcessor {
    pending: Arc<dyn PendingSpans>,
}

impl fmt::Debug for InvocationSpanProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvocationSpanProcessor")
            .finish_non_exhaustive()
    }
}

impl SpanProcessor for InvocationSpanProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.pending.push(span);
        }
    }

    /// Exports synchronously, which is only safe outside a tokio runtime: inside one, an exporter
    /// that needs the runtime (OTLP) would wait on itself. Inside an invocation the
    /// [`TraceLayer`](crate::TraceLayer) uses [`SpanFlusher::flush`], which is async.
    fn force_flush(&self) -> OTelSdkResult {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(OTelSdkError::InternalFailure(
                "force_flush inside a tokio runtime could deadlock; await SpanFlusher::flush instead"
                    .into(),
            ));
        }
        let batch = self.pending.take();
        if batch.is_empty() {
            return Ok(());
        }
        futures_executor::block_on(self.pending.export(batch))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Exports the spans finished so far; cheap to clone.
#[derive(Clone)]
pub struct SpanFlusher {
    pending: Option<Arc<dyn PendingSpans>>,
    timeout: Duration,
}

impl fmt::Debug for SpanFlusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanFlusher")
            .field("enabled", &self.pending.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What one flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Export is disabled or nothing was pending.
    Nothing,
    /// This many spans were exported.
    Exported(usize),
    /// The exporter failed; this many spans were dropped.
    Failed(usize),
    /// The export did not finish in time; this many spans were dropped.
    TimedOut(usize),
}

impl SpanFlusher {
    /// A flusher that never exports anything.
    pub fn disabled() -> Self {
        Self {
            pending: None,
            timeout: DEFAULT_EXPORT_TIMEOUT,
        }
    }

    /// Exports every span finished so far. Never fails and never outlives its bound: the
    /// configured export timeout, or the time left until `deadline` when that is shorter.
    /// A failure is logged once when exporting starts failing and once when it recovers.
    pub async fn flush(&self, deadline: Option<SystemTime>) -> FlushOutcome {
        let left = deadline.map_or(self.timeout, |d| {
            d.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        self.flush_within(left).await
    }

    /// Exports every span finished so far within `bound` (and the configured export timeout).
    pub async fn flush_within(&self, bound: Duration) -> FlushOutcome {
        let Some(pending) = &self.pending else {
            return FlushOutcome::Nothing;
        };
        let batch = pending.take();
        let count = batch.len();
        if count == 0 {
            // Nothing was tried: the failing/recovered state stays as it is.
            return FlushOutcome::Nothing;
        }
        let bound = self.timeout.min(bound);
        let result = match tokio::time::timeout(bound, pending.export(batch)).await {
            Ok(result) => result,
            Err(_) => Err(OTelSdkError::Timeout(bound)),
        };
        if pending.record_outcome(&result) {
            match &result {
                Err(err) => {
                    tracing::warn!(target: "lambda_observability::export", error = %err, "span export failing; spans of this invocation are dropped")
                }
                Ok(()) => {
                    tracing::info!(target: "lambda_observability::export", "span export recovered")
                }
            }
        }
        match result {
            Ok(()) => FlushOutcome::Exported(count),
            Err(OTelSdkError::Timeout(_)) => FlushOutcome::TimedOut(count),
            Err(_) => FlushOutcome::Failed(count),
        }
    }
}

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
pub fn render_timeline(batch: &[SpanData]) -> String {
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
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<TelemetryConfig, ConfigError> {
        TelemetryConfig::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_exporter_defaults_to_xray_only_where_lambda_runs_a_daemon() {
        assert_eq!(config(&[]).expect("valid").exporter, ExporterKind::None);
        let with_daemon =
            config(&[("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000")]).expect("valid");
        assert_eq!(
            with_daemon.exporter,
            ExporterKind::Xray("169.254.79.129:2000".parse().expect("addr"))
        );
        let two_addresses = config(&[
            ("OTEL_TRACES_EXPORTER", "xray"),
            (
                "AWS_XRAY_DAEMON_ADDRESS",
                "tcp:127.0.0.1:2000 udp:127.0.0.2:2001",
            ),
        ])
        .expect("valid");
        assert_eq!(
            two_addresses.exporter,
            ExporterKind::Xray("127.0.0.2:2001".parse().expect("addr"))
        );
        let explicit = config(&[
            ("OTEL_TRACES_EXPORTER", "none"),
            ("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000"),
        ])
        .expect("valid");
        assert_eq!(explicit.exporter, ExporterKind::None);
    }

    #[test]
    fn unknown_exporters_and_bad_addresses_fail_the_init() {
        let unknown = config(&[("OTEL_TRACES_EXPORTER", "jaeger")])
            .map(|_| ())
            .expect_err("unknown exporter");
        assert_eq!(
            unknown.to_string(),
            "OTEL_TRACES_EXPORTER=\"jaeger\" is not one of xray, otlp, console, none"
        );
        let address = config(&[("AWS_XRAY_DAEMON_ADDRESS", "not-an-address")])
            .map(|_| ())
            .expect_err("bad address");
        assert!(
            address
                .to_string()
                .starts_with("AWS_XRAY_DAEMON_ADDRESS=\"not-an-address\" is not host:port"),
            "{address}"
        );
    }

    #[test]
    fn tls_is_needed_only_for_an_https_otlp_endpoint() {
        let tls = |vars: &[(&str, &str)]| config(vars).map(|c| c.needs_tls()).unwrap_or(true);
        assert!(
            !tls(&[("OTEL_TRACES_EXPORTER", "otlp")]),
            "the collector layer listens on http://localhost:4318"
        );
        assert!(tls(&[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")
        ]));
        assert!(!tls(&[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://localhost:4318/v1/traces"
            ),
        ]));
        assert!(!tls(&[
            ("OTEL_TRACES_EXPORTER", "xray"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")
        ]));
    }

    fn span_data(id: u8, parent: u8, name: &'static str, offset_ms: u64) -> SpanData {
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

    #[test]
    fn the_timeline_nests_children_under_their_parents() {
        let text = render_timeline(&[span_data(2, 1, "child", 1), span_data(1, 9, "root", 0)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("trace 01010101"), "{text}");
        assert!(lines[1].contains(" root [ColdStart=true]"), "{text}");
        assert!(lines[2].contains("   child"), "{text}");
    }

    /// An exporter that never answers, or fails, on demand.
    #[derive(Debug)]
    struct Scripted {
        hang: bool,
    }

    impl SpanExporter for Scripted {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            if self.hang {
                std::future::pending::<()>().await;
            }
            Err(OTelSdkError::InternalFailure("collector down".into()))
        }
    }

    fn flusher_with(exporter: Scripted, spans: usize) -> (Telemetry, SpanFlusher) {
        let telemetry = Telemetry::with_exporter(
            exporter,
            Resource::builder_empty().build(),
            Duration::from_secs(5),
        );
        let flusher = telemetry.flusher();
        if let Some(pending) = &flusher.pending {
            for id in 0..spans {
                pending.push(span_data(id as u8 + 1, 0, "span", 0));
            }
        }
        (telemetry, flusher)
    }

    #[tokio::test]
    async fn a_passed_deadline_leaves_no_time_and_counts_what_is_dropped() {
        let (_telemetry, flusher) = flusher_with(Scripted { hang: true }, 3);
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(flusher.flush(Some(past)).await, FlushOutcome::TimedOut(3));
        assert_eq!(
            flusher.flush(None).await,
            FlushOutcome::Nothing,
            "the batch was taken"
        );
    }

    #[tokio::test]
    async fn failures_are_counted_and_an_empty_flush_changes_nothing() {
        let (_telemetry, flusher) = flusher_with(Scripted { hang: false }, 2);
        assert_eq!(flusher.flush(None).await, FlushOutcome::Failed(2));
        assert_eq!(flusher.flush(None).await, FlushOutcome::Nothing);
        let failing = flusher
            .pending
            .as_ref()
            .map(|p| p.record_outcome(&Err(OTelSdkError::InternalFailure("x".into()))));
        assert_eq!(
            failing,
            Some(false),
            "still failing after an empty flush: no second log line"
        );
    }
}
