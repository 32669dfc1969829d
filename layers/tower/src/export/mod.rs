//! The per-invocation span export pipeline.
//!
//! Lambda freezes the process as soon as the runtime asks for the next event, so a background
//! batch exporter can lose spans, and a synchronous `force_flush` from inside the invocation has
//! deadlocked on single-threaded runtimes (opentelemetry-rust #3176). This pipeline does neither:
//! [`InvocationSpanProcessor`] only buffers finished spans, keyed by trace, and
//! [`SpanFlusher::flush`] exports one trace's spans *asynchronously, inside the invocation
//! future*, after the response has been sent and before the runtime polls for the next event. No
//! thread is spawned and nothing blocks, so it works on a current-thread runtime, the export is
//! bounded by a timeout, and invocations running at once in one process (Lambda Managed
//! Instances) never export or wait for each other's spans.
//!
//! Each batch goes to every destination: any SDK [`SpanExporter`], or a [`Deliver`] that reports
//! span by span what it sent. Every span lost on the way is counted by reason
//! ([`SpanFlusher::stats`], [`SpanFlusher::take_dropped`], [`FlushOutcome`]).
//!
//! ```
//! use std::time::Duration;
//!
//! use lambda_observability_tower::{TraceLayer, export::Telemetry};
//! use opentelemetry_sdk::{Resource, trace::InMemorySpanExporter};
//!
//! let telemetry = Telemetry::builder()
//!     .exporter("memory", Duration::from_secs(1), InMemorySpanExporter::default())
//!     .resource(Resource::builder().with_service_name("hello").build())
//!     .build();
//! assert!(telemetry.tracer().is_some());
//! let layer = TraceLayer::new(telemetry.flusher());
//! # drop(layer);
//! ```

mod breaker;
#[cfg(feature = "console")]
mod console;
mod flusher;
mod lazy;
mod pipeline;
mod shutdown;

use std::{sync::Arc, time::Duration};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_sdk::{
    Resource,
    trace::{Sampler, SdkTracerProvider, SpanExporter, Tracer},
};

pub use breaker::{FIRST_PROBE_AFTER, MAX_PROBE_AFTER};
#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub use console::ConsoleExporter;
pub use flusher::{DropCounts, ExportStats, FlushOutcome, SPANS_DROPPED_METRIC, SpanFlusher};
pub use pipeline::{
    Deliver, Delivery, DeliveryFuture, InvocationSpanProcessor, MAX_BUFFERED_SPANS, Plain,
    ResourceSource,
};
pub use shutdown::{
    SHUTDOWN_BUDGET, SHUTDOWN_FLUSH_BOUND, shutdown_bound_after, spawn_shutdown_flush,
    spawn_shutdown_flush_reporting,
};

use crate::BoxError;
use lazy::Lazy;
use pipeline::{Destination, Pipeline};

/// How long one export may take when nothing says otherwise (`OTEL_EXPORTER_OTLP_TIMEOUT`'s
/// default).
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a flush may take after the response, before the runtime asks for the next event,
/// when nothing says otherwise: each export is bounded by the shortest of this, its exporter's
/// timeout and the time left until the invocation's deadline ([`SpanFlusher::flush_budget`]).
pub const DEFAULT_FLUSH_BUDGET: Duration = Duration::from_secs(2);

/// The telemetry pipeline of one execution environment: tracer provider and span flusher.
#[derive(Debug, Clone)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    flusher: SpanFlusher,
}

impl Telemetry {
    /// A pipeline to build: destinations, resource, sampler.
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder::default()
    }

    /// A pipeline that records nothing.
    pub fn disabled() -> Self {
        Self {
            provider: None,
            flusher: SpanFlusher::disabled(),
        }
    }

    /// A pipeline exporting to any [`SpanExporter`] (tests use the SDK's in-memory exporter),
    /// honouring Lambda's `Sampled` flag.
    pub fn with_exporter<E>(exporter: E, resource: Resource, export_timeout: Duration) -> Self
    where
        E: SpanExporter + 'static,
    {
        Self::builder()
            .exporter("exporter", export_timeout, exporter)
            .resource(resource)
            .export_timeout(export_timeout)
            .build()
    }

    /// The tracer for `tracing-opentelemetry`, `None` when export is disabled.
    pub fn tracer(&self) -> Option<Tracer> {
        self.provider
            .as_ref()
            .map(|provider| provider.tracer("lambda-observability"))
    }

    /// A handle that exports the finished spans, for [`TraceLayer`](crate::TraceLayer).
    pub fn flusher(&self) -> SpanFlusher {
        self.flusher.clone()
    }
}

