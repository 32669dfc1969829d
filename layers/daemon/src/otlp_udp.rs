//! OTLP protobuf over UDP to the Lambda X-Ray daemon, the protocol ADOT's Lambda distributions
//! speak: each datagram is the line `{"format":"json","version":1}`, then `T1S` (sampled spans;
//! `T1U` unsampled) and a base64 `ExportTraceServiceRequest`.
//!
//! A batch is split so that no datagram passes [`MAX_DATAGRAM_BYTES`], header and base64 included.
//! A span that alone does not fit is dropped and counted, never truncated. The socket is
//! connected and non-blocking: a send never waits, and an unreachable daemon costs a failed
//! `send`, never a stalled invocation.

use std::{
    fmt, io,
    net::SocketAddr,
    sync::{Mutex, PoisonError},
};

use opentelemetry::InstrumentationScope;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

use crate::{
    MAX_DATAGRAM_BYTES, SendReport,
    otlp_encode::{self, Fixed},
    socket::DaemonSocket,
};

const HEADER: &[u8] = b"{\"format\":\"json\",\"version\":1}\n";
const SAMPLED: &[u8] = b"T1S";
const UNSAMPLED: &[u8] = b"T1U";

/// Sends spans as OTLP over UDP to the daemon, the protocol ADOT's Lambda distributions speak:
/// each datagram is the line `{"format":"json","version":1}`, then `T1S` (sampled spans; `T1U`
/// unsampled) and a base64 `ExportTraceServiceRequest`.
///
/// A batch is split so that no datagram passes [`MAX_DATAGRAM_BYTES`], header and base64
/// included. A span that alone does not fit is dropped and counted, never truncated. The socket
/// is connected and non-blocking: a send never waits, and an unreachable daemon costs a failed
/// `send`, never a stalled invocation.
pub struct OtlpUdpExporter {
    socket: DaemonSocket,
    /// The resource's fields, encoded once.
    resource: Fixed,
    /// Each scope's fields, encoded once.
    scopes: Mutex<Scopes>,
    max_datagram: usize,
}

impl fmt::Debug for OtlpUdpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpUdpExporter")
            .field("daemon", &self.socket)
            .field("max_datagram", &self.max_datagram)
            .finish_non_exhaustive()
    }
}

impl OtlpUdpExporter {
    /// One connected, non-blocking socket to `daemon`, for the life of the environment.
    pub fn connect(daemon: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            socket: DaemonSocket::connect(daemon)?,
            resource: Fixed::resource(&ResourceAttributesWithSchema::default()),
            scopes: Mutex::default(),
            max_datagram: MAX_DATAGRAM_BYTES,
        })
    }

    /// The largest datagram sent, in bytes. Defaults to [`MAX_DATAGRAM_BYTES`].
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes;
        self
    }

    /// Encodes and sends `batch`, and reports what happened to each span; never blocks.
    pub fn send(&self, batch: Vec<SpanData>) -> SendReport {
        let batch_len = batch.len() as u64;
        let encoded = {
            let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
            encode_with(batch, &self.resource, &mut scopes, self.max_datagram)
        };
        let delivery = SendReport {
            batch: batch_len,
            oversize: encoded.oversize,
            ..SendReport::default()
        };
        let report = self.socket.send(
            encoded
                .datagrams
                .iter()
                .map(|d| (d.bytes.as_slice(), d.spans)),
            delivery,
        );
        Buffers::recycle(encoded.datagrams);
        report
    }
}

impl SpanExporter for OtlpUdpExporter {
    /// Fails when any span was not sent, too large ones included.
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.send(batch).into_result()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = Fixed::resource(&resource.into());
    }
}

/// One datagram and how many spans it carries.
#[derive(Debug)]
pub(crate) struct Datagram {
    pub(crate) bytes: Vec<u8>,
    pub(crate) spans: u64,
}

/// A batch as datagrams, and the spans too large for any.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) datagrams: Vec<Datagram>,
    pub(crate) oversize: u64,
}

/// Each instrumentation scope's fixed fields, encoded the first time a batch has the scope and
/// kept: a program has a handful of scopes (this function, one), and encoding the scope's
/// message anew took every export a few allocations.
#[derive(Default)]
pub(crate) struct Scopes(Vec<(InstrumentationScope, Fixed)>);

