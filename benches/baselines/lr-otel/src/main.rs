//! The comparison for the throughput bench: the function's own handler (`hello_lambda::Handler`,
//! the one `bootstrap` serves: the same six INFO lines, the `getRuntimeInfo` span and the traced
//! outbound GET, both `tracing` spans) on plain `lambda_runtime`, carrying `lambda_runtime`'s own
//! observability stack as its documentation and examples set it up, so that both stacks do the
//! same work and differ only in how they carry it:
//!
//! - the runtime's default tracing: `lambda_runtime::run_concurrent` wraps the handler in
//!   `lambda_runtime::layers::TracingLayer` (one `Lambda runtime invoke` span per invocation,
//!   with the request id and the X-Ray trace id as fields);
//! - a `tracing-subscriber` registry with JSON log lines on stdout (`AWS_LAMBDA_LOG_LEVEL`,
//!   default INFO) and `tracing-opentelemetry` bridging the spans to an OpenTelemetry
//!   `SdkTracerProvider`;
//! - the provider's batch span processor with an `opentelemetry-otlp` OTLP/HTTP (protobuf)
//!   exporter to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (or `OTEL_EXPORTER_OTLP_ENDPOINT`), with
//!   its default blocking reqwest client;
//! - `SdkTracerProvider::force_flush` at the end of every handler call, so that nothing waits in
//!   the batch while Lambda freezes the environment.
//!
//! `lambda_runtime::layers::OpenTelemetryLayer` (the documented way to flush per invocation) makes
//! an `OpenTelemetryService`, which is not `Clone`, and `Runtime::run_concurrent` requires a
//! `Clone` service: on Lambda Managed Instances (`AWS_LAMBDA_MAX_CONCURRENCY` > 1) the only way
//! to run this stack is `run_concurrent` with the default `TracingLayer` and the flush in the
//! handler, which is what this does at every concurrency (`run_concurrent` falls back to the
//! sequential loop at 1). The flush runs inside the `TracingLayer` span, so that span is
//! exported by the next invocation's flush (or the batch processor's 5 s timer).
//!
//! The same current-thread tokio runtime as bare-work and `bootstrap`. Not carried: the EMF line
//! (`lambda_runtime` has no metrics; the handler's counter goes to no recorder) and the error
//! reports' stack traces.

use std::sync::Arc;

use hello_lambda::{ExecutionContext, FunctionConfig, Handler};
use lambda_observability::{HttpTraceLayer, http_client::client as http_client};
use lambda_runtime::{Error, service_fn};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

use tower::ServiceExt as _;

/// The tracer provider: the batch span processor and the OTLP/HTTP exporter.
fn tracer_provider() -> Result<SdkTracerProvider, Error> {
    // reqwest is built with `rustls-no-provider` in this workspace (lambda-observability's
    // client brings its own TLS configuration); the exporter's default client needs the
    // process-wide provider, ring as in `bootstrap`.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
    // The exporter reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT itself; set explicitly too, so that
    // the signal path is not appended to a per-signal endpoint.
    if let Ok(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        exporter = exporter.with_endpoint(endpoint);
    }
    let service = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "lr-otel".into());
    Ok(SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_batch_exporter(exporter.build()?)
        .build())
}

/// JSON log lines at `AWS_LAMBDA_LOG_LEVEL` (as `lambda_runtime::tracing::init_default_subscriber`
/// reads it) and the OpenTelemetry bridge.
fn init_subscriber(provider: &SdkTracerProvider) {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "INFO".into());
    tracing_subscriber::registry()
        .with(EnvFilter::try_new(level.to_lowercase()).unwrap_or_else(|_| EnvFilter::new("info")))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_target(false)
                .without_time(),
        )
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("lr-otel")))
        .init();
}

fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let provider = tracer_provider()?;
            init_subscriber(&provider);
            let config = FunctionConfig::from_env();
            let http = http_client(config.checkip_needs_tls())?;
            // The outbound layer is the function's own (the client span and its headers), so the
            // outbound call is traced as in `bootstrap`.
            let context = Arc::new(ExecutionContext::new(config, http, HttpTraceLayer::new()));
            let handler = service_fn(move |event| {
                let handler = Handler::new(context.clone());
                let provider = provider.clone();
                async move {
                    let result = handler.oneshot(event).await.map_err(Error::from);
                    // The flush lambda_runtime's OpenTelemetryLayer would call after the
                    // invocation; it blocks this thread until the batch is exported.
                    if let Err(err) = provider.force_flush() {
                        tracing::warn!("force_flush: {err}");
                    }
                    result
                }
            });
            lambda_runtime::run_concurrent(handler).await
        })
}
