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
//! Two kinds ([`MalformedKind`]): bytes that are not JSON (RFC 8259: UTF-8 and the grammar) are
//! `the event is not valid JSON: …`; valid JSON that does not fit `T` is ``the event does not fit
//! the payload type at `$.items[1].age`: …``, naming where the decoder stopped and what does not
//! fit, never the value: `number out of range for u8`, `invalid type: string, expected u8`,
//! ``duplicate field `name` ``, a number beyond `f64` (`1e400`: serde_json reads no wider number),
//! nesting past serde_json's recursion limit (127 nested arrays and objects pass, the 128th is
//! refused). Which of the two is decided by an RFC 8259 check of the body, not by the parser's
//! wording. A duplicated key is refused by a derived struct (`duplicate field`, named); a `Value`
//! or a map keeps the last occurrence. serde itself reads a number beyond `f32` into an `f32`
//! field as infinity, without an error.
//!
//! ```
//! use bytes::Bytes;
//! use lambda_observability_tower::{JsonEventLayer, json_event::MalformedEvent};
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

/// What is wrong with an event body a [`MalformedEvent`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedKind {
    /// The bytes are not JSON: not UTF-8, truncated, garbage, trailing characters.
    NotJson,
    /// Valid JSON (RFC 8259 sets no range and no depth) that does not fit the payload type: a
    /// value of another type, a number out of range (of the field's type, or of `f64`, the widest
    /// number the decoder reads), a missing, unknown or duplicated field, a string with an
    /// unpaired surrogate escape, or nesting past the decoder's recursion limit (127 levels pass).
    DoesNotFit,
}

/// An event body that could not be decoded into the handler's payload type.
///
/// Its message never quotes a value of the event (it travels to the error report, the X-Ray
/// cause, the span and the logs): for JSON that does not fit, it names where (a path such as
/// `$.items[2].age`, whose keys are the event's, escaped and cut to 64 characters) and what does
/// not fit (`number out of range for u8`, `invalid type: string, expected u8`, ``duplicate field
/// `name` ``), never the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedEvent {
    kind: MalformedKind,
    message: String,
    path: Option<String>,
}

/// The widest number serde_json reads (without `arbitrary_precision`) is an `f64`.
const OUT_OF_F64_RANGE: &str =
    "number out of range: beyond f64 (about ±1.8e308), the widest number the decoder reads";
/// serde_json's limit, `Deserializer::disable_recursion_limit` aside.
/// Its counter starts at 128 and the container that brings it to 0 is refused: 127 levels pass.
const TOO_DEEP: &str = "nested deeper than the decoder allows (serde_json's recursion limit: at \
                        most 127 nested arrays and objects)";
/// A path longer than this many segments is shown by its ends.
const PATH_SEGMENTS_SHOWN: usize = 12;
/// Longer keys are cut in paths.
const KEY_CHARS_SHOWN: usize = 64;

impl MalformedEvent {
    fn from_serde(error: &serde_json::Error, body: &[u8]) -> Self {
        let text = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        let said = text.strip_suffix(&position).unwrap_or(&text);
        let misfit = match error.classify() {
            // A data error's message may quote the event (`invalid type: string "…"`, `unknown
            // variant `…``): only what does not fit is kept, never the value.
            serde_json::error::Category::Data => Some(describe_data(said)),
            // Some "syntax" errors are about valid JSON the decoder cannot hold (a number beyond
            // f64, nesting past its limit, ...): an RFC 8259 check, not the message, decides.
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                is_json(body).then(|| describe_syntax_misfit(said))
            }
            serde_json::error::Category::Io => None,
        };
        match misfit {
            // A syntax error's message names what the parser expected, never the input.
            None => Self {
                kind: MalformedKind::NotJson,
                message: text,
                path: None,
            },
            Some(reason) => Self {
                kind: MalformedKind::DoesNotFit,
                message: if error.line() == 0 {
                    reason
                } else {
                    format!("{reason}{position}")
                },
                path: offset_of(body, error.line(), error.column())
                    .map(|offset| path_at(body, offset)),
            },
        }
    }

    /// Whether the body is not JSON or JSON that does not fit the payload type.
    pub fn kind(&self) -> MalformedKind {
        self.kind
    }

    /// What the parser said, e.g. `expected value at line 1 column 1`, or, for JSON that does not
    /// fit, what does not fit and where, without the value (`number out of range for u8 at line 1
    /// column 12`, `invalid type: string, expected u8 at line 1 column 22`).
    pub fn parser_message(&self) -> &str {
        &self.message
    }

    /// For JSON that does not fit, the path where the decoder stopped: `$` for the event itself,
    /// `$.age`, `$.items[2]`, `$["a key"]`; `None` for a body that is not JSON.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// `true` when the body is not JSON at all (or not UTF-8), `false` when it is JSON that does
    /// not fit the payload type.
    pub fn is_not_json(&self) -> bool {
        self.kind == MalformedKind::NotJson
    }
}

