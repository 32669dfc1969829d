//! The daemon exporters ([`lambda_observability_daemon`]) as the pipeline drives them: their send
//! reports become deliveries, so that each span is accounted for.

#[cfg(feature = "otlp-udp")]
use lambda_observability_daemon::OtlpUdpExporter;
#[cfg(feature = "xray-segments")]
use lambda_observability_daemon::SegmentExporter;
use lambda_observability_daemon::SendReport;
use lambda_observability_tower::export::{Deliver, Delivery, DeliveryFuture};
use opentelemetry_sdk::{Resource, trace::SpanData, trace::SpanExporter};

fn delivery(report: SendReport) -> Delivery {
    if let Some(err) = &report.late_error {
        // Not this flush's: an earlier one's datagrams, counted as sent, were lost.
        tracing::warn!(
            "the daemon refused datagrams of an earlier flush (a late port unreachable): spans \
             counted as sent then were lost: {err}"
        );
    }
    Delivery::new(report.sent, report.oversize, report.error)
}

/// A daemon exporter: a send that reports span by span what left.
pub(super) trait Sends: SpanExporter + 'static {
    fn send(&self, batch: Vec<SpanData>) -> SendReport;
}

#[cfg(feature = "xray-segments")]
impl Sends for SegmentExporter {
    fn send(&self, batch: Vec<SpanData>) -> SendReport {
        SegmentExporter::send(self, batch)
    }
}

#[cfg(feature = "otlp-udp")]
impl Sends for OtlpUdpExporter {
    fn send(&self, batch: Vec<SpanData>) -> SendReport {
        OtlpUdpExporter::send(self, batch)
    }
}

/// A daemon exporter as the pipeline drives it.
pub(super) struct Daemon<E>(pub(super) E);

impl<E: Sends> Deliver for Daemon<E> {
    fn deliver(&self, batch: Vec<SpanData>) -> DeliveryFuture<'_> {
        Box::pin(std::future::ready(delivery(self.0.send(batch))))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }

    /// A send never waits (non-blocking socket); an unreachable daemon is a failed flush,
    /// counted, with no breaker.
    fn may_stall(&self) -> bool {
        false
    }
}

#[cfg(all(test, feature = "otlp-udp"))]
mod tests {
    use std::{net::UdpSocket, sync::Arc, time::Duration};

    use base64::Engine as _;
    use lambda_observability_tower::{TraceLayer, export::Telemetry, log_format::otel_layer};
    use lambda_runtime::{Config, Context, LambdaInvocation};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_sdk::trace::Sampler;
    use prost::Message;
    use tower::{Layer, ServiceExt, service_fn};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const TRACE_HEADER: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    fn invocation() -> LambdaInvocation {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "lambda-runtime-aws-request-id",
            "req-1".parse().expect("value"),
        );
        headers.insert(
            "lambda-runtime-deadline-ms",
            "600000".parse().expect("value"),
        );
        headers.insert(
            "lambda-runtime-trace-id",
            TRACE_HEADER.parse().expect("value"),
        );
        let config = Config {
            function_name: "hello-udp".into(),
            ..Config::default()
        };
        let (parts, ()) = http::Response::new(()).into_parts();
        LambdaInvocation {
            parts,
            body: bytes::Bytes::from_static(b"{}"),
            context: Context::new("req-1", Arc::new(config), &headers).expect("context"),
        }
    }

    /// The span names in a datagram, after checking its header and its sampled prefix.
    fn names(datagram: &[u8]) -> Vec<String> {
        let text = std::str::from_utf8(datagram).expect("ASCII");
        let (header, body) = text.split_once('\n').expect("header line");
        assert_eq!(header, r#"{"format":"json","version":1}"#);
        let (prefix, base64) = body.split_at(3);
        assert_eq!(prefix, "T1S");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(base64)
            .expect("base64");
        let request = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("protobuf");
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.iter().map(|span| span.name.clone()))
            .collect()
    }

    #[tokio::test]
    async fn a_handler_making_hundreds_of_spans_loses_none() {
        let daemon = UdpSocket::bind("127.0.0.1:0").expect("bind");
        daemon.set_nonblocking(true).expect("nonblocking");
        let exporter =
            OtlpUdpExporter::connect(daemon.local_addr().expect("address")).expect("socket");
        let telemetry = Telemetry::builder()
            .deliver_to("otlp-udp", Duration::from_secs(2), Daemon(exporter))
            .sampler(Sampler::AlwaysOn)
            .build();
        let subscriber = tracing_subscriber::registry().with(telemetry.tracer().map(otel_layer));
        lambda_observability_test_support::keep_call_sites_undecided();
        let _guard = tracing::subscriber::set_default(subscriber);
        let service =
            TraceLayer::new(telemetry.flusher()).layer(service_fn(|_: LambdaInvocation| async {
                for n in 0..400 {
                    tracing::info_span!("item", item.number = n, item.note = "x".repeat(100))
                        .in_scope(|| ());
                }
                Ok::<(), lambda_runtime::Error>(())
            }));
        service.oneshot(invocation()).await.expect("invocation");
        let mut datagrams = Vec::new();
        let mut buf = vec![0; 70_000];
        while let Ok(n) = daemon.recv(&mut buf) {
            assert!(n <= lambda_observability_daemon::MAX_DATAGRAM_BYTES, "{n}");
            datagrams.push(buf[..n].to_vec());
        }
        assert!(datagrams.len() > 1, "{} datagrams", datagrams.len());
        let names: Vec<String> = datagrams.iter().flat_map(|d| names(d)).collect();
        assert_eq!(names.len(), 401, "400 items and the invocation");
        assert_eq!(names.iter().filter(|n| *n == "item").count(), 400);
        assert_eq!(telemetry.flusher().stats().exported, 401);
    }
}
