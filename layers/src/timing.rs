//! Middleware that measures each invocation and emits CloudWatch Embedded Metric Format lines.
//!
//! For every invocation it records `lambda.duration_ms` on the current span (the invocation span
//! when [`TraceLayer`](crate::TraceLayer) is outside this layer) and writes one EMF line to
//! stdout with the `Duration` (milliseconds) and `ColdStart` (count) metrics, dimension
//! `FunctionName`. The first invocation also carries `InitDuration`: the time from the process
//! start given to [`TimingLayer::init_started_at`] until the stack was built.
//!
//! ```
//! use lambda_observability::TimingLayer;
//! use lambda_runtime::LambdaInvocation;
//! use tower::{ServiceBuilder, service_fn};
//!
//! let started = std::time::Instant::now();
//! let service = ServiceBuilder::new()
//!     .layer(TimingLayer::new().namespace("HelloLambda").init_started_at(started))
//!     .service(service_fn(|_: LambdaInvocation| async { Ok::<(), lambda_runtime::Error>(()) }));
//! # drop(service);
//! ```

use std::{
    future::Future,
    io::Write,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
    time::{Duration, Instant, SystemTime},
};

use lambda_runtime::LambdaInvocation;
use pin_project_lite::pin_project;
use serde_json::json;
use tower::{Layer, Service};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::cold_start::{ColdStart, InitializationType};

type MetricsSink = Arc<Mutex<Box<dyn Write + Send>>>;

/// Layer that applies [`Timing`].
#[derive(Clone)]
pub struct TimingLayer {
    namespace: Arc<str>,
    init_started: Option<Instant>,
    init_type: InitializationType,
    sink: Option<MetricsSink>,
}

impl std::fmt::Debug for TimingLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimingLayer")
            .field("namespace", &self.namespace)
            .field("emits_metrics", &self.sink.is_some())
            .finish()
    }
}

impl TimingLayer {
    /// Timing with EMF metrics on stdout in the `LambdaObservability` namespace.
    pub fn new() -> Self {
        Self {
            namespace: Arc::from("LambdaObservability"),
            init_started: None,
            init_type: InitializationType::from_env(),
            sink: Some(Arc::new(Mutex::new(Box::new(std::io::stdout())))),
        }
    }

    /// The CloudWatch metrics namespace. Defaults to `LambdaObservability`.
    pub fn namespace(mut self, namespace: impl Into<Arc<str>>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// When the process started, to report `InitDuration` once. Defaults to not reporting it.
    pub fn init_started_at(mut self, started: Instant) -> Self {
        self.init_started = Some(started);
        self
    }

    /// Where EMF lines go; `None` records on the span only. Defaults to stdout.
    pub fn metrics_sink(mut self, sink: Option<Box<dyn Write + Send>>) -> Self {
        self.sink = sink.map(|s| Arc::new(Mutex::new(s)));
        self
    }

    /// How the environment was initialised. Defaults to `AWS_LAMBDA_INITIALIZATION_TYPE`.
    pub fn initialization_type(mut self, init_type: InitializationType) -> Self {
        self.init_type = init_type;
        self
    }
}

impl Default for TimingLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for TimingLayer {
    type Service = Timing<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timing {
            inner,
            namespace: self.namespace.clone(),
            sink: self.sink.clone(),
            cold_start: Arc::new(ColdStart::new(self.init_type)),
            init_duration: self.init_started.map(|started| started.elapsed()),
        }
    }
}

