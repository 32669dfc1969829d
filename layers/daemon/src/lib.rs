//! OpenTelemetry span exporters for the AWS X-Ray daemon's UDP port, the one Lambda runs for every
//! function with tracing on (`AWS_XRAY_DAEMON_ADDRESS`, `127.0.0.1:2000`):
//!
//! | exporter | what goes over the wire |
//! |---|---|
//! | [`OtlpUdpExporter`] | OTLP protobuf, base64, as ADOT's Lambda layers send it: many spans a datagram |
//! | [`SegmentExporter`] | X-Ray segment documents (opentelemetry-aws's translation), one span a datagram |
//!
//! Each is a plain [`SpanExporter`](opentelemetry_sdk::trace::SpanExporter): put it in any
//! `opentelemetry_sdk` pipeline. Its normal dependencies are OpenTelemetry's own: no HTTP client,
//! no TLS, no Lambda runtime. The socket is connected and non-blocking: an export never waits, and
//! an unreachable daemon costs a failed send, never a stalled invocation. A span too large for one
//! datagram ([`MAX_DATAGRAM_BYTES`]) is dropped and counted, never truncated; [`OtlpUdpExporter::send`]
//! and [`SegmentExporter::send`] report, span by span, what left and what did not ([`SendReport`]).
//!
//! ```
//! use lambda_observability_daemon::OtlpUdpExporter;
//! use opentelemetry::trace::{Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//!
//! # fn main() -> std::io::Result<()> {
//! # let daemon = std::net::UdpSocket::bind("127.0.0.1:0")?;
//! # let address = daemon.local_addr()?;
//! let exporter = OtlpUdpExporter::connect(address)?; // AWS_XRAY_DAEMON_ADDRESS on Lambda
//! let provider = SdkTracerProvider::builder()
//!     .with_simple_exporter(exporter)
//!     .build();
//! provider.tracer("hello").in_span("work", |_| {});
//! # let mut datagram = [0; 65_536];
//! # let n = daemon.recv(&mut datagram)?;
//! # assert!(datagram[..n].starts_with(br#"{"format":"json","version":1}"#));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "otlp-udp")]
mod otlp_udp;
#[cfg(feature = "xray-segments")]
mod segments;
mod socket;
#[cfg(test)]
mod test_spans;

use std::fmt;

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};

#[cfg(feature = "otlp-udp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp-udp")))]
pub use otlp_udp::OtlpUdpExporter;
#[cfg(feature = "xray-segments")]
#[cfg_attr(docsrs, doc(cfg(feature = "xray-segments")))]
pub use segments::SegmentExporter;

/// Upper bound on one datagram, header included: under 64 KB, and under the 65,507 bytes an
/// IPv4 UDP datagram can carry.
pub const MAX_DATAGRAM_BYTES: usize = 65_000;

/// What one send did with a batch, span by span.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SendReport {
    /// Spans in the batch.
    pub batch: u64,
    /// Spans that left on the wire.
    pub sent: u64,
    /// Spans dropped because, alone, they do not fit a datagram.
    pub oversize: u64,
    /// Why the rest of the batch was not sent (the daemon unreachable, the socket buffer full, a
    /// span the translator rejects).
    pub error: Option<OTelSdkError>,
}

impl SendReport {
    /// Spans neither sent nor oversize: lost to [`error`](Self::error).
    pub fn failed(&self) -> u64 {
        self.batch.saturating_sub(self.sent + self.oversize)
    }

    /// `Ok` when every span was sent; the error, or one naming the oversize spans, otherwise.
    pub fn into_result(self) -> OTelSdkResult {
        match (self.error, self.oversize) {
            (Some(err), _) => Err(err),
            (None, 0) => Ok(()),
            (None, oversize) => Err(OTelSdkError::InternalFailure(format!(
                "{oversize} spans too large for one datagram were dropped"
            ))),
        }
    }
}

impl fmt::Display for SendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!(
            "{} of {} spans sent, {} oversize, {} failed",
            self.sent,
            self.batch,
            self.oversize,
            self.failed()
        ))
    }
}
