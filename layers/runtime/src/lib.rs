#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api;
pub mod cold_start;
pub mod deadline;
pub mod error;
pub mod facts;
mod invocation;
pub mod report;
mod respond;
pub mod shutdown;
mod trace_env;

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::{StreamExt, stream::FuturesUnordered};
use http::StatusCode;
use lambda_runtime::{Config, LambdaEvent, LambdaInvocation};
use serde::Serialize;
use tower::{
    Layer, Service, ServiceExt,
    layer::util::{Identity, Stack},
};

pub use report::{InitError, report_init_error};

/// A type-erased error, as used at the runtime's boundaries.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The variable Lambda sets to the Runtime API's `host:port`.
pub const RUNTIME_API_VARIABLE: &str = "AWS_LAMBDA_RUNTIME_API";
pub use respond::{BeforeAnswer, Respond, ResponseFuture};
pub use shutdown::{DRAIN_BOUND, Drained, shutdown_signal};

use self::{
    api::{Answer, RuntimeApi, backoff},
    invocation::{Unusable, invocation},
    report::ErrorReport,
    respond::{Answering, not_posted},
    shutdown::{Stopping, grace},
};
use crate::{
    cold_start::InitializationType,
    error::{ErrorKind, InvocationError, error_chain},
    facts::EnvironmentFacts,
};

/// How many times `/next` is tried before the runtime gives up.
///
/// Public for the workspace's integration tests (`tests/runtime_loop.rs`) only; not part of the
/// API.
#[doc(hidden)]
pub const NEXT_ATTEMPTS: u32 = 5;

/// How long the loop waits for the Runtime API to take the `Runtime.CutOff` error of an
/// invocation cut off by the drain (a post on the local Runtime API takes well under a
/// millisecond); the process is on its way out.
pub const CUT_OFF_REPORT_BOUND: Duration = Duration::from_millis(50);

/// The Runtime API loop; see the [module docs](self).
///
/// `H` is the handler-level service, `L` the invocation-level layers around [`Respond`].
#[derive(Debug)]
pub struct Runtime<H, L = Identity> {
    endpoint: String,
    handler: H,
    layer: L,
    config: Arc<Config>,
    max_concurrency: usize,
    expose_trace_env: bool,
    initialization_type: InitializationType,
    init_started: Instant,
    drain_bound: Duration,
}

impl<H> Runtime<H> {
    /// A runtime serving `handler` from the Runtime API at the address Lambda gives in
    /// `AWS_LAMBDA_RUNTIME_API`. `None` outside Lambda or an emulator: then there is no one to
    /// serve, or to report an init error to.
    pub fn from_env(handler: H) -> Option<Self> {
        std::env::var(RUNTIME_API_VARIABLE)
            .ok()
            .map(|endpoint| Self::new(endpoint, handler))
    }

    /// A runtime serving `handler` from the Runtime API at `endpoint` (e.g. `127.0.0.1:9001`;
    /// checked by [`run`](Self::run)).
    pub fn new(endpoint: impl Into<String>, handler: H) -> Self {
        Self {
            endpoint: endpoint.into(),
            handler,
            layer: Identity::new(),
            config: Arc::new(Config::default()),
            max_concurrency: 1,
            expose_trace_env: false,
            initialization_type: InitializationType::OnDemand,
            init_started: Instant::now(),
            drain_bound: DRAIN_BOUND,
        }
    }
}

