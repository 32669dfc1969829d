//! What the runtime posts when an invocation, or the init, fails.
//!
//! The body is `{"errorType", "errorMessage", "stackTrace"}`. The
//! `Lambda-Runtime-Function-XRay-Error-Cause` header is the `cause` object of an X-Ray segment,
//! the shape the managed runtimes send:
//!
//! ```json
//! {"working_directory": "/var/task",
//!  "exceptions": [{"type": "Panic", "message": "…", "stack": [{"path": "src/handler.rs", "line": 42, "label": "panic"}]}],
//!  "paths": ["src/handler.rs"]}
//! ```
//!
//! It holds the error type, message and stack only (never the event, headers or environment),
//! in ASCII (other characters `\u`-escaped), and is at most [`MAX_XRAY_CAUSE_BYTES`] long: the
//! message is cut to [`MAX_MESSAGE_BYTES`], each frame label to [`MAX_LABEL_BYTES`], and frames
//! are dropped from the end (counted in `truncated`) until it fits.

use std::{fmt, sync::OnceLock, time::Duration};

use serde::Serialize;
use serde_json::json;

use super::api::RuntimeApi;
use crate::{BoxError, error::InvocationError};

/// Upper bound of the X-Ray cause header, in bytes.
pub const MAX_XRAY_CAUSE_BYTES: usize = 8 * 1024;
/// Upper bound of the exception message in the X-Ray cause, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Upper bound of each stack frame's label and path in the X-Ray cause, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// At most this many stack frames go into the X-Ray cause.
const MAX_FRAMES: usize = 32;

/// An error ready to be posted: the body and the two headers.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReport {
    error_type: String,
    body: Vec<u8>,
    xray_cause: String,
}

impl ErrorReport {
    /// The report of a failed invocation.
    pub(crate) fn invocation(error: &InvocationError) -> Self {
        Self {
            error_type: header_safe(error.error_type()),
            body: body(error.error_type(), error.message(), error.stack_trace()),
            xray_cause: xray_cause(error),
        }
    }

    /// The report of a failed init: `errorType` `Runtime.<error_type>`, no stack, no cause.
    pub(crate) fn init(error: &InitError) -> Self {
        let error_type = format!("Runtime.{}", error.error_type);
        let message = crate::error::error_chain(error.source.as_ref());
        Self {
            body: serde_json::to_vec(&json!({"errorType": error_type, "errorMessage": message}))
                .unwrap_or_default(),
            error_type: header_safe(&error_type),
            xray_cause: String::new(),
        }
    }

    pub(crate) fn error_type_header(&self) -> &str {
        &self.error_type
    }

    pub(crate) fn xray_cause(&self) -> &str {
        &self.xray_cause
    }

    pub(crate) fn body(&self) -> Vec<u8> {
        self.body.clone()
    }
}

fn body(error_type: &str, message: &str, stack_trace: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "errorType": error_type,
        "errorMessage": message,
        "stackTrace": stack_trace,
    }))
    .unwrap_or_default()
}

#[derive(Serialize)]
struct Cause<'a> {
    working_directory: &'a str,
    exceptions: [Exception<'a>; 1],
    paths: Vec<&'a str>,
}

#[derive(Serialize)]
struct Exception<'a> {
    #[serde(rename = "type")]
    error_type: &'a str,
    message: &'a str,
    stack: Vec<Frame<'a>>,
    #[serde(skip_serializing_if = "is_zero")]
    truncated: usize,
}

#[derive(Serialize)]
struct Frame<'a> {
    path: &'a str,
    line: u32,
    label: &'a str,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The X-Ray cause of `error`, at most [`MAX_XRAY_CAUSE_BYTES`].
