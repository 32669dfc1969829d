//! Our Runtime API loop (`lambda_observability::runtime`) end to end: error reports with their
//! X-Ray cause and stack trace, init errors, Managed Instances concurrency, flat memory.
//!
//! Most tests run the real `bootstrap`. A handler that panics, and one that reads the process
//! environment, need a function of their own: like `tests/lifecycle.rs`, this test binary is that
//! function when run with `RUNTIME_LOOP_CHILD=1` (the production stack around a test handler),
//! and it is also the plain `lambda_runtime` hello world of the cold-start bench when run with
//! `HELLO_LAMBDA_BENCH_ROLE=bare-hello` (the soak's baseline). `harness = false`: `--ignored`
//! runs the long soak (`SOAK_INVOCATIONS=100000` extends it), a plain argument filters by name.

mod support;

#[path = "../benches/cold_start/bare_hello.rs"]
mod bare_hello;

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use hello_lambda::HandlerError;
use lambda_observability::{
    BoxError, ErrorMapLayer, JsonEventLayer, ObservabilityLayer,
    config::Config,
    log_format::{self, LogConfig},
    runtime::Runtime,
};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use support::{
    BootstrapExt as _, CheckIp, Event, FixtureExt as _, Function, GatedCheckIp, MockRuntimeApi,
    Outcome, rss_kib, until,
};
use tower::{ServiceBuilder, service_fn};

const CHILD: &str = "RUNTIME_LOOP_CHILD";
/// Set: this executable plays the plain `lambda_runtime` hello (the soak's reference).
const BARE_HELLO_CHILD: &str = "RUNTIME_LOOP_BARE_HELLO";
const CHILD_EXPOSES_TRACE_ENV: &str = "RUNTIME_LOOP_EXPOSE_TRACE_ENV";
/// What the panicking handler panics with; the cause header must carry it, the payload not.
const PANIC_MESSAGE: &str = "deliberate panic in the runtime_loop child";

type Test = fn() -> Pin<Box<dyn Future<Output = ()>>>;

fn main() {
    if std::env::var_os(BARE_HELLO_CHILD).is_some() {
        if let Err(err) = bare_hello::main() {
            eprintln!("bare hello: {err}");
            std::process::exit(1);
        }
        return;
    }
    if std::env::var_os(CHILD).is_some() {
        if let Err(err) = child() {
            eprintln!("child failed: {err}");
            std::process::exit(1);
        }
        return;
    }
    // (name, ignored, test): the name is the function's, spelled once.
    macro_rules! test {
        ($name:ident) => {
            (stringify!($name), false, (|| Box::pin($name())) as Test)
        };
        (ignored $name:ident) => {
            (stringify!($name), true, (|| Box::pin($name())) as Test)
        };
    }
    let tests: &[(&str, bool, Test)] = &[
        test!(errors_are_posted_with_their_type_cause_and_stack_trace),
        test!(a_panic_is_posted_with_its_location_and_the_loop_goes_on),
        test!(an_init_failure_is_posted_to_init_error_and_exits_non_zero),
        test!(an_unreachable_runtime_api_ends_the_process_non_zero),
        test!(max_concurrency_4_serves_four_invocations_at_once),
        test!(without_max_concurrency_one_invocation_at_a_time),
        test!(the_trace_env_opt_in_is_observable),
        test!(soak_short_flat_memory_and_no_trace_env),
        test!(ignored soak_long_rss_curve_against_plain_lambda_runtime),
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only_ignored = args.iter().any(|a| a == "--ignored");
    let include_ignored = args.iter().any(|a| a == "--include-ignored");
    // libtest's arguments: `--skip NAME` (repeatable) and positional name filters.
    let mut skips = Vec::new();
    let mut filters = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--skip" {
            skips.extend(rest.next());
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    for (name, is_ignored, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if skips.iter().any(|skip| name.contains(skip.as_str())) {
            continue;
        }
        let runs = if only_ignored {
            *is_ignored
        } else {
            include_ignored || !is_ignored
        };
        if !runs {
            println!("test {name} ... ignored");
            ignored += 1;
            continue;
        }
        let outcome = std::panic::catch_unwind(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(test())
        });
        if outcome.is_ok() {
            println!("test {name} ... ok");
            passed += 1;
        } else {
            println!("test {name} ... FAILED");
            failed += 1;
        }
    }
    println!("test result: {passed} passed; {failed} failed; {ignored} ignored");
    if failed > 0 {
        std::process::exit(101);
    }
}

