//! X-Ray segment documents over UDP to the daemon, one datagram per span.
//!
//! The documents are opentelemetry-aws's ([`SegmentTranslator`]); the sending is ours, so that
//! each span is accounted for on its own: a document larger than [`MAX_DATAGRAM_BYTES`] is
//! dropped alone and counted as oversize (the library's client stops the whole batch at the
//! first failed send and reports all of it failed, sent documents included), a span the
//! translator rejects is counted as failed, and a failed send costs only its own span. The
//! socket is connected and non-blocking: a send never waits.

use std::{fmt, io, net::SocketAddr};

use opentelemetry_aws::xray_exporter::SegmentTranslator;
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{SpanData, SpanExporter},
};

use crate::{MAX_DATAGRAM_BYTES, SendReport, socket::DaemonSocket};

/// The daemon's header line, as the X-Ray SDKs write it.
const HEADER: &[u8] = b"{\"format\": \"json\", \"version\": 1}\n";

/// Sends each span as an X-Ray segment document to the daemon, one datagram per span.
///
/// The documents are opentelemetry-aws's ([`SegmentTranslator`]); the sending is this crate's,
/// so that each span is accounted for on its own: a document larger than [`MAX_DATAGRAM_BYTES`]
/// is dropped alone and counted as oversize, a span the translator rejects is counted as failed,
/// and a failed send costs only its own span. The socket is connected and non-blocking: a send
/// never waits.
pub struct SegmentExporter {
    socket: DaemonSocket,
    translator: SegmentTranslator,
    max_datagram: usize,
}

impl fmt::Debug for SegmentExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentExporter")
            .field("daemon", &self.socket)
            .field("max_datagram", &self.max_datagram)
            .finish_non_exhaustive()
    }
}

impl SegmentExporter {
    /// One connected, non-blocking socket to `daemon`, for the life of the environment.
    pub fn connect(daemon: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            socket: DaemonSocket::connect(daemon)?,
            translator: SegmentTranslator::new(),
            max_datagram: MAX_DATAGRAM_BYTES,
        })
    }

    /// Span attributes written as indexed (searchable) annotations. Of the others, those X-Ray
    /// has a field for (`http.*`, `aws.*`, the database and messaging ones) go there, those named
    /// `metadata.*` become metadata, and the rest are left out (opentelemetry-aws's translation).
    /// Defaults to none.
    pub fn annotations<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.translator = self
            .translator
            .with_indexed_attrs(keys.into_iter().map(Into::into));
        self
    }

    /// The largest datagram sent, in bytes. Defaults to [`MAX_DATAGRAM_BYTES`].
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes;
        self
    }

    /// Translates and sends `batch`, one datagram per span, and reports what happened to each
    /// span; never blocks.
    pub fn send(&self, batch: Vec<SpanData>) -> SendReport {
        let documents = self.translator.translate_spans(&batch);
        let untranslated = batch.len() - documents.len();
        let mut delivery = SendReport {
            batch: batch.len() as u64,
            ..SendReport::default()
        };
        let mut datagrams = Vec::with_capacity(documents.len());
        for document in documents {
            let mut datagram = HEADER.to_vec();
            document.to_writer(&mut datagram);
            if datagram.len() > self.max_datagram {
                delivery.oversize += 1;
            } else {
                datagrams.push(datagram);
            }
        }
        if untranslated > 0 {
            delivery.error = Some(OTelSdkError::InternalFailure(format!(
                "{untranslated} spans could not be translated into segment documents"
            )));
        }
        self.socket
            .send(datagrams.iter().map(|d| (d.as_slice(), 1)), delivery)
    }
}

impl SpanExporter for SegmentExporter {
    /// Fails when any span was not sent, too large ones included.
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.send(batch).into_result()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.translator.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::{
        net::UdpSocket,
        time::{Duration, SystemTime},
    };

    use opentelemetry::{
        KeyValue,
        trace::{SpanContext, TraceFlags, TraceId, TraceState},
    };
    use opentelemetry_sdk::trace::SpanData;

    use super::*;
    use crate::test_spans::span_data;

    /// A trace id X-Ray accepts: its first four bytes are the time.
    fn trace_id() -> TraceId {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()) as u32;
        let mut bytes = [7u8; 16];
        bytes[..4].copy_from_slice(&now.to_be_bytes());
        TraceId::from_bytes(bytes)
    }

    fn span(id: u8, trace: TraceId) -> SpanData {
        // Under a Lambda segment (parent 9): a subsegment, as the invocation's spans are.
        let mut span = span_data(id, 9, "span", 0);
        span.span_context = SpanContext::new(
            trace,
            span.span_context.span_id(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        // X-Ray rejects segments that start at the epoch.
        span.start_time = SystemTime::now();
        span.end_time = span.start_time + Duration::from_millis(2);
        span
    }

    #[test]
    fn a_segment_too_large_for_a_datagram_is_dropped_alone_and_counted() {
        let daemon = UdpSocket::bind("127.0.0.1:0").expect("bind");
        daemon.set_nonblocking(true).expect("nonblocking");
        let address = daemon.local_addr().expect("address");
        let exporter = SegmentExporter::connect(address).expect("socket");
        let trace = trace_id();
        let mut batch = Vec::new();
        for id in 1..=4 {
            let mut span = span(id, trace);
            if id == 2 {
                // Over 64 KB as a segment document: no datagram can carry it.
                span.attributes
                    .push(KeyValue::new("metadata.huge", "y".repeat(70_000)));
            }
            batch.push(span);
        }
        let report = exporter.send(batch);
        assert_eq!(report.sent, 3, "{report:?}");
        assert_eq!(report.oversize, 1, "{report:?}");
        assert!(report.error.is_none(), "{report:?}");
        let mut ids = Vec::new();
        let mut buf = vec![0; 70_000];
        while let Ok(n) = daemon.recv(&mut buf) {
            assert!(n <= MAX_DATAGRAM_BYTES, "{n} bytes");
            let text = std::str::from_utf8(&buf[..n]).expect("UTF-8");
            let (_, document) = text.split_once('\n').expect("header line");
            let doc: serde_json::Value = serde_json::from_str(document).expect("JSON");
            ids.push(doc["id"].as_str().unwrap_or_default().to_owned());
        }
        ids.sort();
        assert_eq!(
            ids,
            ["0101010101010101", "0303030303030303", "0404040404040404"]
        );
    }

    #[test]
    fn a_span_the_translator_rejects_is_counted_as_failed() {
        let daemon = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let exporter =
            SegmentExporter::connect(daemon.local_addr().expect("address")).expect("socket");
        let trace = trace_id();
        // A subsegment without a parent: not a document X-Ray accepts.
        let mut orphan = span(2, trace);
        orphan.parent_span_id = opentelemetry::trace::SpanId::INVALID;
        let report = exporter.send(vec![span(1, trace), orphan]);
        assert_eq!(report.sent, 1, "{report:?}");
        assert_eq!(report.failed(), 1, "{report:?}");
        assert!(report.error.is_some(), "{report:?}");
    }
}
