//! A whole function in one call: the environment read once, every piece built from it, the
//! handler served until the Runtime API goes away.
//!
//! What it does, step by step: [`Function`].

use std::{pin::Pin, process::ExitCode, time::Instant};

use lambda_observability_runtime::{
    Drained, InitError, RUNTIME_API_VARIABLE, Runtime, report_init_error, shutdown_signal,
};
use lambda_observability_tower::{
    ErrorMapLayer, FunctionError, HttpTraceLayer, JsonEventLayer, LoggingLayer, ObservabilityLayer,
    TimingLayer, TraceLayer,
    export::{SHUTDOWN_FLUSH_BOUND, Telemetry, shutdown_bound_after},
    http_client::HttpTrace,
    json_event::MalformedEvent,
    log_format::{self, LogConfig},
    metrics::{Metrics, MetricsConfig, MetricsError},
};
use lambda_runtime::LambdaEvent;
use serde::{Serialize, de::DeserializeOwned};
use tower::{Layer, Service, ServiceBuilder};

use crate::{BoxError, config::Config, export, http_client};

/// The EMF namespace when neither the environment (`POWERTOOLS_METRICS_NAMESPACE`,
/// `METRICS_NAMESPACE`) nor [`Function::metrics_namespace`] names one.
pub use crate::config::DEFAULT_METRICS_NAMESPACE;

