//! Test doubles that speak the real wire protocols: a Lambda Runtime API, an X-Ray daemon (UDP),
//! an OTLP/HTTP receiver, and the public-IP service. Plus a handle on the real `bootstrap`.
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::VecDeque,
    io::Read,
    net::{SocketAddr, UdpSocket},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
};

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP/1.1 request as read off the socket.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request (content-length or chunked body); `None` at end of stream.
pub async fn read_request<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Option<Request> {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if let Some(length) = request
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.ok()?;
        request.body = body;
    } else if request
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await.ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            request.body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(request)
}

pub async fn write_response(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // One write: a head and a body in two small segments would wait out the peer's delayed ACK
    // (Nagle), 40 ms per answer on loopback.
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message).await?;
    stream.flush().await
}

/// An event queued on the mock Runtime API.
#[derive(Debug, Clone)]
pub struct Event {
    pub request_id: String,
    pub body: Vec<u8>,
    pub trace_id: Option<String>,
}

impl Event {
    pub fn new(request_id: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            request_id: request_id.into(),
            body: body.into(),
            trace_id: None,
        }
    }

    pub fn fixture(request_id: &str, name: &str) -> Self {
        let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
        Self::new(
            request_id,
            std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        )
    }

    pub fn traced(mut self, header: &str) -> Self {
        self.trace_id = Some(header.into());
        self
    }
}

/// What the function posted back for an invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    Response {
        request_id: String,
        body: serde_json::Value,
    },
    Error {
        request_id: String,
        body: serde_json::Value,
        error_type_header: Option<String>,
        /// `Lambda-Runtime-Function-XRay-Error-Cause`, as sent.
        xray_cause_header: Option<String>,
    },
}

impl Outcome {
    pub fn request_id(&self) -> &str {
        match self {
            Outcome::Response { request_id, .. } | Outcome::Error { request_id, .. } => request_id,
        }
    }
}

type NextHook = Box<dyn Fn(usize) + Send + Sync>;

#[derive(Default)]
struct State {
    queue: VecDeque<Event>,
    outcomes: Vec<Outcome>,
    next_calls: usize,
    init_errors: Vec<String>,
    init_error_requests: Vec<Request>,
    /// Invocations handed out by `/next` and not yet answered, and the most there ever were.
    in_flight: usize,
    max_in_flight: usize,
}

/// A mock Lambda Runtime API (the `2018-06-01` protocol) on 127.0.0.1.
#[derive(Clone)]
pub struct MockRuntimeApi {
    pub address: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    on_next: Arc<Mutex<Option<NextHook>>>,
}