impl fmt::Display for MalformedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.path) {
            (MalformedKind::NotJson, _) => {
                f.pad(&format!("the event is not valid JSON: {}", self.message))
            }
            (MalformedKind::DoesNotFit, Some(path)) => f.pad(&format!(
                "the event does not fit the payload type at `{path}`: {}",
                self.message
            )),
            (MalformedKind::DoesNotFit, None) => f.pad(&format!(
                "the event does not fit the payload type: {}",
                self.message
            )),
        }
    }
}

impl std::error::Error for MalformedEvent {}

/// Whether `body` is JSON text as RFC 8259 has it: UTF-8 and the grammar, with no limit on
/// numbers or depth and any `\u` escape (`IgnoredAny` reads the grammar iteratively and checks no
/// range, surrogate or UTF-8; the last is checked here).
fn is_json(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// A syntax-category error about valid JSON the decoder cannot hold, said without the input.
fn describe_syntax_misfit(said: &str) -> String {
    match said {
        "number out of range" => OUT_OF_F64_RANGE.to_owned(),
        "recursion limit exceeded" => TOO_DEEP.to_owned(),
        // `"\ud800"` is JSON (RFC 8259 §8.2 allows unpaired surrogates); no Rust string holds it.
        "lone leading surrogate in hex escape" | "unexpected end of hex escape" => {
            "a string with an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF), which is not text"
                .to_owned()
        }
        // A map with numeric keys (e.g. `BTreeMap<u32, _>`) and a key that is not a number:
        // serde_json reads the number in the quotes and wants the closing quote after it.
        "invalid value: expected key to be a number in quotes" | "expected `\"`" => {
            "invalid value: a key that is not a number in quotes, expected a numeric key".to_owned()
        }
        // The parser's syntax messages name what it expected, never the input.
        _ => format!("valid JSON the decoder does not read into the payload type ({said})"),
    }
}

/// serde's data error messages with the event's value left out; a message of another form (a
/// type's own `Error::custom`, which could quote anything) is left out whole.
fn describe_data(said: &str) -> String {
    const NUMBERS: [&str; 13] = [
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32",
    ];
    if let Some(rest) = said.strip_prefix("invalid type: ")
        && let Some((unexpected, expected)) = rest.rsplit_once(", expected ")
    {
        return format!("invalid type: {}, expected {expected}", kind_of(unexpected));
    }
    if let Some(rest) = said.strip_prefix("invalid value: ")
        && let Some((unexpected, expected)) = rest.rsplit_once(", expected ")
    {
        let kind = kind_of(unexpected);
        if matches!(kind, "integer" | "floating point") && NUMBERS.contains(&expected) {
            return format!("number out of range for {expected}");
        }
        return format!("invalid value: {kind}, expected {expected}");
    }
    if said.starts_with("invalid length ")
        || said.starts_with("missing field `")
        || said.starts_with("duplicate field `")
        || said.starts_with("data did not match any variant of untagged enum ")
    {
        // Lengths and the type's own field and enum names: nothing of the event's content.
        return said.to_owned();
    }
    for (prefix, what) in [
        ("unknown variant `", "unknown variant"),
        ("unknown field `", "unknown field"),
    ] {
        if let Some(rest) = said.strip_prefix(prefix) {
            // The variant is the event's (a string value); the field is in the path.
            let expected = rest
                .rsplit_once("`, expected ")
                .map(|(_, expected)| format!(", expected {expected}"))
                .or_else(|| {
                    rest.rsplit_once("`, there are no ")
                        .map(|(_, none)| format!(", there are no {none}"))
                })
                .unwrap_or_default();
            return format!("{what}{expected}");
        }
    }
    "the value does not fit the payload type (the decoder's words are left out: they could quote \
     the event)"
        .to_owned()
}

/// The kind of an `Unexpected` as serde displays it (`integer `300``, `string "…"`), without
/// the value.
fn kind_of(unexpected: &str) -> &'static str {
    const KINDS: [&str; 17] = [
        "boolean",
        "integer",
        "floating point",
        "character",
        "string",
        "byte array",
        "unit value",
        "Option value",
        "newtype struct",
        "sequence",
        "map",
        "enum",
        "unit variant",
        "newtype variant",
        "tuple variant",
        "struct variant",
        "null",
    ];
    let head = unexpected
        .split([' ', '`', '"'].as_slice())
        .next()
        .unwrap_or_default();
    KINDS
        .into_iter()
        .find(|kind| {
            unexpected == *kind
                || unexpected
                    .strip_prefix(kind)
                    .is_some_and(|rest| rest.starts_with(" `") || rest.starts_with(" \""))
        })
        .or_else(|| KINDS.into_iter().find(|kind| *kind == head))
        .unwrap_or("value")
}

