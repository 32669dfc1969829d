//! What the function takes from `lambda-observability`, wired from the one [`Config`]: the log
//! lines, the EMF metrics and the invocation-level layers. `main.rs` and the benches build the
//! stack through these functions, so the benches measure what ships.

use lambda_observability::{
    LoggingLayer, ObservabilityLayer, TimingLayer, TraceLayer,
    config::Config,
    export::Telemetry,
    log_format::LogConfig,
    metrics::{Metrics, MetricsConfig, MetricsError},
};

/// The function's EMF namespace when neither `POWERTOOLS_METRICS_NAMESPACE` nor
/// `METRICS_NAMESPACE` names one.
pub const DEFAULT_METRICS_NAMESPACE: &str = "HelloLambda";

/// The log subscriber's settings: format and filter from the environment, the one service name.
pub fn log_config(config: &Config) -> LogConfig {
    LogConfig::new()
        .format(config.logs.format)
        .filter(config.logs.filter.as_str())
        .service_name(config.telemetry.service_name.as_str())
}

/// Installs the process's metrics recorder: the function's namespace, dimensions `service` and
/// `FunctionName`, off with `POWERTOOLS_METRICS_DISABLED`.
pub fn install_metrics(config: &Config) -> Result<Metrics, MetricsError> {
    let settings = config
        .metrics
        .clone()
        .with_default_namespace(DEFAULT_METRICS_NAMESPACE);
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
            TraceLayer::new(telemetry.flusher())
                .service_name(config.telemetry.service_name.as_str())
                .metrics(metrics.clone()),
        )
        .logging(LoggingLayer::new().log_payload(config.logs.log_event))
        .timing(TimingLayer::new().metrics(metrics.clone()))
}
