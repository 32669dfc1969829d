//! What a handler knows about its trigger, put on the invocation span the way OpenTelemetry's
//! semantic conventions name it: HTTP (v1.26: `{method} {route}`, `http.*`) and messaging
//! (v1.27: `process {destination}`, `messaging.*`).
//!
//! Each function works on the current span: inside a handler served by
//! [`Function`](crate::Function), that is the invocation span [`TraceLayer`](crate::TraceLayer)
//! made.
//!
//! **The caller's trace is a link, not the parent.** The parent stays Lambda's function segment
//! (`Lambda-Runtime-Trace-Id`), so X-Ray keeps the invocation under the function's segment; the
//! trace the caller sent (`traceparent`, `X-Amzn-Trace-Id`, SQS's `AWSTraceHeader`) is linked.
//! That is what the FaaS conventions suggest for incoming context the function does not control,
//! what ADOT does when Lambda's X-Ray context is present, and the only choice for a batch, whose
//! messages come from many traces.

use opentelemetry::{
    Context,
    propagation::TextMapPropagator,
    trace::{SpanContext, Status, TraceContextExt},
};
use opentelemetry_aws::trace::{XrayPropagator, xray_propagator::span_context_from_str};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// HTTP triggers: API Gateway, function URLs, Application Load Balancer.
pub mod http {
    use super::*;

    /// Puts the request on the invocation span: `http.request.method`, `url.path`, and a link
    /// to the caller's trace (a W3C `traceparent`, else an `X-Amzn-Trace-Id`) when `headers`
    /// carry one. Returns whether a link was added.
    pub fn request(method: &str, path: &str, headers: &::http::HeaderMap) -> bool {
        let span = tracing::Span::current();
        span.set_attribute("http.request.method", method.to_owned());
        span.set_attribute("url.path", path.to_owned());
        let headers = opentelemetry_http::HeaderExtractor(headers);
        // From an empty context: `extract` starts from the current one, the invocation span.
        let xray = XrayPropagator::new().extract_with_context(&Context::new(), &headers);
        let caller = TraceContextPropagator::new().extract_with_context(&xray, &headers);
        link(&span, caller.span().span_context().clone())
    }

    /// The route that matched (`/hello/{name}`): `http.route`, and the span named
    /// `{method} {route}`.
    pub fn route(method: &str, route: &str) {
        let span = tracing::Span::current();
        span.set_attribute("http.route", route.to_owned());
        // TraceLayer started the span to read its ids, and tracing-opentelemetry takes a recorded
        // `otel.name` only before the start: the OpenTelemetry span itself is renamed.
        span.context()
            .span()
            .update_name(format!("{method} {route}"));
    }

    /// The response's status: `http.response.status_code`, and an error status for a 5xx (a
    /// 4xx is the caller's, not the span's, error).
    pub fn status(code: u16) {
        let span = tracing::Span::current();
        span.set_attribute("http.response.status_code", i64::from(code));
        if code >= 500 {
            span.set_status(Status::error(format!("HTTP {code}")));
        }
    }
}

/// Messaging triggers: SQS, SNS, Kinesis, EventBridge.
pub mod messaging {
    use super::*;

    /// A span for processing one message, named `process {destination}`, with
    /// `messaging.system`, `messaging.operation.type = process`, `messaging.destination.name` and
    /// `messaging.message.id`, linked to the sender's trace when `xray_header` (SQS's
    /// `AWSTraceHeader`) carries one. Enter it (or instrument the message's future with it).
    pub fn process_span(
        system: &'static str,
        destination: &str,
        message_id: Option<&str>,
        xray_header: Option<&str>,
    ) -> tracing::Span {
        let span = tracing::info_span!(
            "process",
            otel.name = %format_args!("process {destination}"),
            messaging.system = system,
            messaging.operation.type = "process",
            messaging.destination.name = destination,
            messaging.message.id = message_id,
        );
        // Before the span starts, so that a sampler sees it.
        if let Some(sender) = xray_header.and_then(span_context_from_str) {
            link(&span, sender);
        }
        span
    }

    /// Puts the batch on the invocation span: `messaging.batch.message_count`, and the
    /// succeeded and failed counts, which no convention names yet (`batch.succeeded_count`,
    /// `batch.failed_count`).
    pub fn batch(messages: usize, failed: usize) {
        let span = tracing::Span::current();
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        span.set_attribute("messaging.batch.message_count", count(messages));
        span.set_attribute(
            "batch.succeeded_count",
            count(messages.saturating_sub(failed)),
        );
        span.set_attribute("batch.failed_count", count(failed));
    }
}

/// Links `span` to `to` when it is a valid span context.
fn link(span: &tracing::Span, to: SpanContext) -> bool {
    if !to.is_valid() {
        return false;
    }
    span.add_link(to);
    true
}
