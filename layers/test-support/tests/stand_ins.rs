//! The stand-ins against raw HTTP/1.1 from a socket: what they accept, what they reject, and
//! that a rejection fails the test.

use std::{
    net::SocketAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use lambda_observability_test_support::{
    Event, MockRuntimeApi, OtlpMode, OtlpReceiver, Outcome, Request, Response, serve_http,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A response as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes `raw` (requests, the last with `connection: close`) and reads every response.
async fn exchange(address: SocketAddr, raw: &[u8]) -> Vec<Answer> {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(raw).await.expect("write");
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("the server closes")
        .expect("read");
    let mut answers = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = std::str::from_utf8(&rest[..end]).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .expect("content-length");
        let body = rest[end + 4..end + 4 + length].to_vec();
        rest = &rest[end + 4 + length..];
        answers.push(Answer {
            status,
            headers,
            body,
        });
    }
    answers
}

/// One request, `connection: close`.
async fn send(address: SocketAddr, method: &str, path: &str, headers: &str, body: &[u8]) -> Answer {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\ncontent-length: {}\r\n{headers}connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    exchange(address, &raw).await.remove(0)
}

#[tokio::test]
async fn serve_http_reads_chunked_bodies_and_keeps_the_connection_alive() {
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let sink = seen.clone();
    let address = serve_http(move |request| {
        sink.lock().expect("lock").push(request);
        async { Some(Response::new(201, "made").with_header("x-answer", "yes")) }
    })
    .await;
    let raw = format!(
        "POST /a?q=1 HTTP/1.1\r\nhost: {address}\r\nX-Custom: One\r\ntransfer-encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n\
         GET /b HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n"
    );
    let answers = exchange(address, raw.as_bytes()).await;
    assert_eq!(answers.len(), 2, "both answered on one connection");
    for answer in &answers {
        assert_eq!(answer.status, 201);
        assert_eq!(answer.header("x-answer"), Some("yes"));
        assert_eq!(answer.body, b"made");
    }
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/a?q=1");
    assert_eq!(seen[0].header("x-custom"), Some("One"));
    assert_eq!(seen[0].body, b"hello world");
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("GET", "/b")
    );
}

