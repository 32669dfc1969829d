//! A Runtime API stand-in for one execution environment's warm life: it serves events from a
//! budget the bench raises, holds every `/next` beyond the budget open (the environment idles, as
//! Lambda freezes it between invocations), counts responses, and times each invocation from the
//! event handed out on `/next` to its `/response` read (request ids `warm-N`).
//! Shared by `cpu_per_invocation` and `throughput` (`#[path]`).
#![allow(dead_code)]
//!
//! Plain threads, one per connection, blocking reads, `TCP_NODELAY` and each answer in one
//! `write` (head and body in one buffer): what Lambda's Go `net/http` server does for small
//! bodies, so the function under test makes the same system calls it makes on Lambda. The
//! request parsing is the cold-start bench's (`runtime_api::read_request`).

use std::{
    collections::HashMap,
    io::BufReader,
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant, SystemTime},
};

use crate::{
    common::{FUNCTION_ARN, trace_header},
    runtime_api::{read_request, write_response},
};

#[derive(Debug, Default)]
struct State {
    /// Events the bench has allowed so far.
    budget: u64,
    /// Events served so far.
    issued: u64,
    /// `/response`s received.
    responses: u64,
    /// `/error`s and `/init/error`s received, and the first of them.
    errors: u64,
    first_error: Option<String>,
    /// `/next`s held open right now (the environment's idle pollers).
    waiting: usize,
    /// When each event not yet answered was handed out, by its number.
    handed_out: HashMap<u64, Instant>,
    /// Event handed out → `/response` read, of the responses since the last `take_latencies`.
    latencies: Vec<Duration>,
    stopping: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the held `/next`s (the budget grew, or the bench stops).
    work: Condvar,
    /// Wakes the bench (a response arrived, a `/next` is waiting).
    progress: Condvar,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct WarmRuntimeApi {
    pub(crate) address: SocketAddr,
    shared: Arc<Shared>,
    event: Arc<Vec<u8>>,
}

/// What the environment has done so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
}

impl WarmRuntimeApi {
    pub(crate) fn start(event: &[u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Runtime API");
        let address = listener.local_addr().expect("Runtime API address");
        let shared = Arc::new(Shared::default());
        let event = Arc::new(event.to_vec());
        let (accepting, served) = (shared.clone(), event.clone());
        std::thread::Builder::new()
            .name("warm-runtime-api".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accepting.state.lock().expect("lock").stopping {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (shared, event) = (accepting.clone(), served.clone());
                    let _ = std::thread::Builder::new()
                        .name("warm-runtime-api-conn".into())
                        .spawn(move || serve(&shared, &event, stream));
                }
            })
            .expect("spawn the Runtime API thread");
        Self {
            address,
            shared,
            event,
        }
    }

    /// Allows `events` more events.
    pub(crate) fn release(&self, events: u64) {
        self.shared.state.lock().expect("lock").budget += events;
        self.shared.work.notify_all();
    }

    /// The invocation latencies (event handed out → `/response` read) recorded since the last
    /// call, in the order the responses arrived.
    pub(crate) fn take_latencies(&self) -> Vec<Duration> {
        std::mem::take(&mut self.shared.state.lock().expect("lock").latencies)
    }

    /// Waits until every event released so far was answered and `pollers` `/next`s are held
    /// open: the environment is idle, nothing of the last invocation (its span export included,
    /// which runs before the next `/next`) is still running.
    pub(crate) fn wait_idle(&self, pollers: usize, timeout: Duration) -> Result<Progress, String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock().expect("lock");
        loop {
            let answered = state.responses + state.errors;
            if answered >= state.budget && state.waiting >= pollers {
                return Ok(Progress {
                    errors: state.errors,
                    first_error: state.first_error.clone(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "not idle within {timeout:?}: {answered} of {} events answered, {} of {pollers} /next held{}",
                    state.budget,
                    state.waiting,
                    state
                        .first_error
                        .as_ref()
                        .map_or_else(String::new, |e| format!("; first error: {e}"))
                ));
            }
            state = self
                .shared
                .progress
                .wait_timeout(state, left)
                .expect("lock")
                .0;
        }
    }
}

impl Drop for WarmRuntimeApi {
    fn drop(&mut self) {
        self.shared.state.lock().expect("lock").stopping = true;
        self.shared.work.notify_all();
        // Wake the acceptor up so that it sees the flag.
        let _ = TcpStream::connect(self.address);
        let _ = &self.event;
    }
}

fn serve(shared: &Shared, event: &[u8], stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut write) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let path = request.path.trim_start_matches("/2018-06-01/runtime");
        if request.method == "GET" && path == "/invocation/next" {
            let n = {
                let mut state = shared.state.lock().expect("lock");
                state.waiting += 1;
                shared.progress.notify_all();
                while state.issued >= state.budget && !state.stopping {
                    state = shared.work.wait(state).expect("lock");
                }
                state.waiting -= 1;
                if state.stopping {
                    return;
                }
                state.issued += 1;
                let n = state.issued;
                state.handed_out.insert(n, Instant::now());
                n
            };
            let deadline_ms = (SystemTime::now() + Duration::from_secs(30))
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let headers = [
                ("lambda-runtime-aws-request-id", format!("warm-{n}")),
                ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                ("lambda-runtime-invoked-function-arn", FUNCTION_ARN.into()),
                ("lambda-runtime-trace-id", trace_header(n)),
                ("content-type", "application/json".into()),
            ];
            if write_response(&mut write, 200, &headers, event).is_err() {
                return;
            }
            continue;
        }
        {
            let mut state = shared.state.lock().expect("lock");
            if request.method == "POST" && path.ends_with("/response") {
                state.responses += 1;
                let started = path
                    .strip_prefix("/invocation/warm-")
                    .and_then(|rest| rest.strip_suffix("/response"))
                    .and_then(|n| n.parse::<u64>().ok())
                    .and_then(|n| state.handed_out.remove(&n));
                if let Some(started) = started {
                    state.latencies.push(started.elapsed());
                }
            } else if request.method == "POST"
                && (path.ends_with("/error") || path == "/init/error")
            {
                state.errors += 1;
                if let Some(n) = path
                    .strip_prefix("/invocation/warm-")
                    .and_then(|rest| rest.strip_suffix("/error"))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    state.handed_out.remove(&n);
                }
                if state.first_error.is_none() {
                    state.first_error = Some(format!(
                        "{path}: {}",
                        String::from_utf8_lossy(&request.body)
                    ));
                }
            }
        }
        shared.progress.notify_all();
        if write_response(&mut write, 202, &[], b"{\"status\":\"OK\"}").is_err() {
            return;
        }
    }
}
