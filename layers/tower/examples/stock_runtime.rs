//! The tower layers on a stock `lambda_runtime::Runtime`, with a tracer provider built by hand:
//! spans go as OTLP over UDP to the X-Ray daemon (`AWS_XRAY_DAEMON_ADDRESS`) through
//! `lambda-observability-daemon`'s exporter, log lines are JSON on stdout.
//!
//! `Runtime::new` reads the Lambda environment (`AWS_LAMBDA_FUNCTION_NAME`,
//! `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_FUNCTION_VERSION`, `AWS_LAMBDA_RUNTIME_API`);
//! `tests/stock_runtime.rs` runs this example against the test-support stand-ins.

use std::net::SocketAddr;

use lambda_observability_daemon::OtlpUdpExporter;
use lambda_observability_tower::{
    LoggingLayer, TimingLayer, TraceLayer,
    log_format::{self, LogConfig, LogFormat},
};
use lambda_runtime::{Error, LambdaEvent, Runtime, service_fn};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use serde_json::{Value, json};

/// Greets `name` from the event, in a child span of the invocation's.
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let name = event.payload["name"].as_str().unwrap_or("world").to_owned();
    let greeting = tracing::info_span!("greet", greeting.name = %name).in_scope(|| {
        tracing::info!(name = %name, "greeting");
        format!("hello, {name}")
    });
    Ok(json!({
        "message": greeting,
        "requestId": event.context.request_id,
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let daemon: SocketAddr = std::env::var("AWS_XRAY_DAEMON_ADDRESS")
        .unwrap_or_else(|_| "127.0.0.1:2000".into())
        .parse()?;
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(OtlpUdpExporter::connect(daemon)?)
        .with_id_generator(XrayIdGenerator::default())
        .with_resource(
            Resource::builder()
                .with_service_name("stock-runtime")
                .build(),
        )
        .build();
    log_format::init(
        &LogConfig::new().format(LogFormat::Json),
        Some(provider.tracer("stock_runtime")),
    )?;
    // The last layer added runs first: the trace outermost, then logging, then timing. The
    // start and end lines at INFO (DEBUG by default: Lambda's START and REPORT say the same).
    Runtime::new(service_fn(handler))
        .layer(TimingLayer::new())
        .layer(LoggingLayer::new().level(tracing::Level::INFO))
        .layer(TraceLayer::new(provider.clone()))
        .run()
        .await
}
