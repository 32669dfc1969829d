//! WARM OVERHEAD: what one invocation costs in process, once the environment is initialised,
//! through the function's stack and through `lambda_runtime`'s own layers. Plus micro benches of
//! the handler logic and of one log line. What each benchmark measures, how to run it and the
//! last measured table: `docs/warm-invocation.md`.
//!
//! Bench group `warm_invocation`: one whole invocation, from the call into the outermost layer to
//! the end of its future, the span export included (it runs inside the invocation future, after
//! the response and before the runtime's next `/next`). Every benchmark wraps the same innermost
//! service ([`production::answer`]: `ErrorMapLayer` + `JsonEventLayer<Value>` around a handler
//! that echoes the event, the response serialized as the runtime would post it) behind:
//! * `no_layers`: nothing. The floor.
//! * `lambda_runtime_layers`: `lambda_runtime::layers::OpenTelemetryLayer` (flushing with
//!   `SdkTracerProvider::force_flush`, batch processor, X-Ray exporter to a local UDP socket)
//!   around `lambda_runtime::layers::TracingLayer`, with `lambda_runtime`'s default JSON `fmt`
//!   subscriber plus `tracing-opentelemetry`, as the `lambda_runtime` examples wire it.
//! * `segments`, `otlp-udp`, `otlp-http`, `otlp-http-signed`, `none`: the function's
//!   invocation-level stack (`TraceLayer` → `LoggingLayer` → `TimingLayer` with EMF metrics, JSON
//!   log lines to a sink), built by [`production`] as `src/main.rs` builds it from the
//!   configuration the exporter's variables give (`OTEL_TRACES_EXPORTER=xray`; `otlp` inside
//!   Lambda without an endpoint; `otlp` with an `http://127.0.0.1` endpoint answered by
//!   [`OtlpReceiver`]; the same with `OTLP_TRACES_SIGV4=true` and fake credentials; `none`).
//!
//! Before measuring, each benchmark runs one invocation (the environment's cold start) and
//! asserts that its spans reached the stand-in (and, signed, with a SigV4 `Authorization`); after
//! measuring it prints what was exported and dropped.
//!
//! Bench group `sigv4`: `sign`, the share of `otlp-http-signed` that signing is: one export
//! request of the size `otlp-http` sends, through `SigV4Client` to a client that answers at once.
//!
//! Bench group `handler`: `hello_lambda::process_request` on `events/success.json` and
//! `events/snake-case.json`. Bench group `log_line`: one `tracing::info!` inside an invocation
//! span, through this crate's JSON and text formatter and through `tracing-subscriber`'s JSON
//! formatter configured like `lambda_runtime::tracing::init_default_subscriber`.

#[path = "../common/mod.rs"]
mod common;
mod otlp_receiver;
mod production;

use std::{
    cell::RefCell,
    future::Future,
    hint::black_box,
    pin::Pin,
    time::{Duration, Instant},
};

use common::{FUNCTION_NAME, XrayDaemon, trace_header};
use criterion::{BatchSize, BenchmarkGroup, Criterion, measurement::WallTime};
use lambda_observability::{
    BoxError,
    config::{
        Config,
        telemetry::{OtlpHttp, TracesExporter},
    },
    export::{ANNOTATIONS, resource},
    log_format::{self, InvocationLogContext, LogConfig, LogFormat, attach},
    metrics::Metrics,
};
use lambda_runtime::{
    LambdaInvocation,
    layers::{OpenTelemetryLayer, TracingLayer},
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::{
    trace::XrayIdGenerator,
    xray_exporter::{SegmentTranslator, XrayExporter, daemon_client::XrayDaemonClient},
};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use otlp_receiver::OtlpReceiver;
use production::Invocations;
use tokio::runtime::Runtime;
use tower::{Service, ServiceBuilder};
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt};

const SUCCESS: &[u8] = include_bytes!("../../events/success.json");
const SNAKE_CASE: &[u8] = include_bytes!("../../events/snake-case.json");

/// How long a stand-in may take to show what was sent to it (UDP datagrams are counted by
/// another thread). Not a timing assertion: only the bound of a wait.
const ARRIVAL_BOUND: Duration = Duration::from_secs(5);

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    let stand_ins = StandIns::start();
    warm_invocation(&mut criterion, &stand_ins);
    sigv4(&mut criterion, &stand_ins);
    handler(&mut criterion);
    log_line(&mut criterion);
    criterion.final_summary();
}

/// The function's exporters, as `warm_invocation/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exporter {
    Segments,
    OtlpUdp,
    OtlpHttp,
    OtlpHttpSigned,
    None,
}