impl<H, L> Runtime<H, L> {
    /// The function's configuration every `Context` carries. Defaults to `Config::default()`.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// How many invocations are served at once (Lambda Managed Instances'
    /// `AWS_LAMBDA_MAX_CONCURRENCY`); 0 counts as 1. Defaults to 1.
    pub fn max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency.max(1);
        self
    }

    /// Sets `_X_AMZN_TRACE_ID` to each invocation's trace header, as Lambda's managed runtimes
    /// do. Defaults to `false`.
    ///
    /// Costly: every distinct value leaks about 170 bytes (glibc never frees a replaced
    /// variable) and it races with C code reading the environment on other threads; see
    /// `docs/runtime.md`. Ignored, with a warning, when more than one invocation runs at once: one
    /// process-wide variable cannot name several invocations.
    pub fn expose_trace_env(mut self, expose: bool) -> Self {
        self.expose_trace_env = expose;
        self
    }

    /// How the environment was initialised (`AWS_LAMBDA_INITIALIZATION_TYPE`), which decides
    /// the cold start. Defaults to [`InitializationType::OnDemand`].
    pub fn initialization_type(mut self, initialization_type: InitializationType) -> Self {
        self.initialization_type = initialization_type;
        self
    }

    /// When the environment's init began (for the init duration). Defaults to when
    /// [`Runtime::new`] was called.
    pub fn init_started_at(mut self, started: Instant) -> Self {
        self.init_started = started;
        self
    }

    /// The longest an invocation in flight is given to finish once the runtime stops (its
    /// remaining time when shorter); see [`run_until`](Self::run_until). Defaults to
    /// [`DRAIN_BOUND`], which fits Lambda's shutdown limits: change it only with a reason.
    pub fn drain_bound(mut self, bound: Duration) -> Self {
        self.drain_bound = bound;
        self
    }

    /// Adds an invocation-level layer; the last added runs first (outermost).
    pub fn layer<M>(self, layer: M) -> Runtime<H, Stack<L, M>> {
        Runtime {
            endpoint: self.endpoint,
            handler: self.handler,
            layer: Stack::new(self.layer, layer),
            config: self.config,
            max_concurrency: self.max_concurrency,
            expose_trace_env: self.expose_trace_env,
            initialization_type: self.initialization_type,
            init_started: self.init_started,
            drain_bound: self.drain_bound,
        }
    }
}

impl<H, L> Runtime<H, L>
where
    H: Service<LambdaEvent<Bytes>>,
    H::Response: Serialize,
    H::Error: Into<InvocationError>,
    L: Layer<Respond<H>>,
    L::Service: Service<LambdaInvocation, Response = (), Error = BoxError> + Clone,
{
    /// Serves invocations until the Runtime API cannot be reached any more (then returns the
    /// error). Handler errors and panics are answered and the loop goes on. Never stops on a
    /// signal: see [`run_until`](Self::run_until).
    pub async fn run(self) -> Result<(), BoxError> {
        self.run_until(std::future::pending::<String>())
            .await
            .map(|_| ())
    }

    /// [`run`](Self::run) until `shutdown` resolves (e.g. [`shutdown_signal`]), with the name
    /// of what stopped it; then drains: no more `/next` (a `/next` waiting for an event is
    /// dropped), and each invocation in flight gets its remaining time, at most
    /// [`drain_bound`](Self::drain_bound), to finish: its answer posted, its spans flushed by
    /// its layers. One still running then is cut off (its future dropped, which ends its span)
    /// and logged with its request id. Returns what the drain did; export what is left and
    /// exit afterwards.
    ///
    /// A `5xx` from the Runtime API (non-recoverable, per its reference) drains the same way,
    /// then returns the error.
    pub async fn run_until<F>(self, shutdown: F) -> Result<Drained, BoxError>
    where
        F: Future<Output = String>,
    {
        let api = Arc::new(RuntimeApi::new(&self.endpoint, self.max_concurrency)?);
        let environment = Arc::new(EnvironmentFacts::new(
            self.initialization_type,
            self.init_started,
        ));
        let expose_trace_env = self.expose_trace_env && self.max_concurrency == 1;
        if self.expose_trace_env && !expose_trace_env {
            tracing::warn!(
                max_concurrency = self.max_concurrency,
                "_X_AMZN_TRACE_ID is not set: one process-wide variable cannot name concurrent invocations"
            );
        }
        let stopping = Arc::new(Stopping::new());
        let service = self
            .layer
            .layer(Respond::new(self.handler, api.clone(), stopping.clone()));
        let worker = Worker {
            api,
            config: self.config,
            environment: environment.clone(),
            expose_trace_env,
            stopping: stopping.clone(),
            drain_bound: self.drain_bound,
        };
        environment.init_done();
        let mut workers: FuturesUnordered<_> = (0..self.max_concurrency)
            .map(|_| worker.clone().serve(service.clone()))
            .collect();
        // A worker stops between invocations when `/next` keeps failing. The others may be in
        // the middle of one: they finish it (and find out about `/next` themselves), so no
        // invocation is cut off without its answer, its spans or its metrics. On a stop (the
        // signal, or a 5xx) every worker stops asking for events and finishes its invocation
        // within its grace. The runtime ends when the last worker has stopped, with the first
        // error.
        // Polled only when its own waker fired (`FuturesUnordered` keeps track), not every time
        // a worker's I/O wakes this loop: re-polling the signal pipe each time cost every
        // invocation 2k instructions.
        let mut shutdown: FuturesUnordered<F> = std::iter::once(shutdown).collect();
        let mut first_error = None;
        let mut remaining = self.max_concurrency;
        let mut drained = Drained::default();
        while remaining > 0 {
            let outcome = tokio::select! {
                outcome = workers.next() => outcome,
                Some(signal) = shutdown.next(), if stopping.since().is_none() => {
                    let in_flight = stopping.in_flight();
                    tracing::info!(
                        signal = signal.as_str(),
                        in_flight,
                        "{signal}: stopping; draining {in_flight} invocations in flight (grace at most {} ms)",
                        self.drain_bound.as_millis()
                    );
                    stopping.stop(&signal);
                    continue;
                }
            };
            let Some(outcome) = outcome else { break };
            remaining -= 1;
            match outcome {
                Ok(Stopped::Idle) => {}
                Ok(Stopped::Finished(id)) => drained.finished.push(id),
                Ok(Stopped::CutOff(id)) => drained.cut_off.push(id),
                Err(error) => {
                    if remaining > 0 {
                        tracing::error!(remaining, "a runtime worker stopped: {error}");
                    }
                    first_error.get_or_insert(error);
                }
            }
        }
        drained.reason = stopping.reason();
        drained.took = stopping.since().map_or(Duration::ZERO, |s| s.elapsed());
        if stopping.since().is_some() {
            tracing::info!(
                finished = drained.finished.len(),
                cut_off = drained.cut_off.len(),
                took_ms = drained.took.as_millis() as u64,
                "stopped ({}): {drained}",
                drained.reason
            );
        }
        if let Some(fatal) = stopping.fatal_reason() {
            return Err(fatal.into());
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(drained),
        }
    }
}

