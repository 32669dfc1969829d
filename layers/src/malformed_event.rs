//! Middleware that turns an event body that is not JSON into one the handler can reject.
//!
//! `lambda_runtime` answers a body that does not deserialize with its own error type before the
//! handler runs, and stops the runtime on a body that is not UTF-8. This layer replaces such a
//! body with `{"$malformedEvent": "<parser error>"}` so that the handler — through
//! [`malformed_event`] — reports a typed error of its own (such as `InvalidEvent`) and the
//! process keeps serving. Valid bodies are passed through untouched (no copy).
//!
//! ```
//! use lambda_observability::MalformedEventLayer;
//! use lambda_runtime::LambdaInvocation;
//! use tower::{ServiceBuilder, service_fn};
//!
//! let service = ServiceBuilder::new()
//!     .layer(MalformedEventLayer::new())
//!     .service(service_fn(|_: LambdaInvocation| async { Ok::<(), lambda_runtime::Error>(()) }));
//! # drop(service);
//! ```

use std::task::{Context, Poll};

use lambda_runtime::LambdaInvocation;
use serde::de::IgnoredAny;
use tower::{Layer, Service};

/// The key of the replacement object.
pub const MALFORMED_EVENT_KEY: &str = "$malformedEvent";

/// The parser error, when `payload` is the replacement for a body that was not JSON.
pub fn malformed_event(payload: &serde_json::Value) -> Option<&str> {
    let object = payload.as_object()?;
    if object.len() != 1 {
        return None;
    }
    object.get(MALFORMED_EVENT_KEY)?.as_str()
}

/// Layer that applies [`MalformedEvent`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MalformedEventLayer {
    _priv: (),
}

impl MalformedEventLayer {
    /// Creates the layer.
    pub fn new() -> Self {
        Self { _priv: () }
    }
}

impl<S> Layer<S> for MalformedEventLayer {
    type Service = MalformedEvent<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MalformedEvent { inner }
    }
}

/// Middleware replacing bodies that are not JSON; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct MalformedEvent<S> {
    inner: S,
}

impl<S> Service<LambdaInvocation> for MalformedEvent<S>
where
    S: Service<LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: LambdaInvocation) -> Self::Future {
        if let Err(err) = serde_json::from_slice::<IgnoredAny>(&req.body) {
            let replacement = serde_json::json!({ MALFORMED_EVENT_KEY: format!("the event is not valid JSON: {err}") });
            req.body = replacement.to_string().into();
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::invocation;
    use tower::{ServiceExt, service_fn};

    async fn body_seen_by_inner(body: &'static [u8]) -> Vec<u8> {
        MalformedEventLayer::new()
            .layer(service_fn(|req: LambdaInvocation| async move {
                Ok::<_, lambda_runtime::Error>(req.body.to_vec())
            }))
            .oneshot(invocation(body, None))
            .await
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn valid_json_passes_untouched() {
        assert_eq!(body_seen_by_inner(br#" {"a": 1} "#).await, br#" {"a": 1} "#);
    }

    #[tokio::test]
    async fn broken_json_and_non_utf8_are_replaced() {
        for body in [&b"{not json"[..], &b"\xff\xfe"[..], &b""[..]] {
            let seen = body_seen_by_inner(body).await;
            let value: serde_json::Value =
                serde_json::from_slice(&seen).expect("replacement is JSON");
            let error = malformed_event(&value).expect("marked malformed");
            assert!(error.starts_with("the event is not valid JSON"), "{error}");
        }
        assert_eq!(
            malformed_event(&serde_json::json!({"firstName": "x"})),
            None
        );
    }
}