pub(crate) fn xray_cause(error: &InvocationError) -> String {
    let mut stack: Vec<Frame<'_>> = match error.panic_location() {
        Some(location) => vec![Frame {
            path: truncate(location.file(), MAX_LABEL_BYTES),
            line: location.line(),
            label: "panic",
        }],
        // A returned error has no code location: its frames are its causes (the first entry
        // of the stack trace is the error's own message, already the exception's message).
        None => error
            .stack_trace()
            .iter()
            .skip(1)
            .map(|cause| Frame {
                path: "",
                line: 0,
                label: truncate(cause, MAX_LABEL_BYTES),
            })
            .collect(),
    };
    let mut truncated = stack.len().saturating_sub(MAX_FRAMES);
    stack.truncate(MAX_FRAMES);
    loop {
        let mut paths: Vec<&str> = stack
            .iter()
            .map(|f| f.path)
            .filter(|p| !p.is_empty())
            .collect();
        paths.dedup();
        let cause = Cause {
            working_directory: truncate(working_directory(), MAX_LABEL_BYTES),
            exceptions: [Exception {
                error_type: truncate(error.error_type(), MAX_LABEL_BYTES),
                message: truncate(error.message(), MAX_MESSAGE_BYTES),
                stack: std::mem::take(&mut stack),
                truncated,
            }],
            paths,
        };
        let text = ascii_json(&cause);
        let [exception] = cause.exceptions;
        stack = exception.stack;
        if text.len() <= MAX_XRAY_CAUSE_BYTES || stack.is_empty() {
            return text;
        }
        stack.pop();
        truncated += 1;
    }
}

/// The process's working directory, read once (`/var/task` on Lambda).
fn working_directory() -> &'static str {
    static DIRECTORY: OnceLock<String> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    })
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// JSON with every non-ASCII character and DEL `\u`-escaped: a header value must be visible ASCII.
fn ascii_json(value: &impl Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    // serde_json escapes the C0 controls; DEL (0x7f) is ASCII but no header value either.
    if text.bytes().all(|b| b.is_ascii() && b != 0x7f) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_ascii() && c != '\x7f' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// An `errorType` usable as a header value: visible ASCII, else `Unhandled`.
fn header_safe(error_type: &str) -> String {
    if !error_type.is_empty()
        && error_type
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ')
    {
        truncate(error_type, MAX_LABEL_BYTES).to_owned()
    } else {
        "Unhandled".to_owned()
    }
}

/// A failure during init, reported to `/runtime/init/error` by [`report_init_error`].
#[derive(Debug)]
pub struct InitError {
    error_type: &'static str,
    source: BoxError,
}

impl InitError {
    /// A failure of kind `error_type` (reported as `Runtime.<error_type>`, e.g.
    /// `Runtime.InvalidConfig`) caused by `source`.
    pub fn new(error_type: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            error_type,
            source: source.into(),
        }
    }

    /// The kind, without the `Runtime.` prefix.
    pub fn error_type(&self) -> &'static str {
        self.error_type
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!(
            "Runtime.{}: {}",
            self.error_type,
            crate::error::error_chain(self.source.as_ref())
        ))
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

/// How long [`report_init_error`] waits for the Runtime API: the process is about to exit.
const INIT_ERROR_TIMEOUT: Duration = Duration::from_secs(2);

