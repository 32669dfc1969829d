//! Tower layers that give an AWS Lambda function written with [`lambda_runtime`]'s types
//! production-grade observability: structured logs, X-Ray traces through OpenTelemetry, typed error
//! mapping, timing metrics and traced outbound HTTP calls — and the Runtime API loop that runs
//! them, [`runtime::Runtime`].
//!
//! These are **tower layers** (middleware), not AWS "Lambda layers" (zip archives attached to a
//! function). They plug into [`runtime::Runtime::layer`] (invocation level) or wrap the handler
//! service itself (handler level):
//!
//! | layer | level | what it does |
//! |---|---|---|
//! | [`TraceLayer`] | invocation | continues the X-Ray trace of the invocation as an OpenTelemetry span, flushes spans before the next event |
//! | [`LoggingLayer`] | invocation | start/end log lines carrying the request id, optional payload logging |
//! | [`TimingLayer`] | invocation | measures durations, records them on the span, flushes the invocation's [`metrics`] as CloudWatch EMF |
//! | [`ObservabilityLayer`] | invocation | the three invocation-level layers above, in order |
//! | [`ErrorMapLayer`] | handler | maps typed errors (and panics) to an [`error::InvocationError`], records them on the span, logs them once |
//! | [`JsonEventLayer`] | handler | decodes the body into the payload type; a body that does not decode is the handler's own typed error |
//! | [`HttpTraceLayer`] | `reqwest` client | a client span per outbound request, trace context injected into its headers |
//!
//! The pipeline that exports the spans lives in [`export`]; the log formatter in [`log_format`].
//!
//! ```
//! use lambda_observability::{
//!     ErrorMapLayer, JsonEventLayer, LoggingLayer, TimingLayer, TraceLayer,
//!     config::TelemetrySettings,
//!     export::Telemetry,
//!     json_event::MalformedEvent,
//!     runtime::Runtime,
//! };
//! use lambda_runtime::LambdaEvent;
//! use serde_json::Value;
//! use tower::{ServiceBuilder, service_fn};
//!
//! # #[derive(Debug)] struct Never;
//! # impl std::fmt::Display for Never { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.pad("never") } }
//! # impl std::error::Error for Never {}
//! # impl lambda_observability::FunctionError for Never { fn error_type(&self) -> &str { "Never" } }
//! # impl From<MalformedEvent> for Never { fn from(_: MalformedEvent) -> Self { Never } }
//! async fn handler(event: LambdaEvent<Value>) -> Result<Value, Never> {
//!     Ok(event.payload)
//! }
//!
//! # fn main() -> Result<(), lambda_observability::BoxError> {
//! // No exporter configured: spans are not recorded.
//! let telemetry = Telemetry::init(&TelemetrySettings::default(), None)?;
//! let handler = ServiceBuilder::new()
//!     .layer(ErrorMapLayer::new())
//!     .layer(JsonEventLayer::<Value>::new())
//!     .service(service_fn(handler));
//! // The last layer added is the outermost one.
//! let runtime = Runtime::new("127.0.0.1:9001", handler)
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
pub mod json_event;
pub mod log_format;
pub mod logging;
pub mod metrics;
pub mod observability;
pub mod runtime;
#[cfg(feature = "sigv4")]
pub mod sigv4;
pub mod timing;
pub mod trace;

pub use error::{ErrorKind, ErrorMapLayer, FunctionError};
pub use http_client::HttpTraceLayer;
pub use json_event::JsonEventLayer;
pub use logging::LoggingLayer;
pub use observability::ObservabilityLayer;
pub use timing::TimingLayer;
pub use trace::TraceLayer;

/// Alias for a type-erased error type, as used at the boundaries of these layers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(test)]
pub(crate) mod test_support;
