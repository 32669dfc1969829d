use std::{sync::Arc, time::Instant};

use tower::Layer;

use super::{FlushSpans, Trace};
use crate::{cold_start::InitializationType, facts::EnvironmentFacts};

/// The invocation span's attributes that describe the function rather than the invocation: on
/// the span or left to the resource, as [`TraceLayer::function_attributes`] says.
pub const FUNCTION_ATTRIBUTES: [&str; 7] = [
    "faas.name",
    "faas.version",
    "faas.max_memory",
    "cloud.provider",
    "cloud.platform",
    "cloud.region",
    "aws.log.group.names",
];

/// Layer that applies [`Trace`] to a `lambda_runtime` invocation service.
#[derive(Clone)]
pub struct TraceLayer {
    pub(super) flusher: Arc<dyn FlushSpans>,
    pub(super) trigger: &'static str,
    pub(super) service_name: Option<Arc<str>>,
    pub(super) function_attributes: bool,
    pub(super) environment: Arc<EnvironmentFacts>,
}

impl std::fmt::Debug for TraceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceLayer")
            .field("trigger", &self.trigger)
            .field("service_name", &self.service_name)
            .field("function_attributes", &self.function_attributes)
            .finish_non_exhaustive()
    }
}

impl TraceLayer {
    /// Traces invocations and exports their spans through `flusher` after each one: this crate's
    /// [`SpanFlusher`](crate::export::SpanFlusher), your own `SdkTracerProvider`, or a closure
    /// ([`FlushWith`](super::FlushWith)).
    pub fn new(flusher: impl FlushSpans) -> Self {
        Self {
            flusher: Arc::new(flusher),
            trigger: "other",
            service_name: None,
            function_attributes: true,
            environment: Arc::new(EnvironmentFacts::new(
                InitializationType::OnDemand,
                Instant::now(),
            )),
        }
    }

    /// The `faas.trigger` attribute (`datasource`, `http`, `pubsub`, `timer`, `other`).
    /// Defaults to `other`.
    pub fn trigger(mut self, trigger: &'static str) -> Self {
        self.trigger = trigger;
        self
    }

    /// The service name: the invocation span's name (X-Ray's segment or subsegment name) and
    /// its `Service` annotation. Defaults to the function name.
    pub fn service_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Whether the invocation span also carries the attributes that describe the function
    /// rather than the invocation ([`FUNCTION_ATTRIBUTES`]: `faas.name`, `faas.version`,
    /// `faas.max_memory`, `cloud.provider`, `cloud.platform`, `cloud.region`,
    /// `aws.log.group.names`). The OpenTelemetry semantic conventions put them on the resource. Defaults to `true`, for a
    /// tracer whose resource lacks them (`lambda_runtime`'s own setup, say); turn it off when the
    /// resource has them, as `lambda_observability`'s does: each invocation then sends them once,
    /// in the resource, instead of twice (about 11k instructions per warm invocation, callgrind).
    /// What describes the invocation stays on the span either way (`faas.invocation_id`,
    /// `faas.trigger`, `faas.coldstart`, `cloud.account.id`, `cloud.resource_id`,
    /// `aws.lambda.invoked_arn`, `aws.lambda.tenant_id`).
    pub fn function_attributes(mut self, on: bool) -> Self {
        self.function_attributes = on;
        self
    }

    /// The environment whose facts ([`InvocationFacts`](crate::facts::InvocationFacts)) this
    /// layer attaches to invocations that arrive without them (under `lambda_runtime::Runtime`,
    /// which attaches none). Share it with the runtime loop so that there is one cold start per
    /// environment. Defaults to an on-demand environment whose init time is not measured.
    pub fn environment(mut self, environment: Arc<EnvironmentFacts>) -> Self {
        self.environment = environment;
        self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace {
            inner,
            flusher: self.flusher.clone(),
            trigger: self.trigger,
            service_name: self.service_name.clone(),
            function_attributes: self.function_attributes,
            environment: self.environment.clone(),
        }
    }
}