/// Posts `error` to `/runtime/init/error` of the Runtime API at `endpoint` (the value of
/// `AWS_LAMBDA_RUNTIME_API`): body `{"errorType": "Runtime.<type>", "errorMessage"}`, header
/// `Lambda-Runtime-Function-Error-Type: Runtime.<type>`. Lambda then fails the init with that
/// error instead of a bare "Runtime exited". The caller exits non-zero afterwards.
pub async fn report_init_error(endpoint: &str, error: &InitError) -> Result<(), BoxError> {
    let api = RuntimeApi::new(endpoint, 1)?;
    let report = ErrorReport::init(error);
    tokio::time::timeout(INIT_ERROR_TIMEOUT, api.report_init_error(&report))
        .await
        .map_err(|_| format!("the Runtime API did not answer within {INIT_ERROR_TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{CodeLocation, ErrorKind};
    use serde_json::Value;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn a_panic_cause_names_its_location() {
        let error =
            InvocationError::from_panic(&"boom", Some(CodeLocation::new("src/handler.rs", 42, 9)));
        let cause = parse(&xray_cause(&error));
        assert_eq!(cause["exceptions"][0]["type"], "Panic");
        assert_eq!(cause["exceptions"][0]["message"], "boom");
        assert_eq!(
            cause["exceptions"][0]["stack"][0],
            json!({"path": "src/handler.rs", "line": 42, "label": "panic"})
        );
        assert_eq!(cause["paths"], json!(["src/handler.rs"]));
        assert!(cause["working_directory"].is_string());
        let body = parse(&String::from_utf8_lossy(
            &ErrorReport::invocation(&error).body(),
        ));
        assert_eq!(body["stackTrace"], json!(["src/handler.rs:42:9"]));
    }

    #[test]
    fn the_cause_is_bounded_ascii_whatever_the_error() {
        let huge = InvocationError::new("Huge", "é".repeat(50_000), ErrorKind::Fault)
            .with_stack_trace(vec!["top".to_owned(), "ü".repeat(1_000)]);
        let text = xray_cause(&huge);
        assert!(text.len() <= MAX_XRAY_CAUSE_BYTES, "{}", text.len());
        assert!(text.is_ascii());
        let cause = parse(&text);
        let message = cause["exceptions"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.len() <= MAX_MESSAGE_BYTES && message.starts_with('é'));
        let label = cause["exceptions"][0]["stack"][0]["label"]
            .as_str()
            .unwrap_or_default();
        assert!(label.len() <= MAX_LABEL_BYTES && label.starts_with('ü'));
    }

    #[test]
    fn many_causes_are_cut_and_counted() {
        let mut chain = vec!["top".to_owned()];
        // 200 causes of 250 bytes: far over the bound.
        chain.extend((0..200).map(|i| format!("{i:03}{}", "c".repeat(247))));
        let error = InvocationError::new("Chain", "top", ErrorKind::Fault).with_stack_trace(chain);
        let text = xray_cause(&error);
        assert!(text.len() <= MAX_XRAY_CAUSE_BYTES);
        let cause = parse(&text);
        let stack = cause["exceptions"][0]["stack"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let truncated = cause["exceptions"][0]["truncated"]
            .as_u64()
            .unwrap_or_default();
        assert!(!stack.is_empty());
        assert_eq!(stack[0]["label"].as_str().map(|l| &l[..3]), Some("000"));
        assert_eq!(stack.len() as u64 + truncated, 200);
    }

    #[test]
    fn init_errors_are_runtime_typed() {
        let error = InitError::new("InvalidConfig", "AWS_XRAY_DAEMON_ADDRESS is not an address");
        let report = ErrorReport::init(&error);
        assert_eq!(report.error_type_header(), "Runtime.InvalidConfig");
        let body = parse(&String::from_utf8_lossy(&report.body()));
        assert_eq!(
            body,
            json!({"errorType": "Runtime.InvalidConfig", "errorMessage": "AWS_XRAY_DAEMON_ADDRESS is not an address"})
        );
        assert_eq!(
            error.to_string(),
            "Runtime.InvalidConfig: AWS_XRAY_DAEMON_ADDRESS is not an address"
        );
    }

    /// `error_type` is what a caller matches on (without the `Runtime.` prefix), and the source
    /// is the error's cause, for `error_chain` and error reporters.
    #[test]
    fn init_errors_give_their_type_and_their_cause() {
        let error = InitError::new("InvalidConfig", "no endpoint");
        assert_eq!(error.error_type(), "InvalidConfig");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("no endpoint"));
        assert_eq!(
            crate::error::error_chain(&error),
            "Runtime.InvalidConfig: no endpoint: no endpoint"
        );
    }

    #[test]
    fn the_cause_is_a_header_value_whatever_the_message_holds() {
        for message in [
            "del \u{7f} here",
            "tab\tand newline\n",
            "ünïcödé ✓",
            "nul \0",
        ] {
            let error = InvocationError::new("Boom", message, ErrorKind::Fault);
            let report = ErrorReport::invocation(&error);
            let cause = report.xray_cause();
            assert!(
                http::HeaderValue::from_str(cause).is_ok(),
                "{message:?} gave {cause:?}"
            );
            let parsed = parse(cause);
            assert_eq!(parsed["exceptions"][0]["message"], message);
        }
    }

    #[test]
    fn unusable_error_types_do_not_break_the_header() {
        assert_eq!(header_safe("Bad\nType"), "Unhandled");
        assert_eq!(header_safe(""), "Unhandled");
        assert_eq!(header_safe("InvalidEvent"), "InvalidEvent");
    }

    #[test]
    fn truncation_backs_off_to_a_character_boundary() {
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("aéb", 3), "aé");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("ééé", 5), "éé");
    }

    #[test]
    fn the_cause_names_the_working_directory_and_no_zero_truncation() {
        let error = InvocationError::new("Small", "small", ErrorKind::Fault)
            .with_stack_trace(vec!["small".into(), "cause".into()]);
        let cause = parse(&xray_cause(&error));
        let directory = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        assert!(!directory.is_empty());
        assert_eq!(cause["working_directory"], directory.as_str());
        assert_eq!(working_directory(), directory);
        let exception = cause["exceptions"][0]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(!exception.contains_key("truncated"), "{cause}");
        assert_eq!(cause["exceptions"][0]["stack"][0]["label"], "cause");
    }
}