/// The byte offset of serde_json's position (line from 1, column = bytes consumed on the line).
fn offset_of(body: &[u8], line: usize, column: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut start = 0;
    for _ in 1..line {
        match body.get(start..)?.iter().position(|&byte| byte == b'\n') {
            Some(newline) => start += newline + 1,
            None => return Some(body.len()),
        }
    }
    Some(start.saturating_add(column).min(body.len()))
}

enum Frame {
    Array {
        index: usize,
        started: bool,
    },
    Object {
        key: Option<String>,
        expect_key: bool,
    },
}

/// Where the decoder was after `body[..offset]`, a prefix of JSON it read: the keys and indices of
/// the arrays and objects it was in (an array's index once its element has started, an object's
/// key once read). Scans, never recurses: no depth is too much for it.
fn path_at(body: &[u8], offset: usize) -> String {
    let prefix = body.get(..offset).unwrap_or(body);
    let mut stack: Vec<Frame> = Vec::new();
    // Inside a string: `Some(start)` of a key's content, `None` for a value.
    let mut string: Option<Option<usize>> = None;
    let mut escaped = false;
    let mark_started = |stack: &mut Vec<Frame>| {
        if let Some(Frame::Array { started, .. }) = stack.last_mut() {
            *started = true;
        }
    };
    for (at, &byte) in prefix.iter().enumerate() {
        if let Some(key_start) = string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                string = None;
                if let (Some(start), Some(Frame::Object { key, .. })) =
                    (key_start, stack.last_mut())
                {
                    *key = Some(key_text(prefix.get(start..at).unwrap_or_default()));
                }
            }
            continue;
        }
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'"' => match stack.last_mut() {
                Some(Frame::Object { expect_key, .. }) if *expect_key => {
                    *expect_key = false;
                    string = Some(Some(at + 1));
                }
                _ => {
                    mark_started(&mut stack);
                    string = Some(None);
                }
            },
            b'{' | b'[' => {
                mark_started(&mut stack);
                stack.push(if byte == b'{' {
                    Frame::Object {
                        key: None,
                        expect_key: true,
                    }
                } else {
                    Frame::Array {
                        index: 0,
                        started: false,
                    }
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index, started }) => {
                    *index = index.saturating_add(1);
                    *started = false;
                }
                Some(Frame::Object { key, expect_key }) => {
                    *key = None;
                    *expect_key = true;
                }
                None => {}
            },
            b':' => {}
            _ => mark_started(&mut stack),
        }
    }
    // Stopped inside a key (a numeric key that is not a number): the key is the whole string.
    if let (Some(Some(start)), Some(Frame::Object { key, .. })) = (string, stack.last_mut()) {
        let rest = body.get(start..).unwrap_or_default();
        let mut escaped = false;
        let end = rest
            .iter()
            .position(|&byte| {
                let closing = byte == b'"' && !escaped;
                escaped = byte == b'\\' && !escaped;
                closing
            })
            .unwrap_or(rest.len());
        *key = Some(key_text(rest.get(..end).unwrap_or_default()));
    }
    let mut segments = Vec::new();
    for frame in &stack {
        match frame {
            Frame::Array {
                index,
                started: true,
            } => segments.push(format!("[{index}]")),
            Frame::Object { key: Some(key), .. } => segments.push(key_segment(key)),
            _ => break,
        }
    }
    let mut path = String::from("$");
    if segments.len() > PATH_SEGMENTS_SHOWN {
        let (head, tail) = (
            PATH_SEGMENTS_SHOWN / 3,
            PATH_SEGMENTS_SHOWN - PATH_SEGMENTS_SHOWN / 3,
        );
        path.extend(segments[..head].iter().map(String::as_str));
        path.push_str(&format!("…({} levels)…", segments.len() - head - tail));
        path.extend(segments[segments.len() - tail..].iter().map(String::as_str));
    } else {
        path.extend(segments.iter().map(String::as_str));
    }
    path
}