/// Middleware that times each invocation; see the [module docs](self).
#[derive(Clone)]
pub struct Timing<S> {
    inner: S,
    namespace: Arc<str>,
    sink: Option<MetricsSink>,
    cold_start: Arc<ColdStart>,
    init_duration: Option<Duration>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Timing<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timing")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Service<LambdaInvocation> for Timing<S>
where
    S: Service<LambdaInvocation, Response = ()>,
{
    type Response = ();
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: LambdaInvocation) -> Self::Future {
        let cold_start = self.cold_start.take();
        // InitDuration belongs to the first invocation only.
        let init_duration = self.init_duration.take();
        let function_name = req.context.env_config.function_name.clone();
        ResponseFuture {
            started: Instant::now(),
            inner: self.inner.call(req),
            report: Some(Report {
                namespace: self.namespace.clone(),
                function_name,
                cold_start,
                init_duration,
                sink: self.sink.clone(),
                span: tracing::Span::current(),
            }),
        }
    }
}

struct Report {
    namespace: Arc<str>,
    function_name: String,
    cold_start: bool,
    init_duration: Option<Duration>,
    sink: Option<MetricsSink>,
    span: tracing::Span,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("cold_start", &self.cold_start)
            .finish_non_exhaustive()
    }
}

impl Report {
    fn emit(self, duration: Duration) {
        let duration_ms = duration.as_secs_f64() * 1e3;
        self.span.set_attribute("lambda.duration_ms", duration_ms);
        let init_ms = self.init_duration.map(|d| d.as_secs_f64() * 1e3);
        if let Some(init_ms) = init_ms {
            self.span.set_attribute("lambda.init_duration_ms", init_ms);
        }
        let Some(sink) = self.sink else { return };
        let line = emf_line(
            &self.namespace,
            &self.function_name,
            duration_ms,
            self.cold_start,
            init_ms,
        );
        let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
        let _ = sink.write_all(line.as_bytes()).and_then(|()| sink.flush());
    }
}

/// One EMF document (a line) for an invocation.
pub fn emf_line(
    namespace: &str,
    function_name: &str,
    duration_ms: f64,
    cold_start: bool,
    init_ms: Option<f64>,
) -> String {
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut metrics = vec![
        json!({"Name": "Duration", "Unit": "Milliseconds"}),
        json!({"Name": "ColdStart", "Unit": "Count"}),
    ];
    let mut doc = json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["FunctionName"]],
                "Metrics": [],
            }],
        },
        "FunctionName": function_name,
        "Duration": duration_ms,
        "ColdStart": u8::from(cold_start),
    });
    if let Some(init_ms) = init_ms {
        metrics.push(json!({"Name": "InitDuration", "Unit": "Milliseconds"}));
        doc["InitDuration"] = json!(init_ms);
    }
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(metrics);
    let mut line = doc.to_string();
    line.push('\n');
    line
}

pin_project! {
    /// Response future of [`Timing`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        report: Option<Report>,
    }
}

impl<F: Future> Future for ResponseFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        if let Some(report) = this.report.take() {
            report.emit(this.started.elapsed());
        }
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{SharedBuf, invocation};
    use tower::{ServiceExt, service_fn};

    #[tokio::test]
    async fn emits_one_emf_line_per_invocation_and_init_duration_once() {
        let buf = SharedBuf::default();
        let layer = TimingLayer::new()
            .namespace("Test")
            .initialization_type(InitializationType::OnDemand)
            .init_started_at(Instant::now())
            .metrics_sink(Some(Box::new(buf.clone())));
        let mut service = layer.layer(service_fn(|_: LambdaInvocation| async {
            Ok::<(), lambda_runtime::Error>(())
        }));
        for _ in 0..2 {
            service.ready().await.ok();
            service.call(invocation(b"{}", None)).await.ok();
        }
        let lines = buf.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        let second: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
        assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Test");
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "FunctionName"
        );
        assert_eq!(first["ColdStart"], 1);
        assert_eq!(second["ColdStart"], 0);
        assert!(first["Duration"].as_f64().is_some_and(|d| d > 0.0));
        assert!(first["InitDuration"].is_number());
        assert!(second.get("InitDuration").is_none());
        let names: Vec<&str> = first["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert_eq!(names, ["Duration", "ColdStart", "InitDuration"]);
    }
}
