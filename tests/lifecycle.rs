//! Panics and shutdown, with the real layer stack and runtime in a child process.
//!
//! The function's own handler cannot panic, so this test binary is its own Lambda function: run
//! with `LIFECYCLE_CHILD=1`, it serves events with the production stack around a handler that
//! panics on `{"action": "panic"}` and leaves background work running on
//! `{"action": "background"}`. Run plainly (`harness = false`), it starts that child against a
//! mock Runtime API and an X-Ray daemon socket and checks what they receive.

mod support;

use std::{sync::Arc, time::Duration};

use hello_lambda::HandlerError;
use lambda_observability::{
    BoxError, ErrorMapLayer, JsonEventLayer, ObservabilityLayer,
    config::{TelemetrySettings, telemetry::TracesExporter},
    export::spawn_shutdown_flush,
    log_format::{self, LogConfig, LogFormat},
    runtime::Runtime,
};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use support::{Event, Function, MockRuntimeApi, Outcome, XrayDaemon, trace_header, trace_root};
use tower::{ServiceBuilder, service_fn};
use tracing::Instrument;

fn main() {
    if std::env::var_os("LIFECYCLE_CHILD").is_some() {
        if let Err(err) = child() {
            eprintln!("child failed: {err}");
            std::process::exit(1);
        }
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(a_panic_is_a_typed_fault_and_sigterm_flushes_pending_spans());
    println!("test a_panic_is_a_typed_fault_and_sigterm_flushes_pending_spans ... ok");
    println!("1 passed, 0 failed");
}

#[tokio::main(flavor = "current_thread")]
async fn child() -> Result<(), BoxError> {
    let daemon = std::env::var("AWS_XRAY_DAEMON_ADDRESS")?.parse()?;
    let settings = TelemetrySettings {
        exporters: vec![TracesExporter::XraySegments { daemon }],
        service_name: "hello-it".into(),
        ..TelemetrySettings::default()
    };
    let telemetry = lambda_observability::export::init(&settings, None)?;
    log_format::init(
        &LogConfig::new().format(LogFormat::Json),
        telemetry.tracer(),
    )?;
    spawn_shutdown_flush(telemetry.clone());
    let handler = ServiceBuilder::new()
        .layer(ErrorMapLayer::new())
        .layer(JsonEventLayer::<Value>::new())
        .service(service_fn(|event: LambdaEvent<Value>| async move {
            match event.payload["action"].as_str() {
                Some("panic") => panic!("deliberate panic at {}", "the handler"),
                Some("background") => {
                    // Work that outlives the invocation: its span ends after the flush.
                    let span = tracing::info_span!("background-work");
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(300))
                            .instrument(span)
                            .await;
                        // Logged once the span has closed: the test waits for this line.
                        tracing::info!("background work done");
                    });
                }
                _ => {}
            }
            Ok::<Value, HandlerError>(json!({"ok": true}))
        }));
    let config = lambda_runtime::Config {
        function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME")?,
        ..lambda_runtime::Config::default()
    };
    Runtime::new(std::env::var("AWS_LAMBDA_RUNTIME_API")?, handler)
        .config(config)
        .layer(ObservabilityLayer::new(telemetry.flusher()))
        .run()
        .await
}

fn documents(datagrams: &[(usize, Vec<u8>)]) -> Vec<(usize, Value)> {
    datagrams
        .iter()
        .filter_map(|(n, d)| {
            let text = String::from_utf8_lossy(d);
            let (_, doc) = text.split_once('\n')?;
            Some((*n, serde_json::from_str(doc).ok()?))
        })
        .collect()
}

async fn a_panic_is_a_typed_fault_and_sigterm_flushes_pending_spans() {
    let daemon = Arc::new(XrayDaemon::start());
    let runtime = MockRuntimeApi::start(vec![
        Event::new("panics", r#"{"action": "panic"}"#).traced(&trace_header(1, true)),
        Event::new("after", r#"{"action": "none"}"#).traced(&trace_header(2, true)),
        Event::new("background", r#"{"action": "background"}"#).traced(&trace_header(3, true)),
    ])
    .await;
    let received = daemon.capture_before_next(&runtime);
    let address = daemon.address.to_string();
    let exe = std::env::current_exe().expect("test executable");
    let mut function = Function::start_exe(
        exe,
        &runtime,
        &[
            ("LIFECYCLE_CHILD", "1"),
            ("OTEL_TRACES_EXPORTER", "xray"),
            ("AWS_XRAY_DAEMON_ADDRESS", &address),
        ],
    );

    let outcomes = runtime.outcomes(3).await;
    match &outcomes[0] {
        Outcome::Error { body, .. } => {
            assert_eq!(body["errorType"], "Panic", "{body}");
            assert_eq!(
                body["errorMessage"], "deliberate panic at the handler",
                "{body}"
            );
        }
        other => panic!("a panic must become an error, got {other:?}"),
    }
    assert!(
        matches!(&outcomes[1], Outcome::Response { body, .. } if body["ok"] == true),
        "still serving after a panic"
    );
    assert!(matches!(&outcomes[2], Outcome::Response { .. }));
    runtime.wait_next_calls(4).await;

    // The panicking invocation's segment was at the daemon before the next event was asked for.
    let docs = documents(&received.lock().expect("lock"));
    let panicked = docs
        .iter()
        .find(|(_, d)| d["trace_id"] == trace_root(1).as_str() && d["name"] == "hello-it")
        .expect("segment of the panicking invocation");
    assert_eq!(panicked.0, 2, "exported before /next #2");
    assert_eq!(panicked.1["fault"], true);
    assert_eq!(panicked.1["cause"]["exceptions"][0]["type"], "Panic");

    // The background span is still pending: it ends after its invocation's flush.
    let started = std::time::Instant::now();
    while !function.logs().contains("background work done") {
        assert!(
            started.elapsed() < support::TIMEOUT,
            "the background work never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let background_root = trace_root(3);
    let is_background =
        |d: &Value| d["name"] == "background-work" && d["trace_id"] == background_root.as_str();
    assert!(
        !documents(&received.lock().expect("lock"))
            .iter()
            .any(|(_, d)| is_background(d))
    );
    assert!(
        daemon.drain().is_empty(),
        "nothing is exported between invocations"
    );

    // SIGTERM: the shutdown hook exports it, then the process exits cleanly.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &function.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = function
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert!(
        exit.success(),
        "clean exit after SIGTERM: {exit:?}\n{}",
        function.logs()
    );
    let after: Vec<(usize, Vec<u8>)> = daemon.drain().into_iter().map(|d| (0, d)).collect();
    let background = documents(&after)
        .into_iter()
        .find(|(_, d)| is_background(d));
    let (_, background) = background
        .unwrap_or_else(|| panic!("background span exported at shutdown:\n{}", function.logs()));
    assert!(
        background["parent_id"]
            .as_str()
            .is_some_and(|p| p.len() == 16)
    );
    assert!(
        function
            .logs()
            .contains("shutting down: exporting pending spans")
    );
}
