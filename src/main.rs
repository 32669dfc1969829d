//! The `bootstrap` executable: the life of an execution environment, top to bottom.

use std::{future::Future, process::ExitCode, sync::Arc, time::Instant};

use hello_lambda::{ExecutionContext, FunctionConfig, Handler};
use lambda_observability::{
    BoxError, ErrorMapLayer, JsonEventLayer, ObservabilityLayer, TimingLayer,
    cold_start::InitializationType,
    export::{Telemetry, TelemetryConfig, spawn_shutdown_flush},
    log_format::{self, LogConfig},
    runtime::{InitError, Runtime, report_init_error},
};
use serde_json::Value;
use tower::ServiceBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let init_started = Instant::now();
    // Where init errors and invocations go. Without it there is no one to report to.
    let Ok(endpoint) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        eprintln!("init failed: AWS_LAMBDA_RUNTIME_API is not set (not on Lambda or an emulator)");
        return ExitCode::FAILURE;
    };
    let serve = match init(&endpoint, init_started) {
        Ok(serve) => serve,
        Err(error) => {
            // One line here, the typed error to Lambda, a non-zero exit.
            eprintln!("init failed: {error}");
            if let Err(report) = report_init_error(&endpoint, &error).await {
                eprintln!("the init error could not be reported: {report}");
            }
            return ExitCode::FAILURE;
        }
    };
    // Every invocation goes through it until the Runtime API goes away.
    match serve.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("the runtime stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Everything done once per execution environment; returns the serving loop.
fn init(
    endpoint: &str,
    init_started: Instant,
) -> Result<impl Future<Output = Result<(), BoxError>>, InitError> {
    // Configuration: read once.
    let config = FunctionConfig::from_env();
    let telemetry_config =
        TelemetryConfig::from_env().map_err(|e| InitError::new("InvalidConfig", e))?;
    let log_config = LogConfig::from_env();
    let (function, max_concurrency) =
        lambda_environment().map_err(|e| InitError::new("InvalidConfig", e))?;

    // One HTTP client for the environment: the outbound call and, with OTLP, the span export.
    // TLS roots are loaded only when one of them is https.
    let http = hello_lambda::handler::http_client(
        config.checkip_needs_tls() || telemetry_config.needs_tls(),
    )
    .map_err(|e| InitError::new("HttpClient", e))?;
    let telemetry = Telemetry::init(telemetry_config, Some(http.clone()))
        .map_err(|e| InitError::new("Telemetry", e))?;
    log_format::init(&log_config, telemetry.tracer()).map_err(|e| InitError::new("Logging", e))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    spawn_shutdown_flush(telemetry.clone());

    // The stack, built once. Handler level: the body decoded (or a typed InvalidEvent), typed
    // errors and panics mapped and logged once.
    let timing = TimingLayer::new()
        .namespace(config.metrics_namespace.clone())
        .init_started_at(init_started);
    let handler = ServiceBuilder::new()
        .layer(ErrorMapLayer::new())
        .layer(JsonEventLayer::<Value>::new())
        .service(Handler::new(Arc::new(ExecutionContext::new(config, http))));
    // Invocation level: trace, log, time; our Runtime API loop around them.
    let runtime = Runtime::new(endpoint, handler)
        .config(function)
        .max_concurrency(max_concurrency)
        .initialization_type(InitializationType::from_env())
        .init_started_at(init_started)
        .layer(ObservabilityLayer::new(telemetry.flusher()).timing(timing));
    Ok(runtime.run())
}

/// The function's settings Lambda sets (`lambda_runtime::Config`) and
/// `AWS_LAMBDA_MAX_CONCURRENCY` (Lambda Managed Instances; unset means one at a time).
fn lambda_environment() -> Result<(lambda_runtime::Config, usize), String> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let memory = match var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").trim() {
        "" => 0,
        value => value
            .parse()
            .map_err(|_| format!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not a number: {value:?}"))?,
    };
    let max_concurrency = match var("AWS_LAMBDA_MAX_CONCURRENCY").trim() {
        "" => 1,
        value => value
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!("AWS_LAMBDA_MAX_CONCURRENCY is not a positive number: {value:?}")
            })?,
    };
    let config = lambda_runtime::Config {
        function_name: var("AWS_LAMBDA_FUNCTION_NAME"),
        memory,
        version: var("AWS_LAMBDA_FUNCTION_VERSION"),
        log_stream: var("AWS_LAMBDA_LOG_STREAM_NAME"),
        log_group: var("AWS_LAMBDA_LOG_GROUP_NAME"),
    };
    Ok((config, max_concurrency))
}