/// A key's text from its raw bytes between the quotes (escapes decoded when they can be).
fn key_text(raw: &[u8]) -> String {
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted)
        .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
}

/// `.name` for a key that reads as an identifier, else `["…"]` (JSON-escaped); cut to
/// [`KEY_CHARS_SHOWN`] characters.
fn key_segment(key: &str) -> String {
    let mut shown: String = key.chars().take(KEY_CHARS_SHOWN).collect();
    let cut = shown.len() < key.len();
    let identifier = !shown.is_empty()
        && !shown.starts_with(|c: char| c.is_ascii_digit())
        && shown
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if identifier && !cut {
        return format!(".{shown}");
    }
    if cut {
        shown.push('…');
    }
    format!(
        "[{}]",
        serde_json::to_string(&shown).unwrap_or_else(|_| String::from("\"?\""))
    )
}

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
                error: Some(MalformedEvent::from_serde(&error, &body).into()),
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
            "the event does not fit the payload type at `$.age`: invalid type: string, expected u8 at line 1 column 22"
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

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Typed {
        name: Option<String>,
        age: Option<u8>,
        id: Option<u32>,
        score: Option<f64>,
        items: Option<Vec<Item>>,
        extra: Option<Value>,
        by_id: Option<std::collections::BTreeMap<u32, String>>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        age: u8,
    }

    /// Decodes a body that must not fit: the message, printed for the record.
    async fn misfit<T: DeserializeOwned + Send + fmt::Debug + 'static>(
        body: &'static [u8],
    ) -> MalformedEvent {
        let Rejected(error) = decode::<T>(body).await.expect_err("does not fit");
        eprintln!("{} => {error}", String::from_utf8_lossy(body));
        assert_eq!(error.kind(), MalformedKind::DoesNotFit, "{error}");
        assert!(!error.is_not_json(), "{error}");
        error
    }

    #[tokio::test]
    async fn numbers_out_of_range_name_the_field_and_the_type() {
        for (error, path, message) in [
            (
                misfit::<Value>(br#"{"name":"x","age": 1e400}"#).await,
                "$.age",
                "the event does not fit the payload type at `$.age`: number out of range: beyond f64 (about ±1.8e308), the widest number the decoder reads at line 1 column 24",
            ),
            (
                misfit::<Typed>(br#"{"score": -1e400}"#).await,
                "$.score",
                "the event does not fit the payload type at `$.score`: number out of range: beyond f64 (about ±1.8e308), the widest number the decoder reads at line 1 column 16",
            ),
            (
                misfit::<Typed>(br#"{"age": 300}"#).await,
                "$.age",
                "the event does not fit the payload type at `$.age`: number out of range for u8 at line 1 column 11",
            ),
            (
                misfit::<Typed>(br#"{"id": -1}"#).await,
                "$.id",
                "the event does not fit the payload type at `$.id`: number out of range for u32 at line 1 column 9",
            ),
            (
                misfit::<Typed>(b"{\n  \"items\": [{\"age\": 1},\n {\"age\": 256}]}").await,
                "$.items[1].age",
                "the event does not fit the payload type at `$.items[1].age`: number out of range for u8 at line 3 column 12",
            ),
        ] {
            assert_eq!(error.path(), Some(path));
            assert_eq!(error.to_string(), message);
        }
    }

    #[tokio::test]
    async fn serde_reads_a_number_beyond_f32_into_an_f32_as_infinity() {
        #[derive(Debug, Deserialize)]
        struct Narrow {
            x: f32,
        }
        // Not ours to refuse (serde's `f32` takes any `f64`): pinned so the docs stay true.
        let narrow: Narrow = decode(br#"{"x": 1e39}"#).await.expect("serde takes it");
        assert_eq!(narrow.x, f32::INFINITY);
    }

    #[tokio::test]
    async fn a_string_where_a_number_belongs_names_the_field_not_the_value() {
        let error = misfit::<Typed>(br#"{"items": [{"age": "forty-two"}]}"#).await;
        assert_eq!(
            error.to_string(),
            "the event does not fit the payload type at `$.items[0].age`: invalid type: string, expected u8 at line 1 column 30"
        );
        assert!(!error.to_string().contains("forty"));
    }

    #[tokio::test]
    async fn a_duplicate_key_is_named_by_a_typed_payload_and_the_last_wins_in_a_value() {
        let error = misfit::<Typed>(br#"{"name": "a", "age": 1, "name": "b"}"#).await;
        assert_eq!(error.path(), Some("$.name"));
        assert_eq!(
            error.to_string(),
            "the event does not fit the payload type at `$.name`: duplicate field `name` at line 1 column 30"
        );
        // `Value` (the function's payload) and maps keep the last occurrence.
        let value: Value = decode(br#"{"name": "a", "name": "b"}"#)
            .await
            .expect("a Value takes duplicate keys");
        assert_eq!(value, serde_json::json!({"name": "b"}));
        let typed: Typed = decode(br#"{"by_id": {"1": "a", "1": "b"}}"#)
            .await
            .expect("a map takes duplicate keys");
        assert_eq!(typed.by_id, Some([(1, "b".to_owned())].into()));
    }

    #[tokio::test]
    async fn nesting_past_the_recursion_limit_names_the_limit_and_the_path() {
        static DEEP: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut body = b"{\"extra\": ".to_vec();
            body.extend(std::iter::repeat_n(b'[', 200));
            body.extend(std::iter::repeat_n(b']', 200));
            body.push(b'}');
            body
        });
        let body: &'static [u8] = &DEEP;
        let error = misfit::<Value>(body).await;
        // The object and 126 arrays pass; the 127th array (the 128th level) is refused: it is
        // element 0 of the 126th, at `$.extra` and 126 `[0]`.
        assert_eq!(
            error.to_string(),
            "the event does not fit the payload type at `$.extra[0][0][0]…(115 levels)…[0][0][0][0][0][0][0][0]`: nested deeper than the decoder allows (serde_json's recursion limit: at most 127 nested arrays and objects) at line 1 column 137"
        );
        let typed = misfit::<Typed>(body).await;
        assert_eq!(typed, error, "the same limit through a typed payload");
        // 127 levels are read, 128 are not.
        let nested = |depth: usize| -> &'static [u8] {
            Box::leak(
                [b"[".repeat(depth), b"]".repeat(depth)]
                    .concat()
                    .into_boxed_slice(),
            )
        };
        let fits: Value = decode(nested(127)).await.expect("127 levels");
        assert!(fits.is_array());
        let error = misfit::<Value>(nested(128)).await;
        assert!(error.to_string().contains("recursion limit"), "{error}");
        assert_eq!(
            error.path(),
            Some("$[0][0][0][0]…(115 levels)…[0][0][0][0][0][0][0][0]"),
            "the 128th array is element 0 of the 127th: 127 `[0]`"
        );
    }

    #[tokio::test]
    async fn other_misfits_say_what_does_not_fit() {
        for (error, message) in [
            (
                misfit::<Typed>(br#"{"items": [{}]}"#).await,
                "the event does not fit the payload type at `$.items[0]`: missing field `age` at line 1 column 13",
            ),
            (
                misfit::<Value>(br#"{"name": "\ud800"}"#).await,
                "the event does not fit the payload type at `$.name`: a string with an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF), which is not text at line 1 column 17",
            ),
            (
                misfit::<Typed>(br#"{"by_id": {"7": "a", "seven": "b"}}"#).await,
                "the event does not fit the payload type at `$.by_id.seven`: invalid value: a key that is not a number in quotes, expected a numeric key at line 1 column 22",
            ),
            (
                misfit::<Typed>(br#"{"by_id": {"0a": "b"}}"#).await,
                "the event does not fit the payload type at `$.by_id[\"0a\"]`: invalid value: a key that is not a number in quotes, expected a numeric key at line 1 column 14",
            ),
            (
                misfit::<Typed>(br#"{"by_id": {"-": "b"}}"#).await,
                "the event does not fit the payload type at `$.by_id[\"-\"]`: valid JSON the decoder does not read into the payload type (invalid number) at line 1 column 14",
            ),
            (
                misfit::<Value>(br#"{"a b\"c": 1e999}"#).await,
                "the event does not fit the payload type at `$[\"a b\\\"c\"]`: number out of range: beyond f64 (about ±1.8e308), the widest number the decoder reads at line 1 column 16",
            ),
            (
                // serde's derive takes a struct's fields from an array too.
                misfit::<Typed>(br#"[1]"#).await,
                "the event does not fit the payload type at `$[0]`: invalid type: integer, expected a string at line 1 column 2",
            ),
        ] {
            assert_eq!(error.to_string(), message);
        }
    }

    #[tokio::test]
    async fn bytes_that_are_not_json_stay_not_json() {
        for body in [
            &br#"{"name":"x","age": 1"#[..],
            &b"garbage"[..],
            &br#"{"age": 1} trailing"#[..],
            &br#"{"age": 1,}"#[..],
            &br#"{"age": 1e}"#[..],
            &br#"{"age": 01}"#[..],
            &br#"{"name": "\x"}"#[..],
            &b"[\"\x01\"]"[..],
            &b"{\"name\": \"\xff\"}"[..],
        ] {
            let Rejected(error) = decode::<Typed>(body).await.expect_err("not JSON");
            eprintln!("{} => {error}", String::from_utf8_lossy(body));
            assert_eq!(error.kind(), MalformedKind::NotJson, "{error}");
            assert_eq!(error.path(), None);
            assert!(
                error
                    .to_string()
                    .starts_with("the event is not valid JSON: "),
                "{error}"
            );
        }
    }

    #[test]
    fn data_messages_lose_the_value_and_keep_what_was_expected() {
        for (said, kept) in [
            (
                "invalid type: string \"a, expected b\", expected u8",
                "invalid type: string, expected u8",
            ),
            (
                "invalid value: integer `300`, expected u8",
                "number out of range for u8",
            ),
            (
                "invalid value: string \"x\", expected a date",
                "invalid value: string, expected a date",
            ),
            (
                "unknown variant `s3cr3t`, expected `a` or `b`",
                "unknown variant, expected `a` or `b`",
            ),
            (
                "unknown field `s3cr3t`, there are no fields",
                "unknown field, there are no fields",
            ),
            (
                "invalid length 3, expected a tuple of size 2",
                "invalid length 3, expected a tuple of size 2",
            ),
            (
                "my own error quoting s3cr3t",
                "the value does not fit the payload type (the decoder's words are left out: they could quote the event)",
            ),
        ] {
            assert_eq!(describe_data(said), kept);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Values that carry `zqx` in every string, never in keys: the marker must not reach a
        /// message.
        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                "[a-z ]{0,4}".prop_map(|s| Value::String(format!("zqx{s}"))),
            ];
            leaf.prop_recursive(6, 64, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map(
                        prop_oneof![
                            prop::sample::select(vec![
                                "name", "age", "id", "score", "items", "extra", "by_id"
                            ])
                            .prop_map(str::to_owned),
                            "[a-y0-9]{0,3}",
                        ],
                        inner,
                        0..6
                    )
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
                ]
            })
        }

        #[derive(Debug, Deserialize)]
        #[serde(tag = "kind", rename_all = "lowercase")]
        #[allow(dead_code)]
        enum Tagged {
            A { n: u8 },
            B { inner: Box<Option<Tagged>> },
        }

        #[derive(Debug, Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum Untagged {
            Number(u16),
            Text(String),
            List(Vec<Untagged>),
        }

        fn run<T: DeserializeOwned + Send + 'static>(body: Vec<u8>) -> Result<T, Rejected> {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(decode::<T>(Box::leak(body.into_boxed_slice())))
        }

        fn well_formed(error: &MalformedEvent) -> bool {
            let text = error.to_string();
            match error.kind() {
                MalformedKind::NotJson => {
                    error.path().is_none() && text.starts_with("the event is not valid JSON: ")
                }
                MalformedKind::DoesNotFit => {
                    error.path().is_some_and(|path| path.starts_with('$'))
                        && text.starts_with("the event does not fit the payload type at `$")
                }
            }
        }

        proptest! {
            #[test]
            fn fuzz_any_bytes_decode_or_give_a_typed_error(body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                // Near-JSON, to reach the misfits: keys, numbers, escapes, nesting.
                r#"[\[\]{}",: 0-9aenu\\.+-]{0,48}"#.prop_map(String::into_bytes),
            ]) {
                if let Err(Rejected(error)) = run::<Value>(body.clone()) {
                    prop_assert!(well_formed(&error), "{error}");
                }
                if let Err(Rejected(error)) = run::<Typed>(body) {
                    prop_assert!(well_formed(&error), "{error}");
                }
            }

            #[test]
            fn fuzz_any_json_text_is_never_called_not_json(value in value()) {
                let body = serde_json::to_vec(&value).expect("a Value serializes");
                match run::<Typed>(body.clone()) {
                    Ok(_) => {}
                    Err(Rejected(error)) => {
                        prop_assert_eq!(error.kind(), MalformedKind::DoesNotFit, "{}", error);
                        prop_assert!(well_formed(&error), "{error}");
                        prop_assert!(!error.to_string().contains("zqx"), "{error}");
                    }
                }
                // Floats may come back a bit off (no `float_roundtrip`): that it decodes is the point.
                prop_assert!(run::<Value>(body).is_ok(), "{value}");
            }

            /// Deep nesting (past serde_json's recursion limit), long bodies, and payload types
            /// that buffer (tagged and untagged enums), borrow or are unit: still a typed error.
            #[test]
            fn fuzz_deep_long_and_buffered_bodies_give_a_typed_error(
                depth in 0usize..400,
                open in prop::sample::select(vec!["[", "{\"a\":", "{\"kind\":\"b\",\"inner\":"]),
                tail in prop::collection::vec(any::<u8>(), 0..512),
            ) {
                let mut body = open.repeat(depth).into_bytes();
                body.extend_from_slice(&tail);
                for result in [
                    run::<Value>(body.clone()).map(|_| ()),
                    run::<Typed>(body.clone()).map(|_| ()),
                    run::<Tagged>(body.clone()).map(|_| ()),
                    run::<Untagged>(body.clone()).map(|_| ()),
                    run::<Vec<Option<u8>>>(body.clone()).map(|_| ()),
                    run::<()>(body).map(|_| ()),
                ] {
                    if let Err(Rejected(error)) = result {
                        prop_assert!(well_formed(&error), "{error}");
                    }
                }
            }
        }
    }
}
