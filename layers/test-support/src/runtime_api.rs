//! A strict mock of the Lambda Runtime API (the `2018-06-01` protocol): [`MockRuntimeApi`], the
//! [`Event`]s it hands out and the [`Outcome`]s posted back.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::Notify;

use crate::{
    TIMEOUT,
    http::{Request, Response, serve},
};

/// The prefix of every Runtime API path: the API version, then `runtime`.
pub const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";

/// The `Lambda-Runtime-Invoked-Function-Arn` sent unless an [`Event`] says otherwise.
pub const DEFAULT_FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:hello-it";

/// How long before its deadline an [`Event`] is handed out, unless it says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// An event queued on the mock Runtime API, with what the headers of its `/next` answer say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// The event, as the body of the `/next` answer.
    pub body: Vec<u8>,
    /// `Lambda-Runtime-Trace-Id`, sent when set.
    pub trace_id: Option<String>,
    /// `Lambda-Runtime-Deadline-Ms` is this long after the moment `/next` answers.
    pub deadline_in: Duration,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub function_arn: String,
    /// `Lambda-Runtime-Client-Context` (JSON), sent when set.
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity` (JSON), sent when set.
    pub cognito_identity: Option<String>,
}

impl Event {
    /// Event `body` under `request_id`, with the defaults: a 30 s deadline,
    /// [`DEFAULT_FUNCTION_ARN`], no trace header, client context or Cognito identity.
    pub fn new(request_id: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            request_id: request_id.into(),
            body: body.into(),
            trace_id: None,
            deadline_in: DEFAULT_DEADLINE,
            function_arn: DEFAULT_FUNCTION_ARN.into(),
            client_context: None,
            cognito_identity: None,
        }
    }

    /// The event in file `path`; panics naming the file if it cannot be read.
    pub fn from_file(request_id: &str, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        Self::new(
            request_id,
            std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
    }

    /// With `Lambda-Runtime-Trace-Id: header`.
    pub fn traced(mut self, header: &str) -> Self {
        self.trace_id = Some(header.into());
        self
    }

    /// With a deadline `time` after the moment `/next` hands the event out (a short one to test
    /// what runs out of time).
    pub fn deadline_in(mut self, time: Duration) -> Self {
        self.deadline_in = time;
        self
    }

    /// With `Lambda-Runtime-Invoked-Function-Arn: arn` (an alias or version ARN, say).
    pub fn invoked_function_arn(mut self, arn: &str) -> Self {
        self.function_arn = arn.into();
        self
    }

    /// With `Lambda-Runtime-Client-Context: json` (as the mobile SDKs send it).
    pub fn client_context(mut self, json: &str) -> Self {
        self.client_context = Some(json.into());
        self
    }

    /// With `Lambda-Runtime-Cognito-Identity: json`.
    pub fn cognito_identity(mut self, json: &str) -> Self {
        self.cognito_identity = Some(json.into());
        self
    }

    /// The `/next` answer handing this event out now.
    fn response(&self) -> Response {
        let deadline_ms = (SystemTime::now() + self.deadline_in)
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut response = Response::new(200, self.body.clone())
            .with_header("lambda-runtime-aws-request-id", self.request_id.clone())
            .with_header("lambda-runtime-deadline-ms", deadline_ms.to_string())
            .with_header(
                "lambda-runtime-invoked-function-arn",
                self.function_arn.clone(),
            )
            .with_header("content-type", "application/json");
        for (name, value) in [
            ("lambda-runtime-trace-id", &self.trace_id),
            ("lambda-runtime-client-context", &self.client_context),
            ("lambda-runtime-cognito-identity", &self.cognito_identity),
        ] {
            if let Some(value) = value {
                response = response.with_header(name, value.clone());
            }
        }
        response
    }
}

/// What the function posted back for an invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST …/invocation/{id}/response`.
    Response {
        /// The `{id}` of the path.
        request_id: String,
        /// The body as JSON (`null` if it was not JSON).
        body: serde_json::Value,
    },
    /// `POST …/invocation/{id}/error`.
    Error {
        /// The `{id}` of the path.
        request_id: String,
        /// The body as JSON (`null` if it was not JSON).
        body: serde_json::Value,
        /// `Lambda-Runtime-Function-Error-Type`, as sent.
        error_type_header: Option<String>,
        /// `Lambda-Runtime-Function-XRay-Error-Cause`, as sent.
        xray_cause_header: Option<String>,
    },
}

impl Outcome {
    /// The request id it answered.
    pub fn request_id(&self) -> &str {
        match self {
            Outcome::Response { request_id, .. } | Outcome::Error { request_id, .. } => request_id,
        }
    }
}

