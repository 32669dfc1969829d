//! An API Gateway HTTP API function (payload format 2.0) on `lambda-observability`:
//! `GET /hello/{name}` answers a JSON greeting, any other request 404, a failing handler 500.
//! All three are HTTP responses, not Lambda errors: the only Lambda error left is an event that
//! is not an API Gateway request at all (`InvalidEvent`, from the facade's JSON decoding).
//!
//! The invocation span follows the OpenTelemetry HTTP semantic conventions (v1.26):
//! `GET /hello/{name}`, with `http.request.method`, `http.route` (when a route matched),
//! `url.path`, `http.response.status_code`, an error status on a 5xx only, and a link to the
//! caller's trace (`traceparent`, else `X-Amzn-Trace-Id`): see `lambda_observability::triggers`
//! for why a link and not the parent.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest as Request, ApiGatewayV2httpResponse};
use hello_lambda::HandlerError;
use lambda_observability::triggers::http;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    lambda_observability::run(tower::service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Request>) -> Result<ApiGatewayV2httpResponse, HandlerError> {
    let request = event.payload;
    let method = request.request_context.http.method.as_str();
    let path = request.raw_path.as_deref().unwrap_or("/");
    http::request(method, path, &request.headers);
    let name = match (method, path.strip_prefix("/hello/")) {
        ("GET", Some(name)) if !name.contains('/') => name,
        _ => return Ok(respond(404, json!({ "message": "Not Found" }))),
    };
    http::route(method, "/hello/{name}");
    // `?throwError=true` fails the handler, as it does `bootstrap`'s: a 500, not a Lambda error.
    if request.query_string_parameters.first("throwError") == Some("true") {
        let error = HandlerError::simple_exception();
        tracing::error!(%error, "the greeting failed: answering 500");
        return Ok(respond(500, json!({ "message": "Internal Server Error" })));
    }
    Ok(respond(
        200,
        json!({ "greeting": format!("Hello, {name}!") }),
    ))
}

/// A JSON response; its status goes on the invocation span too.
fn respond(status: u16, body: Value) -> ApiGatewayV2httpResponse {
    http::status(status);
    let mut response = ApiGatewayV2httpResponse::default();
    (response.status_code, response.body) = (status.into(), Some(body.to_string().into()));
    let json = ::http::HeaderValue::from_static("application/json");
    response.headers.insert(::http::header::CONTENT_TYPE, json);
    response
}