/// The child function: the production stack around a handler that panics on
/// `{"action": "panic"}`, answers `{"traceEnv": <_X_AMZN_TRACE_ID>}` on `{"action": "env"}` and
/// fails on `throwError`.
#[tokio::main(flavor = "current_thread")]
async fn child() -> Result<(), BoxError> {
    // The environment read as production reads it.
    let config = Config::from_env()?;
    let telemetry = lambda_observability::export::init(&config.telemetry, None)?;
    log_format::init(
        &LogConfig::new()
            .format(config.logs.format)
            .filter(config.logs.filter.as_str()),
        telemetry.tracer(),
    )?;
    let handler = ServiceBuilder::new()
        .layer(ErrorMapLayer::new())
        .layer(JsonEventLayer::<Value>::new())
        .service(service_fn(|event: LambdaEvent<Value>| async move {
            if event.payload["throwError"] == true {
                return Err(HandlerError::simple_exception());
            }
            match event.payload["action"].as_str() {
                Some("panic") => panic!("{PANIC_MESSAGE}"),
                Some("env") => Ok(json!({"traceEnv": std::env::var("_X_AMZN_TRACE_ID").ok()})),
                _ => Ok(json!({"ok": true})),
            }
        }));
    let endpoint = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    Runtime::new(endpoint, handler)
        .config(lambda_runtime::Config {
            function_name: "hello-it".into(),
            ..lambda_runtime::Config::default()
        })
        .expose_trace_env(std::env::var_os(CHILD_EXPOSES_TRACE_ENV).is_some())
        .layer(ObservabilityLayer::new(telemetry.flusher()))
        .run()
        .await
}

fn start_child(runtime: &MockRuntimeApi, env: &[(&str, &str)]) -> Function {
    let exe = std::env::current_exe().expect("test executable");
    let mut env = env.to_vec();
    env.push((CHILD, "1"));
    Function::start_exe(exe, runtime, &env)
}

/// A fresh `Lambda-Runtime-Trace-Id` for invocation `n` (any `n`).
fn trace_header(n: u64) -> String {
    format!(
        "Root={};Parent={};Sampled=1",
        trace_root(n),
        support::TRACE_PARENT
    )
}

/// The time part is the test process's start (`xray_root`): one made now could tick between an
/// event's header and the assertion that reads it back.
fn trace_root(n: u64) -> String {
    support::xray_root(&format!("{n:024x}"))
}

/// The error of `outcome`: body, `errorType` header, parsed X-Ray cause and its raw length.
fn error_parts(outcome: &Outcome) -> (Value, String, Value, usize) {
    match outcome {
        Outcome::Error {
            body,
            error_type_header,
            xray_cause_header,
            ..
        } => {
            let raw = xray_cause_header
                .clone()
                .unwrap_or_else(|| panic!("no X-Ray cause header: {body}"));
            let cause = serde_json::from_str(&raw)
                .unwrap_or_else(|e| panic!("the X-Ray cause is not JSON ({e}): {raw}"));
            (
                body.clone(),
                error_type_header.clone().unwrap_or_default(),
                cause,
                raw.len(),
            )
        }
        Outcome::Response { body, .. } => panic!("expected an error, got response {body}"),
    }
}

/// Checks the shape every error report shares, and that none of `secrets` is in it.
fn check_report(outcome: &Outcome, error_type: &str, secrets: &[&str]) -> (Value, Value) {
    let (body, header, cause, length) = error_parts(outcome);
    assert_eq!(body["errorType"], error_type, "{body}");
    assert_eq!(header, error_type, "the errorType header");
    assert!(body["errorMessage"].is_string(), "{body}");
    assert!(
        body["stackTrace"].as_array().is_some_and(|s| !s.is_empty()),
        "a stack trace: {body}"
    );
    assert!(
        length <= lambda_observability::runtime::report::MAX_XRAY_CAUSE_BYTES,
        "{length}"
    );
    assert!(cause["working_directory"].is_string(), "{cause}");
    assert!(cause["paths"].is_array(), "{cause}");
    let exception = &cause["exceptions"][0];
    assert_eq!(exception["type"], error_type, "{cause}");
    assert_eq!(exception["message"], body["errorMessage"], "{cause}");
    for frame in exception["stack"].as_array().expect("stack frames") {
        assert!(
            frame["path"].is_string() && frame["line"].is_u64() && frame["label"].is_string(),
            "{frame}"
        );
    }
    let everything = format!("{body}{cause}");
    for secret in secrets {
        assert!(
            !everything.contains(secret),
            "{secret} leaked into the report: {everything}"
        );
    }
    (body, cause)
}

