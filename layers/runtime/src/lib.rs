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
mod trace_env;

use std::{sync::Arc, time::Instant};

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
pub use respond::{Respond, ResponseFuture};

use self::{
    api::{Answer, RuntimeApi, backoff},
    invocation::{Unusable, invocation},
    report::ErrorReport,
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
    /// error). Handler errors and panics are answered and the loop goes on.
    pub async fn run(self) -> Result<(), BoxError> {
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
        let service = self.layer.layer(Respond::new(self.handler, api.clone()));
        let worker = Worker {
            api,
            config: self.config,
            environment: environment.clone(),
            expose_trace_env,
        };
        environment.init_done();
        let mut workers: FuturesUnordered<_> = (0..self.max_concurrency)
            .map(|_| worker.clone().serve(service.clone()))
            .collect();
        // A worker stops only between invocations, when `/next` keeps failing. The others may be
        // in the middle of one: they finish it (and find out about `/next` themselves), so no
        // invocation is cut off without its answer, its spans or its metrics. The runtime ends
        // when the last worker has stopped, with the first error.
        let mut first_error = None;
        let mut remaining = self.max_concurrency;
        while let Some(outcome) = workers.next().await {
            remaining -= 1;
            if let Err(error) = outcome {
                if remaining > 0 {
                    tracing::error!(remaining, "a runtime worker stopped: {error}");
                }
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// What every loop shares.
#[derive(Debug, Clone)]
struct Worker {
    api: Arc<RuntimeApi>,
    config: Arc<Config>,
    environment: Arc<EnvironmentFacts>,
    expose_trace_env: bool,
}

impl Worker {
    /// One loop: `/next`, the invocation through `service`, again.
    async fn serve<S>(self, mut service: S) -> Result<(), BoxError>
    where
        S: Service<LambdaInvocation, Response = (), Error = BoxError>,
    {
        loop {
            let Answer { parts, body } = next_event(&self.api).await?;
            if parts.status == StatusCode::NO_CONTENT {
                // Local emulators answer 204 to keep the loop alive without an event.
                continue;
            }
            match invocation(parts, body, &self.config, &self.environment) {
                Ok(invocation) => {
                    if self.expose_trace_env {
                        trace_env::set(invocation.context.xray_trace_id.as_deref());
                    }
                    // An error here is the Runtime API's (the answer could not be posted), logged
                    // where it happened; the loop goes on, and `/next` tells whether it can.
                    let _ = service.ready().await?.call(invocation).await;
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
                        tracing::error!(request_id, error = %err, "the error could not be posted");
                    }
                }
            }
        }
    }
}

/// `GET /next`, tried [`NEXT_ATTEMPTS`] times with backoff.
async fn next_event(api: &RuntimeApi) -> Result<Answer, BoxError> {
    let mut attempt = 0;
    loop {
        let failure = match api.next().await {
            Ok(answer) if answer.parts.status.is_success() => return Ok(answer),
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

#[cfg(test)]
mod tests;
