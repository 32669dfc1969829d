//! Blocking stand-ins for what a cold start talks to: a Lambda Runtime API that serves exactly one
//! event and timestamps the function's requests, and plain HTTP services (the public-IP service,
//! an OTLP/HTTP receiver) that answer every request alike and count them.
//!
//! The protocol handling follows `tests/support/mod.rs`, on plain threads rather than tokio: a
//! blocked thread wakes up as soon as the child's request arrives, so the timestamps are as close
//! to the wire as a user-space server gets, and nothing here competes with the child for a tokio
//! worker.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use crate::common::{FUNCTION_ARN, trace_header};

/// An HTTP/1.1 request head and body.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request (content-length or chunked body); `None` at end of stream or on error.
pub(crate) fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
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
        reader.read_exact(&mut body).ok()?;
        request.body = body;
    } else if request
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            request.body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(request)
}

pub(crate) fn write_response(
    stream: &mut impl Write,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message)?;
    stream.flush()
}

/// When the function reached the Runtime API, relative to nothing: callers subtract their start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrivals {
    /// The first `GET /invocation/next`: the function finished its init.
    pub(crate) first_next: Instant,
    /// The `POST /invocation/{id}/response`, fully read.
    pub(crate) response: Instant,
}

#[derive(Default)]
struct State {
    event: Option<(String, String, Vec<u8>)>,
    next_calls: usize,
    first_next: Option<Instant>,
    second_next: Option<Instant>,
    outcome: Option<Result<Instant, String>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stopping: AtomicBool,
}

/// A Runtime API for one execution environment: it serves one event on the first `/next`, and
/// holds any later `/next` open until the function goes away. Each cold start gets its own (own
/// port), so a request still in flight from a killed process can never take the next one's event.
pub(crate) struct OneShotRuntimeApi {
    pub(crate) address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl OneShotRuntimeApi {
    /// Serves `body` as invocation `n` (request id and trace id derive from it).
    pub(crate) fn start(n: u64, body: &[u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Runtime API");
        let address = listener.local_addr().expect("Runtime API address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                event: Some((format!("cold-start-{n}"), trace_header(n), body.to_vec())),
                ..State::default()
            }),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("runtime-api".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accepting.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = accepting.clone();
                    let _ = std::thread::Builder::new()
                        .name("runtime-api-conn".into())
                        .spawn(move || serve(&shared, stream));
                }
            })
            .expect("spawn the Runtime API thread");
        Self {
            address,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Waits for the response (or a reported error) to the one event.
    pub(crate) fn wait(&self, timeout: Duration) -> Result<Arrivals, String> {
        let state = self.shared.state.lock().expect("lock");
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, timeout, |s| s.outcome.is_none())
            .expect("lock");
        match (&state.outcome, state.first_next) {
            (Some(Ok(response)), Some(first_next)) => Ok(Arrivals {
                first_next,
                response: *response,
            }),
            (Some(Err(err)), _) => Err(err.clone()),
            (Some(Ok(_)), None) => Err("a response arrived before any /next".into()),
            (None, None) => Err(format!(
                "the function did not ask for an event within {timeout:?}"
            )),
            (None, Some(_)) => Err(format!(
                "the function took the event but did not respond within {timeout:?}"
            )),
        }
    }
}

impl OneShotRuntimeApi {
    /// Waits for the second `/next`: after the first response, it comes once the invocation is
    /// completely done (spans exported included). `None` if it did not come within `timeout`.
    pub(crate) fn wait_second_next(&self, timeout: Duration) -> Option<Instant> {
        let state = self.shared.state.lock().expect("lock");
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, timeout, |s| s.second_next.is_none())
            .expect("lock");
        state.second_next
    }
}

