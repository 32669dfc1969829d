//! The loop pieces against a minimal Runtime API on 127.0.0.1.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};
use tower::{ServiceExt, service_fn};

use super::*;

/// What the function posted.
#[derive(Debug, Clone)]
struct Post {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Post {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A queued event: its request id (`None`: the header is left out) and body.
type QueuedEvent = (Option<&'static str>, &'static str);

/// Serves the queued events on `/next` (`None` as request id: the header is left out), records
/// posts, and closes the connection on `/next` once the queue is empty: the API is gone.
#[derive(Clone)]
struct MiniApi {
    address: SocketAddr,
    events: Arc<Mutex<VecDeque<QueuedEvent>>>,
    posts: Arc<Mutex<Vec<Post>>>,
    /// Extra header lines (`name: value\r\n`) sent with every event.
    next_headers: Arc<Mutex<String>>,
}

impl MiniApi {
    async fn start(events: Vec<QueuedEvent>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let api = Self {
            address: listener.local_addr().expect("address"),
            events: Arc::new(Mutex::new(events.into())),
            posts: Arc::default(),
            next_headers: Arc::default(),
        };
        let server = api.clone();
        serve(listener, move |(method, path, headers, body)| {
            if method == "GET" {
                let (id, body) = server.events.lock().expect("lock").pop_front()?;
                let id = id.map_or(String::new(), |id| {
                    format!("lambda-runtime-aws-request-id: {id}\r\n")
                });
                let extra = server.next_headers.lock().expect("lock").clone();
                Some(format!(
                    "HTTP/1.1 200 OK\r\n{id}{extra}lambda-runtime-deadline-ms: 600000\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                ))
            } else {
                server.posts.lock().expect("lock").push(Post {
                    path,
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                Some("HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_owned())
            }
        });
        api
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().expect("lock").clone()
    }

    fn client(&self) -> Arc<RuntimeApi> {
        Arc::new(RuntimeApi::new(&self.address.to_string(), 4).expect("client"))
    }
}

type Head = (String, String, Vec<(String, String)>, Vec<u8>);

/// Serves HTTP/1.1 on `listener`, each request answered with the raw response `answer` makes
/// of it; `None` closes the connection.
fn serve<F>(listener: TcpListener, answer: F)
where
    F: Fn(Head) -> Option<String> + Clone + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                while let Some(request) = read_request(&mut reader).await {
                    let Some(response) = answer(request) else {
                        return;
                    };
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

async fn read_request(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Head> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let Some((name, value)) = header.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((method, path, headers, body))
}

fn invocation_for(request_id: &str) -> LambdaInvocation {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id.to_owned();
    let (parts, ()) = http::Response::new(()).into_parts();
    LambdaInvocation {
        parts,
        body: Bytes::from_static(b"{}"),
        context,
    }
}

#[tokio::test]
async fn respond_posts_the_serialized_response() {
    let api = MiniApi::start(vec![]).await;
    let respond = Respond::new(
        service_fn(|event: LambdaEvent<Bytes>| async move {
            Ok::<_, InvocationError>(json!({"echo": String::from_utf8_lossy(&event.payload)}))
        }),
        api.client(),
        Arc::new(Stopping::new()),
    );
    respond
        .oneshot(invocation_for("r-1"))
        .await
        .expect("posted");
    let posts = api.posts();
    assert_eq!(posts[0].path, "/2018-06-01/runtime/invocation/r-1/response");
    assert_eq!(posts[0].body, json!({"echo": "{}"}));
}

#[tokio::test]
async fn respond_posts_errors_with_their_type_cause_and_stack_trace() {
    let api = MiniApi::start(vec![]).await;
    let respond = Respond::new(
        service_fn(|_: LambdaEvent<Bytes>| async {
            Err::<Value, _>(
                InvocationError::new("Oops", "it broke", ErrorKind::Fault)
                    .with_stack_trace(vec!["it broke".into(), "disk full".into()]),
            )
        }),
        api.client(),
        Arc::new(Stopping::new()),
    );
    respond
        .oneshot(invocation_for("r-2"))
        .await
        .expect("posted");
    let post = &api.posts()[0];
    assert_eq!(post.path, "/2018-06-01/runtime/invocation/r-2/error");
    assert_eq!(
        post.body,
        json!({"errorType": "Oops", "errorMessage": "it broke", "stackTrace": ["it broke", "disk full"]})
    );
    assert_eq!(
        post.header("lambda-runtime-function-error-type"),
        Some("Oops")
    );
    let cause: Value = serde_json::from_str(
        post.header("lambda-runtime-function-xray-error-cause")
            .unwrap_or_default(),
    )
    .expect("cause is JSON");
    assert_eq!(cause["exceptions"][0]["stack"][0]["label"], "disk full");
}

#[tokio::test]
async fn respond_catches_a_panic_no_layer_below_caught() {
    let api = MiniApi::start(vec![]).await;
    let respond = Respond::new(
        service_fn(|_: LambdaEvent<Bytes>| async {
            if true {
                panic!("unguarded");
            }
            Ok::<Value, InvocationError>(Value::Null)
        }),
        api.client(),
        Arc::new(Stopping::new()),
    );
    respond
        .oneshot(invocation_for("r-3"))
        .await
        .expect("posted");
    let post = &api.posts()[0];
    assert_eq!(post.body["errorType"], "Panic");
    assert_eq!(post.body["errorMessage"], "unguarded");
    assert!(
        post.body["stackTrace"][0]
            .as_str()
            .is_some_and(|l| l.starts_with(file!())),
        "{}",
        post.body
    );
}

/// A handler-level service that is never ready: its `poll_ready` fails.
#[derive(Debug, Clone)]
struct Overloaded;

impl Service<LambdaEvent<Bytes>> for Overloaded {
    type Response = Value;
    type Error = InvocationError;
    type Future = std::future::Ready<Result<Value, InvocationError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), InvocationError>> {
        std::task::Poll::Ready(Err(InvocationError::new(
            "Overloaded",
            "no capacity",
            ErrorKind::Fault,
        )))
    }

    fn call(&mut self, _: LambdaEvent<Bytes>) -> Self::Future {
        std::future::ready(Ok(Value::Null))
    }
}

/// `Respond`'s only error is the handler-level service's `poll_ready` error: it reaches the
/// layers above (and the worker, which stops on it) instead of a call to a service that is not
/// ready.
#[tokio::test]
async fn respond_is_ready_only_when_the_handler_is_and_passes_its_error_on() {
    let api = MiniApi::start(vec![]).await;
    let mut respond = Respond::new(Overloaded, api.client(), Arc::new(Stopping::new()));
    let error = respond.ready().await.map(|_| ()).expect_err("not ready");
    assert_eq!(error.to_string(), "Overloaded: no capacity");
    assert!(api.posts().is_empty(), "nothing was called, nothing posted");
}

/// A `5xx` to the answer's post says the environment cannot go on: the runtime stops (the
/// other invocations get their grace, then `run` returns the reason). The service itself still
/// completes with `Ok`: the failure was logged once, here.
#[tokio::test]
async fn a_5xx_to_the_answer_stops_the_runtime_with_the_request_id() {
    let api = Scripted::start(vec![status(500)]).await;
    let stopping = Arc::new(Stopping::new());
    let respond = Respond::new(
        service_fn(|_: LambdaEvent<Bytes>| async { Ok::<_, InvocationError>(json!({})) }),
        Arc::new(api.client()),
        stopping.clone(),
    );
    respond
        .oneshot(invocation_for("r-500"))
        .await
        .expect("the failed post is not the layers' error");
    assert_eq!(
        api.requests(),
        ["/2018-06-01/runtime/invocation/r-500/response"]
    );
    assert!(stopping.since().is_some(), "stopped");
    let reason = stopping.fatal_reason().unwrap_or_default();
    assert!(
        reason.starts_with("invocation r-500: ") && reason.contains("500"),
        "{reason}"
    );
    assert_eq!(stopping.reason(), reason);
}

/// A `4xx` to the answer (e.g. `410`: the invocation already timed out) concerns that
/// invocation only: the runtime goes on.
#[tokio::test]
async fn a_4xx_to_the_answer_does_not_stop_the_runtime() {
    let api = Scripted::start(vec![status(410)]).await;
    let stopping = Arc::new(Stopping::new());
    let respond = Respond::new(
        service_fn(|_: LambdaEvent<Bytes>| async { Ok::<_, InvocationError>(json!({})) }),
        Arc::new(api.client()),
        stopping.clone(),
    );
    respond
        .oneshot(invocation_for("r-410"))
        .await
        .expect("completes");
    assert_eq!(api.requests().len(), 1);
    assert!(stopping.since().is_none() && stopping.fatal_reason().is_none());
}

/// A handler-level service that answers `null` at once.
#[derive(Debug, Clone)]
struct Null;

impl Service<LambdaEvent<Bytes>> for Null {
    type Response = Value;
    type Error = InvocationError;
    type Future = std::future::Ready<Result<Value, InvocationError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), InvocationError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: LambdaEvent<Bytes>) -> Self::Future {
        std::future::ready(Ok(Value::Null))
    }
}

/// The `Debug` output of the service and its future: what a layer's `Debug` or a log of the
/// stack shows. The handler-level service is shown; the Runtime API client is not.
#[tokio::test]
async fn respond_and_its_future_debug_as_themselves() {
    let api = MiniApi::start(vec![]).await;
    let mut respond = Respond::new(Null, api.client(), Arc::new(Stopping::new()));
    assert_eq!(format!("{respond:?}"), "Respond { inner: Null, .. }");
    let future = respond
        .ready()
        .await
        .expect("ready")
        .call(invocation_for("r-debug"));
    assert_eq!(format!("{future:?}"), "ResponseFuture { .. }");
    future.await.expect("posted");
    assert_eq!(api.posts()[0].body, Value::Null);
}

#[tokio::test]
async fn the_loop_serves_concurrently_skips_unanswerable_events_and_ends_when_the_api_is_gone() {
    let api = MiniApi::start(vec![
        (Some("a"), "1"),
        (None, "lost"),
        (Some("b"), "2"),
        (Some("c"), "3"),
    ])
    .await;
    // Completes only once three invocations wait on it together.
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let handler = service_fn(move |event: LambdaEvent<Bytes>| {
        let barrier = barrier.clone();
        async move {
            barrier.wait().await;
            Ok::<_, InvocationError>(json!({"request": event.context.request_id}))
        }
    });
    let runtime = Runtime::new(api.address.to_string(), handler).max_concurrency(3);
    let outcome = tokio::time::timeout(Duration::from_secs(20), runtime.run())
        .await
        .expect("three at once, then the API is gone");
    let error = outcome.expect_err("the Runtime API went away");
    assert!(
        error
            .to_string()
            .contains(&format!("{NEXT_ATTEMPTS} attempts")),
        "{error}"
    );
    let mut answered: Vec<String> = api
        .posts()
        .iter()
        .map(|p| p.body["request"].as_str().unwrap_or_default().to_owned())
        .collect();
    answered.sort();
    assert_eq!(answered, ["a", "b", "c"]);
}

/// When the Runtime API is gone, each worker that stops while others still run says so; the
/// last one's error is `run`'s own, not logged again.
#[tokio::test]
async fn each_worker_but_the_last_logs_its_stop() {
    let api = MiniApi::start(vec![]).await;
    let handler = service_fn(|_: LambdaEvent<Bytes>| async { Ok::<_, InvocationError>(()) });
    let runtime = Runtime::new(api.address.to_string(), handler).max_concurrency(3);
    let (outcome, logs) =
        test_logs::capture_logs(tokio::time::timeout(Duration::from_secs(20), runtime.run())).await;
    outcome
        .expect("ends once every worker gave up")
        .expect_err("the Runtime API went away");
    assert_eq!(logs.count("a runtime worker stopped"), 2, "{}", logs.text());
}

/// `expose_trace_env` is ignored, with one warning, when more than one invocation runs at once;
/// otherwise nothing is said.
#[tokio::test]
async fn a_refused_trace_variable_is_warned_about_once() {
    for (expose, concurrency, warnings) in [(true, 2, 1), (true, 1, 0), (false, 2, 0)] {
        let api = MiniApi::start(vec![]).await;
        let handler = service_fn(|_: LambdaEvent<Bytes>| async { Ok::<_, InvocationError>(()) });
        let runtime = Runtime::new(api.address.to_string(), handler)
            .max_concurrency(concurrency)
            .expose_trace_env(expose);
        let (drained, logs) = test_logs::capture_logs(tokio::time::timeout(
            Duration::from_secs(20),
            runtime.run_until(async { "SIGTERM".to_owned() }),
        ))
        .await;
        drained.expect("stops at once").expect("no error");
        assert_eq!(
            logs.count("_X_AMZN_TRACE_ID is not set"),
            warnings,
            "expose {expose}, concurrency {concurrency}: {}",
            logs.text()
        );
    }
}

#[tokio::test]
async fn run_until_drains_what_is_in_flight_and_cuts_off_what_outlives_its_grace() {
    let api = MiniApi::start(vec![(Some("quick"), "1"), (Some("stuck"), "2")]).await;
    // The signal comes once both invocations are in the handler.
    let started = Arc::new(tokio::sync::Barrier::new(3));
    let handler = service_fn({
        let started = started.clone();
        move |event: LambdaEvent<Bytes>| {
            let started = started.clone();
            async move {
                started.wait().await;
                if event.context.request_id == "stuck" {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<_, InvocationError>(json!({"request": event.context.request_id}))
            }
        }
    });
    let signal = async move {
        started.wait().await;
        "TEST".to_owned()
    };
    let drained = tokio::time::timeout(
        Duration::from_secs(20),
        Runtime::new(api.address.to_string(), handler)
            .max_concurrency(2)
            .drain_bound(Duration::from_millis(300))
            .run_until(signal),
    )
    .await
    .expect("drained within the bound")
    .expect("no error");
    assert_eq!(drained.reason, "TEST");
    assert_eq!(drained.finished, ["quick"]);
    assert_eq!(drained.cut_off, ["stuck"]);
    let posts = api.posts();
    let answered: Vec<(&str, &Value)> = posts.iter().map(|p| (p.path.as_str(), &p.body)).collect();
    // The one cut off before its answer started is told so at once, not left to its deadline.
    assert_eq!(
        answered,
        [
            (
                "/2018-06-01/runtime/invocation/quick/response",
                &json!({"request": "quick"})
            ),
            (
                "/2018-06-01/runtime/invocation/stuck/error",
                &json!({
                    "errorType": "Runtime.CutOff",
                    "errorMessage": "the invocation was cut off: it did not finish within its \
                                     grace of 300 ms after the runtime stopped (TEST)",
                    "stackTrace": [],
                })
            ),
        ]
    );
    assert_eq!(
        posts[1].header("lambda-runtime-function-error-type"),
        Some("Runtime.CutOff")
    );
}

#[tokio::test]
async fn the_before_answer_hook_runs_before_the_answer_is_posted() {
    let api = MiniApi::start(vec![(Some("hooked"), "1")]).await;
    let posted_when_hooked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let handler = service_fn(|_: LambdaEvent<Bytes>| async {
        Ok::<_, InvocationError>(json!({"answered": true}))
    });
    // An outer layer puts the hook in the invocation's extensions.
    let hook = tower::util::MapRequestLayer::new({
        let (seen, api) = (posted_when_hooked.clone(), api.clone());
        move |mut invocation: LambdaInvocation| {
            let (seen, api) = (seen.clone(), api.clone());
            invocation
                .parts
                .extensions
                .insert(BeforeAnswer::new(move || {
                    seen.lock().expect("lock").push(api.posts().len())
                }));
            invocation
        }
    });
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        Runtime::new(api.address.to_string(), handler)
            .layer(hook)
            .run(),
    )
    .await
    .expect("ends when the API is gone");
    assert!(outcome.is_err(), "the API went away after the one event");
    assert_eq!(
        *posted_when_hooked.lock().expect("lock"),
        [0],
        "once, before the post"
    );
    assert_eq!(api.posts().len(), 1);
}

#[tokio::test]
async fn one_cut_off_after_its_answer_started_gets_no_second_answer() {
    let api = MiniApi::start(vec![(Some("answered"), "1")]).await;
    let answered = Arc::new(tokio::sync::Notify::new());
    let handler = service_fn(|event: LambdaEvent<Bytes>| async move {
        Ok::<_, InvocationError>(json!({"request": event.context.request_id}))
    });
    // Work after the answer (a flush, say) that outlives the grace.
    let after_the_answer = tower::util::MapFutureLayer::new({
        let answered = answered.clone();
        move |future: ResponseFuture<_>| {
            let answered = answered.clone();
            async move {
                let outcome = future.await;
                answered.notify_one();
                std::future::pending::<()>().await;
                outcome
            }
        }
    });
    let signal = async move {
        answered.notified().await;
        "TEST".to_owned()
    };
    let drained = tokio::time::timeout(
        Duration::from_secs(20),
        Runtime::new(api.address.to_string(), handler)
            .layer(after_the_answer)
            .drain_bound(Duration::from_millis(100))
            .run_until(signal),
    )
    .await
    .expect("drained within the bound")
    .expect("no error");
    assert_eq!(drained.cut_off, ["answered"]);
    let paths: Vec<String> = api.posts().iter().map(|p| p.path.clone()).collect();
    assert_eq!(paths, ["/2018-06-01/runtime/invocation/answered/response"]);
}

#[tokio::test]
async fn a_signal_before_any_event_ends_the_runtime_at_once() {
    let api = MiniApi::start(vec![]).await;
    let handler = service_fn(|_: LambdaEvent<Bytes>| async { Ok::<_, InvocationError>(()) });
    let drained = tokio::time::timeout(
        Duration::from_secs(20),
        Runtime::new(api.address.to_string(), handler)
            .max_concurrency(3)
            .run_until(async { "SIGTERM".to_owned() }),
    )
    .await
    .expect("stops at once")
    .expect("no error");
    assert_eq!(drained.reason, "SIGTERM");
    assert!(drained.finished.is_empty() && drained.cut_off.is_empty());
}

/// Answers each request with the next scripted raw answer (closing the connection when there is
/// none), and counts the requests.
#[derive(Clone)]
struct Scripted {
    address: SocketAddr,
    answers: Arc<Mutex<VecDeque<String>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start(answers: Vec<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let api = Self {
            address: listener.local_addr().expect("address"),
            answers: Arc::new(Mutex::new(answers.into())),
            requests: Arc::default(),
        };
        let server = api.clone();
        serve(listener, move |(_, path, _, _)| {
            server.requests.lock().expect("lock").push(path);
            server.answers.lock().expect("lock").pop_front()
        });
        api
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }

    fn client(&self) -> RuntimeApi {
        RuntimeApi::new(&self.address.to_string(), 1).expect("client")
    }
}

fn status(code: u16) -> String {
    format!("HTTP/1.1 {code} Scripted\r\ncontent-length: 4\r\n\r\nnope")
}

fn event(id: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: {id}\r\nlambda-runtime-deadline-ms: 600000\r\ncontent-length: 2\r\n\r\n{{}}"
    )
}

/// In virtual time (the clock paused, advanced only when nothing else can run), so the waits
/// between attempts are measured exactly, whatever the machine's load.
#[tokio::test(start_paused = true)]
async fn next_is_retried_with_doubling_backoff_until_an_event_comes() {
    let mut answers: Vec<String> = (0..NEXT_ATTEMPTS - 1).map(|_| status(502)).collect();
    answers.push(event("late"));
    let api = Scripted::start(answers).await;
    let started = tokio::time::Instant::now();
    let answer = next_event(&api.client(), &Stopping::new())
        .await
        .expect("the last attempt gets the event");
    let took = started.elapsed();
    assert_eq!(answer.parts.status, StatusCode::OK);
    assert_eq!(api.requests().len(), NEXT_ATTEMPTS as usize);
    // 50 + 100 + 200 + 400 ms between the five attempts, to the timer's 1 ms tick each.
    assert!(
        took >= Duration::from_millis(750) && took <= Duration::from_millis(754),
        "{took:?} of virtual time"
    );
}

#[tokio::test]
async fn next_gives_up_after_its_attempts() {
    let api = Scripted::start((0..10).map(|_| status(503)).collect()).await;
    let error = next_event(&api.client(), &Stopping::new())
        .await
        .expect_err("never an event");
    assert!(error.to_string().contains("503"), "{error}");
    assert_eq!(api.requests().len(), NEXT_ATTEMPTS as usize);
}

#[tokio::test]
async fn next_returns_only_successes_and_stops_at_once_on_a_500() {
    let api = Scripted::start(vec![status(404), event("after-404")]).await;
    let answer = next_event(&api.client(), &Stopping::new())
        .await
        .expect("a 404 is retried");
    assert_eq!(answer.parts.status, StatusCode::OK);
    assert_eq!(api.requests().len(), 2);

    let api = Scripted::start(vec![status(500), event("never")]).await;
    let stopping = Stopping::new();
    let error = next_event(&api.client(), &stopping)
        .await
        .expect_err("500 is non-recoverable");
    assert!(error.to_string().contains("500"), "{error}");
    assert!(stopping.fatal_reason().is_some());
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn posts_are_errors_unless_the_api_accepts_them() {
    let api = Scripted::start(vec![status(202)]).await;
    api.client()
        .respond("r-ok", None, b"{}".to_vec())
        .await
        .expect("202 is accepted");
    for (code, reason) in [
        (400, "not valid"),
        (403, "forbidden"),
        (410, "timed out or was already answered"),
        (413, "larger than Lambda accepts"),
        (500, "non-recoverable"),
    ] {
        let api = Scripted::start(vec![status(code)]).await;
        let error = api
            .client()
            .respond("r-1", None, b"{}".to_vec())
            .await
            .expect_err("refused");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(code));
        assert_eq!(error.is_fatal(), code == 500);
        let text = error.to_string();
        assert!(text.contains(reason) && text.contains("nope"), "{text}");
        let report = ErrorReport::invocation(&InvocationError::new("E", "m", ErrorKind::Fault));
        let api = Scripted::start(vec![status(code)]).await;
        let error = api
            .client()
            .report_error("r-1", None, &report)
            .await
            .expect_err("refused");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(code));
    }
}

#[tokio::test]
async fn other_refusals_and_unsent_posts_say_what_they_are() {
    let api = Scripted::start(vec![status(404)]).await;
    let error = api
        .client()
        .respond("r-1", None, b"{}".to_vec())
        .await
        .expect_err("refused");
    let text = error.to_string();
    assert!(
        text.contains("404") && !text.contains("non-recoverable") && !error.is_fatal(),
        "{text}"
    );
    assert!(std::error::Error::source(&error).is_none());
    // Nothing answers: the connection is closed at once.
    let silent = Scripted::start(vec![]).await;
    let unsent = silent
        .client()
        .respond("r-1", None, b"{}".to_vec())
        .await
        .expect_err("unsent");
    assert_eq!(unsent.status(), None);
    assert!(std::error::Error::source(&unsent).is_some(), "{unsent}");
    assert!(
        unsent.to_string().starts_with("it could not be sent"),
        "{unsent}"
    );
}

#[tokio::test]
async fn init_errors_are_posted_and_refusals_are_errors() {
    let api = MiniApi::start(vec![]).await;
    let error = InitError::new("InvalidConfig", "no endpoint");
    report_init_error(&api.address.to_string(), &error)
        .await
        .expect("posted");
    let posts = api.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, "/2018-06-01/runtime/init/error");
    assert_eq!(
        posts[0].header("lambda-runtime-function-error-type"),
        Some("Runtime.InvalidConfig")
    );
    assert_eq!(
        posts[0].body,
        json!({"errorType": "Runtime.InvalidConfig", "errorMessage": "no endpoint"})
    );
    let refusing = Scripted::start(vec![status(403)]).await;
    let refused = report_init_error(&refusing.address.to_string(), &error).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("403")),
        "{refused:?}"
    );
}

