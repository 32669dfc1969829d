//! An API Gateway HTTP API function (payload format 2.0) on `lambda-observability`:
//! `GET /hello/{name}` answers a JSON greeting, any other request 404, a failing handler 500.
//! All three are HTTP responses, not Lambda errors: the only Lambda error left is an event that
//! is not an API Gateway request at all (`InvalidEvent`, from the facade's JSON decoding).
//!
//! The invocation span follows the OpenTelemetry HTTP semantic conventions (v1.26+): named
//! `{method} {route}` (`GET /hello/{name}`), with `http.request.method`, `http.route` (when a
//! route matched), `url.path`, `http.response.status_code`, and an error status on a 5xx only.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest as Request, ApiGatewayV2httpResponse};
use hello_lambda::HandlerError;
use lambda_runtime::LambdaEvent;
use opentelemetry::trace::{SpanContext, Status, TraceContextExt};
use opentelemetry::{Context, propagation::TextMapPropagator};
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde_json::json;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    lambda_observability::run(tower::service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Request>) -> Result<ApiGatewayV2httpResponse, HandlerError> {
    // The invocation span: the facade's TraceLayer runs the handler inside it.
    let (request, span) = (event.payload, tracing::Span::current());
    // The caller's trace is a link, not the parent: the parent stays Lambda's function segment
    // (`Lambda-Runtime-Trace-Id`), so X-Ray keeps the invocation under the function's segment.
    // The FaaS conventions suggest a link for incoming context the function does not control,
    // and ADOT does the same when Lambda's X-Ray context is present.
    span.add_link(caller_trace(&request.headers));
    let method = request.request_context.http.method.as_str();
    let path = request.raw_path.as_deref().unwrap_or("/");
    span.set_attribute("http.request.method", method.to_owned());
    span.set_attribute("url.path", path.to_owned());
    let name = match (method, path.strip_prefix("/hello/")) {
        ("GET", Some(name)) if !name.contains('/') => name,
        _ => return Ok(respond(404, json!({ "message": "Not Found" }))),
    };
    span.set_attribute("http.route", "/hello/{name}");
    // TraceLayer started the span to read its ids, and tracing-opentelemetry 0.34 takes a
    // recorded `otel.name` before the start only: the OpenTelemetry span itself is renamed.
    span.context().span().update_name("GET /hello/{name}");
    // `?throwError=true` fails the handler, as it does `bootstrap`'s: a 500, not a Lambda error.
    if request.query_string_parameters.first("throwError") == Some("true") {
        let error = HandlerError::simple_exception();
        tracing::error!(%error, "the greeting failed: answering 500");
        span.set_status(Status::error(error.to_string()));
        return Ok(respond(500, json!({ "message": "Internal Server Error" })));
    }
    Ok(respond(
        200,
        json!({ "greeting": format!("Hello, {name}!") }),
    ))
}

/// A JSON response; its status code goes on the invocation span too.
fn respond(status: i64, body: serde_json::Value) -> ApiGatewayV2httpResponse {
    tracing::Span::current().set_attribute("http.response.status_code", status);
    let mut response = ApiGatewayV2httpResponse::default();
    (response.status_code, response.body) = (status, Some(body.to_string().into()));
    let json = http::HeaderValue::from_static("application/json");
    response.headers.insert(http::header::CONTENT_TYPE, json);
    response
}

/// The caller's trace in the request headers: a W3C `traceparent`, else an `X-Amzn-Trace-Id`
/// (a valid `traceparent` replaces the X-Ray context). Invalid, and then not linked, if neither.
fn caller_trace(headers: &http::HeaderMap) -> SpanContext {
    let headers = opentelemetry_http::HeaderExtractor(headers);
    // From an empty context: `extract` starts from the current one, i.e. the invocation span.
    let xray = XrayPropagator::new().extract_with_context(&Context::new(), &headers);
    let caller = TraceContextPropagator::new().extract_with_context(&xray, &headers);
    caller.span().span_context().clone()
}
