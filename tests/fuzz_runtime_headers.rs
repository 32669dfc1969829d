//! Fuzzing the Runtime API's `/next` headers through `lambda_observability::runtime::Runtime`:
//! request id, deadline, trace header, client context, Cognito identity, tenant id and function
//! ARN, each absent, well-formed or arbitrary bytes (what an HTTP/1.1 header value may carry).
//!
//! The property, per event: the runtime does not panic and goes back to `/next`, with one of the
//! outcomes `layers/runtime/README.md` documents:
//!
//! - no usable request id (missing, blank, not visible ASCII): the event is skipped, nothing is
//!   posted and the handler is not called;
//! - headers `lambda_runtime::Context::new` rejects: a `Runtime.InvalidContext` error is posted
//!   for the request;
//! - otherwise the handler gets a `Context` with the request id, the trace header, tenant id and
//!   the deadline (the header's, made absolute when it is a relative timeout, or 900 s from now
//!   when missing or garbled), and its response is posted.
//!
//! A request id that cannot be a path segment of `/invocation/{id}/…` is never posted to.
//!
//! Short in `make test` (proptest's 256 cases), long in `make fuzz`
//! (`PROPTEST_CASES=20000 cargo test --workspace fuzz`).

use std::{
    sync::{Arc, Mutex, mpsc},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use lambda_observability::runtime::{Runtime, error::InvocationError};
use lambda_runtime::{Context, LambdaEvent};
use proptest::prelude::*;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// What the runtime did, as the mock Runtime API saw it.
#[derive(Debug)]
enum Seen {
    /// `GET /next`: done with the previous event.
    Next,
    /// A `POST`: its path and `Lambda-Runtime-Function-Error-Type`.
    Post {
        path: String,
        error_type: Option<String>,
    },
}

/// The headers of one `/next` answer: name and raw value, in order.
type Headers = Vec<(&'static str, Vec<u8>)>;

/// A runtime serving a recording handler from a mock Runtime API, on a thread of its own; the
/// test hands out one event at a time and reads what followed.
struct Harness {
    events: tokio::sync::mpsc::UnboundedSender<Headers>,
    seen: mpsc::Receiver<Seen>,
    contexts: Arc<Mutex<Vec<Context>>>,
}

impl Harness {
    fn start() -> Self {
        let (events, mut next_event) = tokio::sync::mpsc::unbounded_channel::<Headers>();
        let (seen_tx, seen) = mpsc::channel();
        let contexts: Arc<Mutex<Vec<Context>>> = Arc::default();
        let recorded = contexts.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let address = listener.local_addr().expect("address");
                let server = async move {
                    // One connection at a time (max_concurrency 1: one pooled connection).
                    while let Ok((stream, _)) = listener.accept().await {
                        let (read, mut write) = stream.into_split();
                        let mut reader = BufReader::new(read);
                        while let Some((method, path, error_type)) = read_request(&mut reader).await
                        {
                            let answer = if method == "GET" {
                                if seen_tx.send(Seen::Next).is_err() {
                                    return;
                                }
                                let Some(headers) = next_event.recv().await else {
                                    return;
                                };
                                let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
                                for (name, value) in headers {
                                    answer.extend_from_slice(name.as_bytes());
                                    answer.extend_from_slice(b": ");
                                    answer.extend_from_slice(&value);
                                    answer.extend_from_slice(b"\r\n");
                                }
                                answer.extend_from_slice(b"content-length: 2\r\n\r\n{}");
                                answer
                            } else {
                                let _ = seen_tx.send(Seen::Post { path, error_type });
                                b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_vec()
                            };
                            if write.write_all(&answer).await.is_err() {
                                break;
                            }
                        }
                    }
                };
                let handler = tower::service_fn(move |event: LambdaEvent<Bytes>| {
                    recorded.lock().expect("lock").push(event.context);
                    async { Ok::<_, InvocationError>("ok") }
                });
                let runtime = Runtime::new(address.to_string(), handler).run();
                tokio::select! {
                    () = server => {}
                    result = runtime => panic!("the runtime stopped: {result:?}"),
                }
            });
        });
        let harness = Self {
            events,
            seen,
            contexts,
        };
        harness.expect_next();
        harness
    }

    fn expect_next(&self) {
        match self.seen.recv_timeout(Duration::from_secs(30)) {
            Ok(Seen::Next) => {}
            other => panic!("expected /next, got {other:?}"),
        }
    }

    /// Hands out one event, returns the posts made for it and the contexts the handler got,
    /// once the runtime is back on `/next`.
    fn serve(&self, headers: Headers) -> (Vec<(String, Option<String>)>, Vec<Context>) {
        self.events.send(headers).expect("the server is up");
        let mut posts = Vec::new();
        loop {
            match self.seen.recv_timeout(Duration::from_secs(30)) {
                Ok(Seen::Next) => break,
                Ok(Seen::Post { path, error_type }) => posts.push((path, error_type)),
                Err(err) => panic!("the runtime did not come back to /next: {err}"),
            }
        }
        let contexts = std::mem::take(&mut *self.contexts.lock().expect("lock"));
        (posts, contexts)
    }
}