/// How a worker ended without an error.
#[derive(Debug)]
enum Stopped {
    /// Between invocations.
    Idle,
    /// After finishing the invocation it was in when the runtime stopped.
    Finished(String),
    /// Its invocation outlived its grace.
    CutOff(String),
}

/// What every loop shares.
#[derive(Debug, Clone)]
struct Worker {
    api: Arc<RuntimeApi>,
    config: Arc<Config>,
    environment: Arc<EnvironmentFacts>,
    expose_trace_env: bool,
    stopping: Arc<Stopping>,
    drain_bound: Duration,
}

impl Worker {
    /// One loop: `/next`, the invocation through `service`, again; until the runtime stops.
    async fn serve<S>(self, mut service: S) -> Result<Stopped, BoxError>
    where
        S: Service<LambdaInvocation, Response = (), Error = BoxError>,
    {
        loop {
            // A stop wins over an event that arrives at the same moment: once stopped, no
            // invocation is started.
            let answer = tokio::select! {
                biased;
                _ = self.stopping.stopped() => return Ok(Stopped::Idle),
                answer = next_event(&self.api, &self.stopping) => answer?,
            };
            let Answer { parts, body } = answer;
            if parts.status == StatusCode::NO_CONTENT {
                // Local emulators answer 204 to keep the loop alive without an event.
                continue;
            }
            match invocation(parts, body, &self.config, &self.environment) {
                Ok(invocation) => {
                    if self.expose_trace_env {
                        trace_env::set(invocation.context.xray_trace_id.as_deref());
                    }
                    let mut invocation = invocation;
                    let request_id = invocation.context.request_id.clone();
                    let invocation_id = api::invocation_id(&invocation.parts.headers);
                    let answering = Answering::default();
                    invocation.parts.extensions.insert(answering.clone());
                    let deadline = invocation.context.deadline();
                    let _in_flight = self.stopping.enter();
                    // A failed post was logged (once) by `Respond`; the loop goes on, and
                    // `/next` tells whether it can. Other errors are the layers' own, logged by
                    // them.
                    let call = async {
                        let ready = service.ready().await?;
                        let _ = ready.call(invocation).await;
                        Ok::<(), BoxError>(())
                    };
                    let cut_off = async {
                        let stopped = self.stopping.stopped().await;
                        let grace = grace(deadline, stopped, self.drain_bound);
                        tokio::time::sleep_until((stopped + grace).into()).await;
                        grace
                    };
                    tokio::select! {
                        served = call => {
                            served?;
                            if self.stopping.since().is_some() {
                                return Ok(Stopped::Finished(request_id));
                            }
                        }
                        grace = cut_off => {
                            let message = format!(
                                "it did not finish within its grace of {} ms after the runtime stopped ({})",
                                grace.as_millis(),
                                self.stopping.reason()
                            );
                            tracing::error!(
                                request_id,
                                grace_ms = grace.as_millis() as u64,
                                "invocation {request_id} was cut off: {message}"
                            );
                            if !answering.started() {
                                self.report_cut_off(&request_id, invocation_id.as_deref(), message)
                                    .await;
                            }
                            return Ok(Stopped::CutOff(request_id));
                        }
                    }
                }
                Err(Unusable::NoRequestId(reason)) => {
                    tracing::error!("an event without a usable request id was skipped: {reason}");
                }
                Err(Unusable::Context { request_id, reason }) => {
                    let error = InvocationError::new(
                        "Runtime.InvalidContext",
                        format!("the invocation's headers are not usable: {reason}"),
                        ErrorKind::Fault,
                    );
                    tracing::error!(request_id, "{}", error.message());
                    let report = ErrorReport::invocation(&error);
                    if let Err(err) = self.api.report_error(&request_id, None, &report).await {
                        not_posted(&err, &request_id, &self.stopping);
                    }
                }
            }
        }
    }
}