/// More scopes than this and the encodings kept start over: a bound on what an exporter keeps.
const MAX_SCOPES: usize = 64;

impl Scopes {
    /// Where `scope`'s encoding is, encoded now if it was not kept.
    fn index(&mut self, scope: &InstrumentationScope) -> usize {
        match self.0.iter().position(|(kept, _)| kept == scope) {
            Some(at) => at,
            None => {
                self.0.push((scope.clone(), Fixed::scope(scope)));
                self.0.len() - 1
            }
        }
    }
}

/// [`encode_with`] with no scope encoded yet.
#[cfg(test)]
pub(crate) fn encode(batch: Vec<SpanData>, resource: &Fixed, max: usize) -> Encoded {
    encode_with(batch, resource, &mut Scopes::default(), max)
}

/// Splits `batch` into datagrams of at most `max` bytes, packing each as full as it goes: one
/// `ResourceSpans` per datagram, the spans grouped by instrumentation scope in the order they
/// came, as `opentelemetry-proto`'s conversion groups them. The scopes' encodings come from
/// `kept`, and those it lacks are added to it.
pub(crate) fn encode_with(
    batch: Vec<SpanData>,
    resource: &Fixed,
    kept: &mut Scopes,
    max: usize,
) -> Encoded {
    if kept.0.len() >= MAX_SCOPES {
        kept.0.clear();
    }
    let mut encoded = Encoded::default();
    for (prefix, sampled) in [(SAMPLED, true), (UNSAMPLED, false)] {
        // Each scope with where `kept` has its encoding, and its spans.
        let mut scopes: Vec<(&InstrumentationScope, usize, Vec<&SpanData>)> = Vec::new();
        for span in batch
            .iter()
            .filter(|span| span.span_context.is_sampled() == sampled)
        {
            match scopes
                .iter_mut()
                .find(|(scope, _, _)| **scope == span.instrumentation_scope)
            {
                Some((_, _, spans)) => spans.push(span),
                None => {
                    // Room for the whole batch: most have one scope.
                    let mut spans = Vec::with_capacity(batch.len());
                    spans.push(span);
                    let at = kept.index(&span.instrumentation_scope);
                    scopes.push((&span.instrumentation_scope, at, spans));
                }
            }
        }
        if !scopes.is_empty() {
            pack(&scopes, kept, resource, prefix, max, &mut encoded);
        }
    }
    encoded
}

/// Field numbers: `ExportTraceServiceRequest.resource_spans`, `ResourceSpans.scope_spans`,
/// `ScopeSpans.spans`.
const RESOURCE_SPANS: u32 = 1;
const SCOPE_SPANS: u32 = 2;
const SPANS: u32 = 2;

/// The length of a `scope_spans` field whose scope is `len` bytes.
fn scope_field_len(len: usize) -> usize {
    otlp_encode::field_len(SCOPE_SPANS, len)
}

/// Length of the datagram carrying an encoded request of `request` bytes.
fn datagram_len(request: usize) -> usize {
    HEADER.len() + SAMPLED.len() + crate::base64::encoded_len(request)
}

/// One scope of a datagram: its fixed fields, and its spans with their encoded lengths.
struct ChunkScope<'a> {
    fixed: &'a Fixed,
    spans: Vec<(&'a SpanData, usize)>,
}

/// A datagram being filled: its scopes, and their sizes.
struct Chunk<'a> {
    scopes: Vec<ChunkScope<'a>>,
    /// Per scope: the encoded length of the scope without spans, and of its span fields.
    sizes: Vec<(usize, usize)>,
    /// Whether the last scope in `scopes` is the one being packed.
    scope_open: bool,
    /// The encoded request's length as computed, checked against the encoding in debug builds.
    request_len: usize,
}

