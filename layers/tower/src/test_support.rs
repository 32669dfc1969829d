//! Helpers shared by the layers' unit tests.

use std::{
    future::Future,
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use lambda_runtime::{Config, Context, LambdaEvent, LambdaInvocation};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::{
    Resource,
    trace::{InMemorySpanExporter, SpanData},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{Instrument, subscriber::DefaultGuard};

use crate::{
    export::{SpanFlusher, Telemetry},
    log_format::{self, LogConfig, LogFormat},
};

/// `reqwest` is built without a rustls provider of its own.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) const FUNCTION: &str = "hello-test";
pub(crate) const TRACE_HEADER: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

/// A Lambda context as `lambda_runtime` builds it from `/next` headers.
pub(crate) fn context(xray: Option<&str>) -> Context {
    tenant_context(xray, None)
}

/// [`context`] of a tenant-isolated function, invoked for `tenant`.
pub(crate) fn tenant_context(xray: Option<&str>, tenant: Option<&str>) -> Context {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "lambda-runtime-aws-request-id",
        http::HeaderValue::from_static("req-1"),
    );
    let deadline = SystemTime::now() + Duration::from_secs(30);
    let ms = deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    headers.insert(
        "lambda-runtime-deadline-ms",
        ms.to_string().parse().expect("digits"),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        http::HeaderValue::from_static("arn:aws:lambda:eu-west-1:123456789012:function:hello-test"),
    );
    if let Some(xray) = xray {
        headers.insert(
            "lambda-runtime-trace-id",
            xray.parse().expect("header value"),
        );
    }
    if let Some(tenant) = tenant {
        headers.insert(
            "lambda-runtime-aws-tenant-id",
            tenant.parse().expect("header value"),
        );
    }
    let config = Config {
        function_name: FUNCTION.into(),
        memory: 256,
        version: "$LATEST".into(),
        log_stream: "stream".into(),
        log_group: "/aws/lambda/hello-test".into(),
    };
    Context::new("req-1", Arc::new(config), &headers).expect("valid context")
}

pub(crate) fn invocation(body: &'static [u8], xray: Option<&str>) -> LambdaInvocation {
    tenant_invocation(body, xray, None)
}

/// [`invocation`] of a tenant-isolated function, invoked for `tenant`.
pub(crate) fn tenant_invocation(
    body: &'static [u8],
    xray: Option<&str>,
    tenant: Option<&str>,
) -> LambdaInvocation {
    let (parts, ()) = http::Response::new(()).into_parts();
    LambdaInvocation {
        parts,
        body: bytes::Bytes::from_static(body),
        context: tenant_context(xray, tenant),
    }
}

pub(crate) fn event<T>(payload: T) -> LambdaEvent<T> {
    LambdaEvent::new(payload, context(None))
}

/// A cloneable in-memory writer that keeps each `write` apart (how lines were grouped into writes
/// is part of what the log layer promises).
#[derive(Clone, Default)]
pub(crate) struct SharedBuf(Arc<Mutex<Vec<Vec<u8>>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    pub(crate) fn lines(&self) -> Vec<String> {
        self.writes()
            .iter()
            .flat_map(|w| w.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }

    /// Each `write` made, in order, as text.
    pub(crate) fn writes(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    }
}

/// The production log configuration with JSON lines, as the tests read them.
pub(crate) fn json_logs() -> LogConfig {
    LogConfig::new().format(LogFormat::Json)
}

/// The production subscriber (`log_format::subscriber`, with `tracer`'s spans) writing its lines
/// into the returned buffer. Every test that captures lines builds it here, after
/// `keep_call_sites_undecided`: without it, another test thread with no subscriber could leave a
/// call site disabled for the whole process while this one is installed.
pub(crate) fn capturing_subscriber(
    config: &LogConfig,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
) -> (SharedBuf, impl tracing::Subscriber + Send + Sync + 'static) {
    lambda_observability_test_support::keep_call_sites_undecided();
    let buf = SharedBuf::default();
    let writer = buf.clone();
    let subscriber =
        log_format::subscriber(config, move || writer.clone(), tracer).expect("valid filter");
    (buf, subscriber)
}

/// Runs `body` with JSON logs captured, on this thread, through the production subscriber.
pub(crate) async fn capture_logs<F: Future>(body: F) -> Vec<String> {
    let (buf, subscriber) = capturing_subscriber(&json_logs(), None);
    let _guard = tracing::subscriber::set_default(subscriber);
    body.await;
    buf.lines()
}

/// A telemetry pipeline exporting to memory, installed as this thread's subscriber.
pub(crate) struct TestTelemetry {
    pub(crate) exporter: InMemorySpanExporter,
    pub(crate) telemetry: Telemetry,
    pub(crate) logs: SharedBuf,
    _guard: DefaultGuard,
}

impl TestTelemetry {
    pub(crate) fn new() -> Self {
        Self::with_logs(&json_logs())
    }

    /// The pipeline with log lines as `config` says.
    pub(crate) fn with_logs(config: &LogConfig) -> Self {
        let exporter = InMemorySpanExporter::default();
        let telemetry = Telemetry::with_exporter(
            exporter.clone(),
            Resource::builder_empty().build(),
            Duration::from_secs(2),
        );
        let (logs, subscriber) = capturing_subscriber(config, telemetry.tracer());
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            exporter,
            telemetry,
            logs,
            _guard: guard,
        }
    }

    pub(crate) fn flusher(&self) -> SpanFlusher {
        self.telemetry.flusher()
    }

    /// Runs `body` inside a root span.
    pub(crate) async fn in_span<F: Future>(&self, body: F) -> F::Output {
        body.instrument(tracing::info_span!("test-root")).await
    }

    /// Flushes and returns every span exported so far.
    pub(crate) async fn finished(&self) -> Vec<SpanData> {
        self.flusher().flush_within(Duration::from_secs(2)).await;
        self.exporter.get_finished_spans().unwrap_or_default()
    }

    /// Spans already exported, without flushing.
    pub(crate) fn exported(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().unwrap_or_default()
    }
}

pub(crate) fn attr(span: &SpanData, key: &str) -> Option<Value> {
    let key = Key::from(key.to_owned());
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.clone())
}

/// A one-shot local HTTP server answering `status` with a body; yields the request head it read.
pub(crate) async fn http_server(status: u16) -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let handle = tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return String::new();
        };
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let body = "203.0.113.7\n";
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        String::from_utf8_lossy(&head).into_owned()
    });
    (format!("http://{address}/"), handle)
}
