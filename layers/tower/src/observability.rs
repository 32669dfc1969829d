//! Middleware that stacks every invocation-level layer in the order they are meant to run.
//!
//! From the outside in: [`TraceLayer`] (the span, and the export after the response),
//! [`LoggingLayer`] (start and end lines inside the span) and [`TimingLayer`] (durations on the
//! span, and the invocation's metrics flushed as EMF). Use it when you want all of them; compose
//! them yourself when you want a different set.
//!
//! ```
//! use lambda_observability_tower::{
//!     ObservabilityLayer, TimingLayer, export::SpanFlusher, metrics::Metrics,
//! };
//! use lambda_runtime::LambdaInvocation;
//! use tower::{ServiceBuilder, service_fn};
//!
//! let layer = ObservabilityLayer::new(SpanFlusher::disabled())
//!     .timing(TimingLayer::new().metrics(Metrics::disabled()));
//! let service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|_: LambdaInvocation| async { Ok::<(), lambda_runtime::Error>(()) }));
//! # drop(service);
//! ```

use tower::Layer;

use crate::{
    LoggingLayer, TimingLayer, TraceLayer, export::SpanFlusher, logging::Logging, timing::Timing,
    trace::Trace,
};

/// Layer applying [`TraceLayer`], [`LoggingLayer`] and [`TimingLayer`].
#[derive(Debug, Clone)]
pub struct ObservabilityLayer {
    trace: TraceLayer,
    logging: LoggingLayer,
    timing: TimingLayer,
}

impl ObservabilityLayer {
    /// All layers with their defaults, exporting spans through `flusher`.
    pub fn new(flusher: SpanFlusher) -> Self {
        Self {
            trace: TraceLayer::new(flusher),
            logging: LoggingLayer::new(),
            timing: TimingLayer::new(),
        }
    }

    /// The tracing layer. Defaults to `TraceLayer::new(flusher)`.
    pub fn trace(mut self, layer: TraceLayer) -> Self {
        self.trace = layer;
        self
    }

    /// The logging layer. Defaults to `LoggingLayer::new()`.
    pub fn logging(mut self, layer: LoggingLayer) -> Self {
        self.logging = layer;
        self
    }

    /// The timing layer. Defaults to `TimingLayer::new()`.
    pub fn timing(mut self, layer: TimingLayer) -> Self {
        self.timing = layer;
        self
    }
}

impl<S> Layer<S> for ObservabilityLayer {
    type Service = Trace<Logging<Timing<S>>>;

    fn layer(&self, inner: S) -> Self::Service {
        let inner = self.timing.layer(inner);
        let inner = self.logging.layer(inner);
        self.trace.layer(inner)
    }
}
