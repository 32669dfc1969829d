//! The function's stack as `src/main.rs` builds it — the same configuration reader, the same
//! constructors, in the same order — from a map of variables instead of the process environment,
//! with log and EMF lines written to a sink instead of stdout.
//!
//! One difference, on purpose: the innermost invocation-level service is [`answer`], not
//! `runtime::Respond`, whose constructor takes the runtime's Runtime API client. It does what
//! `Respond` does before posting (the invocation to a `LambdaEvent<Bytes>` for the handler level,
//! the response serialized into the body of the answer) and leaves the `POST` out: that is I/O to
//! Lambda, the same whichever layers run, and it would make every benchmark measure loopback HTTP.

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use hello_lambda::HandlerError;
use lambda_observability::{
    BoxError, ErrorMapLayer, JsonEventLayer, config::Config, error::InvocationError,
    export::Telemetry, log_format, metrics::Metrics, runtime::facts::EnvironmentFacts,
};
use lambda_runtime::{Context, LambdaEvent, LambdaInvocation};
use serde_json::Value;
use tower::{Layer, Service, ServiceBuilder, service_fn};

use crate::common::{FUNCTION_ARN, FUNCTION_NAME, trace_header};

/// The variables Lambda sets for the bench function (as the cold-start bench's roles get them),
/// plus `extra` (the exporter's settings).
pub(crate) fn config(extra: &[(&str, String)]) -> Config {
    let lambda = [
        ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/hello-bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]bench"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
    ];
    let config = Config::from_lookup(|name| {
        extra
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
            .or_else(|| {
                lambda
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            })
    })
    .expect("a usable configuration");
    assert!(
        config.warnings.is_empty(),
        "the bench configuration warns: {:?}",
        config.warnings
    );
    config
}

/// The process-wide metrics collector, installed as `main.rs` installs it (once per process),
/// writing its EMF lines to a sink.
pub(crate) fn install_metrics(config: &Config) -> Metrics {
    lambda_observability::install_metrics(config, hello_lambda::METRICS_NAMESPACE)
        .expect("the bench's only recorder")
        .writer(std::io::sink)
}

/// The span pipeline and the subscriber of one execution environment, as `main.rs` builds them;
/// the subscriber is this thread's default while the guard lives (the benches run their
/// invocations on this thread).
pub(crate) fn telemetry(config: &Config) -> (Telemetry, tracing::subscriber::DefaultGuard) {
    let http = lambda_observability::http_client::client(config.needs_tls()).expect("HTTP client");
    let telemetry =
        lambda_observability::export::init(&config.telemetry, Some(http)).expect("telemetry");
    let subscriber = log_format::subscriber(
        &lambda_observability::log_config(config),
        std::io::sink,
        telemetry.tracer(),
    )
    .expect("valid filter");
    (telemetry, tracing::subscriber::set_default(subscriber))
}

/// The invocation-level stack of `main.rs` around [`answer`].
pub(crate) fn stack(
    config: &Config,
    telemetry: &Telemetry,
    metrics: &Metrics,
) -> impl Service<LambdaInvocation, Response = (), Error = BoxError> + use<> {
    lambda_observability::invocation_layer(config, telemetry, metrics).layer(answer())
}

/// The trivial handler: the decoded event back as the response.
async fn echo(event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
    Ok(event.payload)
}

/// The handler level of `main.rs` (`ErrorMapLayer`, `JsonEventLayer<Value>`) around [`echo`],
/// made an invocation-level service as `Respond` makes it, the answer's `POST` left out (see the
/// module docs). Every benchmark of the group wraps this same service.
pub(crate) fn answer() -> impl Service<LambdaInvocation, Response = (), Error = BoxError> + use<> {
    ServiceBuilder::new()
        .map_request(|invocation: LambdaInvocation| {
            LambdaEvent::new(invocation.body, invocation.context)
        })
        .map_result(
            |outcome: Result<Value, InvocationError>| -> Result<(), BoxError> {
                let response = outcome.map_err(BoxError::from)?;
                black_box(serde_json::to_vec(&response)?);
                Ok(())
            },
        )
        .layer(ErrorMapLayer::new())
        .layer(JsonEventLayer::<Value>::new())
        .service(service_fn(echo))
}

/// Invocations as our runtime loop hands them to the outermost layer: the `/next` answer's
/// headers in `parts`, the `Context` built from them, the environment's facts attached. The
/// first one of an environment is its cold start; the benches measure the ones after it.
#[derive(Debug)]
pub(crate) struct Invocations {
    config: Arc<lambda_runtime::Config>,
    environment: EnvironmentFacts,
    body: Bytes,
    served: u64,
}

impl Invocations {
    pub(crate) fn new(config: &Config, body: &'static [u8]) -> Self {
        let environment = EnvironmentFacts::new(config.lambda.initialization_type, Instant::now());
        environment.init_done();
        Self {
            config: Arc::new(config.lambda.function_config()),
            environment,
            body: Bytes::from_static(body),
            served: 0,
        }
    }

    /// How many invocations were made so far.
    pub(crate) fn served(&self) -> u64 {
        self.served
    }

    /// The next invocation, with a sampled trace header of its own (no two invocations of the
    /// process share a trace id).
    pub(crate) fn next(&mut self) -> LambdaInvocation {
        static TRACES: AtomicU64 = AtomicU64::new(0);
        self.served += 1;
        let n = TRACES.fetch_add(1, Ordering::Relaxed) + 1;
        let deadline_ms = (SystemTime::now() + Duration::from_secs(30))
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let request_id = format!("8476a536-e9f4-11e8-9739-{n:012x}");
        let mut response = http::Response::new(());
        let headers = response.headers_mut();
        for (name, value) in [
            ("lambda-runtime-aws-request-id", request_id.clone()),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            ("lambda-runtime-invoked-function-arn", FUNCTION_ARN.into()),
            ("lambda-runtime-trace-id", trace_header(n)),
            ("content-type", "application/json".into()),
        ] {
            headers.insert(name, value.parse().expect("header value"));
        }
        let (parts, ()) = response.into_parts();
        let context =
            Context::new(&request_id, self.config.clone(), &parts.headers).expect("valid context");
        let mut invocation = LambdaInvocation {
            parts,
            body: self.body.clone(),
            context,
        };
        self.environment
            .next_invocation(deadline_ms)
            .attach(&mut invocation);
        invocation
    }
}
