//! Middleware that measures each invocation, records the durations on the span, and flushes the
//! invocation's metrics as CloudWatch Embedded Metric Format lines.
//!
//! For every invocation it records `lambda.duration_ms` on the current span (the invocation span
//! when [`TraceLayer`](crate::TraceLayer) is outside this layer), and `lambda.init_duration_ms`
//! on the first. With [`Metrics`] enabled ([`TimingLayer::metrics`]) it then records its own
//! metrics through the same API handler code uses ([`crate::metrics`]) and flushes everything the
//! invocation recorded, once, after the handler: before the answer is posted when the runtime
//! runs [`BeforeAnswer`](lambda_observability_runtime::BeforeAnswer) hooks (ours does; the EMF
//! lines then join the invocation's log lines in their one `write`, and the duration is the time
//! until the answer was ready), else when the invocation completes:
//!
//! * `ColdStart` (Count), on a cold start only;
//! * `InitDuration` (Milliseconds), on the environment's first invocation, when the init was
//!   measured;
//! * `Duration` (Milliseconds), only with [`TimingLayer::duration_metric`]: Lambda already
//!   publishes `Duration` for every function in `AWS/Lambda` at no cost, so a custom copy is off by
//!   default.
//!
//! Cold start and init time are read from the invocation's
//! [`InvocationFacts`] (attached by the runtime loop or by
//! [`TraceLayer`](crate::TraceLayer)); without them neither is reported.
//!
//! ```
//! use lambda_observability_tower::{TimingLayer, metrics::Metrics};
//! use lambda_runtime::LambdaInvocation;
//! use tower::{ServiceBuilder, service_fn};
//!
//! let service = ServiceBuilder::new()
//!     .layer(TimingLayer::new().metrics(Metrics::disabled()).duration_metric(false))
//!     .service(service_fn(|_: LambdaInvocation| async { Ok::<(), lambda_runtime::Error>(()) }));
//! # drop(service);
//! ```

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use lambda_runtime::LambdaInvocation;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    at_answer::AtAnswer,
    facts::InvocationFacts,
    metrics::{self, Metrics, Unit},
};

/// Layer that applies [`Timing`].
#[derive(Debug, Clone, Default)]
pub struct TimingLayer {
    metrics: Metrics,
    duration_metric: bool,
}

impl TimingLayer {
    /// Durations on the span, no metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// The metrics to record into and flush after each invocation. Defaults to
    /// [`Metrics::disabled`] (nothing recorded, nothing written).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Whether to publish the `Duration` metric (a copy of Lambda's own). Defaults to `false`.
    pub fn duration_metric(mut self, enabled: bool) -> Self {
        self.duration_metric = enabled;
        self
    }
}

impl<S> Layer<S> for TimingLayer {
    type Service = Timing<S>;

    fn layer(&self, inner: S) -> Self::Service {
        if self.metrics.is_enabled() {
            metrics::describe_counter!("ColdStart", Unit::Count, "cold starts");
            metrics::describe_histogram!(
                "InitDuration",
                Unit::Milliseconds,
                "execution environment init time"
            );
            metrics::describe_histogram!("Duration", Unit::Milliseconds, "invocation time");
        }
        Timing {
            inner,
            metrics: self.metrics.clone(),
            duration_metric: self.duration_metric,
        }
    }
}

/// Middleware that times each invocation; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Timing<S> {
    inner: S,
    metrics: Metrics,
    duration_metric: bool,
}

impl<S> Timing<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
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

    fn call(&mut self, mut req: LambdaInvocation) -> Self::Future {
        let (cold_start, init_duration) = InvocationFacts::of(&req)
            .map_or((false, None), |facts| {
                (facts.cold_start, facts.init_duration)
            });
        let report = AtAnswer::insert(
            &mut req.parts.extensions,
            Report {
                started: Instant::now(),
                cold_start,
                init_duration,
                metrics: self.metrics.clone(),
                duration_metric: self.duration_metric,
                span: tracing::Span::current(),
            },
            Report::emit,
        );
        ResponseFuture {
            inner: self.inner.call(req),
            report,
        }
    }
}

#[derive(Debug)]
struct Report {
    started: Instant,
    cold_start: bool,
    init_duration: Option<Duration>,
    metrics: Metrics,
    duration_metric: bool,
    span: tracing::Span,
}

impl Report {
    fn emit(self) {
        let duration_ms = self.started.elapsed().as_secs_f64() * 1e3;
        self.span.set_attribute("lambda.duration_ms", duration_ms);
        let init_ms = self.init_duration.map(|d| d.as_secs_f64() * 1e3);
        if let Some(init_ms) = init_ms {
            self.span.set_attribute("lambda.init_duration_ms", init_ms);
        }
        if !self.metrics.is_enabled() {
            return;
        }
        if self.cold_start {
            metrics::counter!("ColdStart").increment(1);
        }
        if let Some(init_ms) = init_ms {
            metrics::histogram!("InitDuration").record(init_ms);
        }
        if self.duration_metric {
            metrics::histogram!("Duration").record(duration_ms);
        }
        // Everything the invocation recorded, the handler's metrics included, in one flush.
        self.metrics.flush();
    }
}

