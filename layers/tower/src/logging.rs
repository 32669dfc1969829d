//! Middleware that logs the start and end of each invocation, at `DEBUG` unless
//! [`LoggingLayer::level`] says otherwise.
//!
//! Lines are written inside the invocation span, so with [`TraceLayer`](crate::TraceLayer)
//! outside this layer they carry `requestId`, `xrayTraceId` and the trace ids (see
//! [`log_format`](crate::log_format)). The event payload is never logged unless enabled, since it
//! may carry personal data: [`LoggingLayer::log_payload`] (which the configuration sets from
//! `LOG_EVENT_PAYLOAD`). The remaining time comes from the invocation's
//! [`InvocationFacts`] when present.
//!
//! The end line is logged before the answer is posted when the runtime runs
//! [`BeforeAnswer`](lambda_observability_runtime::BeforeAnswer) hooks (ours does): it then joins
//! the invocation's other lines in their one `write`, and `elapsed_ms` is the time until the
//! answer was ready. Under another runtime it is logged when the invocation completes.
//!
//! ```
//! use lambda_observability_tower::LoggingLayer;
//! use lambda_runtime::LambdaInvocation;
//! use tower::{ServiceBuilder, service_fn};
//!
//! let service = ServiceBuilder::new()
//!     .layer(LoggingLayer::new().log_payload(false))
//!     .service(service_fn(|_: LambdaInvocation| async { Ok::<(), lambda_runtime::Error>(()) }));
//! # drop(service);
//! ```

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use lambda_runtime::LambdaInvocation;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::{Level, level_filters::LevelFilter};

use crate::{at_answer::AtAnswer, facts::InvocationFacts};

/// An event at a level known only at run time: one call site per level (a call site's level is
/// part of its static metadata), as tower-http does.
macro_rules! at_level {
    ($level:expr, $($event:tt)+) => {
        match $level {
            Level::ERROR => tracing::error!($($event)+),
            Level::WARN => tracing::warn!($($event)+),
            Level::INFO => tracing::info!($($event)+),
            Level::DEBUG => tracing::debug!($($event)+),
            Level::TRACE => tracing::trace!($($event)+),
        }
    };
}

/// Layer that applies [`Logging`].
#[derive(Debug, Clone, Copy)]
pub struct LoggingLayer {
    log_payload: bool,
    level: Level,
}

impl Default for LoggingLayer {
    fn default() -> Self {
        Self {
            log_payload: false,
            level: Level::DEBUG,
        }
    }
}

impl LoggingLayer {
    /// Start and end lines at `DEBUG`, without the payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// The level of the start and end lines. Defaults to `DEBUG` (as tower-http's `TraceLayer`
    /// logs requests): Lambda's own `START` and `REPORT` records already say when each
    /// invocation started and how long it took, and at `INFO` these two lines were a quarter of
    /// the example's log bytes per invocation (1.1 of 4.3 KB) and 7k of its 331k instructions
    /// (docs/benchmarks.md). When the subscriber takes nothing at this level, the layer does no
    /// work for them.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Whether to log the raw event payload at `INFO` (it is only logged when asked for).
    /// Defaults to `false`.
    pub fn log_payload(mut self, enabled: bool) -> Self {
        self.log_payload = enabled;
        self
    }
}

impl<S> Layer<S> for LoggingLayer {
    type Service = Logging<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Logging {
            inner,
            log_payload: self.log_payload,
            level: self.level,
        }
    }
}

/// Middleware that logs each invocation; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Logging<S> {
    inner: S,
    log_payload: bool,
    level: Level,
}

