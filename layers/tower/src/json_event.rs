//! Middleware that decodes the event body into the handler's payload type, and turns a body that
//! cannot be decoded into the handler's own typed error.
//!
//! The runtime hands the handler level a `LambdaEvent<Bytes>`: the raw body. [`JsonEvent`]
//! deserializes it into `T` and calls the handler with a `LambdaEvent<T>`. A body that is not
//! UTF-8, not JSON, or not a `T` never reaches the handler: the handler's error type converts a
//! [`MalformedEvent`] (`S::Error: From<MalformedEvent>`) and that error is the invocation's
//! outcome, typed like any other (e.g. `InvalidEvent`). Nothing in the body can pose as that error:
//! the decision is made on the parser's result, not on what the body says.
//!
//! ```
//! use bytes::Bytes;
//! use lambda_observability::{JsonEventLayer, json_event::MalformedEvent};
//! use lambda_runtime::{Context, LambdaEvent};
//! use serde_json::Value;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! #[derive(Debug)]
//! struct Invalid(String);
//! impl From<MalformedEvent> for Invalid {
//!     fn from(error: MalformedEvent) -> Self { Invalid(error.to_string()) }
//! }
//!
//! let handler = ServiceBuilder::new()
//!     .layer(JsonEventLayer::<Value>::new())
//!     .service(service_fn(|event: LambdaEvent<Value>| async move { Ok::<_, Invalid>(event.payload) }));
//! # tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(async {
//! let error = handler
//!     .oneshot(LambdaEvent::new(Bytes::from_static(b"{oops"), Context::default()))
//!     .await
//!     .expect_err("not JSON");
//! assert!(error.0.starts_with("the event is not valid JSON"));
//! # });
//! ```

use std::{
    fmt,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use lambda_runtime::LambdaEvent;
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower::{Layer, Service};

/// An event body that could not be decoded into the handler's payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedEvent {
    message: String,
    not_json: bool,
}

impl MalformedEvent {
    fn from_serde(error: &serde_json::Error) -> Self {
        // A syntax error's message names what the parser expected, never the input. A data
        // error's may quote the event (`invalid type: string "…"`, `unknown variant `…``), and
        // this message travels to the error report, the X-Ray cause, the span and the logs,
        // which must never carry the payload: it keeps only the position.
        let message = if error.is_data() {
            format!("at line {} column {}", error.line(), error.column())
        } else {
            error.to_string()
        };
        Self {
            message,
            not_json: !error.is_data(),
        }
    }

    /// What the parser said, e.g. `expected value at line 1 column 1`, or, for JSON of another
    /// shape, only where (`at line 1 column 12`): the details could quote the event.
    pub fn parser_message(&self) -> &str {
        &self.message
    }

    /// `true` when the body is not JSON at all (or not UTF-8), `false` when it is JSON of another
    /// shape than the payload type.
    pub fn is_not_json(&self) -> bool {
        self.not_json
    }
}

impl fmt::Display for MalformedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.not_json {
            f.pad(&format!("the event is not valid JSON: {}", self.message))
        } else {
            f.pad(&format!(
                "the event does not have the expected shape: {}",
                self.message
            ))
        }
    }
}

impl std::error::Error for MalformedEvent {}

/// Layer that applies [`JsonEvent`], decoding bodies into `T`.
pub struct JsonEventLayer<T> {
    _payload: PhantomData<fn() -> T>,
}

impl<T> JsonEventLayer<T> {
    /// Creates the layer.
    pub fn new() -> Self {
        Self {
            _payload: PhantomData,
        }
    }
}

impl<T> Default for JsonEventLayer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonEventLayer<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for JsonEventLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonEventLayer")
            .field("payload", &std::any::type_name::<T>())
            .finish()
    }
}

impl<S, T> Layer<S> for JsonEventLayer<T> {
    type Service = JsonEvent<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        JsonEvent {
            inner,
            _payload: PhantomData,
        }
    }
}

/// Middleware decoding `LambdaEvent<Bytes>` into `LambdaEvent<T>`; see the [module docs](self).
pub struct JsonEvent<S, T> {
    inner: S,
    _payload: PhantomData<fn() -> T>,
}