impl Drop for OneShotRuntimeApi {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        // Wake the acceptor up so that it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut write) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let arrived = Instant::now();
        let path = request.path.trim_start_matches("/2018-06-01/runtime");
        if request.method == "GET" && path == "/invocation/next" {
            let event = {
                let mut state = shared.state.lock().expect("lock");
                state.next_calls += 1;
                match state.next_calls {
                    1 => state.first_next = Some(arrived),
                    2 => state.second_next = Some(arrived),
                    _ => {}
                }
                state.event.take()
            };
            shared.changed.notify_all();
            let Some((request_id, trace_id, body)) = event else {
                // The environment would be frozen here: hold the request until the process dies.
                let mut sink = [0u8; 1024];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                return;
            };
            let deadline_ms = (SystemTime::now() + Duration::from_secs(30))
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let headers = [
                ("lambda-runtime-aws-request-id", request_id),
                ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                ("lambda-runtime-invoked-function-arn", FUNCTION_ARN.into()),
                ("lambda-runtime-trace-id", trace_id),
                ("content-type", "application/json".into()),
            ];
            if write_response(&mut write, 200, &headers, &body).is_err() {
                return;
            }
            continue;
        }
        let outcome = if request.method == "POST" && path.ends_with("/response") {
            Some(Ok(arrived))
        } else if request.method == "POST" && (path.ends_with("/error") || path == "/init/error") {
            Some(Err(format!(
                "the function posted {path}: {}",
                String::from_utf8_lossy(&request.body)
            )))
        } else {
            None
        };
        if let Some(outcome) = outcome {
            shared
                .state
                .lock()
                .expect("lock")
                .outcome
                .get_or_insert(outcome);
            shared.changed.notify_all();
        }
        if write_response(&mut write, 202, &[], b"{\"status\":\"OK\"}").is_err() {
            return;
        }
    }
}

/// A plain HTTP service on 127.0.0.1 for the life of the bench process: it answers every request
/// with the same status and body (after a fixed delay, if it has one: a thread per connection, so
/// concurrent requests wait out the delay together), and counts the requests (those signed with
/// SigV4, and the spans of the ones that decode as an OTLP `ExportTraceServiceRequest`).
#[derive(Debug)]
pub(crate) struct HttpStandIn {
    pub(crate) address: SocketAddr,
    counts: Arc<HttpCounts>,
}

#[derive(Debug, Default)]
struct HttpCounts {
    requests: AtomicUsize,
    signed: AtomicUsize,
    spans: AtomicUsize,
}

impl HttpStandIn {
    /// The public-IP service (`CHECKIP_URL`): `200` with an address from the documentation range,
    /// `delay` after reading the request (a remote service's latency without its CPU; zero for
    /// at once).
    pub(crate) fn checkip_after(delay: Duration) -> Self {
        Self::start("checkip", "text/plain", b"198.51.100.7\n", delay)
    }

    /// An OTLP/HTTP receiver: `200` with an empty `ExportTraceServiceResponse` (full success).
    pub(crate) fn otlp() -> Self {
        Self::start("otlp", "application/x-protobuf", b"", Duration::ZERO)
    }

    fn start(name: &str, content_type: &'static str, body: &'static [u8], delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an HTTP stand-in");
        let address = listener.local_addr().expect("stand-in address");
        let counts = Arc::new(HttpCounts::default());
        let counting = counts.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let counts = counting.clone();
                    let _ = std::thread::Builder::new().spawn(move || {
                        let _ = stream.set_nodelay(true);
                        let Ok(mut write) = stream.try_clone() else {
                            return;
                        };
                        let mut reader = BufReader::new(stream);
                        while let Some(request) = read_request(&mut reader) {
                            counts.requests.fetch_add(1, Ordering::Relaxed);
                            if request
                                .header("authorization")
                                .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 "))
                            {
                                counts.signed.fetch_add(1, Ordering::Relaxed);
                            }
                            if !delay.is_zero() {
                                std::thread::sleep(delay);
                            }
                            let headers = [("content-type", content_type.to_owned())];
                            if write_response(&mut write, 200, &headers, body).is_err() {
                                return;
                            }
                            if request.method == "POST"
                                && let Some(spans) = crate::common::otlp_spans(&request.body)
                            {
                                counts.spans.fetch_add(spans, Ordering::Relaxed);
                            }
                        }
                    });
                }
            })
            .expect("spawn an HTTP stand-in thread");
        Self { address, counts }
    }

    /// `http://127.0.0.1:port{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Requests answered so far.
    pub(crate) fn requests(&self) -> usize {
        self.counts.requests.load(Ordering::Relaxed)
    }

    /// Requests so far that carried a SigV4 `Authorization` header.
    pub(crate) fn signed(&self) -> usize {
        self.counts.signed.load(Ordering::Relaxed)
    }

    /// Spans so far in the request bodies that decoded as OTLP (counted after answering).
    pub(crate) fn spans(&self) -> usize {
        self.counts.spans.load(Ordering::Relaxed)
    }
}