impl MockRuntimeApi {
    pub async fn start(events: Vec<Event>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let api = Self {
            address: listener.local_addr().expect("address"),
            state: Arc::new(Mutex::new(State {
                queue: events.into(),
                ..State::default()
            })),
            changed: Arc::new(Notify::new()),
            on_next: Arc::new(Mutex::new(None)),
        };
        let server = api.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move { server.serve(stream).await });
            }
        });
        api
    }

    /// Called with the 1-based number of each `/next` request, before it is answered: the moment
    /// the real Lambda may freeze the process.
    pub fn on_next(&self, hook: impl Fn(usize) + Send + Sync + 'static) {
        *self.on_next.lock().expect("lock") = Some(Box::new(hook));
    }

    pub fn push(&self, event: Event) {
        self.state.lock().expect("lock").queue.push_back(event);
        self.changed.notify_waiters();
    }

    async fn serve(&self, stream: TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        while let Some(request) = read_request(&mut reader).await {
            let path = request.path.trim_start_matches("/2018-06-01/runtime");
            if request.method == "GET" && path == "/invocation/next" {
                let number = {
                    let mut state = self.state.lock().expect("lock");
                    state.next_calls += 1;
                    state.next_calls
                };
                if let Some(hook) = self.on_next.lock().expect("lock").as_ref() {
                    hook(number);
                }
                let event = loop {
                    let notified = self.changed.notified();
                    if let Some(event) = self.state.lock().expect("lock").queue.pop_front() {
                        break event;
                    }
                    notified.await;
                };
                let deadline = SystemTime::now() + Duration::from_secs(30);
                let deadline_ms = deadline
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                let mut headers = vec![
                    ("lambda-runtime-aws-request-id", event.request_id.clone()),
                    ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:eu-west-1:123456789012:function:hello-it".to_owned(),
                    ),
                    ("content-type", "application/json".to_owned()),
                ];
                if let Some(trace) = &event.trace_id {
                    headers.push(("lambda-runtime-trace-id", trace.clone()));
                }
                {
                    let mut state = self.state.lock().expect("lock");
                    state.in_flight += 1;
                    state.max_in_flight = state.max_in_flight.max(state.in_flight);
                }
                self.changed.notify_waiters();
                if write_response(&mut write, 200, &headers, &event.body)
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            let body: serde_json::Value =
                serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
            let mut segments = path.trim_start_matches("/invocation/").splitn(2, '/');
            let (id, kind) = (
                segments.next().unwrap_or_default().to_owned(),
                segments.next().unwrap_or_default(),
            );
            {
                let mut state = self.state.lock().expect("lock");
                match (request.method.as_str(), kind) {
                    ("POST", "response") => {
                        state.in_flight = state.in_flight.saturating_sub(1);
                        state.outcomes.push(Outcome::Response {
                            request_id: id,
                            body,
                        })
                    }
                    ("POST", "error") => {
                        state.in_flight = state.in_flight.saturating_sub(1);
                        state.outcomes.push(Outcome::Error {
                            request_id: id,
                            body,
                            error_type_header: request
                                .header("lambda-runtime-function-error-type")
                                .map(str::to_owned),
                            xray_cause_header: request
                                .header("lambda-runtime-function-xray-error-cause")
                                .map(str::to_owned),
                        })
                    }
                    _ if path == "/init/error" => {
                        state
                            .init_errors
                            .push(String::from_utf8_lossy(&request.body).into_owned());
                        state.init_error_requests.push(request.clone());
                    }
                    _ => {}
                }
            }
            self.changed.notify_waiters();
            if write_response(&mut write, 202, &[], b"{\"status\":\"OK\"}")
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// Waits until `count` outcomes were posted, and returns them in order.
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

    /// Waits, woken at each change of the state, until `ready` gives a value; panics after
    /// `limit`, saying it was waiting for `what`.
    async fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut ready: impl FnMut(&State) -> Option<T>,
    ) -> T {
        let started = Instant::now();
        loop {
            let notified = self.changed.notified();
            let value = ready(&self.state.lock().expect("lock"));
            if let Some(value) = value {
                return value;
            }
            assert!(started.elapsed() < limit, "timed out waiting for {what}");
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    /// Waits until the function asked for event number `count`.
    pub async fn wait_next_calls(&self, count: usize) {
        let started = Instant::now();
        while self.state.lock().expect("lock").next_calls < count {
            assert!(
                started.elapsed() < TIMEOUT,
                "timed out waiting for /next #{count}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The real `bootstrap` executable, killed on drop.
pub struct Function {
    child: Child,
    log_path: std::path::PathBuf,
}

impl Function {
    /// Starts `bootstrap` against `runtime`, with a clean Lambda-like environment plus `env`.
    pub fn start(runtime: &MockRuntimeApi, env: &[(&str, &str)]) -> Self {
        Self::start_exe(env!("CARGO_BIN_EXE_bootstrap"), runtime, env)
    }

    /// Starts `exe` (a Lambda function executable) the same way.
    pub fn start_exe(
        exe: impl AsRef<std::ffi::OsStr>,
        runtime: &MockRuntimeApi,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_with(exe, runtime, env, &[])
    }

    /// `exe` with the test environment, `env` on top, and the variables in `unset` removed
    /// (defaults included).
    fn start_with(
        exe: impl AsRef<std::ffi::OsStr>,
        runtime: &MockRuntimeApi,
        env: &[(&str, &str)],
        unset: &[&str],
    ) -> Self {
        let log_path = std::env::temp_dir().join(format!(
            "bootstrap-{}-{}.log",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(exe);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "hello-it")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/hello-it")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]abc")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_SECRET_ACCESS_KEY", "must-never-be-logged")
            .env("PACKAGE_MANAGEMENT_SYSTEM", "cargo")
            .env("OTEL_TRACES_EXPORTER", "none")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone"))
            .stderr(log);
        for (name, value) in env {
            command.env(name, value);
        }
        for name in unset {
            command.env_remove(name);
        }
        Self {
            child: command.spawn().expect("spawn bootstrap"),
            log_path,
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit (after a signal, say).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn logs(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log_path) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// The JSON log lines.
    pub fn json_logs(&self) -> Vec<serde_json::Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Serves HTTP/1.1 on 127.0.0.1 with keep-alive: `answer` gets each request and writes the
/// response; it returns `false` to close the connection. Returns the bound address.
pub async fn serve_http<F, Fut>(answer: F) -> SocketAddr
where
    F: Fn(Request, tokio::net::tcp::OwnedWriteHalf) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<tokio::net::tcp::OwnedWriteHalf>> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let (read, write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let mut write = Some(write);
                while let (Some(request), Some(w)) = (read_request(&mut reader).await, write.take())
                {
                    write = answer(request, w).await;
                }
            });
        }
    });
    address
}

/// A stand-in for the public-IP service: answers every request with `status` and records the
/// request heads (for the propagated trace headers).
pub struct CheckIp {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl CheckIp {
    pub async fn start(status: u16) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let address = serve_http(move |request, mut write| {
            seen.lock().expect("lock").push(request);
            async move {
                write_public_ip(&mut write, status).await?;
                Some(write)
            }
        })
        .await;
        Self {
            url: format!("http://{address}/"),
            requests,
        }
    }
    /// A service that accepts connections and reads requests but never answers.
    pub async fn hanging() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let address = serve_http(move |request, write| {
            seen.lock().expect("lock").push(request);
            async move {
                // Holds the connection open without answering.
                let _open = write;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                None
            }
        })
        .await;
        Self {
            url: format!("http://{address}/"),
            requests,
        }
    }
}

/// Datagrams, each with the number of the `/next` call before which it had arrived.
pub type Received = Arc<Mutex<Vec<(usize, Vec<u8>)>>>;

/// A UDP socket standing in for the X-Ray daemon.
pub struct XrayDaemon {
    socket: UdpSocket,
    pub address: SocketAddr,
}

impl XrayDaemon {
    pub fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        socket.set_nonblocking(true).expect("nonblocking");
        let address = socket.local_addr().expect("address");
        Self { socket, address }
    }

    /// Records, at each `/next` request of `runtime`, the datagrams received until then, tagged
    /// with that request's number. Lambda may freeze the process once it asks for the next
    /// event: whatever has not reached the daemon by then counts as lost.
    pub fn capture_before_next(self: &Arc<Self>, runtime: &MockRuntimeApi) -> Received {
        let received: Received = Arc::default();
        let (daemon, sink) = (self.clone(), received.clone());
        runtime.on_next(move |n| {
            sink.lock()
                .expect("lock")
                .extend(daemon.drain().into_iter().map(|d| (n, d)))
        });
        received
    }

    /// Every datagram received so far, without waiting.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let mut datagrams = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = self.socket.recv(&mut buf) {
            datagrams.push(buf[..n].to_vec());
        }
        datagrams
    }
}