#[tokio::test]
async fn the_runtime_api_sends_lambdas_headers_and_takes_the_answer() {
    let runtime = MockRuntimeApi::start(vec![
        Event::new("one", "{\"a\":1}")
            .traced("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
            .deadline_in(Duration::from_millis(1500))
            .invoked_function_arn("arn:aws:lambda:eu-west-1:123456789012:function:f:live")
            .client_context("{\"custom\":{}}")
            .cognito_identity("{\"cognitoIdentityId\":\"id\"}"),
        Event::new("two", "{}"),
    ])
    .await;
    let sent = SystemTime::now();
    let next = send(
        runtime.address,
        "GET",
        "/2018-06-01/runtime/invocation/next",
        "",
        b"",
    )
    .await;
    assert_eq!(next.status, 200);
    assert_eq!(next.body, b"{\"a\":1}");
    assert_eq!(next.header("lambda-runtime-aws-request-id"), Some("one"));
    let deadline: u64 = next
        .header("lambda-runtime-deadline-ms")
        .and_then(|v| v.parse().ok())
        .expect("deadline");
    let sent_ms = sent
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    assert!(
        (sent_ms + 1500..sent_ms + 2500).contains(&deadline),
        "{deadline} vs {sent_ms}"
    );
    assert_eq!(
        next.header("lambda-runtime-invoked-function-arn"),
        Some("arn:aws:lambda:eu-west-1:123456789012:function:f:live")
    );
    assert_eq!(
        next.header("lambda-runtime-trace-id"),
        Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    );
    assert_eq!(
        next.header("lambda-runtime-client-context"),
        Some("{\"custom\":{}}")
    );
    assert_eq!(
        next.header("lambda-runtime-cognito-identity"),
        Some("{\"cognitoIdentityId\":\"id\"}")
    );
    let posted = send(
        runtime.address,
        "POST",
        "/2018-06-01/runtime/invocation/one/response",
        "",
        b"{\"ok\":true}",
    )
    .await;
    assert_eq!(posted.status, 202);

    // The defaults: a 30 s deadline, the function's own ARN, no optional header.
    let next = send(
        runtime.address,
        "GET",
        "/2018-06-01/runtime/invocation/next",
        "",
        b"",
    )
    .await;
    let deadline: u64 = next
        .header("lambda-runtime-deadline-ms")
        .and_then(|v| v.parse().ok())
        .expect("deadline");
    assert!(deadline >= sent_ms + 29_000, "{deadline} vs {sent_ms}");
    assert_eq!(
        next.header("lambda-runtime-invoked-function-arn"),
        Some("arn:aws:lambda:eu-west-1:123456789012:function:hello-it")
    );
    for name in [
        "lambda-runtime-trace-id",
        "lambda-runtime-client-context",
        "lambda-runtime-cognito-identity",
    ] {
        assert_eq!(next.header(name), None, "{name}");
    }
    let posted = send(
        runtime.address,
        "POST",
        "/2018-06-01/runtime/invocation/two/error",
        "lambda-runtime-function-error-type: Handled.Oops\r\n",
        b"{\"errorType\":\"Oops\"}",
    )
    .await;
    assert_eq!(posted.status, 202);

    let outcomes = runtime.outcomes(2).await;
    assert_eq!(outcomes[0].request_id(), "one");
    assert!(matches!(&outcomes[0], Outcome::Response { body, .. } if body["ok"] == true));
    assert!(matches!(
        &outcomes[1],
        Outcome::Error { request_id, error_type_header: Some(t), .. }
            if request_id == "two" && t == "Handled.Oops"
    ));
    assert_eq!(runtime.next_calls(), 2);
    assert!(runtime.violations().is_empty());
}

#[tokio::test]
async fn the_runtime_api_answers_404_to_what_lambda_does_not_serve_and_fails_the_test() {
    let runtime = MockRuntimeApi::start(vec![Event::new("known", "{}")]).await;
    let next = send(
        runtime.address,
        "GET",
        "/2018-06-01/runtime/invocation/next",
        "",
        b"",
    )
    .await;
    assert_eq!(next.status, 200);
    let wrong = [
        ("GET", "/runtime/invocation/next"),
        ("GET", "/invocation/next"),
        ("POST", "/2018-06-01/runtime/invocation/next"),
        ("POST", "/2018-05-01/runtime/invocation/known/response"),
        ("GET", "/2018-06-01/runtime/invocation/known/response"),
        ("POST", "/2018-06-01/runtime/invocation/unknown/response"),
        ("POST", "/2018-06-01/runtime/invocation/unknown/error"),
        ("POST", "/2018-06-01/runtime/invocation/known/other"),
        ("POST", "/2018-06-01/runtime/invocation//response"),
        ("PUT", "/2018-06-01/runtime/init/error"),
        ("POST", "/init/error"),
        ("POST", "/2018-06-01/runtime/unknown"),
    ];
    for (method, path) in wrong {
        let answer = send(runtime.address, method, path, "", b"{}").await;
        assert_eq!(answer.status, 404, "{method} {path}");
    }
    assert_eq!(
        runtime.violations().len(),
        wrong.len(),
        "{:#?}",
        runtime.violations()
    );

    // An answer for an invocation already answered is not taken either.
    let ok = send(
        runtime.address,
        "POST",
        "/2018-06-01/runtime/invocation/known/response",
        "",
        b"{}",
    )
    .await;
    assert_eq!(ok.status, 202);
    let again = send(
        runtime.address,
        "POST",
        "/2018-06-01/runtime/invocation/known/response",
        "",
        b"{}",
    )
    .await;
    assert_eq!(again.status, 404);
    assert_eq!(runtime.violations().len(), wrong.len() + 1);

    // Every wait fails on a violation…
    let waiting = runtime.clone();
    let wait = tokio::spawn(async move { waiting.wait_next_calls(1).await }).await;
    assert!(wait.is_err_and(|e| e.is_panic()), "the wait fails");
    // …and so does dropping the last handle.
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(runtime)));
    assert!(dropped.is_err(), "dropping the mock fails the test");
}

#[tokio::test]
async fn the_otlp_receiver_takes_what_a_collector_takes() {
    let receiver = OtlpReceiver::start(OtlpMode::Accept).await;
    let address: SocketAddr = receiver
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let body = ExportTraceServiceRequest::default().encode_to_vec();
    let protobuf = "content-type: application/x-protobuf\r\n";
    let taken = send(address, "POST", "/v1/traces", protobuf, &body).await;
    assert_eq!(taken.status, 200);
    assert_eq!(taken.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(receiver.exports.lock().expect("lock").len(), 1);
    assert!(receiver.spans().is_empty());

    receiver.serve_traces_at("/custom/traces");
    assert_eq!(
        send(address, "POST", "/custom/traces", protobuf, &body)
            .await
            .status,
        200
    );
    assert_eq!(receiver.exports.lock().expect("lock").len(), 2);

    for (path, headers, body) in [
        ("/v1/traces", protobuf, body.as_slice()),
        (
            "/custom/traces",
            "content-type: application/json\r\n",
            body.as_slice(),
        ),
        ("/custom/traces", "", body.as_slice()),
        (
            "/custom/traces",
            protobuf,
            b"\xff\xff\xff not protobuf".as_slice(),
        ),
    ] {
        let rejected = send(address, "POST", path, headers, body).await;
        assert_eq!(rejected.status, 400, "{path} {headers}");
    }
    assert_eq!(
        receiver.rejections().len(),
        4,
        "{:#?}",
        receiver.rejections()
    );
    assert_eq!(
        receiver.exports.lock().expect("lock").len(),
        2,
        "nothing more taken"
    );

    let spans = catch_unwind(AssertUnwindSafe(|| receiver.spans()));
    assert!(spans.is_err(), "spans() fails on a rejection");
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(receiver)));
    assert!(dropped.is_err(), "dropping the receiver fails the test");
}