impl<S> Logging<S> {
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

impl<S> Service<LambdaInvocation> for Logging<S>
where
    S: Service<LambdaInvocation, Response = ()>,
    S::Error: std::fmt::Display,
{
    type Response = ();
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: LambdaInvocation) -> Self::Future {
        let remaining = match InvocationFacts::of(&req) {
            Some(facts) => crate::deadline::remaining(facts.deadline),
            None => crate::deadline::remaining_in(&req.context),
        };
        let remaining_ms = remaining.as_millis() as u64;
        // The subscriber's most verbose level (an atomic load): nothing to do for lines it
        // would not take.
        let lines = self.level <= LevelFilter::current();
        if lines {
            let bytes = req.body.len();
            at_level!(self.level, remaining_ms, bytes, "invocation started");
        }
        if self.log_payload {
            tracing::info!(payload = %String::from_utf8_lossy(&req.body), "event payload (payload logging is on)");
        }
        let started = Instant::now();
        ResponseFuture {
            end: lines.then(|| {
                AtAnswer::insert(
                    &mut req.parts.extensions,
                    (started, self.level),
                    log_finished,
                )
            }),
            inner: self.inner.call(req),
            started,
        }
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

/// The end line of an invocation that started at `started`.
fn log_finished((started, level): (Instant, Level)) {
    let elapsed_ms = elapsed_ms(started);
    at_level!(level, elapsed_ms, "invocation finished");
}

pin_project! {
    /// Response future of [`Logging`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // The end line, logged once (see the module docs); none when its level is off.
        end: Option<AtAnswer<(Instant, Level)>>,
        started: Instant,
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        match &output {
            Ok(()) => {
                if let Some(end) = this.end {
                    end.finish();
                }
            }
            // Whether or not the end line went out before the answer: the runtime could not
            // complete the invocation after it.
            Err(err) => {
                if let Some(end) = this.end {
                    end.take();
                }
                let elapsed_ms = elapsed_ms(*this.started);
                tracing::error!(elapsed_ms, error = %err, "invocation could not be completed")
            }
        }
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{capture_logs, invocation, json_logs};
    use tower::{ServiceExt, service_fn};

    /// The lines `layer` logs for one invocation carrying a secret payload, under the production
    /// subscriber with `filter`.
    async fn lines(layer: LoggingLayer, filter: &str) -> Vec<String> {
        let (buf, subscriber) =
            crate::test_support::capturing_subscriber(&json_logs().filter(filter), None);
        let _guard = tracing::subscriber::set_default(subscriber);
        let service = layer.layer(service_fn(|_: LambdaInvocation| async {
            Ok::<(), lambda_runtime::Error>(())
        }));
        service
            .oneshot(invocation(br#"{"secret":"s3cr3t-payload"}"#, None))
            .await
            .expect("ok");
        buf.lines()
    }

    /// The messages of [`lines`].
    async fn messages(layer: LoggingLayer, filter: &str) -> Vec<String> {
        lines(layer, filter)
            .await
            .iter()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).expect("json");
                line["message"].as_str().expect("message").to_owned()
            })
            .collect()
    }

    #[tokio::test]
    async fn start_and_end_lines_are_debug_by_default_and_never_carry_the_payload() {
        let both = ["invocation started", "invocation finished"];
        assert!(
            messages(LoggingLayer::new(), "info").await.is_empty(),
            "nothing at INFO"
        );
        assert_eq!(messages(LoggingLayer::new(), "debug").await, both);
        assert_eq!(
            messages(LoggingLayer::new().level(Level::INFO), "info").await,
            both
        );
        assert!(
            messages(LoggingLayer::new().level(Level::TRACE), "debug")
                .await
                .is_empty()
        );
        let text = lines(LoggingLayer::new(), "trace").await.join("\n");
        assert!(text.contains("invocation started"), "{text}");
        assert!(!text.contains("s3cr3t-payload"), "{text}");
    }

    #[tokio::test]
    async fn logs_the_payload_only_when_enabled() {
        let lines = capture_logs(async {
            let service = LoggingLayer::new().log_payload(true).layer(service_fn(
                |_: LambdaInvocation| async { Ok::<(), lambda_runtime::Error>(()) },
            ));
            service
                .oneshot(invocation(br#"{"name":"visible-payload"}"#, None))
                .await
        })
        .await;
        assert!(lines.join("\n").contains("visible-payload"));
    }

    #[tokio::test]
    async fn the_remaining_time_comes_from_the_facts() {
        use crate::{cold_start::InitializationType, facts::EnvironmentFacts};
        // The context says 30 s are left; the facts (what the runtime decided) say 5 s.
        let mut req = invocation(b"{}", None);
        EnvironmentFacts::new(InitializationType::OnDemand, Instant::now())
            .next_invocation(5_000)
            .attach(&mut req);
        let lines = capture_logs(async {
            LoggingLayer::new()
                .level(Level::INFO)
                .layer(service_fn(|_: LambdaInvocation| async {
                    Ok::<(), lambda_runtime::Error>(())
                }))
                .oneshot(req)
                .await
        })
        .await;
        let started: serde_json::Value = lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
            .find(|l| l["message"] == "invocation started")
            .expect("start line");
        let remaining_ms = started["remaining_ms"].as_u64().expect("remaining_ms");
        assert!(remaining_ms <= 5_000, "{started}");
    }
}