pub const TRACE_PARENT: &str = "53995c3f42cd8ad8";

/// A `Lambda-Runtime-Trace-Id` for the `n`th invocation: distinct roots, one parent. The root's
/// time part is now, as Lambda's is: X-Ray rejects trace ids older than 30 days.
pub fn trace_header(n: u32, sampled: bool) -> String {
    format!(
        "Root={};Parent={TRACE_PARENT};Sampled={}",
        trace_root(n),
        u8::from(sampled)
    )
}

/// Invocations 1 to 4 of the export tests: success, `throwError` and an invalid event, sampled,
/// then a success with `Sampled=0`.
pub fn traced_events() -> Vec<Event> {
    vec![
        Event::fixture("ok", "success.json").traced(&trace_header(1, true)),
        Event::fixture("throw", "throw-error.json").traced(&trace_header(2, true)),
        Event::fixture("invalid", "invalid.json").traced(&trace_header(3, true)),
        Event::fixture("unsampled", "success.json").traced(&trace_header(4, false)),
    ]
}

/// The X-Ray trace id (`1-<epoch hex>-<24 hex>`) of [`trace_header`]`(n, _)`.
pub fn trace_root(n: u32) -> String {
    xray_root(&format!("bd862e3fe1be46a9942727{n:02x}"))
}

