//! Middleware that traces outbound HTTP requests made with [`reqwest`].
//!
//! Each request gets a client span (an X-Ray remote subsegment named after the host, through
//! `peer.service`) with `http.request.method`, `url.full` and, once answered,
//! `http.response.status_code`; a transport error or a 5xx marks it as an error. The span's
//! context is injected into the request in the configured formats ([`HttpTraceLayer::propagators`];
//! by default `traceparent` (W3C) and `X-Amzn-Trace-Id` (X-Ray)), so the callee continues the
//! same trace. `reqwest::Client` is itself a
//! `tower::Service<reqwest::Request>`, so the layer wraps it directly.
//!
//! ```
//! use lambda_observability_tower::HttpTraceLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let _ = rustls::crypto::ring::default_provider().install_default();
//! let client = reqwest::Client::new();
//! let traced = ServiceBuilder::new().layer(HttpTraceLayer::new()).service(client.clone());
//! let request = client.get("http://checkip.amazonaws.com/").build()?;
//! let response = traced.oneshot(request).await?;
//! # drop(response);
//! # Ok(())
//! # }
//! ```

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use opentelemetry::{
    propagation::{Injector, TextMapCompositePropagator, TextMapPropagator},
    trace::Status,
};
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use pin_project_lite::pin_project;
use std::sync::Arc;
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty, instrument::Instrumented};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// One entry of `OTEL_PROPAGATORS`: which headers outbound calls carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagator {
    /// W3C `traceparent`/`tracestate`.
    TraceContext,
    /// W3C `baggage`.
    Baggage,
    /// `X-Amzn-Trace-Id`.
    Xray,
}

/// One propagator writing every header of `propagators`, in order (`OTEL_PROPAGATORS`).
pub fn composite_propagator(propagators: &[Propagator]) -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(
        propagators
            .iter()
            .map(|propagator| -> Box<dyn TextMapPropagator + Send + Sync> {
                match propagator {
                    Propagator::TraceContext => Box::new(TraceContextPropagator::new()),
                    Propagator::Baggage => Box::new(BaggagePropagator::new()),
                    Propagator::Xray => Box::new(XrayPropagator::default()),
                }
            })
            .collect(),
    )
}

/// Layer that applies [`HttpTrace`].
#[derive(Clone)]
pub struct HttpTraceLayer {
    propagator: Arc<dyn TextMapPropagator + Send + Sync>,
}

impl std::fmt::Debug for HttpTraceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTraceLayer").finish_non_exhaustive()
    }
}

impl HttpTraceLayer {
    /// Traces requests and injects `traceparent` and `X-Amzn-Trace-Id`.
    pub fn new() -> Self {
        Self {
            propagator: Arc::new(composite_propagator(&[
                Propagator::TraceContext,
                Propagator::Xray,
            ])),
        }
    }

    /// The headers carrying the trace context, in order (`TelemetrySettings::propagators`);
    /// empty for none. Defaults to W3C (`traceparent`) and X-Ray (`X-Amzn-Trace-Id`).
    pub fn propagators(self, propagators: &[Propagator]) -> Self {
        self.propagator(composite_propagator(propagators))
    }

    /// Any propagator writing the trace context into requests.
    /// Defaults to W3C (`traceparent`) and X-Ray (`X-Amzn-Trace-Id`) together.
    pub fn propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        self.propagator = Arc::new(propagator);
        self
    }
}

impl Default for HttpTraceLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for HttpTraceLayer {
    type Service = HttpTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTrace {
            inner,
            propagator: self.propagator.clone(),
        }
    }
}

