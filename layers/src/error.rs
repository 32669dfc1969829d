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
//! The [`InvocationError`] carries what the runtime posts to `/invocation/{id}/error`: the type,
//! the message, the kind and a stack trace (the error's source chain, or the panic location).
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
    cell::{Cell, RefCell},
    fmt,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::Once,
    task::{Context, Poll},
};

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

/// Where in the source a panic happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLocation {
    file: String,
    line: u32,
    column: u32,
}

impl CodeLocation {
    /// A location in `file` at `line`:`column`.
    pub fn new(file: impl Into<String>, line: u32, column: u32) -> Self {
        Self {
            file: file.into(),
            line,
            column,
        }
    }

    /// The source file, as the compiler named it (e.g. `src/handler.rs`).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The 1-based line.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The 1-based column.
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Display for CodeLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}:{}:{}", self.file, self.line, self.column))
    }
}

/// How an invocation failed, as the runtime reports it to Lambda: the `errorType`, the message,
/// whose fault it was, and a stack trace.
///
/// The stack trace of a returned error is its chain: the error's own message, then one entry per
/// [`source`](std::error::Error::source). The stack trace of a panic is its location,
/// `file:line:col` (see [`panic_location`](Self::panic_location)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationError {
    error_type: String,
    message: String,
    kind: ErrorKind,
    stack_trace: Vec<String>,
    panic_location: Option<CodeLocation>,
}

/// The `errorType` of a handler panic.
pub const PANIC_ERROR_TYPE: &str = "Panic";

impl InvocationError {
    /// An error with no stack trace.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>, kind: ErrorKind) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
            kind,
            stack_trace: Vec::new(),
            panic_location: None,
        }
    }

    /// The report of a typed error: its type, kind, message and source chain.
    pub fn from_error<E: FunctionError + ?Sized>(err: &E) -> Self {
        let message = err.to_string();
        let mut stack_trace = vec![message.clone()];
        let mut source = err.source();
        while let Some(cause) = source {
            stack_trace.push(cause.to_string());
            source = cause.source();
        }
        Self {
            stack_trace,
            ..Self::new(err.error_type(), message, err.kind())
        }
    }

    /// The report of a panic with `payload` (what `catch_unwind` returned), raised at `location`.
    pub fn from_panic(payload: &(dyn Any + Send), location: Option<CodeLocation>) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the handler panicked".to_owned());
        Self {
            stack_trace: location.iter().map(ToString::to_string).collect(),
            panic_location: location,
            ..Self::new(PANIC_ERROR_TYPE, message, ErrorKind::Fault)
        }
    }

    /// Replaces the stack trace. Defaults to the error chain, or the panic location.
    pub fn with_stack_trace(mut self, stack_trace: Vec<String>) -> Self {
        self.stack_trace = stack_trace;
        self
    }

    /// The `errorType`, e.g. `InvalidEvent` or `Panic`.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The `errorMessage`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whose fault it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The `stackTrace`: the error chain of a returned error, the location of a panic.
    pub fn stack_trace(&self) -> &[String] {
        &self.stack_trace
    }

    /// Where the handler panicked, for a panic whose location was captured.
    pub fn panic_location(&self) -> Option<&CodeLocation> {
        self.panic_location.as_ref()
    }
}

impl fmt::Display for InvocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}: {}", self.error_type, self.message))
    }
}

impl std::error::Error for InvocationError {}

impl From<InvocationError> for Diagnostic {
    fn from(error: InvocationError) -> Self {
        Diagnostic {
            error_type: error.error_type,
            error_message: error.message,
        }
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

thread_local! {
    /// How many [`catch_panic`] calls are running on this thread.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// The location of the last panic caught on this thread, stashed by the panic hook.
    static CAUGHT_AT: RefCell<Option<CodeLocation>> = const { RefCell::new(None) };
}

static PANIC_HOOK: Once = Once::new();

/// Installs, once per process, the panic hook that records where a panic happened.
///
/// A panic inside [`catch_panic`] (the handler under [`ErrorMap`] or the runtime's respond
/// service) only has its location stashed for the [`InvocationError`]: it is reported and logged
/// once, as an error of its invocation. Any other panic goes to the hook that was installed
/// before (by default, the standard message on stderr).
pub fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) > 0 {
                let location = info
                    .location()
                    .map(|l| CodeLocation::new(l.file(), l.line(), l.column()));
                CAUGHT_AT.with(|slot| *slot.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// Decrements [`CATCHING`] however `catch_panic` ends.
struct CatchScope;

impl CatchScope {
    fn enter() -> Self {
        CATCHING.with(|n| n.set(n.get() + 1));
        Self
    }
}

impl Drop for CatchScope {
    fn drop(&mut self) {
        CATCHING.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Runs `f`, turning a panic into the [`InvocationError`] that reports it, with its location.
pub fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, InvocationError> {
    install_panic_hook();
    let outcome = {
        let _scope = CatchScope::enter();
        catch_unwind(AssertUnwindSafe(f))
    };
    outcome.map_err(|payload| {
        let location = CAUGHT_AT.with(|slot| slot.borrow_mut().take());
        InvocationError::from_panic(payload.as_ref(), location)
    })
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

/// Records `error` on `span` (status, exception event, `error.type`, `ErrorKind`), logs it once,
/// and returns it.
pub fn record(span: &tracing::Span, error: InvocationError) -> InvocationError {
    let (error_type, message, kind) = (error.error_type(), error.message(), error.kind());
    span.set_status(Status::error(format!("{error_type}: {message}")));
    span.set_attribute("error.type", error_type.to_owned());
    span.set_attribute("ErrorKind", kind.as_str());
    if kind == ErrorKind::Client {
        // X-Ray classifies by HTTP status class: 4xx is an "error" (the caller's), anything
        // else with an error status a "fault". The invoke API answers a bad request with 400.
        span.set_attribute("http.response.status_code", 400_i64);
    }
    record_exception(span, error_type.to_owned(), message.to_owned());
    match (kind, error.panic_location()) {
        (ErrorKind::Client, _) => {
            tracing::warn!(parent: span, error_type, error_kind = kind.as_str(), "{message}")
        }
        (ErrorKind::Fault, None) => {
            tracing::error!(parent: span, error_type, error_kind = kind.as_str(), "{message}")
        }
        (ErrorKind::Fault, Some(location)) => tracing::error!(
            parent: span,
            error_type,
            error_kind = kind.as_str(),
            panic_location = %location,
            "{message}"
        ),
    }
    error
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

    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.pad("could not load")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl FunctionError for Wrapped {
        fn error_type(&self) -> &str {
            "LoadFailed"
        }
    }

    #[test]
    fn the_stack_trace_of_a_returned_error_is_its_source_chain() {
        let error = InvocationError::from_error(&Wrapped(std::io::Error::other("disk on fire")));
        assert_eq!(error.stack_trace(), ["could not load", "disk on fire"]);
        assert_eq!(error.kind(), ErrorKind::Fault);
        assert_eq!(error.panic_location(), None);
    }

    #[test]
    fn panics_are_caught_with_their_location_whatever_their_payload() {
        let caught = catch_panic(|| panic!("in call")).expect_err("caught");
        assert_eq!(caught.message(), "in call");
        assert_eq!(
            caught.panic_location().map(CodeLocation::file),
            Some(file!())
        );
        let next = catch_panic(|| std::panic::panic_any(7_u8)).expect_err("caught");
        assert_eq!(next.message(), "the handler panicked");
        assert!(next.panic_location().is_some());
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