/// How the OTLP receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpMode {
    /// 200 with an empty `ExportTraceServiceResponse`.
    Accept,
    /// 500, every time.
    Fail,
    /// Reads the request and never answers.
    Hang,
}

/// A request the OTLP receiver decoded.
#[derive(Debug, Clone)]
pub struct OtlpExport {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
}

/// A real OTLP/HTTP (protobuf) trace receiver on 127.0.0.1.
#[derive(Clone)]
pub struct OtlpReceiver {
    pub endpoint: String,
    pub exports: Arc<Mutex<Vec<OtlpExport>>>,
}

impl OtlpReceiver {
    pub async fn start(mode: OtlpMode) -> Self {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message;
        let exports = Arc::new(Mutex::new(Vec::new()));
        let seen = exports.clone();
        let address = serve_http(move |request, mut write| {
            let decoded = ExportTraceServiceRequest::decode(request.body.as_slice())
                .expect("a valid ExportTraceServiceRequest");
            seen.lock().expect("lock").push(OtlpExport {
                path: request.path,
                headers: request.headers,
                request: decoded,
            });
            async move {
                match mode {
                    OtlpMode::Accept => write_export_accepted(&mut write).await?,
                    OtlpMode::Fail => {
                        write_response(&mut write, 500, &[], b"collector unavailable")
                            .await
                            .ok()?
                    }
                    OtlpMode::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return None;
                    }
                }
                Some(write)
            }
        })
        .await;
        Self {
            endpoint: format!("http://{address}"),
            exports,
        }
    }

    /// Every span received so far, with the resource attributes of its batch.
    pub fn spans(&self) -> Vec<ResourceSpan> {
        let exports = self.exports.lock().expect("lock");
        exports
            .iter()
            .flat_map(|export| request_spans(&export.request))
            .collect()
    }
}