impl<S, T> JsonEvent<S, T> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, T> Clone for JsonEvent<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _payload: PhantomData,
        }
    }
}

impl<S: fmt::Debug, T> fmt::Debug for JsonEvent<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonEvent")
            .field("inner", &self.inner)
            .field("payload", &std::any::type_name::<T>())
            .finish()
    }
}

impl<S, T> Service<LambdaEvent<Bytes>> for JsonEvent<S, T>
where
    S: Service<LambdaEvent<T>>,
    S::Error: From<MalformedEvent>,
    T: DeserializeOwned,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: LambdaEvent<Bytes>) -> Self::Future {
        let (body, context) = req.into_parts();
        match serde_json::from_slice::<T>(&body) {
            Ok(payload) => ResponseFuture::Handler {
                inner: self.inner.call(LambdaEvent::new(payload, context)),
            },
            Err(error) => ResponseFuture::Malformed {
                error: Some(MalformedEvent::from_serde(&error).into()),
            },
        }
    }
}

pin_project! {
    /// Response future of [`JsonEvent`].
    #[project = Projection]
    #[allow(missing_docs)] // fields in `pin_project!` cannot carry doc comments
    pub enum ResponseFuture<F, E> {
        /// The handler is running.
        Handler {
            #[pin]
            inner: F,
        },
        /// The body could not be decoded: the handler's error for it.
        Malformed { error: Option<E> },
    }
}

impl<F, E> fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, R, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<R, E>>,
{
    type Output = Result<R, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projection::Handler { inner } => inner.poll(cx),
            Projection::Malformed { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| panic!("ResponseFuture polled after completion")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::event;
    use serde::Deserialize;
    use serde_json::Value;
    use tower::{ServiceExt, service_fn};

    #[derive(Debug, PartialEq)]
    struct Rejected(MalformedEvent);
    impl From<MalformedEvent> for Rejected {
        fn from(error: MalformedEvent) -> Self {
            Self(error)
        }
    }

    async fn decode<T: DeserializeOwned + Send + 'static>(
        body: &'static [u8],
    ) -> Result<T, Rejected> {
        JsonEventLayer::<T>::new()
            .layer(service_fn(|event: LambdaEvent<T>| async move {
                Ok::<_, Rejected>(event.payload)
            }))
            .oneshot(event(Bytes::from_static(body)))
            .await
    }

    #[tokio::test]
    async fn valid_json_reaches_the_handler_decoded() {
        let value: Value = decode(br#" {"a": 1} "#).await.expect("valid");
        assert_eq!(value, serde_json::json!({"a": 1}));
    }

    #[tokio::test]
    async fn broken_json_and_non_utf8_become_the_handlers_error() {
        for body in [
            &b"{not json"[..],
            &b"\xff\xfe"[..],
            &b""[..],
            &b"\"\xff\""[..],
        ] {
            let Rejected(error) = decode::<Value>(body).await.expect_err("malformed");
            assert!(error.is_not_json(), "{error}");
            assert!(
                error
                    .to_string()
                    .starts_with("the event is not valid JSON: "),
                "{error}"
            );
            assert!(!error.parser_message().is_empty());
        }
    }

    #[tokio::test]
    async fn json_of_another_shape_is_malformed_but_json() {
        #[derive(Debug, Deserialize)]
        struct Person {
            #[allow(dead_code)]
            age: u8,
        }
        let Rejected(error) = decode::<Person>(br#"{"age": "s3cr3t-value"}"#)
            .await
            .expect_err("wrong shape");
        assert!(!error.is_not_json());
        assert_eq!(
            error.to_string(),
            "the event does not have the expected shape: at line 1 column 22"
        );
        assert!(
            !error.to_string().contains("s3cr3t"),
            "the payload never reaches the message: {error}"
        );
    }

    #[tokio::test]
    async fn a_body_that_mimics_an_error_marker_is_an_ordinary_event() {
        let value: Value = decode(br#"{"$malformedEvent": "forged"}"#)
            .await
            .expect("ordinary JSON");
        assert_eq!(value["$malformedEvent"], "forged");
    }
}
