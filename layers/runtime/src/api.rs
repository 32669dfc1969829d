//! The requests of the Runtime API (`2018-06-01`), sent through `lambda_runtime_api_client`.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header::CONTENT_TYPE, response::Parts};
use lambda_runtime_api_client::{PooledClient, body::Body, build_request};

use super::report::ErrorReport;
use crate::BoxError;

/// Sent on `/next` by runtimes that support it, echoed on `/response` and `/error` so that Lambda
/// can reject a late answer to an invocation that already timed out.
pub(crate) const INVOCATION_ID: &str = "lambda-runtime-invocation-id";

/// The invocation id `/next` sent with this invocation, to echo on its answer.
pub(crate) fn invocation_id(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(INVOCATION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
const ERROR_TYPE: &str = "lambda-runtime-function-error-type";
const XRAY_ERROR_CAUSE: &str = "lambda-runtime-function-xray-error-cause";

/// One connection pool to the Runtime API, shared by every worker.
#[derive(Debug)]
pub(crate) struct RuntimeApi {
    client: PooledClient,
}

/// A Runtime API answer, its body read.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) parts: Parts,
    pub(crate) body: Bytes,
}

impl RuntimeApi {
    /// A client for `endpoint`, the value of `AWS_LAMBDA_RUNTIME_API` (`host:port`, or a URL).
    pub(crate) fn new(endpoint: &str, pool_size: usize) -> Result<Self, BoxError> {
        Ok(Self {
            client: PooledClient::builder()
                .with_endpoint(endpoint_uri(endpoint)?)
                .with_pool_size(pool_size)
                .build(),
        })
    }

    /// Sends `request`, reads the whole answer.
    async fn send(&self, request: Request<Body>) -> Result<Answer, BoxError> {
        let (parts, incoming) = self.client.call(request).await?.into_parts();
        let body = Body::new(incoming).collect().await?.to_bytes();
        Ok(Answer { parts, body })
    }

    /// `GET /runtime/invocation/next`: blocks until Lambda has an event.
    pub(crate) async fn next(&self) -> Result<Answer, BoxError> {
        let request = build_request()
            .method(Method::GET)
            .uri("/2018-06-01/runtime/invocation/next")
            .body(Body::empty())?;
        self.send(request).await
    }

    /// `POST /runtime/invocation/{id}/response` with the serialized response.
    pub(crate) async fn respond(
        &self,
        request_id: &str,
        invocation_id: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(), PostError> {
        let mut request = build_request()
            .method(Method::POST)
            .uri(invocation_uri(request_id, "response")?)
            .header(CONTENT_TYPE, "application/json");
        if let Some(id) = invocation_id {
            request = request.header(INVOCATION_ID, id);
        }
        let answer = self
            .send(request.body(Body::from(body))?)
            .await
            .map_err(PostError::Unsent)?;
        accepted(&answer, "response")
    }

    /// `POST /runtime/invocation/{id}/error` with the report, its type and X-Ray cause as headers.
    pub(crate) async fn report_error(
        &self,
        request_id: &str,
        invocation_id: Option<&str>,
        report: &ErrorReport,
    ) -> Result<(), PostError> {
        let mut request = build_request()
            .method(Method::POST)
            .uri(invocation_uri(request_id, "error")?)
            .header(CONTENT_TYPE, "application/json")
            .header(ERROR_TYPE, report.error_type_header());
        // The cause is built to be a valid header value; should it ever not be one, the error is
        // still posted, without it, rather than not at all.
        if let Ok(cause) = http::HeaderValue::from_str(report.xray_cause()) {
            request = request.header(XRAY_ERROR_CAUSE, cause);
        }
        if let Some(id) = invocation_id {
            request = request.header(INVOCATION_ID, id);
        }
        let answer = self
            .send(request.body(Body::from(report.body()))?)
            .await
            .map_err(PostError::Unsent)?;
        accepted(&answer, "error")
    }

    /// `POST /runtime/init/error`.
    pub(crate) async fn report_init_error(&self, report: &ErrorReport) -> Result<(), BoxError> {
        let request = build_request()
            .method(Method::POST)
            .uri("/2018-06-01/runtime/init/error")
            .header(CONTENT_TYPE, "application/json")
            .header(ERROR_TYPE, report.error_type_header())
            .body(Body::from(report.body()))?;
        let answer = self.send(request).await?;
        Ok(accepted(&answer, "init/error")?)
    }
}

/// Why a post to `/response` or `/error` did not get Lambda's `202`.
#[derive(Debug)]
pub(crate) enum PostError {
    /// The request could not be built or sent, or its answer read (a connection error).
    Unsent(BoxError),
    /// The Runtime API answered, but not `2xx`.
    Refused {
        status: StatusCode,
        what: &'static str,
        detail: String,
    },
}

impl PostError {
    /// Whether the Runtime API said the environment cannot go on: a `5xx` answer ("Container
    /// error. Non-recoverable state. Runtime should exit promptly", the Runtime API reference
    /// says of `500`).
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(self, Self::Refused { status, .. } if status.is_server_error())
    }

    /// The status the Runtime API answered, if it answered.
    pub(crate) fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            Self::Unsent(_) => None,
        }
    }
}

