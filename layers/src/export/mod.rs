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

mod console;
mod flusher;
mod otlp_http;
mod pipeline;
mod shutdown;
mod xray;

use std::{
    fmt,
    net::SocketAddr,
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::{detector::LambdaResourceDetector, trace::XrayIdGenerator};
use opentelemetry_sdk::{
    Resource,
    trace::{Sampler, SdkTracerProvider, SpanExporter, Tracer},
};

pub use console::{ConsoleExporter, render_timeline};
pub use flusher::{FlushOutcome, SpanFlusher};
pub use pipeline::InvocationSpanProcessor;
pub use shutdown::{SHUTDOWN_FLUSH_BOUND, spawn_shutdown_flush};

use crate::BoxError;
use pipeline::Pending;

/// Span attributes that the X-Ray exporter turns into indexed annotations.
pub const ANNOTATIONS: &[&str] = &["ColdStart", "Service", "ErrorKind"];

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
            ExporterKind::Xray(address) => Ok(Self::with_exporter(
                xray::segment_exporter(address)?,
                resource,
                timeout,
            )),
            ExporterKind::Otlp => Ok(Self::with_exporter(
                otlp_http::exporter(http_client, timeout)?,
                resource,
                timeout,
            )),
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
}
