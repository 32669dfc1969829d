use std::sync::Arc;

use tower::Layer;

use super::Trace;
use crate::{cold_start::ColdStart, export::SpanFlusher};

/// Layer that applies [`Trace`] to a `lambda_runtime` invocation service.
#[derive(Debug, Clone)]
pub struct TraceLayer {
    pub(super) flusher: SpanFlusher,
    pub(super) trigger: &'static str,
    pub(super) service_name: Option<Arc<str>>,
    pub(super) init_type: crate::cold_start::InitializationType,
}

impl TraceLayer {
    /// Traces invocations and exports their spans through `flusher` after each one.
    pub fn new(flusher: SpanFlusher) -> Self {
        Self {
            flusher,
            trigger: "other",
            service_name: None,
            init_type: crate::cold_start::InitializationType::from_env(),
        }
    }

    /// The `faas.trigger` attribute (`datasource`, `http`, `pubsub`, `timer`, `other`).
    /// Defaults to `other`.
    pub fn trigger(mut self, trigger: &'static str) -> Self {
        self.trigger = trigger;
        self
    }

    /// The `Service` annotation. Defaults to the function name.
    pub fn service_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// How the environment was initialised, which decides the first `ColdStart`.
    /// Defaults to `AWS_LAMBDA_INITIALIZATION_TYPE`.
    pub fn initialization_type(mut self, init_type: crate::cold_start::InitializationType) -> Self {
        self.init_type = init_type;
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
            cold_start: Arc::new(ColdStart::new(self.init_type)),
        }
    }
}
