//! Tower layers that give an AWS Lambda function written with [`lambda_runtime`]'s types
//! production-grade observability: X-Ray traces through OpenTelemetry, structured log lines,
//! timing and CloudWatch EMF metrics, typed error mapping, JSON events and traced outbound HTTP
//! calls.
//!
//! These are **tower layers** (middleware), not AWS "Lambda layers" (zip archives attached to a
//! function). They run on a stock `lambda_runtime::Runtime` with a tracer provider you built, or
//! on `lambda-observability-runtime`'s loop; `lambda-observability` wires them all from the
//! environment in one call.
//!
//! | layer | level | what it does |
//! |---|---|---|
//! | [`TraceLayer`] | invocation | continues the X-Ray trace of the invocation as an OpenTelemetry span, flushes spans before the next event |
//! | [`LoggingLayer`] | invocation | start/end log lines carrying the request id, optional payload logging |
//! | [`TimingLayer`] | invocation | measures durations, records them on the span, flushes the invocation's [`metrics`] as CloudWatch EMF |
//! | [`ObservabilityLayer`] | invocation | the three invocation-level layers above, in order |
//! | [`ErrorMapLayer`] | handler | maps typed errors (and panics) to an [`InvocationError`](error::InvocationError), records them on the span, logs them once |
//! | [`JsonEventLayer`] | handler | decodes the body into the payload type; a body that does not decode is the handler's own typed error |
//! | [`HttpTraceLayer`] | `reqwest` client | a client span per outbound request, trace context injected into its headers |
//!
//! The per-invocation span pipeline lives in [`export`], the log subscriber in [`log_format`].
//!
//! On a stock `lambda_runtime::Runtime` (which reads the Lambda environment, so this example is
//! only compiled), with your own provider:
//!
//! ```no_run
//! use lambda_observability_tower::{LoggingLayer, TraceLayer, log_format};
//! use lambda_runtime::{LambdaEvent, Runtime, service_fn};
//! use opentelemetry::trace::TracerProvider as _;
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//! use serde_json::Value;
//!
//! async fn handler(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
//!     Ok(event.payload)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), lambda_runtime::Error> {
//! let provider = SdkTracerProvider::builder()
//!     .with_simple_exporter(InMemorySpanExporter::default())
//!     .build();
//! let logs = log_format::LogConfig::new().format(log_format::LogFormat::Json);
//! log_format::init(&logs, Some(provider.tracer("hello")))?;
//! let runtime = Runtime::new(service_fn(handler))
//!     .layer(LoggingLayer::new())
//!     .layer(TraceLayer::new(provider));
//! runtime.run().await
//! # }
//! ```

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod error_map;
pub mod export;
pub mod http_client;
pub mod json_event;
pub mod log_format;
pub mod logging;
pub mod metrics;
pub mod observability;
pub mod timing;
pub mod trace;

pub use error_map::ErrorMapLayer;
pub use http_client::HttpTraceLayer;
pub use json_event::JsonEventLayer;
pub use lambda_observability_runtime::{
    BoxError,
    error::{self, ErrorKind, FunctionError},
};
pub use logging::LoggingLayer;
pub use observability::ObservabilityLayer;
pub use timing::TimingLayer;
pub use trace::TraceLayer;

use lambda_observability_runtime::{cold_start, deadline, facts};

#[cfg(test)]
pub(crate) mod test_support;