/// Method, path and error-type header of the next request; `None` when the connection closed.
async fn read_request(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Option<(String, String, Option<String>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let (mut length, mut error_type) = (0, None);
    loop {
        let mut header = Vec::new();
        reader.read_until(b'\n', &mut header).await.ok()?;
        let header = String::from_utf8_lossy(&header);
        let Some((name, value)) = header.trim_end().split_once(':') else {
            break;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "lambda-runtime-function-error-type" => error_type = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((method, path, error_type))
}

const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
const DEADLINE: &str = "lambda-runtime-deadline-ms";
const TRACE: &str = "lambda-runtime-trace-id";
const CLIENT_CONTEXT: &str = "lambda-runtime-client-context";
const COGNITO: &str = "lambda-runtime-cognito-identity";
const TENANT: &str = "lambda-runtime-aws-tenant-id";
const ARN: &str = "lambda-runtime-invoked-function-arn";

/// Bytes an HTTP/1.1 header value may carry: tab, visible ASCII and space, obs-text.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff,];
    prop::collection::vec(byte, 0..40)
}

/// A header's value: one of `samples`, printable ASCII, or arbitrary bytes.
fn value(samples: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(samples).prop_map(|s| s.as_bytes().to_vec()),
        1 => "[ -~]{0,24}".prop_map(String::into_bytes),
        1 => header_bytes(),
    ]
}

fn headers() -> impl Strategy<Value = Headers> {
    let request_id = prop_oneof![
        3 => "[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}".prop_map(String::into_bytes),
        1 => value(&["", "  ", ".", "..", "a b", "a/b", "../init/error", "a?b", "id_1.2"]),
    ];
    let deadline = value(&[
        "",
        "0",
        "600000",
        "1700000000000",
        "999999999999",
        "1000000000000",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "1.5",
        "soon",
        "4102444800000",
    ]);
    let trace = value(&[
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0",
        "Root=;Parent=",
        "",
    ]);
    let client_context = value(&[
        "",
        "{}",
        r#"{"client":{"installationId":"i","appTitle":"t","appVersionName":"1","appVersionCode":"1","appPackageName":"p"}}"#,
        r#"{"custom":{"a":"b"},"environment":{"platform":"Android"}}"#,
        r#"{"custom":{"a":1}}"#,
        "{not json",
        "null",
        "[]",
    ]);
    let cognito = value(&[
        "",
        r#"{"identityId":"a","identityPoolId":"b"}"#,
        r#"{"cognitoIdentityId":"a","cognitoIdentityPoolId":"b"}"#,
        r#"{"identity_id":"a"}"#,
        "{}",
        "x",
    ]);
    let tenant = value(&["", "tenant-1", "blue"]);
    let arn = value(&["arn:aws:lambda:eu-west-1:123456789012:function:fuzz", ""]);
    (
        prop::option::weighted(0.9, request_id),
        prop::option::of(deadline),
        prop::option::of(trace),
        prop::option::of(client_context),
        prop::option::of(cognito),
        prop::option::of(tenant),
        prop::option::of(arn),
    )
        .prop_map(
            |(request_id, deadline, trace, client_context, cognito, tenant, arn)| {
                [
                    (REQUEST_ID, request_id),
                    (DEADLINE, deadline),
                    (TRACE, trace),
                    (CLIENT_CONTEXT, client_context),
                    (COGNITO, cognito),
                    (TENANT, tenant),
                    (ARN, arn),
                ]
                .into_iter()
                .filter_map(|(name, value)| value.map(|value| (name, value)))
                .collect()
            },
        )
}

/// The value of `name` as the client reads it (blanks around it are not part of it).
fn received<'a>(headers: &'a Headers, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_ascii())
}

