//! The `bootstrap` executable: the life of an execution environment, top to bottom.

use std::{sync::Arc, time::Instant};

use hello_lambda::{ExecutionContext, FunctionConfig, Handler};
use lambda_observability::{
    BoxError, ErrorMapLayer, LoggingLayer, MalformedEventLayer, TimingLayer, TraceLayer,
    export::{Telemetry, TelemetryConfig},
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
    let http = reqwest::Client::builder().build()?;
    let telemetry = Telemetry::init(telemetry_config, Some(http.clone()))?;
    log_format::init(&log_config, telemetry.tracer())?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    spawn_shutdown_flush(telemetry.clone());

    // The stack, built once. Handler level: typed errors and panics become diagnostics.
    let namespace = config.metrics_namespace.clone();
    let handler = ServiceBuilder::new()
        .layer(ErrorMapLayer::new())
        .service(Handler::new(Arc::new(ExecutionContext::new(config, http))));
    // Invocation level; the last layer added is the outermost.
    let runtime = Runtime::new(handler)
        .layer(MalformedEventLayer::new())
        .layer(
            TimingLayer::new()
                .namespace(namespace)
                .init_started_at(init_started),
        )
        .layer(LoggingLayer::new())
        .layer(TraceLayer::new(telemetry.flusher()));

    // Every invocation goes through it until the environment is shut down.
    runtime.run().await
}

/// Lambda sends SIGTERM before shutting an environment down when an extension (such as the ADOT
/// collector layer) is registered: export whatever is pending, then exit.
fn spawn_shutdown_flush(telemetry: Telemetry) {
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
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutdown signal received; exporting pending spans");
        telemetry.shutdown().await;
        std::process::exit(0);
    });
}