pin_project! {
    /// Response future of [`Timing`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // The report, emitted once (see the module docs).
        report: AtAnswer<Report>,
    }
}

impl<F: Future> Future for ResponseFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        this.report.finish();
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cold_start::InitializationType, facts::EnvironmentFacts,
        metrics::test_support::metrics as test_metrics, test_support::invocation,
    };
    use serde_json::Value;
    use tower::{ServiceExt, service_fn};

    /// An invocation carrying the facts `environment` gives it.
    fn with_facts(environment: &EnvironmentFacts) -> LambdaInvocation {
        let mut req = invocation(b"{}", None);
        environment
            .next_invocation(req.context.deadline)
            .attach(&mut req);
        req
    }

    fn docs(lines: Vec<String>) -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("EMF line is JSON"))
            .collect()
    }

    #[tokio::test]
    async fn reports_the_facts_and_flushes_the_handlers_metrics_once_per_invocation() {
        let (metrics, out, _guard) = test_metrics().await;
        let environment = EnvironmentFacts::new(InitializationType::OnDemand, Instant::now());
        environment.init_done();
        let mut service = TimingLayer::new()
            .metrics(metrics)
            .duration_metric(true)
            .layer(service_fn(|_: LambdaInvocation| async {
                crate::metrics::counter!("TimingTestGreetings", "PackageManager" => "cargo")
                    .increment(1);
                Ok::<(), lambda_runtime::Error>(())
            }));
        for _ in 0..2 {
            service.ready().await.expect("ready");
            service.call(with_facts(&environment)).await.expect("ok");
        }
        let docs = docs(out.lines());
        // Per invocation: the layer's own line (no label) and the handler's (PackageManager).
        assert_eq!(docs.len(), 4, "{docs:?}");
        let (first, second) = (&docs[..2], &docs[2..]);
        let own = |docs: &[Value]| {
            docs.iter()
                .find(|d| d.get("PackageManager").is_none())
                .cloned()
                .expect("the layer's line")
        };
        let (first_own, second_own) = (own(first), own(second));
        assert_eq!(first_own["ColdStart"], 1);
        assert!(first_own["InitDuration"][0].is_number(), "{first_own}");
        assert!(second_own.get("ColdStart").is_none(), "counted once");
        assert!(second_own.get("InitDuration").is_none(), "reported once");
        assert!(second_own["Duration"][0].as_f64().is_some_and(|d| d > 0.0));
        let units: Vec<(String, String)> = first_own["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| (m["Name"].to_string(), m["Unit"].to_string()))
            .collect();
        for expected in [
            ("\"ColdStart\"", "\"Count\""),
            ("\"InitDuration\"", "\"Milliseconds\""),
            ("\"Duration\"", "\"Milliseconds\""),
        ] {
            assert!(
                units.contains(&(expected.0.into(), expected.1.into())),
                "{units:?}"
            );
        }
        for half in [first, second] {
            let handler = half
                .iter()
                .find(|d| d["PackageManager"] == "cargo")
                .expect("the handler's line");
            assert_eq!(handler["TimingTestGreetings"], 1);
        }
    }

    #[tokio::test]
    async fn without_facts_or_duration_metric_nothing_of_its_own_is_written() {
        let (metrics, out, _guard) = test_metrics().await;
        TimingLayer::new()
            .metrics(metrics)
            .layer(service_fn(|_: LambdaInvocation| async {
                Ok::<(), lambda_runtime::Error>(())
            }))
            .oneshot(invocation(b"{}", None))
            .await
            .expect("ok");
        assert!(out.lines().is_empty(), "{:?}", out.lines());
    }

    #[tokio::test]
    async fn a_layer_given_a_cold_start_reports_it() {
        let (metrics, out, _guard) = test_metrics().await;
        let environment = EnvironmentFacts::new(InitializationType::OnDemand, Instant::now());
        TimingLayer::new()
            .metrics(metrics)
            .layer(service_fn(|_: LambdaInvocation| async {
                Ok::<(), lambda_runtime::Error>(())
            }))
            .oneshot(with_facts(&environment))
            .await
            .expect("ok");
        let docs = docs(out.lines());
        assert_eq!(docs.len(), 1, "{docs:?}");
        assert_eq!(docs[0]["ColdStart"], 1);
        assert!(
            docs[0].get("InitDuration").is_none(),
            "init not measured: not reported"
        );
    }

    #[tokio::test]
    async fn disabled_metrics_write_nothing() {
        let (installed, out, _guard) = test_metrics().await;
        let environment = EnvironmentFacts::new(InitializationType::OnDemand, Instant::now());
        TimingLayer::new()
            .duration_metric(true)
            .layer(service_fn(|_: LambdaInvocation| async {
                Ok::<(), lambda_runtime::Error>(())
            }))
            .oneshot(with_facts(&environment))
            .await
            .expect("ok");
        // The layer neither flushed nor recorded: the process-wide collector holds nothing.
        assert!(out.lines().is_empty());
        installed.flush();
        assert!(out.lines().is_empty(), "{:?}", out.lines());
    }
}