/// Whether the runtime may post to `/invocation/{id}/…` (see `invocation_uri`).
fn postable(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[test]
fn fuzz_runtime_next_headers() {
    let harness = Harness::start();
    // Skipped, Runtime.InvalidContext, handled; and of those answered, how many had an id that
    // cannot be posted: every outcome must be reached.
    let outcomes = std::cell::Cell::new([0usize; 4]);
    let count = |i: usize| {
        let mut seen = outcomes.get();
        seen[i] += 1;
        outcomes.set(seen);
    };
    // Integration tests have no lib.rs for proptest to put its regressions beside.
    let config = ProptestConfig {
        failure_persistence: Some(Box::new(prop::test_runner::FileFailurePersistence::Direct(
            "tests/proptest-regressions/fuzz_runtime_headers.txt",
        ))),
        ..ProptestConfig::default()
    };
    proptest!(config, |(headers in headers())| {
        let before = epoch_ms(SystemTime::now());
        let (posts, contexts) = harness.serve(headers.clone());
        let after = epoch_ms(SystemTime::now());
        let request_id = received(&headers, REQUEST_ID)
            .and_then(|id| http::HeaderValue::from_bytes(id).ok())
            .and_then(|id| id.to_str().ok().map(str::to_owned))
            .filter(|id| !id.is_empty());
        let Some(request_id) = request_id else {
            prop_assert!(posts.is_empty(), "skipped, yet posted: {posts:?}");
            prop_assert!(contexts.is_empty(), "skipped, yet handled");
            count(0);
            return Ok(());
        };
        // What Context::new says of these headers (the deadline is always usable by then).
        let mut map = http::HeaderMap::new();
        for (name, value) in &headers {
            if let Ok(value) = http::HeaderValue::from_bytes(value.trim_ascii()) {
                map.insert(*name, value);
            }
        }
        map.insert(DEADLINE, http::HeaderValue::from_static("1"));
        let oracle = Context::new(&request_id, Arc::default(), &map);
        let expected_posts = usize::from(postable(&request_id));
        if expected_posts == 0 {
            count(3);
        }
        prop_assert_eq!(posts.len(), expected_posts, "{:?}", posts);
        if oracle.is_err() {
            prop_assert!(contexts.is_empty(), "an unusable context was handled");
            count(1);
            for (path, error_type) in &posts {
                prop_assert_eq!(path, &format!("/2018-06-01/runtime/invocation/{request_id}/error"));
                prop_assert_eq!(error_type.as_deref(), Some("Runtime.InvalidContext"));
            }
            return Ok(());
        }
        prop_assert_eq!(contexts.len(), 1);
        count(2);
        let context = &contexts[0];
        prop_assert_eq!(&context.request_id, &request_id);
        for (path, error_type) in &posts {
            prop_assert_eq!(path, &format!("/2018-06-01/runtime/invocation/{request_id}/response"));
            prop_assert_eq!(error_type, &None);
        }
        let lossy = |name| received(&headers, name).map(|v| String::from_utf8_lossy(v).into_owned());
        prop_assert_eq!(&context.xray_trace_id, &lossy(TRACE));
        prop_assert_eq!(&context.tenant_id, &lossy(TENANT));
        let deadline = received(&headers, DEADLINE)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        let (low, high) = match deadline {
            Some(ms) if ms >= 1_000_000_000_000 => (ms, ms),
            Some(ms) => (before.saturating_add(ms), after.saturating_add(ms)),
            None => (before + 900_000, after + 900_000),
        };
        prop_assert!(
            (low..=high).contains(&context.deadline),
            "deadline {} not in {low}..={high} for {:?}", context.deadline, deadline
        );
    });
    let [skipped, invalid, handled, unpostable] = outcomes.get();
    eprintln!(
        "outcomes: {skipped} skipped, {invalid} Runtime.InvalidContext, {handled} handled \
         ({unpostable} of the answered with an id that cannot be posted)"
    );
    assert!(
        skipped > 0 && invalid > 0 && handled > 0,
        "{:?}",
        outcomes.get()
    );
}
