//! Middleware that maps a handler's typed errors, and its panics, to an [`InvocationError`]
//! and records them on the invocation span.
//!
//! The handler's error type implements [`FunctionError`]: an `errorType` and whether the error is
//! the caller's ([`ErrorKind::Client`], e.g. an invalid event) or ours ([`ErrorKind::Fault`]).
//! This layer puts the error on the current span: status error, an `exception` event
//! (`exception.type`, `exception.message`), `error.type`, and the `ErrorKind` annotation
//! (`client` or `fault`); a client error also gets `http.response.status_code = 400`, which is how
//! X-Ray tells an error from a fault. It logs the error once (WARN for a client error, ERROR for a
//! fault): nothing downstream logs it again. A panic becomes a fault with `errorType` `Panic`, the
//! panic message, and the panic's `file:line:col` as its stack trace.
//!
//! ```
//! use lambda_observability_tower::{ErrorKind, ErrorMapLayer, FunctionError};
//! use lambda_runtime::LambdaEvent;
//! use serde_json::Value;
//! use tower::{ServiceBuilder, service_fn};
//!
//! #[derive(Debug)]
//! struct Rejected(String);
//! impl std::fmt::Display for Rejected {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.pad(&self.0) }
//! }
//! impl std::error::Error for Rejected {}
//! impl FunctionError for Rejected {
//!     fn error_type(&self) -> &str { "Rejected" }
//!     fn kind(&self) -> ErrorKind { ErrorKind::Client }
//! }
//!
//! let handler = ServiceBuilder::new()
//!     .layer(ErrorMapLayer::new())
//!     .service(service_fn(|e: LambdaEvent<Value>| async move { Err::<Value, _>(Rejected("no".into())) }));
//! # drop(handler);
//! ```

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use lambda_runtime::LambdaEvent;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{FunctionError, InvocationError, catch_panic, record};

/// Layer that applies [`ErrorMap`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorMapLayer {
    _priv: (),
}

impl ErrorMapLayer {
    /// Creates the layer.
    pub fn new() -> Self {
        Self { _priv: () }
    }
}

impl<S> Layer<S> for ErrorMapLayer {
    type Service = ErrorMap<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorMap { inner }
    }
}

/// Middleware mapping typed errors and panics to [`InvocationError`]; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct ErrorMap<S> {
    inner: S,
}

impl<S> ErrorMap<S> {
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

impl<S, T> Service<LambdaEvent<T>> for ErrorMap<S>
where
    S: Service<LambdaEvent<T>>,
    S::Error: FunctionError,
{
    type Response = S::Response;
    type Error = InvocationError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|err| record(&tracing::Span::current(), InvocationError::from_error(&err)))
    }

    fn call(&mut self, req: LambdaEvent<T>) -> Self::Future {
        let span = tracing::Span::current();
        match catch_panic(|| self.inner.call(req)) {
            Ok(future) => ResponseFuture::Running {
                inner: future,
                span,
            },
            Err(error) => ResponseFuture::Panicked {
                error: Some(record(&span, error)),
            },
        }
    }
}

pin_project! {
    /// Response future of [`ErrorMap`].
    #[project = Projection]
    #[allow(missing_docs)] // the pinned field cannot carry a doc comment
    pub enum ResponseFuture<F> {
        /// The handler is running.
        Running {
            #[pin]
            inner: F,
            span: tracing::Span,
        },
        /// The handler panicked in `call`.
        Panicked { error: Option<InvocationError> },
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<R, E>>,
    E: FunctionError,
{
    type Output = Result<R, InvocationError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projection::Running { inner, span } => match catch_panic(|| inner.poll(cx)) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(Ok(response))) => Poll::Ready(Ok(response)),
                Ok(Poll::Ready(Err(err))) => {
                    Poll::Ready(Err(record(span, InvocationError::from_error(&err))))
                }
                Err(error) => Poll::Ready(Err(record(span, error))),
            },
            Projection::Panicked { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| panic!("ResponseFuture polled after completion")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::test_support::{TestTelemetry, event};
    use lambda_runtime::Diagnostic;
    use opentelemetry::Value;
    use opentelemetry::trace::Status;
    use tower::{ServiceExt, service_fn};

    #[derive(Debug)]
    struct Bad(ErrorKind);
    impl fmt::Display for Bad {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.pad("field `age` is bad")
        }
    }
    impl std::error::Error for Bad {}
    impl FunctionError for Bad {
        fn error_type(&self) -> &str {
            "InvalidEvent"
        }
        fn kind(&self) -> ErrorKind {
            self.0
        }
    }

    #[tokio::test]
    async fn typed_errors_become_diagnostics_and_span_exceptions() {
        let telemetry = TestTelemetry::new();
        let error = telemetry
            .in_span(async {
                ErrorMapLayer::new()
                    .layer(service_fn(|_: LambdaEvent<()>| async {
                        Err::<(), _>(Bad(ErrorKind::Client))
                    }))
                    .oneshot(event(()))
                    .await
            })
            .await
            .expect_err("must fail");
        assert_eq!(error.error_type(), "InvalidEvent");
        assert_eq!(error.message(), "field `age` is bad");
        assert_eq!(error.stack_trace(), ["field `age` is bad"]);
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "InvalidEvent");
        let spans = telemetry.finished().await;
        let root = &spans[0];
        assert!(matches!(root.status, Status::Error { .. }));
        assert_eq!(
            crate::test_support::attr(root, "ErrorKind"),
            Some(Value::from("client"))
        );
        let exception = root
            .events
            .iter()
            .find(|e| e.name == "exception")
            .expect("exception event");
        assert!(
            exception.attributes.iter().any(
                |kv| kv.key.as_str() == "exception.type" && kv.value.as_str() == "InvalidEvent"
            )
        );
    }

    #[tokio::test]
    async fn panics_become_fault_diagnostics() {
        let telemetry = TestTelemetry::new();
        let error = telemetry
            .in_span(async {
                ErrorMapLayer::new()
                    .layer(service_fn(|_: LambdaEvent<()>| async {
                        if true {
                            panic!("boom at {}", 42);
                        }
                        Ok::<(), Bad>(())
                    }))
                    .oneshot(event(()))
                    .await
            })
            .await
            .expect_err("must fail");
        assert_eq!(
            (error.error_type(), error.message()),
            ("Panic", "boom at 42")
        );
        let location = error.panic_location().expect("location captured");
        assert_eq!(location.file(), file!());
        assert!(location.line() > 0 && location.column() > 0);
        assert_eq!(error.stack_trace(), [location.to_string()]);
        let spans = telemetry.finished().await;
        assert_eq!(
            crate::test_support::attr(&spans[0], "ErrorKind"),
            Some(Value::from("fault"))
        );
    }

    #[tokio::test]
    async fn success_passes_through_untouched() {
        let out = ErrorMapLayer::new()
            .layer(service_fn(|e: LambdaEvent<u8>| async move {
                Ok::<u8, Bad>(e.payload + 1)
            }))
            .oneshot(event(1u8))
            .await;
        assert_eq!(out, Ok(2));
    }
}