/// Set in the child processes the tests below start: the environment is process-wide.
const CHILD: &str = "LAMBDA_OBSERVABILITY_RUNTIME_TEST_CHILD";

/// Runs the test `name` of this binary alone, in a child process, with `env` set (`None`:
/// removed), and asserts that it passed.
fn in_child(name: &str, env: &[(&str, Option<&str>)]) {
    let mut command = std::process::Command::new(std::env::current_exe().expect("test binary"));
    command
        .args([name, "--exact", "--test-threads=1"])
        .env(CHILD, "1");
    for (key, value) in env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let output = command.output().expect("child ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn from_env_reads_the_runtime_api_variable() {
    in_child(
        "tests::from_env_child",
        &[(RUNTIME_API_VARIABLE, Some("127.0.0.1:9001"))],
    );
    in_child("tests::from_env_child", &[(RUNTIME_API_VARIABLE, None)]);
}

#[test]
fn from_env_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    assert_eq!(
        Runtime::from_env(()).map(|runtime| runtime.endpoint),
        std::env::var(RUNTIME_API_VARIABLE).ok()
    );
}

#[test]
fn the_trace_variable_is_set_only_when_asked_and_one_invocation_runs_at_a_time() {
    in_child(
        "tests::trace_env_child",
        &[(trace_env::NAME, None), (RUNTIME_API_VARIABLE, None)],
    );
}

