//! The shared test stand-ins ([`lambda_observability_test_support`]), plus what needs this
//! package's paths: the `bootstrap` executable (`CARGO_BIN_EXE_bootstrap`) and the event
//! fixtures under `events/`.
#![allow(dead_code, unreachable_pub)]

pub use lambda_observability_test_support::*;

/// Starting this package's `bootstrap` as a [`Function`].
pub trait BootstrapExt {
    /// Starts `bootstrap` against `runtime`, with a clean Lambda-like environment plus `env`
    /// ([`Function::start_exe`]).
    fn start(runtime: &MockRuntimeApi, env: &[(&str, &str)]) -> Function;

    /// [`BootstrapExt::start`] with the variables in `unset` removed from the environment it
    /// would get, the defaults included ([`Function::start_exe_unsetting`]).
    fn start_unsetting(runtime: &MockRuntimeApi, env: &[(&str, &str)], unset: &[&str]) -> Function;
}

impl BootstrapExt for Function {
    fn start(runtime: &MockRuntimeApi, env: &[(&str, &str)]) -> Function {
        Function::start_exe(env!("CARGO_BIN_EXE_bootstrap"), runtime, env)
    }

    fn start_unsetting(runtime: &MockRuntimeApi, env: &[(&str, &str)], unset: &[&str]) -> Function {
        Function::start_exe_unsetting(env!("CARGO_BIN_EXE_bootstrap"), runtime, env, unset)
    }
}

/// Events from this package's `events/` fixtures.
pub trait FixtureExt {
    /// The event in `events/<name>`, under `request_id`.
    fn fixture(request_id: &str, name: &str) -> Event;
}

impl FixtureExt for Event {
    fn fixture(request_id: &str, name: &str) -> Event {
        Event::from_file(
            request_id,
            format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR")),
        )
    }
}

/// Invocations 1 to 4 of the export tests: success, `throwError` and an invalid event, sampled,
/// then a success with `Sampled=0` (what [`assert_traced_span_tree`] checks).
pub fn traced_events() -> Vec<Event> {
    vec![
        Event::fixture("ok", "success.json").traced(&trace_header(1, true)),
        Event::fixture("throw", "throw-error.json").traced(&trace_header(2, true)),
        Event::fixture("invalid", "invalid.json").traced(&trace_header(3, true)),
        Event::fixture("unsampled", "success.json").traced(&trace_header(4, false)),
    ]
}

/// A daemon address no datagram can be sent to, failing at once and every time: the limited
/// broadcast address, which Linux refuses to connect a UDP socket to (`EACCES`) unless it asked
/// for broadcast. The daemon exporter's socket is made at each flush until it can be, so every
/// flush fails the same way, without waiting on the kernel's timing.
pub const UNSENDABLE_DAEMON: &str = "255.255.255.255:2000";

/// A daemon address where nothing listens: the kernel answers each datagram with ICMP "port
/// unreachable", which the sender sees only once it has arrived: at the flush that sent the
/// datagram, or a later one, depending on the machine's load.
pub const UNREACHABLE_DAEMON: &str = "127.0.0.1:9";

/// Runs `bootstrap` over a success, a `throwError` and a success, exporting with `exporter` to
/// a daemon address where nothing listens ([`UNREACHABLE_DAEMON`]) and without a public-IP
/// service, until it asks for the event after the last. Returns the process and what it
/// answered.
pub async fn run_with_unreachable_daemon(exporter: &str) -> (Function, Vec<Outcome>) {
    run_with_daemon_at(exporter, UNREACHABLE_DAEMON).await
}

/// [`run_with_unreachable_daemon`] with the daemon at `address`.
pub async fn run_with_daemon_at(exporter: &str, address: &str) -> (Function, Vec<Outcome>) {
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
            ("AWS_XRAY_DAEMON_ADDRESS", address),
        ],
    );
    let outcomes = runtime.outcomes(3).await;
    runtime.wait_next_calls(4).await;
    (function, outcomes)
}

/// Runs `bootstrap` over `events`, exporting X-Ray segments to a stand-in daemon, with the
/// public-IP service at `checkip_url`, until it asks for the event after the last. Returns the
/// process, what it answered, and each datagram with the number of `/next` calls made before it
/// arrived.
pub async fn run_with_segments(
    events: Vec<Event>,
    checkip_url: &str,
) -> (Function, Vec<Outcome>, Vec<(usize, Vec<u8>)>) {
    let count = events.len();
    let daemon = std::sync::Arc::new(XrayDaemon::start());
    let runtime = MockRuntimeApi::start(events).await;
    let received = daemon.capture_before_next(&runtime);
    let address = daemon.address.to_string();
    let function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", checkip_url),
            ("OTEL_TRACES_EXPORTER", "xray"),
            ("AWS_XRAY_DAEMON_ADDRESS", &address),
        ],
    );
    let outcomes = runtime.outcomes(count).await;
    runtime.wait_next_calls(count + 1).await;
    let received = received.lock().expect("lock").clone();
    (function, outcomes, received)
}