async fn errors_are_posted_with_their_type_cause_and_stack_trace() {
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start(vec![
        Event::fixture("throw", "throw-error.json").traced(&trace_header(1)),
        Event::new("not-json", r#"{"firstName": "Zanzibar-7731", oops"#),
        Event::fixture("invalid", "invalid.json"),
        Event::fixture("ok", "success.json"),
    ])
    .await;
    let function = Function::start(&runtime, &[("CHECKIP_URL", &checkip.url)]);
    let outcomes = runtime.outcomes(4).await;
    let secrets = [
        "Bogdan-Eugen",
        "Mihai",
        "Zanzibar-7731",
        "must-never-be-logged",
    ];

    let (body, cause) = check_report(&outcomes[0], "SimpleException", &secrets);
    assert_eq!(
        body["stackTrace"],
        json!(["Sorry, but the caller wants to me to throw an error"])
    );
    assert_eq!(cause["exceptions"][0]["stack"], json!([]), "no causes");
    let (body, _) = check_report(&outcomes[1], "InvalidEvent", &secrets);
    assert!(
        body["errorMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("the event is not valid JSON: ")),
        "{body}"
    );
    check_report(&outcomes[2], "InvalidEvent", &["Bogdan-Eugen", "Mihai"]);
    assert!(matches!(&outcomes[3], Outcome::Response { .. }));

    // One log line per handler error, from ErrorMap; nothing logs it again.
    let logs = function.json_logs();
    for id in ["throw", "not-json", "invalid"] {
        let lines: Vec<&Value> = logs
            .iter()
            .filter(|l| l["requestId"] == id && l["error_type"].is_string())
            .collect();
        assert_eq!(lines.len(), 1, "{id}: {lines:?}");
    }
    let raw = function.logs();
    assert!(!raw.contains("Diagnostic"), "{raw}");
}

async fn a_panic_is_posted_with_its_location_and_the_loop_goes_on() {
    let runtime = MockRuntimeApi::start(vec![
        Event::new("panics", r#"{"action": "panic", "token": "hunter2"}"#),
        Event::new("after", r#"{"action": "none"}"#),
    ])
    .await;
    let function = start_child(&runtime, &[]);
    let outcomes = runtime.outcomes(2).await;
    let (body, cause) = check_report(&outcomes[0], "Panic", &["hunter2"]);
    assert_eq!(body["errorMessage"], PANIC_MESSAGE);
    let location = body["stackTrace"][0].as_str().unwrap_or_default();
    let parts: Vec<&str> = location.split(':').collect();
    assert_eq!(parts.len(), 3, "file:line:col, got {location}");
    assert!(parts[0].ends_with("tests/runtime_loop.rs"), "{location}");
    assert!(parts[1].parse::<u32>().is_ok() && parts[2].parse::<u32>().is_ok());
    let frame = &cause["exceptions"][0]["stack"][0];
    assert_eq!(frame["path"], parts[0]);
    assert_eq!(
        frame["line"].as_u64().map(|l| l.to_string()).as_deref(),
        Some(parts[1])
    );
    assert_eq!(cause["paths"], json!([parts[0]]));
    assert!(
        matches!(&outcomes[1], Outcome::Response { body, .. } if body["ok"] == true),
        "still serving after a panic"
    );
    runtime.wait_next_calls(3).await;
    // One line: ErrorMap's. The standard panic message is not printed as well.
    let raw = function.logs();
    assert_eq!(raw.matches(PANIC_MESSAGE).count(), 1, "{raw}");
    assert!(!raw.contains("panicked at"), "{raw}");
}

async fn an_init_failure_is_posted_to_init_error_and_exits_non_zero() {
    let runtime = MockRuntimeApi::start(vec![]).await;
    let mut function = Function::start(
        &runtime,
        &[
            ("OTEL_TRACES_EXPORTER", "xray"),
            ("AWS_XRAY_DAEMON_ADDRESS", "not-an-address"),
        ],
    );
    let request = runtime.wait_init_error().await;
    let header = request
        .header("lambda-runtime-function-error-type")
        .unwrap_or_default()
        .to_owned();
    assert!(header.starts_with("Runtime."), "{header}");
    let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
    assert_eq!(body["errorType"], header.as_str());
    assert!(
        body["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("AWS_XRAY_DAEMON_ADDRESS")),
        "{body}"
    );
    let status = function
        .wait_exit(Duration::from_secs(10))
        .expect("exits after an init failure");
    assert!(!status.success(), "non-zero exit: {status:?}");
    let logs = function.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one clear line: {logs}");
    assert!(lines[0].starts_with("init failed: Runtime."), "{logs}");
    assert_eq!(runtime.next_calls(), 0, "no invocation was asked for");
}

async fn an_unreachable_runtime_api_ends_the_process_non_zero() {
    let runtime = MockRuntimeApi::start(vec![]).await;
    // Port 9 on loopback: nothing listens, every /next is refused.
    let mut function = Function::start(&runtime, &[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")]);
    let status = function
        .wait_exit(Duration::from_secs(20))
        .expect("gives up after its retries");
    assert!(!status.success(), "non-zero exit: {status:?}");
    let logs = function.json_logs();
    let retries = logs
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("could not get the next event, retrying"))
        })
        .count();
    assert_eq!(
        retries,
        lambda_observability::runtime::NEXT_ATTEMPTS as usize - 1
    );
    assert!(
        logs.iter().any(|l| l["message"].as_str().is_some_and(
            |m| m.starts_with("the runtime stopped: the Runtime API could not be reached")
        )),
        "{}",
        function.logs()
    );
}

fn person_event(i: usize) -> Event {
    Event::new(
        &format!("c-{i}"),
        format!(r#"{{"firstName": "P{i}", "lastName": "Q", "age": {i}}}"#),
    )
    .traced(&trace_header(i as u64))
}

/// Starts `bootstrap` over `count` person events with `env`, every public-IP request held until
/// the test releases it.
async fn start_held(
    count: usize,
    env: &[(&str, &str)],
) -> (GatedCheckIp, MockRuntimeApi, Function) {
    let checkip = GatedCheckIp::start().await;
    let runtime = MockRuntimeApi::start((0..count).map(person_event).collect()).await;
    let mut vars = vec![
        ("CHECKIP_URL", checkip.url.as_str()),
        ("CHECKIP_TIMEOUT_MS", "20000"),
    ];
    vars.extend_from_slice(env);
    let function = Function::start(&runtime, &vars);
    (checkip, runtime, function)
}

/// Whether `greeting` is the one person `i` gets.
fn greets_person(greeting: &Value, i: &str) -> bool {
    greeting
        .as_str()
        .is_some_and(|g| g.starts_with(&format!("Hello P{i} Q,")))
}

async fn max_concurrency_4_serves_four_invocations_at_once() {
    let (checkip, runtime, function) = start_held(8, &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]).await;
    for _round in 0..2 {
        // Four handlers are held inside their outbound call: four invocations overlap.
        runtime.wait_in_flight(4).await;
        until("four held check-ip requests", || checkip.held() == 4).await;
        assert_eq!(runtime.max_in_flight(), 4);
        checkip.release(4);
    }
    let outcomes = runtime.outcomes(8).await;
    assert_eq!(runtime.max_in_flight(), 4, "never more than four");
    for outcome in &outcomes {
        let Outcome::Response { request_id, body } = outcome else {
            panic!("expected a response: {outcome:?}");
        };
        let i = request_id.trim_start_matches("c-");
        assert!(
            greets_person(&body["greeting"], i),
            "{request_id} answered with {body}"
        );
    }
    // Interleaved on one thread, every log line still names its own invocation.
    let logs = function.json_logs();
    let processed: Vec<&Value> = logs.iter().filter(|l| l["greeting"].is_string()).collect();
    assert_eq!(processed.len(), 8);
    for line in processed {
        let id = line["requestId"].as_str().unwrap_or_default();
        let i = id.trim_start_matches("c-");
        assert!(greets_person(&line["greeting"], i), "{line}");
    }
    let cold: Vec<&Value> = logs.iter().filter(|l| l["ColdStart"] == 1).collect();
    assert_eq!(cold.len(), 1, "one cold start per environment");
}

async fn without_max_concurrency_one_invocation_at_a_time() {
    let (checkip, runtime, _function) = start_held(4, &[]).await;
    for round in 1..=4 {
        until("a held check-ip request", || checkip.held() == 1).await;
        assert_eq!(runtime.max_in_flight(), 1, "round {round}");
        checkip.release(1);
    }
    let outcomes = runtime.outcomes(4).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Response { .. }))
    );
    assert_eq!(runtime.max_in_flight(), 1);
}

async fn the_trace_env_opt_in_is_observable() {
    let runtime = MockRuntimeApi::start(vec![
        Event::new("with", r#"{"action": "env"}"#).traced(&trace_header(1)),
        Event::new("without", r#"{"action": "env"}"#),
    ])
    .await;
    let _function = start_child(&runtime, &[(CHILD_EXPOSES_TRACE_ENV, "1")]);
    let outcomes = runtime.outcomes(2).await;
    let seen: Vec<Value> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Response { body, .. } => body["traceEnv"].clone(),
            Outcome::Error { body, .. } => panic!("{body}"),
        })
        .collect();
    assert_eq!(seen, [json!(trace_header(1)), Value::Null]);
}

/// Serves `count` events to `function` from `runtime`: fresh trace ids, every 7th `throwError`.
async fn serve_batch(
    runtime: &MockRuntimeApi,
    from: usize,
    to: usize,
    body: &dyn Fn(bool) -> String,
) {
    for n in from..to {
        let throw = n % 7 == 6;
        runtime.push(Event::new(&format!("soak-{n}"), body(throw)).traced(&trace_header(n as u64)));
    }
    runtime.wait_outcome_count(to).await;
}

/// Memory a plain `lambda_runtime` loop keeps per invocation with a fresh trace id, at least:
/// the `_X_AMZN_TRACE_ID` string it sets and glibc never frees. Measured ≈ 300 B from 1k to 20k
/// invocations (docs/guide.md, "Long-running environments") and ≈ 140 B from 1k to 3k (the
/// short soak, run after run); the soaks assert less than half the smaller, so that only the
/// leak's disappearance, not noise, fails them.
const PLAIN_LEAK_FLOOR_BYTES: u64 = 64;

/// The least a plain `lambda_runtime` hello grows, in KiB, over `invocations` fresh trace ids.
fn plain_growth_floor_kib(invocations: usize) -> u64 {
    invocations as u64 * PLAIN_LEAK_FLOOR_BYTES / 1024
}

/// The short soak: `bootstrap`'s loop (the production stack around a handler that reads the
/// environment) and the plain `lambda_runtime` hello, 3,000 invocations each with a fresh trace
/// id. Ours never sets `_X_AMZN_TRACE_ID` and stays flat (≤ 256 KiB from 1k to 3k); the plain
/// one grows with every trace id (at least [`PLAIN_LEAK_FLOOR_BYTES`] each): the comparison of
/// the long soak, on memory alone (no wall-clock threshold).
async fn soak_short_flat_memory_and_no_trace_env() {
    let daemon = DrainedDaemon::start();
    let runtime = MockRuntimeApi::start(vec![]).await;
    let address = daemon.address.to_string();
    let function = start_child(
        &runtime,
        &[
            ("OTEL_TRACES_EXPORTER", "xray"),
            ("AWS_XRAY_DAEMON_ADDRESS", &address),
        ],
    );
    let plain_api = MockRuntimeApi::start(vec![]).await;
    let plain = Function::start_exe(
        std::env::current_exe().expect("test executable"),
        &plain_api,
        &[(BARE_HELLO_CHILD, "1")],
    );
    let body = |throw: bool| format!(r#"{{"action": "env", "throwError": {throw}}}"#);
    let plain_body = |_: bool| r#"{"firstName": "Ada"}"#.to_owned();
    serve_batch(&runtime, 0, 1_000, &body).await;
    serve_batch(&plain_api, 0, 1_000, &plain_body).await;
    let at_1k = rss_kib(function.pid()).expect("VmRSS");
    let plain_at_1k = rss_kib(plain.pid()).expect("VmRSS");
    serve_batch(&runtime, 1_000, 3_000, &body).await;
    serve_batch(&plain_api, 1_000, 3_000, &plain_body).await;
    let at_3k = rss_kib(function.pid()).expect("VmRSS");
    let plain_at_3k = rss_kib(plain.pid()).expect("VmRSS");
    println!(
        "soak_short: VmRSS {at_1k} KiB at 1k, {at_3k} KiB at 3k invocations; \
         plain lambda_runtime {plain_at_1k} KiB, {plain_at_3k} KiB"
    );
    let outcomes = runtime.outcomes(3_000).await;
    let mut errors = 0;
    for outcome in &outcomes {
        match outcome {
            Outcome::Response { body, request_id } => {
                assert_eq!(body["traceEnv"], Value::Null, "{request_id}: {body}")
            }
            Outcome::Error { .. } => errors += 1,
        }
    }
    assert_eq!(errors, (0..3_000).filter(|n| n % 7 == 6).count());
    assert!(daemon.received() > 0, "spans were exported");
    assert!(
        plain_api
            .outcomes(3_000)
            .await
            .iter()
            .all(|o| matches!(o, Outcome::Response { .. })),
        "the plain hello answered every event"
    );
    assert!(
        at_3k <= at_1k + 256,
        "RSS grew by {} KiB between 1k and 3k invocations",
        at_3k.saturating_sub(at_1k)
    );
    let floor = plain_growth_floor_kib(2_000);
    assert!(
        plain_at_3k >= plain_at_1k + floor,
        "the plain lambda_runtime hello grew by {} KiB between 1k and 3k invocations, less than \
         {floor} KiB: does its loop still set _X_AMZN_TRACE_ID? (docs/guide.md compares with it)",
        plain_at_3k as i64 - plain_at_1k as i64
    );
}

async fn soak_long_rss_curve_against_plain_lambda_runtime() {
    let total: usize = std::env::var("SOAK_INVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let checkpoints: Vec<usize> = [1_000, 5_000, 10_000, 20_000, 50_000, 100_000]
        .into_iter()
        .filter(|c| *c <= total)
        .collect();
    assert!(
        checkpoints.len() >= 2,
        "SOAK_INVOCATIONS={total}: at least 5000 to compare two checkpoints"
    );
    let checkip = CheckIp::start(200).await;
    let daemon = DrainedDaemon::start();
    let address = daemon.address.to_string();
    let body = |throw: bool| {
        format!(
            r#"{{"firstName": "Ada", "lastName": "Lovelace", "age": 36, "throwError": {throw}}}"#
        )
    };

    let ours_api = MockRuntimeApi::start(vec![]).await;
    let ours = Function::start(
        &ours_api,
        &[
            ("CHECKIP_URL", &checkip.url),
            ("OTEL_TRACES_EXPORTER", "xray"),
            ("AWS_XRAY_DAEMON_ADDRESS", &address),
        ],
    );
    let plain_api = MockRuntimeApi::start(vec![]).await;
    let plain = Function::start_exe(
        std::env::current_exe().expect("test executable"),
        &plain_api,
        &[(BARE_HELLO_CHILD, "1")],
    );
    let mut curve = Vec::new();
    let mut done = 0;
    for checkpoint in &checkpoints {
        serve_batch(&ours_api, done, *checkpoint, &body).await;
        serve_batch(&plain_api, done, *checkpoint, &body).await;
        done = *checkpoint;
        let row = (
            *checkpoint,
            rss_kib(ours.pid()).expect("VmRSS"),
            rss_kib(plain.pid()).expect("VmRSS"),
        );
        println!(
            "soak: {:>6} invocations: bootstrap {:>6} KiB, plain lambda_runtime {:>6} KiB",
            row.0, row.1, row.2
        );
        curve.push(row);
    }
    let (first, last) = (curve[0], curve[curve.len() - 1]);
    println!(
        "soak: growth from {} to {}: bootstrap {} KiB, plain lambda_runtime {} KiB",
        first.0,
        last.0,
        last.1 as i64 - first.1 as i64,
        last.2 as i64 - first.2 as i64
    );
    assert!(
        last.1 <= first.1 + 512,
        "bootstrap grew by {} KiB",
        last.1.saturating_sub(first.1)
    );
    // The comparison the guide prints: the plain hello grows with every trace id, far past ours.
    let floor = plain_growth_floor_kib(last.0 - first.0);
    assert!(
        last.2 >= first.2 + floor,
        "the plain lambda_runtime hello grew by {} KiB from {} to {} invocations, less than \
         {floor} KiB",
        last.2 as i64 - first.2 as i64,
        first.0,
        last.0
    );
    assert!(
        last.2 - first.2 > 4 * last.1.saturating_sub(first.1),
        "the plain hello's growth ({} KiB) is not far past bootstrap's ({} KiB)",
        last.2 - first.2,
        last.1.saturating_sub(first.1)
    );
}

/// An X-Ray daemon stand-in drained by a thread, so the socket never fills up in a soak.
struct DrainedDaemon {
    address: std::net::SocketAddr,
    count: Arc<std::sync::atomic::AtomicUsize>,
    _stop: StopOnDrop,
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl DrainedDaemon {
    fn start() -> Self {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let address = socket.local_addr().expect("address");
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (count.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !s.load(Ordering::Relaxed) {
                if socket.recv(&mut buf).is_ok() {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Self {
            address,
            count,
            _stop: StopOnDrop(stop),
        }
    }

    fn received(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}
