//! The `bootstrap` executable: the life of an execution environment, top to bottom.

use std::{future::Future, process::ExitCode, sync::Arc, time::Instant};

use hello_lambda::{ExecutionContext, FunctionConfig, Handler, observability};
use lambda_observability::{
    BoxError, ErrorMapLayer, HttpTraceLayer, JsonEventLayer,
    config::Config,
    export::{Telemetry, spawn_shutdown_flush_reporting},
    log_format,
    runtime::{InitError, Runtime, report_init_error},
};
use serde_json::Value;
use tower::ServiceBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let init_started = Instant::now();
    // Where invocations come from and init errors go: read first, on its own, because even a
    // configuration error is reported there. Without it there is no one to report to.
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
    // Configuration: the environment, read once.
    let function = FunctionConfig::from_env();
    let config = Config::from_env().map_err(|e| InitError::new("InvalidConfig", e))?;

    // One HTTP client for the environment: the outbound call and, with OTLP/HTTP, the span
    // export. TLS roots are loaded only when one of them is https.
    let http =
        hello_lambda::handler::http_client(function.checkip_needs_tls() || config.needs_tls())
            .map_err(|e| InitError::new("HttpClient", e))?;
    let telemetry = Telemetry::init(&config.telemetry, Some(http.clone()))
        .map_err(|e| InitError::new("Telemetry", e))?;
    log_format::init(&observability::log_config(&config), telemetry.tracer())
        .map_err(|e| InitError::new("Logging", e))?;
    for warning in config.warnings.iter().chain(&function.warnings) {
        tracing::warn!("{warning}");
    }
    let metrics =
        observability::install_metrics(&config).map_err(|e| InitError::new("Metrics", e))?;
    spawn_shutdown_flush_reporting(telemetry.clone(), metrics.clone());

    // The stack, built once. Handler level: the body decoded (or a typed InvalidEvent), typed
    // errors and panics mapped and logged once.
    let outbound = HttpTraceLayer::new().propagators(&config.telemetry.propagators);
    let handler = ServiceBuilder::new()
        .layer(ErrorMapLayer::new())
        .layer(JsonEventLayer::<Value>::new())
        .service(Handler::new(Arc::new(ExecutionContext::new(
            function, http, outbound,
        ))));
    // Invocation level: trace, log, time; our Runtime API loop around them.
    let layers = observability::invocation_layer(&config, &telemetry, &metrics);
    let runtime = Runtime::new(endpoint, handler)
        .lambda(&config.lambda)
        .init_started_at(init_started)
        .layer(layers);
    Ok(runtime.run())
}
