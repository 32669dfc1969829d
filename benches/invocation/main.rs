//! WARM OVERHEAD: what the invocation-level layers cost per invocation, in process, once the
//! environment is initialised. Plus micro benches of the handler logic and of one log line.
//!
//! Bench group `warm_invocation`, the same trivial inner service (it drops the invocation and
//! returns `Ok`) behind:
//! * `none`: no layer, no subscriber. The floor: building and awaiting the future.
//! * `lambda_runtime_layers`: `lambda_runtime::layers::OpenTelemetryLayer` (flushing with
//!   `SdkTracerProvider::force_flush`, batch processor, X-Ray exporter) around
//!   `lambda_runtime::layers::TracingLayer`, with `lambda_runtime`'s default JSON `fmt`
//!   subscriber plus `tracing-opentelemetry`, as the `lambda_runtime` examples wire it.
//! * `hello_lambda_layers`: `ObservabilityLayer` (`TraceLayer` → `LoggingLayer` → `TimingLayer`)
//!   configured as `src/main.rs` does, with the `Telemetry` pipeline exporting to the X-Ray
//!   daemon and the subscriber `log_format::init` installs (JSON lines).
//! * `hello_lambda_layers_no_export`: the same with `OTEL_TRACES_EXPORTER=none` (no OpenTelemetry
//!   layer, nothing exported): the difference to the above is the span pipeline's share.
//!
//! Both traced stacks export every invocation's spans over UDP to a local socket (the event carries
//! a sampled `Lambda-Runtime-Trace-Id`), and write their log lines to `std::io::sink()`.
//!
//! Bench group `handler`: `hello_lambda::process_request` on `events/success.json` and
//! `events/snake-case.json`. Bench group `log_line`: one `tracing::info!` inside an invocation
//! span, through this crate's JSON and text formatter and through `tracing-subscriber`'s JSON
//! formatter configured like `lambda_runtime::tracing::init_default_subscriber`.

#[path = "../common/mod.rs"]
mod common;

use std::{
    cell::RefCell,
    hint::black_box,
    sync::Arc,
    time::{Duration, SystemTime},
};

use common::{FUNCTION_ARN, FUNCTION_NAME, XrayDaemon, trace_header};
use criterion::{BatchSize, Criterion};
use lambda_observability::{
    BoxError, ObservabilityLayer, TimingLayer,
    config::{TelemetrySettings, telemetry::TracesExporter},
    export::{ANNOTATIONS, Telemetry, resource},
    log_format::{self, InvocationLogContext, LogConfig, LogFormat, attach},
    metrics::{Metrics, MetricsConfig},
};
use lambda_runtime::{
    Config, Context, LambdaInvocation,
    layers::{OpenTelemetryLayer, TracingLayer},
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::{
    trace::XrayIdGenerator,
    xray_exporter::{SegmentTranslator, XrayExporter, daemon_client::XrayDaemonClient},
};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tower::{Service, ServiceBuilder, service_fn};
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt};

const SUCCESS: &[u8] = include_bytes!("../../events/success.json");
const SNAKE_CASE: &[u8] = include_bytes!("../../events/snake-case.json");

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    let daemon = XrayDaemon::start();
    warm_invocation(&mut criterion, &daemon);
    handler(&mut criterion);
    log_line(&mut criterion);
    criterion.final_summary();
}

/// The environment configuration `lambda_runtime` reads at init.
fn config() -> Arc<Config> {
    Arc::new(Config {
        function_name: FUNCTION_NAME.into(),
        memory: 256,
        version: "$LATEST".into(),
        log_stream: "2026/11/27/[$LATEST]bench".into(),
        log_group: "/aws/lambda/hello-bench".into(),
    })
}

/// A context as `lambda_runtime` builds it from the `/next` response headers of invocation `n`.
fn context(config: &Arc<Config>, n: u64) -> Context {
    let deadline_ms = (SystemTime::now() + Duration::from_secs(30))
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let request_id = format!("8476a536-e9f4-11e8-9739-{n:012x}");
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", request_id.as_str()),
        ("lambda-runtime-deadline-ms", &deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", FUNCTION_ARN),
        ("lambda-runtime-trace-id", &trace_header(n)),
    ] {
        headers.insert(name, value.parse().expect("header value"));
    }
    Context::new(&request_id, config.clone(), &headers).expect("valid context")
}

/// Invocation `n` as the runtime hands it to the outermost layer.
fn invocation(config: &Arc<Config>, n: u64) -> LambdaInvocation {
    let (parts, ()) = http::Response::new(()).into_parts();
    LambdaInvocation {
        parts,
        body: bytes::Bytes::from_static(SUCCESS),
        context: context(config, n),
    }
}

/// The trivial inner service every variant wraps.
/// Our invocation-level stack exactly as `src/main.rs` builds it, with the subscriber
/// `log_format::init` installs (the OpenTelemetry layer only when exporting); log and EMF lines go
/// to a sink.
fn bench_hello_lambda_stack(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    exporters: Vec<TracesExporter>,
    metrics: &Metrics,
) {
    let telemetry = Telemetry::init(&settings(exporters), None).expect("telemetry");
    let subscriber = log_format::subscriber(
        &LogConfig::new().format(LogFormat::Json),
        std::io::sink,
        telemetry.tracer(),
    )
    .expect("valid filter");
    let _guard = tracing::subscriber::set_default(subscriber);
    let timing = TimingLayer::new().metrics(metrics.clone());
    let service = ServiceBuilder::new()
        .layer(ObservabilityLayer::new(telemetry.flusher()).timing(timing))
        .service(service_fn(inner));
    bench_service(group, name, service);
}