/// An OTLP attribute value as text (`"aws"`, `"true"`, `"256"`).
pub fn any_value_text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// The value of attribute `key` on an OTLP span, as text.
pub fn span_attr(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| any_value_text(kv.value.as_ref()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One datagram of the OTLP-over-UDP protocol (ADOT's Lambda distributions), decoded.
#[derive(Debug, Clone)]
pub struct OtlpDatagram {
    /// Length of the whole datagram, header included.
    pub len: usize,
    /// The first line, `{"format":"json","version":1}`.
    pub header: String,
    /// `T1S` (sampled) or `T1U`.
    pub prefix: String,
    pub request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
}

impl OtlpDatagram {
    /// Decodes header line, prefix and base64 protobuf; panics on anything else.
    pub fn decode(datagram: &[u8]) -> Self {
        use base64::Engine as _;
        use prost::Message;
        let text = std::str::from_utf8(datagram).expect("an ASCII datagram");
        let (header, body) = text.split_once('\n').expect("a header line");
        let (prefix, encoded) = body.split_at(3);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64 after the prefix");
        Self {
            len: datagram.len(),
            header: header.to_owned(),
            prefix: prefix.to_owned(),
            request:
                opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
                    bytes.as_slice(),
                )
                .expect("a valid ExportTraceServiceRequest"),
        }
    }

    /// Its spans, each with the resource attributes of its batch.
    pub fn spans(&self) -> Vec<ResourceSpan> {
        request_spans(&self.request)
    }
}

/// The Lambda daemon's UDP socket receiving OTLP datagrams (the same socket as the X-Ray one:
/// the daemon tells the formats apart by the prefix).
pub type OtlpUdpDaemon = XrayDaemon;

impl Function {
    /// [`Function::start`] with the variables in `unset` removed from the environment it would
    /// get, the defaults included: tests of a variable's unset case (`OTEL_TRACES_EXPORTER`,
    /// which the defaults set to `none`) remove it instead of setting it empty.
    pub fn start_unsetting(runtime: &MockRuntimeApi, env: &[(&str, &str)], unset: &[&str]) -> Self {
        Self::start_with(env!("CARGO_BIN_EXE_bootstrap"), runtime, env, unset)
    }
}

impl MockRuntimeApi {
    /// The requests posted to `/runtime/init/error` so far (headers and body).
    pub fn init_error_requests(&self) -> Vec<Request> {
        self.state.lock().expect("lock").init_error_requests.clone()
    }

    /// Waits until something was posted to `/runtime/init/error`.
    pub async fn wait_init_error(&self) -> Request {
        self.wait_for("/init/error", TIMEOUT, |state| {
            state.init_error_requests.first().cloned()
        })
        .await
    }

    /// Waits until `count` outcomes were posted, without copying them.
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
        self.state.lock().expect("lock").max_in_flight
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
}

/// A public-IP stand-in that holds every request until [`GatedCheckIp::release`]: invocations
/// stay in flight for as long as the test wants, whatever the machine's speed.
pub struct GatedCheckIp {
    pub url: String,
    pub waiting: Arc<std::sync::atomic::AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl GatedCheckIp {
    pub async fn start() -> Self {
        Self::holding(|_| true).await
    }

    /// A stand-in that holds only the requests `hold` picks, and answers the others at once.
    pub async fn holding(hold: impl Fn(&Request) -> bool + Clone + Send + Sync + 'static) -> Self {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (g, w) = (gate.clone(), waiting.clone());
        let address = serve_http(move |request, mut write| {
            let (gate, waiting) = (g.clone(), w.clone());
            let held = hold(&request);
            async move {
                if held {
                    waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    gate.acquire().await.ok()?.forget();
                    waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
                write_public_ip(&mut write, 200).await?;
                Some(write)
            }
        })
        .await;
        Self {
            url: format!("http://{address}/"),
            waiting,
            gate,
        }
    }

    /// Lets `count` held (or future) requests through.
    pub fn release(&self, count: usize) {
        self.gate.add_permits(count);
    }

    /// Requests held right now.
    pub fn held(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Resident set size of process `pid`, in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// An X-Ray trace id, `1-<time>-<unique>`: the time part is the test process's start, as
/// Lambda's is now (X-Ray rejects trace ids older than 30 days); `unique` is 24 hex digits.
pub fn xray_root(unique: &str) -> String {
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let epoch = EPOCH.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!("1-{epoch:08x}-{unique}")
}

/// An X-Ray trace id as OpenTelemetry writes it: `1-<8 hex>-<24 hex>` as 32 hex digits.
pub fn otel_id_of_root(root: &str) -> String {
    root.trim_start_matches("1-").replace('-', "")
}

/// [`trace_root`]`(n)` as OpenTelemetry writes it.
pub fn otel_trace_id(n: u32) -> String {
    otel_id_of_root(&trace_root(n))
}

/// An OTLP span with the resource attributes of its batch.
pub type ResourceSpan = (
    Vec<(String, String)>,
    opentelemetry_proto::tonic::trace::v1::Span,
);

/// The spans of an OTLP export request, each with the resource attributes of its batch.
pub fn request_spans(
    request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> Vec<ResourceSpan> {
    let mut spans = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource: Vec<(String, String)> = resource_spans
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .map(|kv| (kv.key.clone(), any_value_text(kv.value.as_ref())))
            .collect();
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                spans.push((resource.clone(), span.clone()));
            }
        }
    }
    spans
}

/// The distinct trace ids (hex) of the spans of an OTLP export request.
pub fn request_trace_ids(
    request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> std::collections::HashSet<String> {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| hex(&s.trace_id))
        .collect()
}

/// Answers an OTLP/HTTP export as a collector that took it: 200, an empty
/// `ExportTraceServiceResponse`. `None` when the connection is gone.
pub async fn write_export_accepted(write: &mut tokio::net::tcp::OwnedWriteHalf) -> Option<()> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use prost::Message;
    let body = ExportTraceServiceResponse::default().encode_to_vec();
    write_response(
        write,
        200,
        &[("content-type", "application/x-protobuf".into())],
        &body,
    )
    .await
    .ok()
}

/// The value of resource attribute `key`.
pub fn resource_attr<'a>(resource: &'a [(String, String)], key: &str) -> Option<&'a str> {
    resource
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The JSON log lines whose `message` contains `text`.
pub fn lines_with_message<'a>(
    logs: &'a [serde_json::Value],
    text: &str,
) -> Vec<&'a serde_json::Value> {
    logs.iter()
        .filter(|l| l["message"].as_str().is_some_and(|m| m.contains(text)))
        .collect()
}