#[tokio::test]
async fn trace_env_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
    let mut seen = Vec::new();
    for (expose, concurrency) in [(false, 1), (true, 2), (true, 1)] {
        let api = MiniApi::start(vec![(Some("t"), "{}")]).await;
        *api.next_headers.lock().expect("lock") = format!("lambda-runtime-trace-id: {TRACE}\r\n");
        let handler = service_fn(|_: LambdaEvent<Bytes>| async {
            Ok::<_, InvocationError>(json!({"trace": std::env::var(trace_env::NAME).ok()}))
        });
        let runtime = Runtime::new(api.address.to_string(), handler)
            .max_concurrency(concurrency)
            .expose_trace_env(expose);
        let _ = tokio::time::timeout(Duration::from_secs(20), runtime.run())
            .await
            .expect("ends when the API is gone");
        seen.push(api.posts()[0].body["trace"].clone());
    }
    assert_eq!(seen, [Value::Null, Value::Null, json!(TRACE)]);
}

#[test]
fn a_hook_inserted_later_runs_first_and_each_runs_once() {
    let ran: Arc<Mutex<Vec<&str>>> = Arc::default();
    let mut extensions = http::Extensions::new();
    for layer in ["outer", "middle", "inner"] {
        let ran = ran.clone();
        BeforeAnswer::insert(&mut extensions, move || {
            ran.lock().expect("lock").push(layer)
        });
    }
    extensions
        .get::<BeforeAnswer>()
        .expect("one hook holds them all")
        .run();
    assert_eq!(*ran.lock().expect("lock"), ["inner", "middle", "outer"]);
}
