//! The `bootstrap` executable: the life of an execution environment, top to bottom.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use hello_lambda::{ExecutionContext, FunctionConfig, Handler};
use lambda_observability::{
    BoxError, ErrorMapLayer, ObservabilityLayer, TimingLayer,
    config::{
        TelemetrySettings,
        telemetry::{DEFAULT_DAEMON_ADDRESS, OtlpHttp, TracesExporter},
    },
    export::{self, Telemetry, spawn_shutdown_flush},
    log_format::{self, LogConfig},
};
use lambda_runtime::Runtime;
use tower::ServiceBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let init_started = Instant::now();

    // Configuration: read once.
    let config = FunctionConfig::from_env();
    let telemetry_settings = telemetry_settings_from_env();
    let log_config = LogConfig::from_env();

    // One HTTP client for the environment: the outbound call and, with OTLP, the span export.
    // TLS roots are loaded only when one of them is https.
    let http = hello_lambda::handler::http_client(
        config.checkip_needs_tls() || export::needs_tls(&telemetry_settings),
    )?;
    let telemetry = Telemetry::init(&telemetry_settings, Some(http.clone()))?;
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

/// STOPGAP until the lead wires `Config::from_env` (`lambda_observability::config`), which
/// replaces this whole function: just enough of the environment for today's exporters.
///
/// `OTEL_TRACES_EXPORTER` (comma-separated): `xray` → segments to `AWS_XRAY_DAEMON_ADDRESS`;
/// `otlp` → OTLP/HTTP when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as is) or
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces`) is set, else OTLP over UDP to the daemon inside
/// Lambda; `console`; `none` or unset → no export. `OTEL_SERVICE_NAME` (else the function
/// name), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT` (ms).
fn telemetry_settings_from_env() -> TelemetrySettings {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let defaults = TelemetrySettings::default();
    let daemon = || -> SocketAddr {
        let value = var("AWS_XRAY_DAEMON_ADDRESS").unwrap_or_else(|| DEFAULT_DAEMON_ADDRESS.into());
        // `host:port`, or `tcp:host:port udp:host:port`.
        let udp = value
            .split_whitespace()
            .find_map(|part| part.strip_prefix("udp:"))
            .unwrap_or(value.trim());
        udp.parse().unwrap_or_else(|err| {
            eprintln!("AWS_XRAY_DAEMON_ADDRESS={value:?} is not host:port ({err}); using {DEFAULT_DAEMON_ADDRESS}");
            SocketAddr::from(([127, 0, 0, 1], 2000))
        })
    };
    let export_timeout = var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(defaults.export_timeout, Duration::from_millis);
    let otlp_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
        var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
    });
    let mut exporters = Vec::new();
    for name in var("OTEL_TRACES_EXPORTER").unwrap_or_default().split(',') {
        match name.trim() {
            "xray" => exporters.push(TracesExporter::XraySegments { daemon: daemon() }),
            "otlp" => match &otlp_endpoint {
                Some(endpoint) => exporters.push(TracesExporter::OtlpHttp(OtlpHttp {
                    endpoint: endpoint.clone(),
                    headers: Vec::new(),
                    timeout: export_timeout,
                    sigv4: None,
                })),
                None if var("AWS_LAMBDA_FUNCTION_NAME").is_some() => {
                    exporters.push(TracesExporter::OtlpUdp { daemon: daemon() })
                }
                None => eprintln!("OTEL_TRACES_EXPORTER=otlp: no endpoint and not in Lambda"),
            },
            "console" => exporters.push(TracesExporter::Console),
            "none" | "" => {}
            other => eprintln!("OTEL_TRACES_EXPORTER: unknown exporter {other:?} ignored"),
        }
    }
    TelemetrySettings {
        exporters,
        service_name: var("OTEL_SERVICE_NAME")
            .or_else(|| var("AWS_LAMBDA_FUNCTION_NAME"))
            .unwrap_or(defaults.service_name.clone()),
        resource_attributes: var("OTEL_RESOURCE_ATTRIBUTES")
            .unwrap_or_default()
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
            .filter(|(key, _)| !key.is_empty() && key != "service.name")
            .collect(),
        export_timeout,
        ..defaults
    }
}