impl Exporter {
    const ALL: [Self; 5] = [
        Self::Segments,
        Self::OtlpUdp,
        Self::OtlpHttp,
        Self::OtlpHttpSigned,
        Self::None,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Segments => "segments",
            Self::OtlpUdp => "otlp-udp",
            Self::OtlpHttp => "otlp-http",
            Self::OtlpHttpSigned => "otlp-http-signed",
            Self::None => "none",
        }
    }

    /// The variables that choose this exporter, pointed at the stand-ins.
    fn variables(self, stand_ins: &StandIns) -> Vec<(&'static str, String)> {
        let mut variables = vec![(
            "AWS_XRAY_DAEMON_ADDRESS",
            stand_ins.daemon.address.to_string(),
        )];
        let otlp_http = |variables: &mut Vec<_>| {
            variables.push(("OTEL_TRACES_EXPORTER", "otlp".into()));
            variables.push((
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                stand_ins.otlp.traces_url(),
            ));
        };
        match self {
            Self::Segments => variables.push(("OTEL_TRACES_EXPORTER", "xray".into())),
            Self::OtlpUdp => variables.push(("OTEL_TRACES_EXPORTER", "otlp".into())),
            Self::OtlpHttp => otlp_http(&mut variables),
            Self::OtlpHttpSigned => {
                otlp_http(&mut variables);
                // AWS's documentation example credentials: signed, never valid.
                variables.extend([
                    ("OTLP_TRACES_SIGV4", "true".into()),
                    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".into()),
                    (
                        "AWS_SECRET_ACCESS_KEY",
                        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                    ),
                    ("AWS_SESSION_TOKEN", "bench-session-token".into()),
                ]);
            }
            Self::None => variables.push(("OTEL_TRACES_EXPORTER", "none".into())),
        }
        variables
    }

    /// Whether what arrived between `before` and `after` is this exporter's delivery.
    fn delivered(self, before: Arrived, after: Arrived) -> bool {
        let http_requests = after.http.requests - before.http.requests;
        let http_signed = after.http.signed - before.http.signed;
        let http_spans = after.http.spans - before.http.spans;
        match self {
            Self::Segments => after.segments > before.segments,
            Self::OtlpUdp => after.otlp_datagrams > before.otlp_datagrams,
            Self::OtlpHttp => http_spans > 0 && http_signed == 0,
            Self::OtlpHttpSigned => http_spans > 0 && http_signed == http_requests,
            Self::None => after == before,
        }
    }
}

/// What the function's exports go to: the X-Ray daemon's UDP socket (segments and OTLP
/// datagrams) and an OTLP/HTTP receiver.
#[derive(Debug)]
struct StandIns {
    daemon: XrayDaemon,
    otlp: OtlpReceiver,
}

/// Everything counted at the stand-ins so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Arrived {
    datagrams: usize,
    segments: usize,
    otlp_datagrams: usize,
    http: otlp_receiver::Received,
}

impl StandIns {
    fn start() -> Self {
        Self {
            daemon: XrayDaemon::start(),
            otlp: OtlpReceiver::start(),
        }
    }

    fn arrived(&self) -> Arrived {
        Arrived {
            datagrams: self.daemon.received(),
            segments: self.daemon.segments(),
            otlp_datagrams: self.daemon.otlp(),
            http: self.otlp.received(),
        }
    }

