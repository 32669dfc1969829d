//! The `bootstrap` executable: the life of an execution environment, top to bottom.

use std::{sync::Arc, time::Instant};

use hello_lambda::{ExecutionContext, FunctionConfig, Handler};
use lambda_observability::{
    BoxError, ErrorMapLayer, LoggingLayer, ObservabilityLayer, TimingLayer, TraceLayer,
    cold_start::InitializationType,
    export::{Telemetry, TelemetryConfig, spawn_shutdown_flush},
    facts::EnvironmentFacts,
    log_format::{self, LogConfig, LogFormat},
    metrics::{Metrics, MetricsConfig},
};
use lambda_runtime::Runtime;
use tower::ServiceBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let init_started = Instant::now();

    // Configuration: read once.
    let config = FunctionConfig::from_env();
    let telemetry_config = TelemetryConfig::from_env()?;
    let settings = interim::Settings::from_env();
    let environment = Arc::new(EnvironmentFacts::new(
        settings.initialization_type,
        init_started,
    ));

    // One HTTP client for the environment: the outbound call and, with OTLP, the span export.
    // TLS roots are loaded only when one of them is https.
    let http = hello_lambda::handler::http_client(
        config.checkip_needs_tls() || telemetry_config.needs_tls(),
    )?;
    let telemetry = Telemetry::init(telemetry_config, Some(http.clone()))?;
    log_format::init(&settings.log, telemetry.tracer())?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    spawn_shutdown_flush(telemetry.clone());
    let metrics = Metrics::install(
        &MetricsConfig::new(config.metrics_namespace.clone())
            .dimension("service", settings.service_name.as_str())
            .dimension("FunctionName", settings.function_name.as_str())
            .disabled(settings.metrics_disabled),
    )?;

    // The stack, built once. Handler level: typed errors and panics become diagnostics.
    let handler = ServiceBuilder::new()
        .layer(ErrorMapLayer::new())
        .service(Handler::new(Arc::new(ExecutionContext::new(config, http))));
    // Invocation level: trace, log, time, and reject bodies that are not JSON.
    let observability = ObservabilityLayer::new(telemetry.flusher())
        .trace(
            TraceLayer::new(telemetry.flusher())
                .service_name(settings.service_name)
                .environment(environment.clone()),
        )
        .logging(LoggingLayer::new().log_payload(settings.log_event))
        .timing(TimingLayer::new().metrics(metrics));
    let runtime = Runtime::new(handler).layer(observability);

    // Every invocation goes through it until the environment is shut down.
    environment.init_done();
    runtime.run().await
}

/// Until the environment reader (`lambda_observability::config`) provides `LogSettings`,
/// `MetricsSettings` and the service name: the same variables, read here, once.
mod interim {
    use super::*;

    pub(crate) struct Settings {
        pub(crate) log: LogConfig,
        pub(crate) log_event: bool,
        pub(crate) metrics_disabled: bool,
        pub(crate) service_name: String,
        pub(crate) function_name: String,
        pub(crate) initialization_type: InitializationType,
    }

    impl Settings {
        pub(crate) fn from_env() -> Self {
            let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            let is_true =
                |name: &str| var(name).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
            let format = match var("AWS_LAMBDA_LOG_FORMAT") {
                Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
                _ => LogFormat::Text,
            };
            let filter = var("AWS_LAMBDA_LOG_LEVEL")
                .and_then(|level| match level.trim().to_ascii_uppercase().as_str() {
                    "FATAL" => Some("error".to_owned()),
                    known @ ("TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR") => {
                        Some(known.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .or_else(|| var("RUST_LOG"))
                .unwrap_or_else(|| "info".to_owned());
            let function_name = var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
            let service_name = var("OTEL_SERVICE_NAME").unwrap_or_else(|| function_name.clone());
            Self {
                log: LogConfig::new()
                    .format(format)
                    .filter(filter)
                    .service_name(service_name.as_str()),
                log_event: is_true("LOG_EVENT_PAYLOAD"),
                metrics_disabled: is_true("POWERTOOLS_METRICS_DISABLED"),
                service_name,
                function_name,
                initialization_type: InitializationType::parse(
                    var("AWS_LAMBDA_INITIALIZATION_TYPE").as_deref(),
                ),
            }
        }
    }
}
