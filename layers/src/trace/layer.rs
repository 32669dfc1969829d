use std::{sync::Arc, time::Instant};

use tower::Layer;

use super::Trace;
use crate::{
    cold_start::InitializationType,
    export::SpanFlusher,
    facts::EnvironmentFacts,
    metrics::{self, Metrics, Unit},
};

/// Layer that applies [`Trace`] to a `lambda_runtime` invocation service.
#[derive(Debug, Clone)]
pub struct TraceLayer {
    pub(super) flusher: SpanFlusher,
    pub(super) trigger: &'static str,
    pub(super) service_name: Option<Arc<str>>,
    pub(super) environment: Arc<EnvironmentFacts>,
    pub(super) metrics: Metrics,
}

impl TraceLayer {
    /// Traces invocations and exports their spans through `flusher` after each one.
    pub fn new(flusher: SpanFlusher) -> Self {
        Self {
            flusher,
            trigger: "other",
            service_name: None,
            environment: Arc::new(EnvironmentFacts::new(
                InitializationType::OnDemand,
                Instant::now(),
            )),
            metrics: Metrics::disabled(),
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

    /// The environment whose facts ([`InvocationFacts`](crate::facts::InvocationFacts)) this
    /// layer attaches to invocations that arrive without them (under `lambda_runtime::Runtime`,
    /// which attaches none). Share it with the runtime loop so that there is one cold start per
    /// environment. Defaults to an on-demand environment whose init time is not measured.
    pub fn environment(mut self, environment: Arc<EnvironmentFacts>) -> Self {
        self.environment = environment;
        self
    }

    /// The metrics the `SpansDropped` count goes to: after each flush that finds spans dropped
    /// (by it or since the last report: a full buffer, a collector timing out, a span too large
    /// for a datagram), the count is recorded and written at once as its own EMF line, before
    /// the runtime asks for the next event. The invocation's other metrics were already written
    /// by [`TimingLayer`](crate::TimingLayer), inside this layer. Defaults to
    /// [`Metrics::disabled`] (the drops are only logged).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        if self.metrics.is_enabled() {
            metrics::describe_counter!(
                crate::export::SPANS_DROPPED_METRIC,
                Unit::Count,
                "spans dropped before export"
            );
        }
        Trace {
            inner,
            flusher: self.flusher.clone(),
            trigger: self.trigger,
            service_name: self.service_name.clone(),
            environment: self.environment.clone(),
            metrics: self.metrics.clone(),
        }
    }
}
