//! How an invocation failed, as the runtime reports it to Lambda.
//!
//! A handler's error type implements [`FunctionError`]: an `errorType` and whether the error is
//! the caller's ([`ErrorKind::Client`], e.g. an invalid event) or ours ([`ErrorKind::Fault`]).
//! [`InvocationError`] carries what the runtime posts to `/invocation/{id}/error`: the type, the
//! message, the kind and a stack trace (the error's source chain, or the panic location).
//! [`record`] puts an error on a span the way X-Ray reads it, and logs it once.

use std::{
    any::Any,
    cell::{Cell, RefCell},
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Once,
};

use lambda_runtime::Diagnostic;
use opentelemetry::{KeyValue, trace::Status};
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

thread_local! {
    /// How many [`catch_panic`] calls are running on this thread.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// The location of the last panic caught on this thread, stashed by the panic hook.
    static CAUGHT_AT: RefCell<Option<CodeLocation>> = const { RefCell::new(None) };
}

static PANIC_HOOK: Once = Once::new();

/// Installs, once per process, the panic hook that records where a panic happened.
///
/// A panic inside [`catch_panic`] (the handler under an error-mapping layer or the runtime's respond
/// service) only has its location stashed for the [`InvocationError`]: it is reported and logged
/// once, as an error of its invocation. Any other panic goes to the hook that was installed
/// before (by default, the standard message on stderr).
pub(crate) fn install_panic_hook() {
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

    /// What X-Ray reads off the invocation's span: the error status, `error.type`, `ErrorKind`,
    /// the `exception` event (the segment's cause) and, for the caller's errors only, a `400`
    /// (X-Ray counts a 4xx as an "error", anything else as a "fault").
    #[test]
    fn record_puts_the_error_on_the_span_as_x_ray_reads_it() {
        use opentelemetry::{Value, trace::TracerProvider as _};
        use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
        use tracing_subscriber::layer::SubscriberExt as _;

        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        lambda_observability_test_support::keep_call_sites_undecided();
        tracing::subscriber::with_default(subscriber, || {
            for (name, error) in [
                (
                    "client",
                    InvocationError::new("InvalidEvent", "no name", ErrorKind::Client),
                ),
                (
                    "fault",
                    InvocationError::new("DiskFull", "no space", ErrorKind::Fault),
                ),
            ] {
                let span = tracing::info_span!("invocation", otel.name = name);
                let returned = record(&span, error.clone());
                assert_eq!(returned, error, "given back as it came");
            }
        });
        let spans = exporter.get_finished_spans().expect("spans");
        let span = |name: &str| {
            spans
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no span {name}: {spans:?}"))
        };
        let attribute = |name: &str, key: &str| {
            span(name)
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.clone())
        };
        for (name, error_type, message, kind) in [
            ("client", "InvalidEvent", "no name", "client"),
            ("fault", "DiskFull", "no space", "fault"),
        ] {
            assert_eq!(
                span(name).status,
                Status::error(format!("{error_type}: {message}"))
            );
            assert_eq!(attribute(name, "error.type"), Some(Value::from(error_type)));
            assert_eq!(attribute(name, "ErrorKind"), Some(Value::from(kind)));
            // The log line of `record` is an event of the span too; the cause is the one named
            // `exception`.
            let events: Vec<_> = span(name)
                .events
                .iter()
                .filter(|e| e.name == "exception")
                .collect();
            assert_eq!(events.len(), 1, "{events:?}");
            let event: Vec<(&str, String)> = events[0]
                .attributes
                .iter()
                .map(|kv| (kv.key.as_str(), kv.value.to_string()))
                .collect();
            assert_eq!(
                event,
                [
                    ("exception.type", error_type.to_owned()),
                    ("exception.message", message.to_owned())
                ]
            );
        }
        assert_eq!(
            attribute("client", "http.response.status_code"),
            Some(Value::I64(400))
        );
        assert_eq!(attribute("fault", "http.response.status_code"), None);
    }

    #[test]
    fn kinds_locations_and_errors_read_as_reported() {
        assert_eq!(ErrorKind::Client.as_str(), "client");
        assert_eq!(ErrorKind::Fault.as_str(), "fault");
        let location = CodeLocation::new("src/handler.rs", 42, 9);
        assert_eq!(
            (location.file(), location.line(), location.column()),
            ("src/handler.rs", 42, 9)
        );
        assert_eq!(location.to_string(), "src/handler.rs:42:9");
        let error = InvocationError::new("InvalidEvent", "no name", ErrorKind::Client);
        assert_eq!(error.to_string(), "InvalidEvent: no name");
        assert_eq!(format!("{error:>24}"), "   InvalidEvent: no name");
    }
}
