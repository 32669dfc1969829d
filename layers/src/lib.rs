//! Tower layers that give an AWS Lambda function written with [`lambda_runtime`] production-grade
//! observability: structured logs, X-Ray traces through OpenTelemetry, typed error mapping, timing
//! metrics and traced outbound HTTP calls.
//!
//! These are **tower layers** (middleware), not AWS "Lambda layers" (zip archives attached to a
//! function). They plug into [`lambda_runtime::Runtime::layer`] (invocation level) or wrap the
//! handler service itself (handler level):
//!
//! | layer | level | what it does |
//! |---|---|---|
//! | [`TraceLayer`] | invocation | continues the X-Ray trace of the invocation as an OpenTelemetry span, flushes spans before the next event |
//! | [`LoggingLayer`] | invocation | start/end log lines carrying the request id, optional payload logging |
//! | [`TimingLayer`] | invocation | measures durations, records them on the span, flushes the invocation's [`metrics`] as CloudWatch EMF |
//! | [`MalformedEventLayer`] | invocation | turns a body that is not JSON into an event the handler can reject with a typed error |
//! | [`ErrorMapLayer`] | handler | maps typed errors (and panics) to [`lambda_runtime::Diagnostic`] and records them on the span |
//! | [`HttpTraceLayer`] | `reqwest` client | a client span per outbound request, trace context injected into its headers |
//! | [`ObservabilityLayer`] | invocation | all four invocation-level layers above, in order |
//!
//! The pipeline that exports the spans lives in [`export`]; the log formatter in [`log_format`].
//!
//! ```
//! use lambda_observability::{
//!     ErrorMapLayer, LoggingLayer, MalformedEventLayer, TimingLayer, TraceLayer,
//!     config::TelemetrySettings,
//!     export::Telemetry,
//! };
//! use lambda_runtime::{LambdaEvent, Runtime};
//! use serde_json::Value;
//! use tower::{ServiceBuilder, service_fn};
//!
//! # #[derive(Debug)] struct Never;
//! # impl std::fmt::Display for Never { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.pad("never") } }
//! # impl std::error::Error for Never {}
//! # impl lambda_observability::FunctionError for Never { fn error_type(&self) -> &str { "Never" } }
//! async fn handler(event: LambdaEvent<Value>) -> Result<Value, Never> {
//!     Ok(event.payload)
//! }
//!
//! # fn main() -> Result<(), lambda_runtime::Error> {
//! // No exporter configured: spans are not recorded.
//! let telemetry = Telemetry::init(&TelemetrySettings::default(), None)?;
//! let handler = ServiceBuilder::new()
//!     .layer(ErrorMapLayer::new())
//!     .service(service_fn(handler));
//! # if std::env::var("AWS_LAMBDA_RUNTIME_API").is_err() { return Ok(()); }
//! // The last layer added is the outermost one.
//! let runtime = Runtime::new(handler)
//!     .layer(MalformedEventLayer::new())
//!     .layer(TimingLayer::new())
//!     .layer(LoggingLayer::new())
//!     .layer(TraceLayer::new(telemetry.flusher()));
//! # drop(runtime);
//! # Ok(())
//! # }
//! ```

pub mod cold_start;
pub mod config;
pub mod deadline;
pub mod error;
pub mod export;
pub mod facts;
pub mod http_client;
pub mod log_format;
pub mod logging;
pub mod malformed_event;
pub mod metrics;
pub mod observability;
pub mod sigv4;
pub mod timing;
pub mod trace;

pub use error::{ErrorKind, ErrorMapLayer, FunctionError};
pub use http_client::HttpTraceLayer;
pub use logging::LoggingLayer;
pub use malformed_event::MalformedEventLayer;
pub use observability::ObservabilityLayer;
pub use timing::TimingLayer;
pub use trace::TraceLayer;

/// Alias for a type-erased error type, as used at the boundaries of these layers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(test)]
pub(crate) mod test_support;