impl Chunk<'_> {
    fn new() -> Self {
        Self {
            scopes: Vec::new(),
            sizes: Vec::new(),
            scope_open: false,
            request_len: 0,
        }
    }

    /// The `ResourceSpans` body's length: the resource's fixed fields and the scopes.
    fn resource_spans_len(&self, resource_fixed: usize) -> usize {
        resource_fixed
            + self
                .sizes
                .iter()
                .map(|(fixed, spans)| scope_field_len(fixed + spans))
                .sum::<usize>()
    }

    /// The request's length with one more span field of `span_field` bytes in the open scope
    /// (a new one, of fixed length `scope_fixed`, when none is open).
    fn request_len_with(
        &self,
        resource_fixed: usize,
        scope_fixed: usize,
        span_field: usize,
    ) -> usize {
        let mut body = self.resource_spans_len(resource_fixed);
        match (self.scope_open, self.sizes.last()) {
            (true, Some((fixed, spans))) => {
                body = body - scope_field_len(fixed + spans)
                    + scope_field_len(fixed + spans + span_field)
            }
            _ => body += scope_field_len(scope_fixed + span_field),
        }
        otlp_encode::field_len(RESOURCE_SPANS, body)
    }
}

/// Packs spans, grouped by scope (whose fixed fields are at the given place in `kept`), into
/// datagrams appended to `out`.
fn pack<'a>(
    scopes: &[(&InstrumentationScope, usize, Vec<&'a SpanData>)],
    kept: &'a Scopes,
    resource: &Fixed,
    prefix: &[u8],
    max: usize,
    out: &mut Encoded,
) {
    let resource_fixed = resource.len();
    let mut chunk = Chunk::new();
    for (_, at, spans) in scopes {
        let fixed = &kept.0[*at].1;
        let scope_fixed = fixed.len();
        chunk.scope_open = false;
        for &span in spans {
            let span_len = otlp_encode::span_len(span);
            let span_field = otlp_encode::field_len(SPANS, span_len);
            let mut request_len = chunk.request_len_with(resource_fixed, scope_fixed, span_field);
            if datagram_len(request_len) > max && !chunk.scopes.is_empty() {
                emit(
                    resource,
                    std::mem::replace(&mut chunk, Chunk::new()),
                    prefix,
                    out,
                );
                request_len = chunk.request_len_with(resource_fixed, scope_fixed, span_field);
            }
            if datagram_len(request_len) > max {
                // Alone in a datagram and still too large.
                out.oversize += 1;
                continue;
            }
            if !chunk.scope_open {
                chunk.scopes.push(ChunkScope {
                    fixed,
                    spans: Vec::with_capacity(spans.len()),
                });
                chunk.sizes.push((scope_fixed, 0));
                chunk.scope_open = true;
            }
            if let (Some(open), Some(size)) = (chunk.scopes.last_mut(), chunk.sizes.last_mut()) {
                open.spans.push((span, span_len));
                size.1 += span_field;
                chunk.request_len = request_len;
            }
        }
    }
    if !chunk.scopes.is_empty() {
        emit(resource, chunk, prefix, out);
    }
}

/// Encodes one chunk as a datagram: an `ExportTraceServiceRequest` with one `ResourceSpans`
/// (field 1), base64, after the header line and `prefix`.
fn emit(resource: &Fixed, chunk: Chunk<'_>, prefix: &[u8], out: &mut Encoded) {
    Buffers::with(|buffers| emit_into(resource, chunk, prefix, out, buffers));
}

fn emit_into(
    resource: &Fixed,
    chunk: Chunk<'_>,
    prefix: &[u8],
    out: &mut Encoded,
    buffers: &mut Buffers,
) {
    let spans = chunk.scopes.iter().map(|s| s.spans.len() as u64).sum();
    let body = chunk.resource_spans_len(resource.len());
    let request = &mut buffers.request;
    request.clear();
    request.reserve(chunk.request_len);
    resource.write_message(
        RESOURCE_SPANS,
        body,
        chunk.scopes.iter().zip(&chunk.sizes),
        request,
        |(scope, (fixed, spans_len)), buf| {
            scope.fixed.write_message(
                SCOPE_SPANS,
                fixed + spans_len,
                &scope.spans,
                buf,
                |&(span, span_len), buf| {
                    otlp_encode::length_delimited(SPANS, span_len, buf);
                    otlp_encode::span(span, buf);
                },
            )
        },
    );
    debug_assert_eq!(
        request.len(),
        chunk.request_len,
        "computed and encoded lengths differ"
    );
    let head = HEADER.len() + prefix.len();
    let mut bytes = buffers.datagrams.pop().unwrap_or_default();
    bytes.clear();
    bytes.resize(datagram_len(request.len()), 0);
    bytes[..HEADER.len()].copy_from_slice(HEADER);
    bytes[HEADER.len()..head].copy_from_slice(prefix);
    // Straight into the datagram: no intermediate string. `datagram_len` sized it for the padded
    // base64 of `request`, so the slice cannot be too small.
    let written = crate::base64::encode(request, &mut bytes[head..]);
    bytes.truncate(head + written);
    out.datagrams.push(Datagram { bytes, spans });
    if request.capacity() > MAX_KEPT_BUFFER {
        *request = Vec::new();
    }
}

/// The encoding's buffers, kept by each thread from one export to the next. Each is over 1 KB,
/// so a new one went through the allocator's slow path (and its consolidation of small free
/// chunks) at every export: 1.7k instructions per invocation of the example. A thread keeps at
/// most [`KEPT_DATAGRAMS`] + 1 of them, none larger than [`MAX_KEPT_BUFFER`].
#[derive(Default)]
struct Buffers {
    /// The protobuf request, base64-encoded into a datagram.
    request: Vec<u8>,
    /// Datagrams sent, for the next ones.
    datagrams: Vec<Vec<u8>>,
}

thread_local! {
    static BUFFERS: std::cell::RefCell<Buffers> = std::cell::RefCell::default();
}

/// At most this many datagrams are kept per thread: a batch that needed more gives the rest
/// back to the allocator.
const KEPT_DATAGRAMS: usize = 4;

/// A buffer grown past this (datagrams larger than the default, [`MAX_DATAGRAM_BYTES`]) goes
/// back to the allocator after use.
const MAX_KEPT_BUFFER: usize = MAX_DATAGRAM_BYTES;

impl Buffers {
    /// Runs `f` with this thread's buffers (new ones, should they be in use or gone).
    fn with(f: impl FnOnce(&mut Self)) {
        let mut f = Some(f);
        let _ = BUFFERS.try_with(|buffers| {
            if let Ok(mut buffers) = buffers.try_borrow_mut()
                && let Some(f) = f.take()
            {
                f(&mut buffers);
            }
        });
        if let Some(f) = f {
            f(&mut Self::default());
        }
    }

    /// Keeps `datagrams`' buffers (once sent) for the next export on this thread.
    fn recycle(datagrams: Vec<Datagram>) {
        Self::with(|buffers| {
            for datagram in datagrams {
                if buffers.datagrams.len() < KEPT_DATAGRAMS
                    && datagram.bytes.capacity() <= MAX_KEPT_BUFFER
                {
                    buffers.datagrams.push(datagram.bytes);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use opentelemetry::KeyValue;
    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest, trace::v1::Span,
    };
    use prost::Message as _;

    use super::*;
    use crate::test_spans::span_in;

    fn resource() -> Fixed {
        Fixed::resource(
            &(&Resource::builder_empty()
                .with_service_name("hello-udp")
                .build())
                .into(),
        )
    }

    /// Decodes a datagram back to its prefix and request.
    fn decode(datagram: &[u8]) -> (String, ExportTraceServiceRequest) {
        let text = std::str::from_utf8(datagram).expect("ASCII");
        let (header, body) = text.split_once('\n').expect("header line");
        assert_eq!(header, r#"{"format":"json","version":1}"#);
        let (prefix, base64) = body.split_at(3);
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, base64)
            .expect("base64");
        (
            prefix.to_owned(),
            ExportTraceServiceRequest::decode(bytes.as_slice()).expect("protobuf"),
        )
    }

    fn spans_of(request: &ExportTraceServiceRequest) -> Vec<Span> {
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// Spans with `size` bytes of attribute each.
    fn spans(count: u8, size: usize) -> Vec<SpanData> {
        (1..=count)
            .map(|id| {
                let mut span = span_in(1, id);
                span.attributes
                    .push(KeyValue::new("payload", "x".repeat(size)));
                span
            })
            .collect()
    }

    #[test]
    fn a_datagram_written_in_a_kept_buffer_holds_only_its_own_batch() {
        // A large batch, then a small one: the second is encoded in the buffers the first left
        // (the request and the datagram), which must not leak any of the first's bytes.
        let daemon = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let exporter =
            OtlpUdpExporter::connect(daemon.local_addr().expect("addr")).expect("connect");
        let large = |id: u8| {
            let mut span = span_in(1, id);
            span.attributes
                .push(KeyValue::new("padding", "x".repeat(400)));
            span
        };
        let mut datagram = vec![0; MAX_DATAGRAM_BYTES];
        for batch in [(1..=8).map(large).collect(), vec![span_in(2, 9)]] {
            let ids: Vec<Vec<u8>> = batch
                .iter()
                .map(|span: &SpanData| span.span_context.span_id().to_bytes().to_vec())
                .collect();
            assert!(exporter.send(batch).into_result().is_ok(), "sent");
            let len = daemon.recv(&mut datagram).expect("a datagram");
            let (_, request) = decode(&datagram[..len]);
            let sent: Vec<Vec<u8>> = spans_of(&request).into_iter().map(|s| s.span_id).collect();
            assert_eq!(sent, ids);
        }
    }

    #[test]
    fn scopes_encoded_once_give_the_datagrams_encoded_afresh() {
        // Batches of spans in several scopes, more than are kept, through one set of kept
        // encodings: every batch's datagrams are what a fresh encoding writes.
        let in_scope = |scope: usize, id: u8| {
            let mut span = span_in(1, id);
            span.instrumentation_scope = InstrumentationScope::builder(format!("scope-{scope}"))
                .with_version(if scope.is_multiple_of(2) {
                    "1.0"
                } else {
                    "2.0"
                })
                .build();
            span
        };
        let mut kept = Scopes::default();
        for round in 0..2 {
            for first in 0..MAX_SCOPES + 3 {
                let batch = || {
                    vec![
                        in_scope(first, 1),
                        in_scope(first + 1, 2),
                        in_scope(first, 3),
                    ]
                };
                let again = encode_with(batch(), &resource(), &mut kept, MAX_DATAGRAM_BYTES);
                let fresh = encode(batch(), &resource(), MAX_DATAGRAM_BYTES);
                let bytes = |e: &Encoded| {
                    e.datagrams
                        .iter()
                        .map(|d| d.bytes.clone())
                        .collect::<Vec<_>>()
                };
                assert_eq!(bytes(&again), bytes(&fresh), "scope {first}, round {round}");
            }
            assert!(kept.0.len() <= MAX_SCOPES + 1, "{}", kept.0.len());
        }
    }

    #[test]
    fn many_spans_fill_datagrams_under_the_limit_and_none_is_lost() {
        let encoded = encode(spans(250, 700), &resource(), MAX_DATAGRAM_BYTES);
        assert_eq!(encoded.oversize, 0);
        assert!(encoded.datagrams.len() > 1, "{}", encoded.datagrams.len());
        let mut ids = Vec::new();
        for datagram in &encoded.datagrams {
            assert!(datagram.bytes.len() <= MAX_DATAGRAM_BYTES);
            let (prefix, request) = decode(&datagram.bytes);
            assert_eq!(prefix, "T1S");
            let spans = spans_of(&request);
            assert_eq!(spans.len() as u64, datagram.spans);
            let resource = request.resource_spans[0]
                .resource
                .as_ref()
                .expect("resource");
            assert!(
                resource
                    .attributes
                    .iter()
                    .any(|kv| kv.key == "service.name")
            );
            ids.extend(spans.iter().map(|s| s.span_id[0]));
        }
        ids.sort_unstable();
        assert_eq!(ids, (1..=250).collect::<Vec<u8>>());
        // Packed, not merely split: all but the last datagram are nearly full.
        for datagram in &encoded.datagrams[..encoded.datagrams.len() - 1] {
            assert!(
                datagram.bytes.len() > MAX_DATAGRAM_BYTES - 2_000,
                "{}",
                datagram.bytes.len()
            );
        }
    }

    #[test]
    fn the_predicted_length_is_the_encoded_one_at_every_size() {
        // Around the varint boundaries of the nested lengths (128, 16 384 bytes).
        for size in [0, 50, 100, 120, 200, 5_000, 16_300, 16_400, 40_000] {
            for max in [1_000, 22_000, 48_000, MAX_DATAGRAM_BYTES] {
                let encoded = encode(spans(5, size), &resource(), max);
                let sent: u64 = encoded.datagrams.iter().map(|d| d.spans).sum();
                assert_eq!(sent + encoded.oversize, 5, "size {size} max {max}");
                for datagram in &encoded.datagrams {
                    assert!(datagram.bytes.len() <= max, "size {size} max {max}");
                    assert_eq!(
                        spans_of(&decode(&datagram.bytes).1).len() as u64,
                        datagram.spans
                    );
                }
            }
        }
    }

    #[test]
    fn a_span_too_large_for_any_datagram_is_dropped_whole() {
        let mut batch = spans(3, 100);
        batch[1]
            .attributes
            .push(KeyValue::new("huge", "y".repeat(MAX_DATAGRAM_BYTES)));
        let encoded = encode(batch, &resource(), MAX_DATAGRAM_BYTES);
        assert_eq!(encoded.oversize, 1);
        let ids: Vec<u8> = encoded
            .datagrams
            .iter()
            .flat_map(|d| spans_of(&decode(&d.bytes).1))
            .map(|s| s.span_id[0])
            .collect();
        assert_eq!(ids, vec![1, 3]);
    }

    #[test]
    fn unsampled_spans_travel_as_t1u() {
        let mut batch = spans(2, 10);
        batch[0].span_context = opentelemetry::trace::SpanContext::new(
            batch[0].span_context.trace_id(),
            batch[0].span_context.span_id(),
            opentelemetry::trace::TraceFlags::default(),
            false,
            Default::default(),
        );
        let encoded = encode(batch, &resource(), MAX_DATAGRAM_BYTES);
        let prefixes: Vec<String> = encoded
            .datagrams
            .iter()
            .map(|d| decode(&d.bytes).0)
            .collect();
        assert_eq!(prefixes, vec!["T1S", "T1U"]);
    }

    #[test]
    fn an_unreachable_daemon_fails_the_export_without_blocking() {
        // A port nobody listens on: the kernel answers each datagram with ICMP "port
        // unreachable", which the socket reports once it has arrived: at the send that caused it,
        // or (on a loaded machine) at a later one. Whenever it comes, a send never waits, a send
        // that sees it reports the whole batch lost, and one that does not reports it sent.
        let nobody = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let address = nobody.local_addr().expect("address");
        drop(nobody);
        let exporter = OtlpUdpExporter::connect(address).expect("socket");
        let (mut failed, started) = (0, std::time::Instant::now());
        while failed < 2 {
            let delivery = exporter.send(spans(2, 10));
            if delivery.error.is_some() {
                assert_eq!(delivery.sent, 0, "{delivery:?}");
                failed += 1;
            } else {
                assert_eq!(delivery.sent, 2, "{delivery:?}");
            }
            // Not a bound on the kernel: a guard that fails the test rather than hang it.
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "the loss was never reported"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_daemon_address_no_socket_can_be_connected_to_fails_at_once() {
        // The limited broadcast address: Linux refuses to connect a UDP socket to it (`EACCES`)
        // unless it asked for broadcast. The process tests use it for a daemon export that fails
        // every time, without waiting on the kernel's ICMP.
        let err = OtlpUdpExporter::connect(([255, 255, 255, 255], 2000).into())
            .expect_err("no socket to the broadcast address");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    }

    /// A local socket standing in for the daemon, and what it received.
    fn daemon() -> (UdpSocket, SocketAddr) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let address = socket.local_addr().expect("address");
        (socket, address)
    }

    fn received(socket: &UdpSocket) -> Vec<Vec<u8>> {
        let mut datagrams = Vec::new();
        let mut buf = vec![0; 70_000];
        while let Ok(n) = socket.recv(&mut buf) {
            datagrams.push(buf[..n].to_vec());
        }
        datagrams
    }

    #[test]
    fn an_oversize_span_is_reported_alone_and_the_rest_delivered() {
        let (socket, address) = daemon();
        let exporter = OtlpUdpExporter::connect(address)
            .expect("socket")
            .max_datagram(4_000);
        let mut batch = spans(3, 100);
        batch[2]
            .attributes
            .push(KeyValue::new("huge", "y".repeat(5_000)));
        let report = exporter.send(batch);
        assert_eq!(report.sent, 2, "{report:?}");
        assert_eq!(report.oversize, 1, "{report:?}");
        assert!(report.error.is_none(), "{report:?}");
        let datagrams = received(&socket);
        let ids: Vec<u8> = datagrams
            .iter()
            .inspect(|d| assert!(d.len() <= 4_000))
            .flat_map(|d| spans_of(&decode(d).1))
            .map(|s| s.span_id[0])
            .collect();
        assert_eq!(ids, vec![1, 2]);
    }
}