impl From<http::Error> for PostError {
    fn from(err: http::Error) -> Self {
        Self::Unsent(err.into())
    }
}

impl From<BoxError> for PostError {
    fn from(err: BoxError) -> Self {
        Self::Unsent(err)
    }
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsent(err) => write!(f, "it could not be sent: {err}"),
            Self::Refused {
                status,
                what,
                detail,
            } => {
                let reason = match *status {
                    StatusCode::BAD_REQUEST => " (the request was not valid)",
                    StatusCode::FORBIDDEN => " (forbidden)",
                    StatusCode::GONE => " (the invocation timed out or was already answered)",
                    StatusCode::PAYLOAD_TOO_LARGE => " (the payload is larger than Lambda accepts)",
                    s if s.is_server_error() => " (non-recoverable: the runtime stops)",
                    _ => "",
                };
                write!(
                    f,
                    "the Runtime API answered {status} to the {what}{reason}: {detail}"
                )
            }
        }
    }
}

impl std::error::Error for PostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unsent(err) => Some(err.as_ref()),
            Self::Refused { .. } => None,
        }
    }
}

/// The Runtime API's answer to a post, as an error unless it accepted it.
fn accepted(answer: &Answer, what: &'static str) -> Result<(), PostError> {
    let status = answer.parts.status;
    if status.is_success() {
        return Ok(());
    }
    let detail = String::from_utf8_lossy(&answer.body[..answer.body.len().min(256)]).into_owned();
    Err(PostError::Refused {
        status,
        what,
        detail,
    })
}

fn invocation_uri(request_id: &str, kind: &str) -> Result<Uri, BoxError> {
    // The request id comes from a header: accept only what a path segment carries as it is
    // (Lambda's are UUIDs), so that no id can add a query, escape, or climb out of the path.
    if request_id.is_empty()
        || request_id == "."
        || request_id == ".."
        || !request_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!("unusable request id {request_id:?}").into());
    }
    Ok(format!("/2018-06-01/runtime/invocation/{request_id}/{kind}").parse()?)
}

/// `AWS_LAMBDA_RUNTIME_API` is `host:port`; a full URL is accepted too.
pub(crate) fn endpoint_uri(endpoint: &str) -> Result<Uri, BoxError> {
    let endpoint = endpoint.trim();
    if endpoint.is_empty() {
        return Err("the Runtime API endpoint is empty".into());
    }
    let text = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    };
    let uri: Uri = text
        .parse()
        .map_err(|e| format!("the Runtime API endpoint {endpoint:?} is not usable: {e}"))?;
    if uri.authority().is_none() {
        return Err(format!("the Runtime API endpoint {endpoint:?} names no host").into());
    }
    Ok(uri)
}

/// Waits between attempts to reach the Runtime API: 50 ms, then doubling.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64 << attempt.min(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_host_port_or_urls() {
        assert_eq!(
            endpoint_uri("127.0.0.1:9001").map(|u| u.to_string()).ok(),
            Some("http://127.0.0.1:9001/".to_owned())
        );
        assert!(endpoint_uri("http://localhost:9001/base").is_ok());
        assert!(endpoint_uri("").is_err());
        assert!(endpoint_uri("not an address").is_err());
    }

    #[test]
    fn request_ids_cannot_escape_the_invocation_path() {
        assert!(invocation_uri("8476a536-e9f4-11e8-9739-2dfe598c3fcd", "response").is_ok());
        for id in [
            "",
            ".",
            "..",
            "../init/error",
            "a b",
            "a/b",
            "a?b",
            "a#b",
            "a%2Fb",
        ] {
            assert!(invocation_uri(id, "response").is_err(), "{id:?}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(50));
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(30), backoff(6));
    }
}
