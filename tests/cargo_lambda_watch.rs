//! End to end through the real Lambda emulator: `cargo lambda watch --only-lambda-apis` serves
//! the Runtime API and the Invoke API; the real `bootstrap` polls it; the test invokes over HTTP
//! the way `aws lambda invoke` would.
//!
//! Needs `cargo-lambda` (PyPI): `make test` installs it into `.venv` and runs this test.

mod support;

use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use support::CheckIp;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cargo_lambda() -> PathBuf {
    std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/cargo-lambda"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cargo-lambda from PyPI; `make test` installs it and runs this test"]
async fn invocations_through_cargo_lambda_watch() {
    let binary = cargo_lambda();
    assert!(
        binary.exists(),
        "{} not found: run `make test` (or set CARGO_LAMBDA)",
        binary.display()
    );
    let port = free_port();
    let _emulator = Killed(
        Command::new(&binary)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cargo lambda watch"),
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cargo lambda watch did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let checkip = CheckIp::start(200).await;
    let log_path = std::env::temp_dir().join(format!("watch-e2e-{port}.log"));
    let log = std::fs::File::create(&log_path).expect("log");
    let _function = Killed(
        Command::new(env!("CARGO_BIN_EXE_bootstrap"))
            // The emulator routes `_` to a function it does not start itself.
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("PACKAGE_MANAGEMENT_SYSTEM", "cargo")
            .env("CHECKIP_URL", &checkip.url)
            .env("OTEL_TRACES_EXPORTER", "console")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone"))
            .stderr(log)
            .spawn()
            .expect("start bootstrap"),
    );

    let client = lambda_observability::http_client::client(false).expect("HTTP client");
    let invoke = |body: &'static str| {
        let client = client.clone();
        async move {
            let response = client
                .post(format!(
                    "http://127.0.0.1:{port}/2015-03-31/functions/_/invocations"
                ))
                .body(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("invoke");
            let status = response.status().as_u16();
            let bytes = response.bytes().await.expect("body");
            (
                status,
                serde_json::from_slice::<Value>(&bytes).expect("JSON body"),
            )
        }
    };
    let (status, body) = invoke(include_str!("../events/success.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "Your age in hexadecimal is 0x22");
    assert_eq!(
        body["greeting"],
        "Hello Bogdan-Eugen Mihai, this is a Rust AWS Lambda function developed using cargo!"
    );
    let (status, body) = invoke(include_str!("../events/throw-error.json")).await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (500, Some("SimpleException")),
        "{body}"
    );
    assert_eq!(
        body["errorMessage"],
        "Sorry, but the caller wants to me to throw an error"
    );
    let (status, body) = invoke(include_str!("../events/invalid.json")).await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (500, Some("InvalidEvent")),
        "{body}"
    );
    let (status, body) = invoke(include_str!("../events/snake-case.json")).await;
    assert_eq!(status, 200, "{body}");

    // The outbound call carried the trace context, and the console exporter printed the timeline.
    let requests = checkip.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 4);
    assert!(requests.iter().all(|r| {
        r.header("x-amzn-trace-id")
            .is_some_and(|v| v.starts_with("Root=1-"))
            && r.header("traceparent").is_some()
    }));
    // The timeline of the last invocation is printed after its response was returned.
    let started = Instant::now();
    let logs = loop {
        let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
        if logs.lines().filter(|l| l.starts_with("trace ")).count() >= 4
            || started.elapsed() > Duration::from_secs(10)
        {
            break logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = std::fs::remove_file(&log_path);
    assert!(logs.contains("getRuntimeInfo"), "{logs}");
    assert!(
        logs.lines().filter(|l| l.starts_with("trace ")).count() == 4,
        "{logs}"
    );
}
