//! What an invocation can fail with. Each error has the `errorType` Lambda reports and a kind:
//! the caller's fault (X-Ray "error") or ours (X-Ray "fault").

use std::fmt;

use lambda_observability::{ErrorKind, FunctionError, json_event::MalformedEvent};

/// The original's message for `throwError: true`, kept word for word.
pub const SIMPLE_EXCEPTION_MESSAGE: &str = "Sorry, but the caller wants to me to throw an error";

/// An error of the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    inner: Inner,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Inner {
    InvalidEvent { field: &'static str, reason: String },
    SimpleException,
}

impl HandlerError {
    /// The event is unusable because of `field` (`"event"` for the event as a whole).
    pub fn invalid_event(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            inner: Inner::InvalidEvent {
                field,
                reason: reason.into(),
            },
        }
    }

    /// The caller asked for an error (`throwError: true`).
    pub fn simple_exception() -> Self {
        Self {
            inner: Inner::SimpleException,
        }
    }

    /// The offending field of an invalid event.
    pub fn field(&self) -> Option<&'static str> {
        match &self.inner {
            Inner::InvalidEvent { field, .. } => Some(field),
            Inner::SimpleException => None,
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::InvalidEvent {
                field: "event",
                reason,
            } => f.pad(reason),
            Inner::InvalidEvent { field, reason } => {
                f.pad(&format!("invalid field `{field}`: {reason}"))
            }
            Inner::SimpleException => f.pad(SIMPLE_EXCEPTION_MESSAGE),
        }
    }
}

impl std::error::Error for HandlerError {}

/// A body that is not JSON (or not UTF-8) is the caller's mistake: an invalid event.
impl From<MalformedEvent> for HandlerError {
    fn from(error: MalformedEvent) -> Self {
        Self::invalid_event("event", error.to_string())
    }
}

impl FunctionError for HandlerError {
    fn error_type(&self) -> &str {
        match self.inner {
            Inner::InvalidEvent { .. } => "InvalidEvent",
            Inner::SimpleException => "SimpleException",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self.inner {
            // The caller sent something we cannot use.
            Inner::InvalidEvent { .. } => ErrorKind::Client,
            // Like the original, an exception raised by the function: a function error.
            Inner::SimpleException => ErrorKind::Fault,
        }
    }
}
