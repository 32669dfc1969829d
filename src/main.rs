//! The `bootstrap` executable: the life of an execution environment, top to bottom.

use std::{sync::Arc, time::Instant};

use hello_lambda::{ExecutionContext, FunctionConfig, Handler};
use lambda_observability::{
    BoxError, ErrorMapLayer, ObservabilityLayer, TimingLayer,
    export::{Telemetry, TelemetryConfig, spawn_shutdown_flush},
    log_format::{self, LogConfig},
};
use lambda_runtime::Runtime;
use tower::ServiceBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let init_started = Instant::now();

    // Configuration: read once.
    let config = FunctionConfig::from_env();
    let telemetry_config = TelemetryConfig::from_env()?;
    let log_config = LogConfig::from_env();

    // One HTTP client for the environment: the outbound call and, with OTLP, the span export.
    // TLS roots are loaded only when one of them is https.
    let http = hello_lambda::handler::http_client(
        config.checkip_needs_tls() || telemetry_config.needs_tls(),
    )?;
    let telemetry = Telemetry::init(telemetry_config, Some(http.clone()))?;
    log_format::init(&log_config, telemetry.tracer())?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    spawn_shutdown_flush(telemetry.clone());

    // The stack, built once. Handler level: typed errors and panics become diagnostics.
    let timing = TimingLayer::new()
        .namespace(config.metrics_namespace.clone())
        .init_started_at(init_started);
    let handler = ServiceBuilder::new()
        .layer(ErrorMapLayer::new())
        .service(Handler::new(Arc::new(ExecutionContext::new(config, http))));
    // Invocation level: trace, log, time, and reject bodies that are not JSON.
    let runtime =
        Runtime::new(handler).layer(ObservabilityLayer::new(telemetry.flusher()).timing(timing));

    // Every invocation goes through it until the environment is shut down.
    runtime.run().await
}