/// Serves `handler` with everything wired from the environment; see [`Function`]. Returns the
/// process's exit code.
///
/// ```no_run
/// use lambda_observability::{ErrorKind, FunctionError, json_event::MalformedEvent};
/// use lambda_runtime::LambdaEvent;
/// use serde_json::{Value, json};
///
/// #[derive(Debug)]
/// struct Invalid(String);
/// impl std::fmt::Display for Invalid {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.pad(&self.0) }
/// }
/// impl std::error::Error for Invalid {}
/// impl FunctionError for Invalid {
///     fn error_type(&self) -> &str { "InvalidEvent" }
///     fn kind(&self) -> ErrorKind { ErrorKind::Client }
/// }
/// impl From<MalformedEvent> for Invalid {
///     fn from(e: MalformedEvent) -> Self { Invalid(e.to_string()) }
/// }
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> std::process::ExitCode {
///     lambda_observability::run(tower::service_fn(|event: LambdaEvent<Value>| async move {
///         Ok::<_, Invalid>(json!({ "hello": event.payload["name"] }))
///     }))
///     .await
/// }
/// ```
pub async fn run<S, T>(handler: S) -> ExitCode
where
    S: Service<LambdaEvent<T>> + Clone + 'static,
    S::Response: Serialize,
    S::Error: FunctionError + From<MalformedEvent>,
    T: DeserializeOwned + 'static,
{
    Function::new().run(|_| Ok(handler)).await
}

/// A function's observability, built from the environment: the environment read once, every
/// piece built from it, the handler served until the Runtime API goes away.
///
/// [`Function::run`] does, in order: reads `AWS_LAMBDA_RUNTIME_API` and the [`Config`]; builds
/// the environment's one HTTP client, the span pipeline ([`export::init`]), the log subscriber
/// ([`log_config`]) and the EMF recorder ([`install_metrics`]); logs the configuration's warnings
/// once; listens for SIGTERM and SIGINT; calls your init closure, which builds the handler; wraps
/// the handler in [`ErrorMapLayer`] and [`JsonEventLayer`], and the invocation in
/// [`invocation_layer`]; then serves with [`Runtime`]. Any failure before serving is posted to
/// `/runtime/init/error` with its type (`InvalidConfig`, `HttpClient`, `Telemetry`, `Logging`,
/// `Metrics`, `Handler`) and ends the process non-zero.
///
/// On SIGTERM or SIGINT: the runtime drains (no more `/next`; each invocation in flight gets its
/// remaining time, at most `lambda_observability_runtime::DRAIN_BOUND`, to post its answer and
/// flush its spans; what outlives it is logged with its request id), then the spans left are
/// exported within what remains of `SHUTDOWN_BUDGET`, dropped spans are written as `SpansDropped`,
/// and the process exits 0. When the runtime stops on an error (the Runtime API unreachable, or a
/// `5xx` from it) the spans left are exported too, and the process exits non-zero.
///
/// ```no_run
/// use lambda_observability::{Function, FunctionError, json_event::MalformedEvent};
/// use lambda_runtime::LambdaEvent;
/// use serde_json::Value;
/// use tower::service_fn;
///
/// #[derive(Debug)]
/// struct Failed(String);
/// impl std::fmt::Display for Failed {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.pad(&self.0) }
/// }
/// impl std::error::Error for Failed {}
/// impl FunctionError for Failed { fn error_type(&self) -> &str { "Failed" } }
/// impl From<MalformedEvent> for Failed {
///     fn from(e: MalformedEvent) -> Self { Failed(e.to_string()) }
/// }
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> std::process::ExitCode {
///     Function::new()
///         .metrics_namespace("Hello")
///         .run(|init| {
///             // Build clients here, once: init.http_client(), init.traced_http_client().
///             tracing::info!(service = %init.config().telemetry.service_name, "init");
///             Ok(service_fn(|event: LambdaEvent<Value>| async move {
///                 Ok::<_, Failed>(event.payload)
///             }))
///         })
///         .await
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Function {
    init_started: Instant,
    metrics_namespace: String,
    tls: bool,
}

impl Default for Function {
    fn default() -> Self {
        Self::new()
    }
}

impl Function {
    /// A function whose init starts now (for the init duration).
    pub fn new() -> Self {
        Self {
            init_started: Instant::now(),
            metrics_namespace: DEFAULT_METRICS_NAMESPACE.to_owned(),
            tls: true,
        }
    }

    /// The EMF namespace, unless the environment names one. Defaults to
    /// [`DEFAULT_METRICS_NAMESPACE`].
    pub fn metrics_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.metrics_namespace = namespace.into();
        self
    }

    /// Whether the handler's own calls need TLS root certificates (an `https://` URL). Loading
    /// them costs a cold start about a millisecond; without them an `https://` call fails at the
    /// handshake. The span export adds them when its endpoint is https. Defaults to `true`.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Builds everything, calls `init` for the handler, and serves it until the Runtime API goes
    /// away. Returns the process's exit code: failure when init failed (after posting the error
    /// to Lambda) or the Runtime API could not be reached.
    pub async fn run<F, S, T>(self, init: F) -> ExitCode
    where
        F: FnOnce(&Init<'_>) -> Result<S, BoxError>,
        S: Service<LambdaEvent<T>> + Clone + 'static,
        S::Response: Serialize,
        S::Error: FunctionError + From<MalformedEvent>,
        T: DeserializeOwned + 'static,
    {
        // On the heap: the caller's frame (`main`, and `block_on` inlined into it) holds a box,
        // not copies of the whole state, so init reaches fewer fresh stack pages (three page
        // faults fewer per cold start; docs/cold-start-levers.md).
        Box::pin(async move {
            // Where invocations come from and init errors go: read first, on its own, because even
            // a configuration error is reported there. Without it there is no one to report to.
            let Ok(endpoint) = std::env::var(RUNTIME_API_VARIABLE) else {
                eprintln!(
                    "init failed: {RUNTIME_API_VARIABLE} is not set (not on Lambda or an emulator)"
                );
                return ExitCode::FAILURE;
            };
            let runtime = match self.init(&endpoint, init) {
                Ok(runtime) => runtime,
                Err(error) => {
                    // One line here, the typed error to Lambda, a non-zero exit.
                    eprintln!("init failed: {error}");
                    if let Err(report) = report_init_error(&endpoint, &error).await {
                        eprintln!("the init error could not be reported: {report}");
                    }
                    return ExitCode::FAILURE;
                }
            };
            let Serving {
                runtime,
                telemetry,
                metrics,
            } = runtime;
            // Every invocation goes through it until a signal, or until the Runtime API goes away.
            let outcome = runtime.await;
            let bound = match &outcome {
                Ok(drained) => shutdown_bound_after(drained.took),
                Err(_) => SHUTDOWN_FLUSH_BOUND,
            };
            tracing::info!(
                bound_ms = bound.as_millis() as u64,
                "shutting down: exporting pending spans"
            );
            telemetry.shutdown_within(bound).await;
            telemetry.flusher().report_dropped(&metrics);
            match outcome {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("the runtime stopped: {error}");
                    ExitCode::FAILURE
                }
            }
        })
        .await
    }

    /// Everything done once per execution environment; returns the serving loop. Not inlined:
    /// its locals (the configuration, the builders) live in its own frame, popped before the
    /// serving loop goes deeper.
    #[inline(never)]
    fn init<F, S, T>(
        self,
        endpoint: &str,
        init: F,
    ) -> Result<Serving<impl Future<Output = Result<Drained, BoxError>>>, InitError>
    where
        F: FnOnce(&Init<'_>) -> Result<S, BoxError>,
        S: Service<LambdaEvent<T>> + Clone + 'static,
        S::Response: Serialize,
        S::Error: FunctionError + From<MalformedEvent>,
        T: DeserializeOwned + 'static,
    {
        let config = Config::from_env().map_err(|e| InitError::new("InvalidConfig", e))?;
        // One HTTP client for the environment: the handler's calls and, with OTLP/HTTP, the
        // span export. TLS roots are loaded only when one of them is https.
        let http = http_client::client(self.tls || config.needs_tls())
            .map_err(|e| InitError::new("HttpClient", e))?;
        let telemetry = export::init(&config.telemetry, Some(http.clone()))
            .map_err(|e| InitError::new("Telemetry", e))?;
        log_format::init(&log_config(&config), telemetry.tracer())
            .map_err(|e| InitError::new("Logging", e))?;
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let metrics = install_metrics(&config, &self.metrics_namespace)
            .map_err(|e| InitError::new("Metrics", e))?;
        // Installed now, before the first `/next`: a signal from then on drains the runtime.
        let shutdown: Pin<Box<dyn Future<Output = String> + Send>> = match shutdown_signal() {
            Ok(signal) => Box::pin(signal),
            Err(error) => {
                tracing::warn!(
                    "could not install the SIGTERM handler; invocations in flight and pending spans may be lost at shutdown: {error}"
                );
                Box::pin(std::future::pending())
            }
        };

        let outbound = HttpTraceLayer::new().propagators(&config.telemetry.propagators);
        let handler = init(&Init {
            config: &config,
            http,
            outbound,
        })
        .map_err(|e| InitError::new("Handler", e))?;
        // Handler level: the body decoded (or a typed InvalidEvent), typed errors and panics
        // mapped and logged once.
        let handler = ServiceBuilder::new()
            .layer(ErrorMapLayer::new())
            .layer(JsonEventLayer::<T>::new())
            .service(handler);
        // Invocation level: trace, log, time; the Runtime API loop around them.
        let lambda = &config.lambda;
        let runtime = Runtime::new(endpoint, handler)
            .config(lambda.function_config())
            .max_concurrency(lambda.max_concurrency)
            .initialization_type(lambda.initialization_type)
            .expose_trace_env(lambda.expose_trace_env)
            .init_started_at(self.init_started)
            .layer(invocation_layer(&config, &telemetry, &metrics));
        Ok(Serving {
            runtime: runtime.run_until(shutdown),
            telemetry,
            metrics,
        })
    }
}

/// The serving loop, and what the shutdown after it needs.
struct Serving<R> {
    runtime: R,
    telemetry: Telemetry,
    metrics: Metrics,
}

/// What the init closure of [`Function::run`] may build its handler with.
#[derive(Debug)]
pub struct Init<'a> {
    config: &'a Config,
    http: reqwest::Client,
    outbound: HttpTraceLayer,
}

impl Init<'_> {
    /// The configuration, read once.
    pub fn config(&self) -> &Config {
        self.config
    }

    /// The environment's one HTTP client (shared with the span export; cheap to clone).
    pub fn http_client(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// The layer that traces outbound calls, with the configured propagation headers.
    pub fn outbound(&self) -> HttpTraceLayer {
        self.outbound.clone()
    }

    /// [`http_client`](Self::http_client) traced by [`outbound`](Self::outbound): each request a
    /// client span, its trace context in the headers.
    pub fn traced_http_client(&self) -> HttpTrace<reqwest::Client> {
        self.outbound.layer(self.http.clone())
    }
}

/// The log subscriber's settings: format, filter and buffering from the environment, the one
/// service name.
pub fn log_config(config: &Config) -> LogConfig {
    LogConfig::new()
        .format(config.logs.format)
        .filter(config.logs.filter.as_str())
        .service_name(config.telemetry.service_name.as_str())
        .buffered(config.logs.buffered)
}

/// Installs the process's metrics recorder: `namespace` unless the environment names one,
/// dimensions `service` and `FunctionName`, off with `POWERTOOLS_METRICS_DISABLED`.
pub fn install_metrics(config: &Config, namespace: &str) -> Result<Metrics, MetricsError> {
    let settings = config.metrics.clone().with_default_namespace(namespace);
    Metrics::install(
        &MetricsConfig::new(settings.namespace)
            .dimension("service", config.telemetry.service_name.as_str())
            .dimension(
                "FunctionName",
                config.lambda.function_name.as_deref().unwrap_or_default(),
            )
            .disabled(settings.disabled),
    )
}

/// The invocation-level layers: the trace (named after the service, reporting dropped spans),
/// the start and end lines (the payload when asked for), the timing and the metrics flush.
pub fn invocation_layer(
    config: &Config,
    telemetry: &Telemetry,
    metrics: &Metrics,
) -> ObservabilityLayer {
    ObservabilityLayer::new(telemetry.flusher())
        .trace(
            TraceLayer::new(telemetry.flusher().metrics(metrics.clone()))
                .service_name(config.telemetry.service_name.as_str())
                // What describes the function is in the resource: sent once per export, not
                // once more on every invocation span.
                .function_attributes(!crate::export::resource_describes_function(
                    &config.telemetry,
                )),
        )
        .logging(LoggingLayer::new().log_payload(config.logs.log_event))
        .timing(TimingLayer::new().metrics(metrics.clone()))
}