/// The EMF documents among the JSON log lines.
pub fn emf_documents(logs: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    logs.into_iter()
        .filter(|l| l.get("_aws").is_some())
        .collect()
}

/// Invocations 1 to 3 of [`traced_events`] as an OTLP transport sent them: the resource of the
/// first batch, and the spans the callers check further.
pub struct TracedSpans {
    pub resource: Vec<(String, String)>,
    /// Invocation 1's span, under Lambda's segment.
    pub invocation: opentelemetry_proto::tonic::trace::v1::Span,
    /// Invocation 1's GET to the public-IP service.
    pub http: opentelemetry_proto::tonic::trace::v1::Span,
    /// Invocation 2's span (`throwError`).
    pub thrown: opentelemetry_proto::tonic::trace::v1::Span,
    /// Invocation 3's span (an invalid event).
    pub invalid: opentelemetry_proto::tonic::trace::v1::Span,
}

/// The spans of trace `n` (of [`trace_header`]) among `spans`.
pub fn spans_of_trace(
    spans: &[ResourceSpan],
    n: u32,
) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    spans
        .iter()
        .map(|(_, s)| s.clone())
        .filter(|s| hex(&s.trace_id) == otel_trace_id(n))
        .collect()
}

/// The span of `trace` right under Lambda's segment: the invocation's.
fn invocation_span(
    trace: &[opentelemetry_proto::tonic::trace::v1::Span],
) -> opentelemetry_proto::tonic::trace::v1::Span {
    trace
        .iter()
        .find(|s| hex(&s.parent_span_id) == TRACE_PARENT)
        .expect("invocation span under Lambda's")
        .clone()
}

