//! Test stand-ins that speak the real wire protocols, for tests that run a Lambda function (the
//! real executable, or a runtime in-process) against them:
//!
//! - [`MockRuntimeApi`]: the Lambda Runtime API (`2018-06-01`), as strict as Lambda about
//!   paths, methods and request ids, with the invocation headers Lambda sends ([`Event`]), what
//!   was posted back ([`Outcome`]), and protocol violations;
//! - [`XrayDaemon`]: the daemon's UDP socket, X-Ray segment documents and OTLP datagrams
//!   ([`OtlpDatagram`]);
//! - [`OtlpReceiver`]: an OTLP/HTTP (protobuf) trace receiver that takes what a collector takes;
//! - [`CheckIp`], [`GatedCheckIp`]: the public-IP service the function calls;
//! - [`HangingServer`]: a server that takes a request and never answers, for time bounds tested
//!   in tokio's paused clock;
//! - [`serve_http`]: any other HTTP/1.1 stand-in ([`Request`] in, [`Response`] out), served by
//!   hyper;
//! - [`Function`]: a function executable run as a child process in a Lambda-like environment;
//! - helpers reading OTLP requests, trace ids and JSON logs, and
//!   [`keep_call_sites_undecided`] for tests that capture log lines.
//!
//! Everything listens on 127.0.0.1 on an ephemeral port, inside the caller's tokio runtime
//! (the HTTP stand-ins spawn tasks: create them from within one).
//!
//! The crate depends on no crate of its workspace, so that library crates can dev-depend on it.
//! What needs a path known only to the test crate (an executable from `CARGO_BIN_EXE_*`, event
//! fixtures under `CARGO_MANIFEST_DIR`) takes the path: [`Function::start_exe`],
//! [`Event::from_file`].
#![warn(missing_docs)]

use std::time::{Duration, Instant};

mod call_sites;
mod checkip;
mod function;
mod hanging;
mod http;
mod otlp;
mod runtime_api;
mod traces;
mod udp;

pub use call_sites::keep_call_sites_undecided;
pub use checkip::{CheckIp, GatedCheckIp};
pub use function::{Function, emf_documents, lines_with_message, rss_kib};
pub use hanging::HangingServer;
pub use http::{Request, Response, serve_http};
pub use otlp::{
    DEFAULT_TRACES_PATH, OtlpExport, OtlpMode, OtlpReceiver, ResourceSpan, any_value_text, hex,
    request_spans, request_trace_ids, resource_attr, span_attr,
};
pub use runtime_api::{
    DEFAULT_DEADLINE, DEFAULT_FUNCTION_ARN, Event, MockRuntimeApi, Outcome, RUNTIME_PREFIX, Refusal,
};
pub use traces::{
    TRACE_PARENT, TracedSpans, assert_traced_span_tree, otel_id_of_root, otel_trace_id,
    spans_of_trace, trace_header, trace_root, xray_root,
};
pub use udp::{OtlpDatagram, OtlpUdpDaemon, Received, XrayDaemon};

/// How long the waits wait before failing the test.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until `condition` holds (checked every 10 ms), up to [`TIMEOUT`]; panics naming `what`.
pub async fn until(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < TIMEOUT, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