#[cfg(test)]
impl Telemetry {
    /// A pipeline to `destinations`, as the tests build it.
    pub(crate) fn with_destinations(
        destinations: Vec<Destination>,
        resource: Resource,
        sampler: Sampler,
        export_timeout: Duration,
    ) -> Self {
        let mut builder = Self::builder()
            .resource(resource)
            .sampler(sampler)
            .export_timeout(export_timeout);
        builder.destinations = destinations;
        builder.build()
    }
}

/// Builds a [`Telemetry`]; see [`Telemetry::builder`].
#[derive(Default)]
pub struct TelemetryBuilder {
    destinations: Vec<Destination>,
    resource: Option<ResourceSource>,
    sampler: Option<Sampler>,
    export_timeout: Option<Duration>,
    flush_budget: Option<Duration>,
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("destinations", &self.destinations.len())
            .finish_non_exhaustive()
    }
}

impl TelemetryBuilder {
    /// Adds a destination: any SDK exporter, all or nothing per batch, within `timeout`.
    pub fn exporter<E: SpanExporter + 'static>(
        self,
        name: &'static str,
        timeout: Duration,
        exporter: E,
    ) -> Self {
        self.deliver_to(name, timeout, Plain(exporter))
    }

    /// Adds a destination that reports span by span what it delivered, within `timeout`.
    pub fn deliver_to(mut self, name: &'static str, timeout: Duration, to: impl Deliver) -> Self {
        self.destinations.push(Destination::new(name, timeout, to));
        self
    }

    /// Adds a destination built by `build` at its first delivery (after the first response:
    /// off the cold start). A build that fails fails that delivery, counted and logged like any
    /// failed export, and is tried again at the next one.
    pub fn deliver_to_lazy<D: Deliver>(
        self,
        name: &'static str,
        timeout: Duration,
        build: impl Fn() -> Result<D, BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.deliver_to(name, timeout, Lazy::new(build))
    }

    /// The resource every exporter is given. Defaults to an empty one.
    pub fn resource(mut self, resource: impl Into<ResourceSource>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// The sampler. Defaults to parent-based always-on: Lambda's `Sampled` flag decides.
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// The bound on the shutdown's and a deadline-less flush's export. Defaults to
    /// [`DEFAULT_EXPORT_TIMEOUT`].
    pub fn export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = Some(timeout);
        self
    }

    /// How long a flush may take after the response ([`SpanFlusher::flush_budget`]). Defaults
    /// to [`DEFAULT_FLUSH_BUDGET`].
    pub fn flush_budget(mut self, budget: Duration) -> Self {
        self.flush_budget = Some(budget);
        self
    }

    /// The pipeline; with no destination, one that records nothing.
    pub fn build(self) -> Telemetry {
        if self.destinations.is_empty() {
            return Telemetry::disabled();
        }
        let resource = self
            .resource
            .unwrap_or_else(|| Resource::builder_empty().build().into());
        let pipeline = Arc::new(Pipeline::new(
            self.destinations,
            resource,
            MAX_BUFFERED_SPANS,
        ));
        // The provider is not given the resource (it keeps the SDK's default, which nothing
        // reads): only exporters use one, and they take it from the pipeline's `ResourceSource`.
        let provider = SdkTracerProvider::builder()
            .with_id_generator(XrayIdGenerator::default())
            .with_sampler(
                self.sampler
                    .unwrap_or_else(|| Sampler::ParentBased(Box::new(Sampler::AlwaysOn))),
            )
            .with_span_processor(InvocationSpanProcessor {
                pipeline: pipeline.clone(),
            })
            .build();
        Telemetry {
            provider: Some(provider),
            flusher: SpanFlusher {
                pipeline: Some(pipeline),
                timeout: self.export_timeout.unwrap_or(DEFAULT_EXPORT_TIMEOUT),
                budget: self.flush_budget.unwrap_or(DEFAULT_FLUSH_BUDGET),
                metrics: crate::metrics::Metrics::disabled(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    use super::*;

    /// A builder shows how many destinations it has, not the exporters themselves (which need
    /// not be `Debug`, and may hold credentials).
    #[test]
    fn a_builder_debugs_as_its_count_of_destinations() {
        assert_eq!(
            format!("{:?}", Telemetry::builder()),
            "TelemetryBuilder { destinations: 0, .. }"
        );
        let builder = Telemetry::builder()
            .exporter("a", DEFAULT_EXPORT_TIMEOUT, InMemorySpanExporter::default())
            .exporter("b", DEFAULT_EXPORT_TIMEOUT, InMemorySpanExporter::default());
        assert_eq!(
            format!("{builder:?}"),
            "TelemetryBuilder { destinations: 2, .. }"
        );
    }
}