/// The telemetry settings of the bench function, exporting to `exporters`.
fn settings(exporters: Vec<TracesExporter>) -> TelemetrySettings {
    TelemetrySettings {
        exporters,
        service_name: FUNCTION_NAME.into(),
        ..TelemetrySettings::default()
    }
}

async fn inner(invocation: LambdaInvocation) -> Result<(), BoxError> {
    drop(black_box(invocation));
    Ok(())
}

/// Benches `service` with fresh invocations (built outside the timing) on a current-thread
/// runtime, `ready` then `call`, as `lambda_runtime` drives its service.
fn bench_service<S>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    service: S,
) where
    S: Service<LambdaInvocation, Response = (), Error = BoxError>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let config = config();
    let service = RefCell::new(service);
    let mut n = 0;
    c.bench_function(name, |b| {
        b.to_async(&runtime).iter_batched(
            || {
                n += 1;
                invocation(&config, n)
            },
            |invocation| {
                let service = &service;
                async move {
                    std::future::poll_fn(|cx| service.borrow_mut().poll_ready(cx))
                        .await
                        .expect("ready");
                    let future = service.borrow_mut().call(invocation);
                    future.await.expect("invocation")
                }
            },
            BatchSize::SmallInput,
        );
    });
}

fn warm_invocation(c: &mut Criterion, daemon: &XrayDaemon) {
    let mut group = c.benchmark_group("warm_invocation");
    // As in production: the process-wide collector, flushed (to a sink) after every invocation.
    let metrics = Metrics::install(
        &MetricsConfig::new("HelloLambda")
            .dimension("service", FUNCTION_NAME)
            .dimension("FunctionName", FUNCTION_NAME),
    )
    .expect("the bench's only recorder")
    .writer(std::io::sink);

    bench_service(&mut group, "none", service_fn(inner));

    {
        let exporter =
            XrayExporter::new(XrayDaemonClient::new(daemon.address).expect("X-Ray client"))
                .with_translator(
                    SegmentTranslator::new()
                        .with_indexed_attrs(ANNOTATIONS.iter().map(|a| (*a).to_owned())),
                );
        let provider = SdkTracerProvider::builder()
            .with_resource(resource(&settings(Vec::new())))
            .with_id_generator(XrayIdGenerator::default())
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_batch_exporter(exporter)
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_target(false)
                    .without_time()
                    .with_writer(std::io::sink)
                    .with_filter(EnvFilter::new("info")),
            )
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("lambda_runtime")));
        let _guard = tracing::subscriber::set_default(subscriber);
        let flushing = provider.clone();
        let service = ServiceBuilder::new()
            .layer(OpenTelemetryLayer::new(move || {
                let _ = flushing.force_flush();
            }))
            .layer(TracingLayer::new())
            .service(service_fn(inner));
        bench_service(&mut group, "lambda_runtime_layers", service);
        let _ = provider.shutdown();
    }

    {
        let received = daemon.received();
        bench_hello_lambda_stack(
            &mut group,
            "hello_lambda_layers",
            vec![TracesExporter::XraySegments {
                daemon: daemon.address,
            }],
            &metrics,
        );
        // Not a timing assertion: proof that the stack measured really exported its spans.
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            daemon.received() > received,
            "the hello_lambda stack exported no segment: it was measured without tracing"
        );
    }
    // The same stack with `OTEL_TRACES_EXPORTER=none`: logs, EMF line and span bookkeeping
    // without OpenTelemetry, to tell the export's share of the cost.
    bench_hello_lambda_stack(
        &mut group,
        "hello_lambda_layers_no_export",
        Vec::new(),
        &metrics,
    );

    group.finish();
}

fn handler(c: &mut Criterion) {
    let mut group = c.benchmark_group("handler");
    for (name, body) in [
        ("process_request/success", SUCCESS),
        ("process_request/snake_case", SNAKE_CASE),
    ] {
        let event: serde_json::Value = serde_json::from_slice(body).expect("event fixture");
        group.bench_function(name, |b| {
            b.iter(|| hello_lambda::process_request(black_box(&event), black_box("cargo")))
        });
    }
    group.finish();
}

fn log_line(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_line");
    let invocation_context = || InvocationLogContext {
        request_id: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
        xray_trace_id: Some(trace_header(0)),
        trace_id: Some("5759e988bd862e3fe1be46a994272793".into()),
        span_id: Some("53995c3f42cd8ad8".into()),
        cold_start: false,
        function_name: FUNCTION_NAME.into(),
        tenant_id: None,
    };
    let log = || tracing::info!(elapsed_ms = 1.25, bytes = 83_u64, "invocation finished");

    for (name, format) in [
        ("hello_lambda_json", LogFormat::Json),
        ("hello_lambda_text", LogFormat::Text),
    ] {
        let subscriber =
            log_format::subscriber(&LogConfig::new().format(format), std::io::sink, None)
                .expect("valid filter");
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("invocation");
            attach(&span, invocation_context());
            let _entered = span.enter();
            group.bench_function(name, |b| b.iter(log));
        });
    }

    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_target(false)
            .without_time()
            .with_writer(std::io::sink),
    );
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            "Lambda runtime invoke",
            requestId = "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
            xrayTraceId = trace_header(0)
        );
        let _entered = span.enter();
        group.bench_function("tracing_subscriber_fmt_json", |b| b.iter(log));
    });

    group.finish();
}