/// How the mock answers the posts for a request id it was told to refuse
/// ([`MockRuntimeApi::refuse_posts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This status, with an `{"errorMessage", "errorType"}` body.
    Status(u16),
    /// No answer: the connection is closed once the request is read.
    Disconnect,
}

type NextHook = Box<dyn Fn(usize) + Send + Sync>;

#[derive(Default)]
struct State {
    queue: VecDeque<Event>,
    outcomes: Vec<Outcome>,
    /// `/next` requests so far, each counted after its hook ran.
    next_calls: usize,
    init_errors: Vec<String>,
    init_error_requests: Vec<Request>,
    /// Invocations handed out by `/next` and not yet answered, and the most there ever were.
    in_flight: usize,
    max_in_flight: usize,
    /// The request ids handed out and not yet answered, with how many times (a test may queue
    /// two events under one id).
    pending: HashMap<String, usize>,
    /// Requests Lambda would not have served, described.
    violations: Vec<String>,
    /// Request ids whose posts are refused, and how.
    refusals: HashMap<String, Refusal>,
    /// Posts refused so far: request id, `response` or `error`, how.
    refused: Vec<(String, &'static str, Refusal)>,
    /// Statuses the next `/next` requests are answered with, in order, instead of an event.
    next_statuses: VecDeque<u16>,
}

impl State {
    fn assert_no_violations(&self) {
        assert!(
            self.violations.is_empty(),
            "Runtime API protocol violations: {:#?}",
            self.violations
        );
    }
}

/// What the server tasks share with the test's handles.
struct Shared {
    state: Mutex<State>,
    changed: Notify,
    on_next: Mutex<Option<NextHook>>,
}

/// Checks, when the test's last handle goes, that the runtime kept to the protocol.
struct Guard {
    shared: Arc<Shared>,
    server: tokio::task::AbortHandle,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.server.abort();
        if std::thread::panicking() {
            return;
        }
        self.shared.state().assert_no_violations();
    }
}

/// A mock Lambda Runtime API (the `2018-06-01` protocol) on 127.0.0.1, as strict as Lambda's:
/// it serves only
///
/// - `GET /2018-06-01/runtime/invocation/next`,
/// - `POST /2018-06-01/runtime/invocation/{id}/response` and `…/{id}/error`, for an `{id}`
///   handed out by `/next` and not answered yet,
/// - `POST /2018-06-01/runtime/init/error`.
///
/// Anything else is answered 404 and recorded as a protocol violation
/// ([`MockRuntimeApi::violations`]); the waits fail the test on one, and so does dropping the
/// last handle (unless the test is already panicking).
#[derive(Clone)]
pub struct MockRuntimeApi {
    /// Where it listens: `AWS_LAMBDA_RUNTIME_API`.
    pub address: SocketAddr,
    shared: Arc<Shared>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for MockRuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.state();
        f.debug_struct("MockRuntimeApi")
            .field("address", &self.address)
            .field("queued", &state.queue.len())
            .field("next_calls", &state.next_calls)
            .field("outcomes", &state.outcomes.len())
            .field("in_flight", &state.in_flight)
            .field("violations", &state.violations)
            .finish_non_exhaustive()
    }
}