/// Middleware tracing outbound requests; see the [module docs](self).
#[derive(Clone)]
pub struct HttpTrace<S> {
    inner: S,
    propagator: Arc<dyn TextMapPropagator + Send + Sync>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for HttpTrace<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTrace")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> HttpTrace<S> {
    /// The wrapped service, e.g. the `reqwest::Client` to build requests with.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

impl<S> Service<reqwest::Request> for HttpTrace<S>
where
    S: Service<reqwest::Request, Response = reqwest::Response, Error = reqwest::Error>,
{
    type Response = reqwest::Response;
    type Error = reqwest::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: reqwest::Request) -> Self::Future {
        let url = req.url();
        let span = tracing::info_span!(
            target: "lambda_observability::http_client",
            "HTTP request",
            otel.name = %req.method(),
            otel.kind = "client",
            http.request.method = %req.method(),
            url.full = %url,
            // Names the X-Ray subsegment (the node on the service map). `server.address` is left
            // out on purpose: opentelemetry-aws turns it into a `sql.url` on any subsegment.
            peer.service = url.host_str().unwrap_or_default(),
            http.response.status_code = Empty,
            error.type = Empty,
        );
        self.propagator
            .inject_context(&span.context(), &mut HeaderInjector(req.headers_mut()));
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        ResponseFuture {
            inner: future.instrument(span),
        }
    }
}

pin_project! {
    /// Response future of [`HttpTrace`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Instrumented<F>,
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<reqwest::Response, reqwest::Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let output = ready!(this.inner.as_mut().poll(cx));
        let span = this.inner.span();
        match &output {
            Ok(response) => {
                let status = response.status();
                span.record("http.response.status_code", i64::from(status.as_u16()));
                if status.is_server_error() {
                    span.record("error.type", status.as_str());
                    span.set_status(Status::error(format!("HTTP {status}")));
                }
            }
            Err(err) => {
                let kind = if err.is_timeout() {
                    "timeout"
                } else if err.is_connect() {
                    "connect"
                } else {
                    "request"
                };
                let message = crate::error::error_chain(err);
                span.record("error.type", kind);
                span.set_status(Status::error(message.clone()));
                crate::error::record_exception(span, format!("reqwest::Error ({kind})"), message);
            }
        }
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::{
        KeyValue,
        baggage::BaggageExt,
        trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId},
    };
    use tower::ServiceExt;

    use super::*;
    use crate::test_support::{TestTelemetry, http_server};

    fn injected(propagators: &[Propagator]) -> Vec<String> {
        let cx = opentelemetry::Context::new()
            .with_remote_span_context(SpanContext::new(
                TraceId::from_bytes([3; 16]),
                SpanId::from_bytes([4; 8]),
                TraceFlags::SAMPLED,
                true,
                Default::default(),
            ))
            .with_baggage(vec![KeyValue::new("tenant", "a")]);
        let mut headers = HashMap::new();
        composite_propagator(propagators).inject_context(&cx, &mut headers);
        // `tracestate` is written even when empty.
        let mut names: Vec<String> = headers
            .into_iter()
            .filter(|(_, value): &(String, String)| !value.is_empty())
            .map(|(name, _)| name)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_configured_propagators_decide_the_headers() {
        assert_eq!(
            injected(&[Propagator::TraceContext, Propagator::Xray]),
            ["traceparent", "x-amzn-trace-id"]
        );
        assert_eq!(injected(&[Propagator::Baggage]), ["baggage"]);
        assert_eq!(injected(&[Propagator::Xray]), ["x-amzn-trace-id"]);
        assert!(injected(&[]).is_empty());
    }

    #[tokio::test]
    async fn the_layer_injects_only_the_configured_headers() {
        let telemetry = TestTelemetry::new();
        let (url, request_head) = http_server(200).await;
        crate::test_support::install_crypto_provider();
        let client = reqwest::Client::new();
        let request = client.get(&url).build().expect("request");
        let traced = HttpTraceLayer::new()
            .propagators(&[Propagator::Xray])
            .layer(client);
        telemetry
            .in_span(traced.oneshot(request))
            .await
            .expect("response");
        let head = request_head
            .await
            .expect("server task")
            .to_ascii_lowercase();
        assert!(head.contains("x-amzn-trace-id: root=1-"), "{head}");
        assert!(!head.contains("traceparent"), "{head}");
    }
}
