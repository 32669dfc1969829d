#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "otlp-udp")]
mod base64;
#[cfg(feature = "otlp-udp")]
mod otlp_encode;
#[cfg(feature = "otlp-udp")]
mod otlp_udp;
#[cfg(feature = "xray-segments")]
mod segments;
#[cfg(any(feature = "otlp-udp", feature = "xray-segments"))]
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
    /// An error the socket held before this send: a *late* ICMP "port unreachable" answering an
    /// earlier send's datagrams after that send had returned. Those datagrams were counted as
    /// sent (by the earlier report) and were lost; this send's own spans are not charged with it.
    pub late_error: Option<OTelSdkError>,
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