impl MockRuntimeApi {
    /// Serves the Runtime API with `events` queued, handed out in order.
    pub async fn start(events: Vec<Event>) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: events.into(),
                ..State::default()
            }),
            changed: Notify::new(),
            on_next: Mutex::new(None),
        });
        let server = shared.clone();
        let (address, server) = serve(move |request| {
            let server = server.clone();
            async move { server.answer(request).await }
        })
        .await;
        Self {
            address,
            shared: shared.clone(),
            _guard: Arc::new(Guard { shared, server }),
        }
    }

    /// Called with the 1-based number of each `/next` request, before it is answered: the moment
    /// the real Lambda may freeze the process.
    pub fn on_next(&self, hook: impl Fn(usize) + Send + Sync + 'static) {
        *self.shared.on_next.lock().expect("lock") = Some(Box::new(hook));
    }

    /// Queues `event` after the others.
    pub fn push(&self, event: Event) {
        self.shared.state().queue.push_back(event);
        self.shared.changed.notify_waiters();
    }

    /// Refuses every post (`/response` or `/error`) for `request_id` with `refusal`, as Lambda
    /// may (`400`, `403`, `413`, `500`) or as a broken connection would. The invocation stays in
    /// flight: a refused post is not an outcome ([`MockRuntimeApi::refused`]).
    pub fn refuse_posts(&self, request_id: &str, refusal: Refusal) {
        self.shared
            .state()
            .refusals
            .insert(request_id.to_owned(), refusal);
    }

    /// Answers the next `count` `/next` requests with `status` (and an error body) instead of
    /// an event.
    pub fn answer_next_with(&self, status: u16, count: usize) {
        self.shared
            .state()
            .next_statuses
            .extend(std::iter::repeat_n(status, count));
    }

    /// The posts refused so far: request id, `"response"` or `"error"`, how.
    pub fn refused(&self) -> Vec<(String, &'static str, Refusal)> {
        self.shared.state().refused.clone()
    }

    /// Waits until `count` posts were refused, and returns them in order.
    pub async fn wait_refused(&self, count: usize) -> Vec<(String, &'static str, Refusal)> {
        self.wait_for(&format!("{count} refused posts"), TIMEOUT, |state| {
            (state.refused.len() >= count).then(|| state.refused.clone())
        })
        .await
    }

    /// The requests Lambda would not have served (wrong method, path or request id), described.
    pub fn violations(&self) -> Vec<String> {
        self.shared.state().violations.clone()
    }

    /// How many `/next` requests arrived so far (answered or still waiting for an event), each
    /// counted once the [`MockRuntimeApi::on_next`] hook ran for it.
    pub fn next_calls(&self) -> usize {
        self.shared.state().next_calls
    }

    /// Waits until `count` outcomes were posted, and returns them in order. Fails on an init
    /// error or a protocol violation.
    pub async fn outcomes(&self, count: usize) -> Vec<Outcome> {
        self.wait_for(&format!("{count} outcomes"), TIMEOUT, |state| {
            if state.outcomes.len() >= count {
                return Some(state.outcomes.clone());
            }
            assert!(
                state.init_errors.is_empty(),
                "init error: {:?}",
                state.init_errors
            );
            None
        })
        .await
    }

    /// Waits until the function asked for event number `count`.
    pub async fn wait_next_calls(&self, count: usize) {
        self.wait_for(&format!("/next #{count}"), TIMEOUT, |state| {
            (state.next_calls >= count).then_some(())
        })
        .await
    }

    /// The requests posted to `/runtime/init/error` so far (headers and body).
    pub fn init_error_requests(&self) -> Vec<Request> {
        self.shared.state().init_error_requests.clone()
    }

    /// Waits until something was posted to `/runtime/init/error`.
    pub async fn wait_init_error(&self) -> Request {
        self.wait_for("/init/error", TIMEOUT, |state| {
            state.init_error_requests.first().cloned()
        })
        .await
    }

    /// Waits until `count` outcomes were posted, without copying them (up to 10 minutes: for
    /// long runs).
    pub async fn wait_outcome_count(&self, count: usize) {
        self.wait_for(
            &format!("{count} outcomes"),
            Duration::from_secs(600),
            |state| (state.outcomes.len() >= count).then_some(()),
        )
        .await
    }

    /// The most invocations that were handed out and not yet answered at one time.
    pub fn max_in_flight(&self) -> usize {
        self.shared.state().max_in_flight
    }

    /// Waits until `count` invocations are handed out and not yet answered.
    pub async fn wait_in_flight(&self, count: usize) {
        self.wait_for(
            &format!("{count} invocations in flight"),
            TIMEOUT,
            |state| (state.in_flight >= count).then_some(()),
        )
        .await
    }

    /// Waits, woken at each change of the state, until `ready` gives a value; panics on a
    /// protocol violation, and after `limit` saying it was waiting for `what`.
    async fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut ready: impl FnMut(&State) -> Option<T>,
    ) -> T {
        let started = Instant::now();
        loop {
            let notified = self.shared.changed.notified();
            let value = {
                let state = self.shared.state();
                state.assert_no_violations();
                ready(&state)
            };
            if let Some(value) = value {
                return value;
            }
            assert!(started.elapsed() < limit, "timed out waiting for {what}");
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

/// A Runtime API route, as Lambda serves them.
enum Route {
    Next,
    Response(String),
    Error(String),
    InitError,
}

impl Route {
    /// The route of `method path`, if Lambda serves it.
    fn of(method: &str, path: &str) -> Option<Self> {
        let rest = path.strip_prefix(RUNTIME_PREFIX)?;
        match (method, rest) {
            ("GET", "/invocation/next") => Some(Self::Next),
            ("POST", "/init/error") => Some(Self::InitError),
            ("POST", rest) => {
                let (id, kind) = rest.strip_prefix("/invocation/")?.split_once('/')?;
                match kind {
                    _ if id.is_empty() => None,
                    "response" => Some(Self::Response(id.to_owned())),
                    "error" => Some(Self::Error(id.to_owned())),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

impl Shared {
    /// The state, even after a panic in a wait holding it (an assertion reads it, never leaves
    /// it half-changed).
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer to `request`; `None` closes the connection without one.
    async fn answer(&self, request: Request) -> Option<Response> {
        let route = Route::of(&request.method, &request.path);
        if let Some(Route::Response(id) | Route::Error(id)) = &route {
            let kind = if matches!(route, Some(Route::Error(_))) {
                "error"
            } else {
                "response"
            };
            let refusal = self.state().refusals.get(id).copied();
            if let Some(refusal) = refusal {
                self.state().refused.push((id.clone(), kind, refusal));
                self.changed.notify_waiters();
                return match refusal {
                    Refusal::Status(status) => Some(error_answer(status, "refused by the test")),
                    Refusal::Disconnect => None,
                };
            }
        }
        Some(match route {
            Some(Route::Next) => self.next().await,
            Some(Route::Response(id)) => self.answered(&request, id, false),
            Some(Route::Error(id)) => self.answered(&request, id, true),
            Some(Route::InitError) => {
                {
                    let mut state = self.state();
                    state
                        .init_errors
                        .push(String::from_utf8_lossy(&request.body).into_owned());
                    state.init_error_requests.push(request);
                }
                self.changed.notify_waiters();
                accepted()
            }
            None => self.violation(format!(
                "{} {}: not a Runtime API route",
                request.method, request.path
            )),
        })
    }

    /// Hands out the next event, once there is one.
    async fn next(&self) -> Response {
        {
            // Numbered, hooked and counted under the hook's lock: calls are counted in order,
            // each once its hook is done (a wait for `/next #n` sees what the hook captured).
            let hook = self.on_next.lock().expect("lock");
            let number = self.state().next_calls + 1;
            if let Some(hook) = hook.as_ref() {
                hook(number);
            }
            self.state().next_calls = number;
        }
        self.changed.notify_waiters();
        let forced = self.state().next_statuses.pop_front();
        if let Some(status) = forced {
            return error_answer(status, "answered by the test");
        }
        let event = loop {
            let notified = self.changed.notified();
            if let Some(event) = self.state().queue.pop_front() {
                break event;
            }
            notified.await;
        };
        {
            let mut state = self.state();
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            *state.pending.entry(event.request_id.clone()).or_default() += 1;
        }
        self.changed.notify_waiters();
        event.response()
    }

    /// Records the response or error posted for invocation `id`, if it is one in flight.
    fn answered(&self, request: &Request, id: String, error: bool) -> Response {
        let body: serde_json::Value =
            serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
        {
            let mut state = self.state();
            let in_flight = match state.pending.get_mut(&id) {
                Some(count) if *count > 0 => {
                    *count -= 1;
                    true
                }
                _ => false,
            };
            if !in_flight {
                drop(state);
                return self.violation(format!(
                    "{} {}: request id {id:?} is not an invocation in flight",
                    request.method, request.path
                ));
            }
            state.in_flight = state.in_flight.saturating_sub(1);
            let outcome = if error {
                Outcome::Error {
                    request_id: id,
                    body,
                    error_type_header: request
                        .header("lambda-runtime-function-error-type")
                        .map(str::to_owned),
                    xray_cause_header: request
                        .header("lambda-runtime-function-xray-error-cause")
                        .map(str::to_owned),
                }
            } else {
                Outcome::Response {
                    request_id: id,
                    body,
                }
            };
            state.outcomes.push(outcome);
        }
        self.changed.notify_waiters();
        accepted()
    }

    /// Records `what` as a protocol violation and answers 404.
    fn violation(&self, what: String) -> Response {
        let body = serde_json::json!({"errorMessage": what, "errorType": "NotFound"}).to_string();
        self.state().violations.push(what);
        self.changed.notify_waiters();
        Response::new(404, body).with_header("content-type", "application/json")
    }
}

/// An error answer with `status`, in the Runtime API's `ErrorResponse` shape.
fn error_answer(status: u16, message: &str) -> Response {
    let body = serde_json::json!({"errorMessage": message, "errorType": format!("Status{status}")})
        .to_string();
    Response::new(status, body).with_header("content-type", "application/json")
}

/// Lambda's answer to a posted response or error.
fn accepted() -> Response {
    Response::new(202, "{\"status\":\"OK\"}").with_header("content-type", "application/json")
}
