use std::{sync::Arc, time::Instant};

use tower::Layer;

use super::{FlushSpans, Trace};
use crate::{cold_start::InitializationType, facts::EnvironmentFacts};

/// Layer that applies [`Trace`] to a `lambda_runtime` invocation service.
#[derive(Clone)]
pub struct TraceLayer {
    pub(super) flusher: Arc<dyn FlushSpans>,
    pub(super) trigger: &'static str,
    pub(super) service_name: Option<Arc<str>>,
    pub(super) environment: Arc<EnvironmentFacts>,
}

impl std::fmt::Debug for TraceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceLayer")
            .field("trigger", &self.trigger)
            .field("service_name", &self.service_name)
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
            environment: self.environment.clone(),
        }
    }
}
