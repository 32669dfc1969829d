//! Middleware that maps a handler's typed errors, and its panics, to
//! [`lambda_runtime::Diagnostic`] and records them on the invocation span.
//!
//! The handler's error type implements [`FunctionError`]: an `errorType` and whether the error is
//! the caller's ([`ErrorKind::Client`], e.g. an invalid event) or ours ([`ErrorKind::Fault`]).
//! `lambda_runtime` sends X-Ray nothing about an error, so this layer puts it on the current span:
//! status error, an `exception` event (`exception.type`, `exception.message`), `error.type`, and
//! the `ErrorKind` annotation (`client` or `fault`); a client error also gets
//! `http.response.status_code = 400`, which is how X-Ray tells an error from a fault. A panic
//! becomes a fault with `errorType` `Panic` and the panic message.
//!
//! ```
//! use lambda_observability::{ErrorKind, ErrorMapLayer, FunctionError};
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
    any::Any,
    fmt,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::FutureExt;
use lambda_runtime::{Diagnostic, LambdaEvent};
use opentelemetry::{KeyValue, trace::Status};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's: the event was invalid or asked for the failure (X-Ray "error").
    Client,
    /// Ours: a bug or a failed dependency (X-Ray "fault").
    Fault,
}

impl ErrorKind {
    /// `client` or `fault`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Fault => "fault",
        }
    }
}

/// A typed handler error that knows its `errorType` and [`ErrorKind`].
pub trait FunctionError: std::error::Error {
    /// The `errorType` Lambda reports, e.g. `InvalidEvent`.
    fn error_type(&self) -> &str;

    /// Whose fault it is. Defaults to [`ErrorKind::Fault`].
    fn kind(&self) -> ErrorKind {
        ErrorKind::Fault
    }
}

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

/// Middleware mapping typed errors and panics to [`Diagnostic`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ErrorMap<S> {
    inner: S,
}

impl<S, T> Service<LambdaEvent<T>> for ErrorMap<S>
where
    S: Service<LambdaEvent<T>>,
    S::Error: FunctionError,
{
    type Response = S::Response;
    type Error = Diagnostic;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|err| record(&tracing::Span::current(), &err))
    }

    fn call(&mut self, req: LambdaEvent<T>) -> Self::Future {
        let span = tracing::Span::current();
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => ResponseFuture::Running {
                inner: AssertUnwindSafe(future).catch_unwind(),
                span,
            },
            Err(panic) => ResponseFuture::Panicked {
                diagnostic: Some(record_panic(&span, panic)),
            },
        }
    }
}

pin_project! {
    /// Response future of [`ErrorMap`].
    #[project = Projection]
    pub enum ResponseFuture<F> {
        /// The handler is running.
        Running {
            #[pin]
            inner: futures_util::future::CatchUnwind<AssertUnwindSafe<F>>,
            span: tracing::Span,
        },
        /// The handler panicked in `call`.
        Panicked { diagnostic: Option<Diagnostic> },
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
    type Output = Result<R, Diagnostic>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projection::Running { inner, span } => inner.poll(cx).map(|outcome| match outcome {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(err)) => Err(record(span, &err)),
                Err(panic) => Err(record_panic(span, panic)),
            }),
            Projection::Panicked { diagnostic } => Poll::Ready(Err(diagnostic
                .take()
                .unwrap_or_else(|| panic!("ResponseFuture polled after completion")))),
        }
    }
}

fn record<E: FunctionError + ?Sized>(span: &tracing::Span, err: &E) -> Diagnostic {
    record_parts(span, err.error_type(), &err.to_string(), err.kind())
}

fn record_panic(span: &tracing::Span, panic: Box<dyn Any + Send>) -> Diagnostic {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the handler panicked".to_owned());
    record_parts(span, "Panic", &message, ErrorKind::Fault)
}

/// `err` and its sources, joined by `: `. Many errors' own message hides the cause (reqwest's
/// "error sending request" says nothing of DNS or a refused connection).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Adds the `exception` event (`exception.type`, `exception.message`) that X-Ray shows as the
/// segment's cause.
pub fn record_exception(span: &tracing::Span, error_type: String, message: String) {
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", error_type),
            KeyValue::new("exception.message", message),
        ],
    );
}

/// Records an error on `span` (status, exception event, `error.type`, `ErrorKind`), logs it, and
/// returns the [`Diagnostic`] Lambda will report.
pub fn record_parts(
    span: &tracing::Span,
    error_type: &str,
    message: &str,
    kind: ErrorKind,
) -> Diagnostic {
    span.set_status(Status::error(format!("{error_type}: {message}")));
    span.set_attribute("error.type", error_type.to_owned());
    span.set_attribute("ErrorKind", kind.as_str());
    if kind == ErrorKind::Client {
        // X-Ray classifies by HTTP status class: 4xx is an "error" (the caller's), anything
        // else with an error status a "fault". The invoke API answers a bad request with 400.
        span.set_attribute("http.response.status_code", 400_i64);
    }
    record_exception(span, error_type.to_owned(), message.to_owned());
    match kind {
        ErrorKind::Client => {
            tracing::warn!(parent: span, error_type, error_kind = kind.as_str(), "{message}")
        }
        ErrorKind::Fault => {
            tracing::error!(parent: span, error_type, error_kind = kind.as_str(), "{message}")
        }
    }
    Diagnostic {
        error_type: error_type.to_owned(),
        error_message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestTelemetry, event};
    use opentelemetry::Value;
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
        let diagnostic = telemetry
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
        assert_eq!(diagnostic.error_type, "InvalidEvent");
        assert_eq!(diagnostic.error_message, "field `age` is bad");
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
        let diagnostic = telemetry
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
            (
                diagnostic.error_type.as_str(),
                diagnostic.error_message.as_str()
            ),
            ("Panic", "boom at 42")
        );
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