/// Asserts the span tree every OTLP transport carries for [`traced_events`], run with
/// `OTEL_SERVICE_NAME=hello-otlp`, `OTEL_RESOURCE_ATTRIBUTES=deployment.environment=test` and
/// the public-IP service at `checkip_url`: the resource; invocation 1's three spans (the
/// invocation's under Lambda's segment, `getRuntimeInfo` and the GET under it); invocation 2's
/// error status and exception event; invocation 3's client error; nothing of the unsampled
/// invocation 4.
pub fn assert_traced_span_tree(spans: &[ResourceSpan], checkip_url: &str) -> TracedSpans {
    use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
    let (resource, _) = spans.first().expect("spans");
    let resource_value = |key: &str| resource_attr(resource, key);
    assert_eq!(resource_value("service.name"), Some("hello-otlp"));
    assert_eq!(resource_value("cloud.provider"), Some("aws"));
    assert_eq!(resource_value("cloud.region"), Some("eu-west-1"));
    assert_eq!(resource_value("faas.name"), Some("hello-it"));
    assert_eq!(resource_value("deployment.environment"), Some("test"));

    let first = spans_of_trace(spans, 1);
    assert_eq!(first.len(), 3);
    let invocation = invocation_span(&first);
    assert_eq!(
        invocation.name, "hello-otlp",
        "the service name names the span"
    );
    assert_eq!(invocation.kind(), SpanKind::Internal);
    assert_eq!(
        span_attr(&invocation, "faas.invocation_id").as_deref(),
        Some("ok")
    );
    assert_eq!(span_attr(&invocation, "ColdStart").as_deref(), Some("true"));
    let runtime_info = first
        .iter()
        .find(|s| s.name == "getRuntimeInfo")
        .expect("getRuntimeInfo");
    assert_eq!(runtime_info.parent_span_id, invocation.span_id);
    let http = first
        .iter()
        .find(|s| s.kind() == SpanKind::Client)
        .expect("client span")
        .clone();
    assert_eq!(http.parent_span_id, invocation.span_id);
    assert_eq!(span_attr(&http, "url.full").as_deref(), Some(checkip_url));
    assert_eq!(
        span_attr(&http, "http.response.status_code").as_deref(),
        Some("200")
    );

    let thrown = invocation_span(&spans_of_trace(spans, 2));
    assert_eq!(
        thrown.status.as_ref().map(|s| s.code()),
        Some(StatusCode::Error)
    );
    assert!(thrown.events.iter().any(|e| e.name == "exception"));

    let invalid = invocation_span(&spans_of_trace(spans, 3));
    assert_eq!(span_attr(&invalid, "ErrorKind").as_deref(), Some("client"));

    assert!(
        spans_of_trace(spans, 4).is_empty(),
        "Sampled=0 sends nothing"
    );
    TracedSpans {
        resource: resource.clone(),
        invocation,
        http,
        thrown,
        invalid,
    }
}

/// Runs `bootstrap` over a success, a `throwError` and a success, exporting with `exporter` to
/// a daemon address where nothing listens and without a public-IP service, until it asks for
/// the event after the last. Returns the process and what it answered.
pub async fn run_with_unreachable_daemon(exporter: &str) -> (Function, Vec<Outcome>) {
    let runtime = MockRuntimeApi::start(vec![
        Event::fixture("a", "success.json"),
        Event::fixture("b", "throw-error.json"),
        Event::fixture("c", "success.json"),
    ])
    .await;
    let function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", "http://127.0.0.1:9/"),
            ("OTEL_TRACES_EXPORTER", exporter),
            ("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:9"),
        ],
    );
    let outcomes = runtime.outcomes(3).await;
    runtime.wait_next_calls(4).await;
    (function, outcomes)
}

/// Waits until `condition` holds (checked every 10 ms), up to [`TIMEOUT`]; panics naming `what`.
pub async fn until(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < TIMEOUT, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Answers as the public-IP service does: `status`, the address as text. `None` when the
/// connection is gone.
pub async fn write_public_ip(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    status: u16,
) -> Option<()> {
    write_response(write, status, &[], b"198.51.100.7\n")
        .await
        .ok()
}