    /// What has arrived once the counts stop moving (datagrams still queued are counted).
    fn settled(&self) -> Arrived {
        let mut last = self.arrived();
        let started = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.arrived();
            if now == last || started.elapsed() > ARRIVAL_BOUND {
                return now;
            }
            last = now;
        }
    }

    /// Waits until `arrived` holds (at most [`ARRIVAL_BOUND`]); the last counts either way.
    fn wait_for(&self, arrived: impl Fn(Arrived) -> bool) -> Arrived {
        let started = Instant::now();
        loop {
            let now = self.arrived();
            if arrived(now) || started.elapsed() > ARRIVAL_BOUND {
                return now;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A service benchmarked the way our runtime drives it: `ready`, then `call`, one invocation at a
/// time on a current-thread runtime.
struct Bench<'a, S> {
    runtime: &'a Runtime,
    service: RefCell<S>,
    invocations: RefCell<Invocations>,
}

impl<'a, S> Bench<'a, S>
where
    S: Service<LambdaInvocation, Response = (), Error = BoxError>,
{
    fn new(runtime: &'a Runtime, service: S, config: &Config) -> Self {
        Self {
            runtime,
            service: RefCell::new(service),
            invocations: RefCell::new(Invocations::new(config, SUCCESS)),
        }
    }

    /// One invocation, outside any measurement (the first is the environment's cold start).
    fn invoke_once(&self) {
        let invocation = self.invocations.borrow_mut().next();
        self.runtime.block_on(invoke(&self.service, invocation));
    }

    /// The benchmark: fresh invocations, built outside the timing.
    fn measure(&self, group: &mut BenchmarkGroup<'_, WallTime>, name: &str) {
        group.bench_function(name, |b| {
            b.to_async(self.runtime).iter_batched(
                || self.invocations.borrow_mut().next(),
                |invocation| invoke(&self.service, invocation),
                BatchSize::SmallInput,
            );
        });
    }

    fn served(&self) -> u64 {
        self.invocations.borrow().served()
    }
}

async fn invoke<S>(service: &RefCell<S>, invocation: LambdaInvocation)
where
    S: Service<LambdaInvocation, Response = (), Error = BoxError>,
{
    std::future::poll_fn(|cx| service.borrow_mut().poll_ready(cx))
        .await
        .expect("ready");
    let future = service.borrow_mut().call(invocation);
    future.await.expect("invocation");
}

fn warm_invocation(c: &mut Criterion, stand_ins: &StandIns) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Every stack's configuration differs only in its exporter; the collector is process-wide,
    // as in production, and flushes (to a sink) after every invocation.
    let base = production::config(&Exporter::None.variables(stand_ins));
    let metrics = production::install_metrics(&base);
    let mut group = c.benchmark_group("warm_invocation");

    Bench::new(&runtime, production::answer(), &base).measure(&mut group, "no_layers");
    lambda_runtime_layers(&mut group, &runtime, stand_ins, &base);
    for exporter in Exporter::ALL {
        function_stack(&mut group, &runtime, stand_ins, exporter, &metrics);
    }

    group.finish();
}

/// `warm_invocation/<exporter>`: the function's stack, its spans exported to the stand-in.
fn function_stack(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    stand_ins: &StandIns,
    exporter: Exporter,
    metrics: &Metrics,
) {
    let name = exporter.name();
    let config = production::config(&exporter.variables(stand_ins));
    let (telemetry, _subscriber) = production::telemetry(&config);
    assert_eq!(
        telemetry.tracer().is_some(),
        exporter != Exporter::None,
        "{name}: the configuration chose the wrong pipeline: {:?}",
        config.telemetry.exporters
    );
    let bench = Bench::new(
        runtime,
        production::stack(&config, &telemetry, metrics),
        &config,
    );

    // Not a timing assertion: proof that the stack measured really exports its spans (or, with
    // `none`, sends nothing), checked once before measuring.
    let before = stand_ins.settled();
    bench.invoke_once();
    let after = match exporter {
        // Nothing should come: wait until nothing more does.
        Exporter::None => stand_ins.settled(),
        _ => stand_ins.wait_for(|now| exporter.delivered(before, now)),
    };
    assert!(
        exporter.delivered(before, after),
        "warm_invocation/{name}: the first invocation's spans did not reach the stand-in as \
         expected (before {before:?}, after {after:?}): it would be measured without its export"
    );
    println!(
        "warm_invocation/{name}: checked: {}",
        describe(exporter, before, after)
    );
    let stats_before = telemetry.flusher().stats();
    let rcvbuf_errors_before = udp_receive_buffer_errors();

    bench.measure(group, name);

    let stats = telemetry.flusher().stats();
    let measured = bench.served() - 1;
    let exported = stats.exported - stats_before.exported;
    let dropped = stats.dropped.total() - stats_before.dropped.total();
    let arrived = stand_ins.settled();
    // A datagram the exporter sent can still be lost at the stand-in, whose thread competes for
    // the CPU with the benchmark: the kernel counts those (for the whole machine).
    let kernel_drops = match (exporter, rcvbuf_errors_before, udp_receive_buffer_errors()) {
        (Exporter::Segments | Exporter::OtlpUdp, Some(before), Some(after)) => format!(
            "; UDP datagrams dropped by full receive buffers, machine-wide: {}",
            after.saturating_sub(before)
        ),
        _ => String::new(),
    };
    println!(
        "warm_invocation/{name}: {measured} invocations measured, {exported} spans exported \
         ({:.1} per invocation), {dropped} dropped{}; stand-in: {}{kernel_drops}",
        exported as f64 / measured.max(1) as f64,
        if dropped > 0 {
            " <- SPANS WERE DROPPED"
        } else {
            ""
        },
        describe(exporter, after, arrived)
    );
}

/// Linux's count of UDP datagrams dropped because a socket's receive buffer was full
/// (`RcvbufErrors` in `/proc/net/snmp`); `None` elsewhere.
fn udp_receive_buffer_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp: "));
    let (names, values) = (udp.next()?, udp.next()?);
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// What reached the stand-in of `exporter` between `before` and `after`.
fn describe(exporter: Exporter, before: Arrived, after: Arrived) -> String {
    let http = |signed: bool| {
        let requests = after.http.requests - before.http.requests;
        let mut text = format!(
            "{requests} OTLP/HTTP requests ({} body bytes each on average), {} spans, \
             {} new connections",
            (after.http.body_bytes - before.http.body_bytes) / requests.max(1),
            after.http.spans - before.http.spans,
            after.http.connections - before.http.connections
        );
        if signed {
            text.push_str(&format!(
                ", {} of them with a SigV4 Authorization header",
                after.http.signed - before.http.signed
            ));
        }
        text
    };
    match exporter {
        Exporter::Segments => format!("{} segment datagrams", after.segments - before.segments),
        Exporter::OtlpUdp => format!(
            "{} OTLP datagrams",
            after.otlp_datagrams - before.otlp_datagrams
        ),
        Exporter::OtlpHttp => http(false),
        Exporter::OtlpHttpSigned => http(true),
        Exporter::None => format!(
            "nothing sent ({} datagrams, {} requests)",
            after.datagrams - before.datagrams,
            after.http.requests - before.http.requests
        ),
    }
}

/// `warm_invocation/lambda_runtime_layers`: what the `lambda_runtime` examples wire, exporting
/// X-Ray segments to the same daemon stand-in.
fn lambda_runtime_layers(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    stand_ins: &StandIns,
    base: &Config,
) {
    let exporter =
        XrayExporter::new(XrayDaemonClient::new(stand_ins.daemon.address).expect("X-Ray client"))
            .with_translator(
                SegmentTranslator::new()
                    .with_indexed_attrs(ANNOTATIONS.iter().map(|a| (*a).to_owned())),
            );
    let provider = SdkTracerProvider::builder()
        .with_resource(resource(&base.telemetry))
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
        .service(production::answer());
    let bench = Bench::new(runtime, service, base);

    // As for the function's stacks: the comparison is measured with its export working.
    let before = stand_ins.settled();
    bench.invoke_once();
    let after = stand_ins.wait_for(|now| now.segments > before.segments);
    assert!(
        after.segments > before.segments,
        "warm_invocation/lambda_runtime_layers: no segment reached the daemon stand-in"
    );
    println!(
        "warm_invocation/lambda_runtime_layers: checked: {}",
        describe(Exporter::Segments, before, after)
    );

    bench.measure(group, "lambda_runtime_layers");
    let _ = provider.shutdown();
}

/// An HTTP client that answers `200` at once to a signed request (an error otherwise): what is
/// left of a request's cost is the signer's.
#[derive(Debug)]
struct AnswersAtOnce;

impl HttpClient for AnswersAtOnce {
    // `#[async_trait]`, written out.
    fn send_bytes<'client, 'future>(
        &'client self,
        request: http::Request<bytes::Bytes>,
    ) -> Pin<
        Box<dyn Future<Output = Result<http::Response<bytes::Bytes>, HttpError>> + Send + 'future>,
    >
    where
        'client: 'future,
        Self: 'future,
    {
        Box::pin(async move {
            if black_box(request)
                .headers()
                .contains_key(http::header::AUTHORIZATION)
            {
                Ok(http::Response::new(bytes::Bytes::new()))
            } else {
                Err("the request reached the client unsigned".into())
            }
        })
    }
}

fn sigv4(c: &mut Criterion, stand_ins: &StandIns) {
    let mut group = c.benchmark_group("sigv4");
    let config = production::config(&Exporter::OtlpHttpSigned.variables(stand_ins));
    let Some(TracesExporter::OtlpHttp(OtlpHttp {
        endpoint,
        sigv4: Some(settings),
        ..
    })) = config.telemetry.exporters.first()
    else {
        panic!("the signed configuration has no signed OTLP/HTTP exporter");
    };
    let client = settings
        .client(AnswersAtOnce)
        .expect("credentials from the environment");
    // What `otlp-http` sends for one invocation: one span, about 900 bytes of protobuf.
    let body = bytes::Bytes::from(vec![0x0a_u8; 900]);
    let request = || {
        http::Request::post(endpoint.as_str())
            .header("content-type", "application/x-protobuf")
            .body(body.clone())
            .expect("request")
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    group.bench_function("sign", |b| {
        b.to_async(&runtime).iter_batched(
            request,
            |request| async { client.send_bytes(request).await.expect("signed") },
            BatchSize::SmallInput,
        );
    });
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
