//! The `bootstrap` executable: the life of an execution environment, top to bottom.

use std::{sync::Arc, time::Instant};

use hello_lambda::{ExecutionContext, FunctionConfig, Handler};
use lambda_observability::{
    BoxError, ErrorMapLayer, HttpTraceLayer, LoggingLayer, ObservabilityLayer, TimingLayer,
    TraceLayer,
    config::Config,
    export::{Telemetry, spawn_shutdown_flush},
    facts::EnvironmentFacts,
    log_format::{self, LogConfig},
    metrics::{Metrics, MetricsConfig},
};
use lambda_runtime::Runtime;
use tower::ServiceBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let init_started = Instant::now();

    // Configuration: the environment, read once.
    let function = FunctionConfig::from_env();
    let config = Config::from_env()?;
    let service_name = config.telemetry.service_name.clone();
    let environment = Arc::new(EnvironmentFacts::new(
        config.lambda.initialization_type,
        init_started,
    ));

    // One HTTP client for the environment: the outbound call and, with OTLP/HTTP, the span
    // export. TLS roots are loaded only when one of them is https.
    let http =
        hello_lambda::handler::http_client(function.checkip_needs_tls() || config.needs_tls())?;
    let telemetry = Telemetry::init(&config.telemetry, Some(http.clone()))?;
    log_format::init(
        &LogConfig::new()
            .format(config.logs.format)
            .filter(config.logs.filter.as_str())
            .service_name(service_name.as_str()),
        telemetry.tracer(),
    )?;
    for warning in config.warnings.iter().chain(&function.warnings) {
        tracing::warn!("{warning}");
    }
    spawn_shutdown_flush(telemetry.clone());
    let metrics_settings = config.metrics.clone().with_default_namespace("HelloLambda");
    let metrics = Metrics::install(
        &MetricsConfig::new(metrics_settings.namespace)
            .dimension("service", service_name.as_str())
            .dimension(
                "FunctionName",
                config.lambda.function_name.as_deref().unwrap_or_default(),
            )
            .disabled(metrics_settings.disabled),
    )?;

    // The stack, built once. Handler level: typed errors and panics become diagnostics.
    let outbound = HttpTraceLayer::new().propagators(&config.telemetry.propagators);
    let handler = ServiceBuilder::new()
        .layer(ErrorMapLayer::new())
        .service(Handler::new(Arc::new(ExecutionContext::new(
            function, http, outbound,
        ))));
    // Invocation level: trace, log, time.
    let observability = ObservabilityLayer::new(telemetry.flusher())
        .trace(
            TraceLayer::new(telemetry.flusher())
                .service_name(service_name)
                .environment(environment.clone()),
        )
        .logging(LoggingLayer::new().log_payload(config.logs.log_event))
        .timing(TimingLayer::new().metrics(metrics));
    let runtime = Runtime::new(handler).layer(observability);

    // Every invocation goes through it until the environment is shut down.
    environment.init_done();
    runtime.run().await
}