impl Worker {
    /// Answers an invocation cut off before its answer started with a `Runtime.CutOff` error,
    /// so that its caller learns at once rather than at its deadline. Bounded by
    /// [`CUT_OFF_REPORT_BOUND`]: the process is on its way out.
    async fn report_cut_off(&self, request_id: &str, invocation_id: Option<&str>, message: String) {
        let error = InvocationError::new(
            "Runtime.CutOff",
            format!("the invocation was cut off: {message}"),
            ErrorKind::Fault,
        );
        let report = ErrorReport::invocation(&error);
        let post = self.api.report_error(request_id, invocation_id, &report);
        match tokio::time::timeout(CUT_OFF_REPORT_BOUND, post).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => not_posted(&err, request_id, &self.stopping),
            Err(_) => tracing::error!(
                request_id,
                "the Runtime.CutOff error of invocation {request_id} was not posted within {} ms",
                CUT_OFF_REPORT_BOUND.as_millis()
            ),
        }
    }
}

/// `GET /next`, tried [`NEXT_ATTEMPTS`] times with backoff; a `5xx` other than `502`–`504`
/// (the Runtime API reference: `500`, "non-recoverable state, runtime should exit promptly")
/// stops the runtime at once.
async fn next_event(api: &RuntimeApi, stopping: &Stopping) -> Result<Answer, BoxError> {
    let mut attempt = 0;
    loop {
        let failure = match api.next().await {
            Ok(answer) if answer.parts.status.is_success() => return Ok(answer),
            Ok(answer) if non_recoverable(answer.parts.status) => {
                let reason = format!(
                    "the Runtime API answered {} to /next (non-recoverable: the runtime stops): {}",
                    answer.parts.status,
                    String::from_utf8_lossy(&answer.body[..answer.body.len().min(256)])
                );
                tracing::error!("{reason}");
                stopping.fatal(reason.clone());
                return Err(reason.into());
            }
            Ok(answer) => format!("the Runtime API answered {} to /next", answer.parts.status),
            Err(err) => error_chain(err.as_ref()),
        };
        attempt += 1;
        if attempt >= NEXT_ATTEMPTS {
            return Err(format!(
                "the Runtime API could not be reached ({NEXT_ATTEMPTS} attempts): {failure}"
            )
            .into());
        }
        tracing::warn!(attempt, "could not get the next event, retrying: {failure}");
        tokio::time::sleep(backoff(attempt - 1)).await;
    }
}

/// A `/next` answer that ends the runtime without a retry: `500` and the other `5xx` but the
/// gateway ones (`502`, `503`, `504`: what a proxy in front of an emulator answers while it
/// restarts).
fn non_recoverable(status: StatusCode) -> bool {
    status.is_server_error()
        && !matches!(
            status,
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
        )
}

#[cfg(test)]
mod test_logs;
#[cfg(test)]
mod tests;
