//! Middleware that continues the invocation's X-Ray trace as an OpenTelemetry span and exports
//! the invocation's spans before the runtime asks for the next event.
//!
//! The span hangs under the Lambda function segment: its trace id is the `Root` and its parent
//! the `Parent` of `Lambda-Runtime-Trace-Id` ([`Context::xray_trace_id`]), and its `Sampled`
//! flag decides whether anything is exported. Without the header (local runs) a new, sampled
//! trace starts. The span carries the `faas.*` and `cloud.*` semantic attributes and the
//! `ColdStart` and `Service` attributes, which the X-Ray exporter indexes as annotations; those
//! that describe the function rather than the invocation can be left to the resource
//! ([`TraceLayer::function_attributes`]).
//!
//! [`Context::xray_trace_id`]: lambda_runtime::Context::xray_trace_id
//!
//! ```
//! use lambda_observability_tower::{TraceLayer, export::SpanFlusher};
//! use lambda_runtime::LambdaInvocation;
//! use tower::{ServiceBuilder, service_fn};
//!
//! let service = ServiceBuilder::new()
//!     .layer(TraceLayer::new(SpanFlusher::disabled()))
//!     .service(service_fn(|_: LambdaInvocation| async { Ok::<(), lambda_runtime::Error>(()) }));
//! # drop(service);
//! ```

mod flush;
#[cfg(test)]
mod flush_logs;
mod future;
#[cfg(test)]
mod fuzz;
mod layer;
#[cfg(test)]
mod line_writes;
mod service;
mod xray_header;

pub use flush::{FlushFuture, FlushSpans, FlushWith};
pub use future::{MAX_LINE_DELAY, ResponseFuture};
pub use layer::{FUNCTION_ATTRIBUTES, TraceLayer};
pub use service::Trace;

#[cfg(test)]
mod tests;
