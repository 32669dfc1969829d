//! A stand-in for an OTLP/HTTP collector: a tiny tokio HTTP/1.1 server on 127.0.0.1, on its own
//! thread (a collector is another process: its work is not the function's), answering every
//! request `200` with an empty `ExportTraceServiceResponse` and keeping the connection alive, as
//! the ADOT collector layer does. It counts requests, requests carrying a SigV4 `Authorization`
//! header, and the spans the protobuf bodies hold (decoded after answering, off the exporter's
//! path).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// The answer to every request: `200`, an empty protobuf body, keep-alive (HTTP/1.1's default).
const OK: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";

/// What the receiver has counted so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// Requests answered.
    pub(crate) requests: usize,
    /// Requests with an `Authorization: AWS4-HMAC-SHA256 ...` header.
    pub(crate) signed: usize,
    /// Spans in the bodies that decoded as an `ExportTraceServiceRequest`.
    pub(crate) spans: usize,
    /// Body bytes received.
    pub(crate) body_bytes: usize,
    /// TCP connections accepted (keep-alive: one for a whole benchmark).
    pub(crate) connections: usize,
}

#[derive(Debug, Default)]
struct Counts {
    requests: AtomicUsize,
    signed: AtomicUsize,
    spans: AtomicUsize,
    body_bytes: AtomicUsize,
    connections: AtomicUsize,
}

/// The receiver; it runs until the process exits.
#[derive(Debug)]
pub(crate) struct OtlpReceiver {
    address: SocketAddr,
    counts: Arc<Counts>,
}

impl OtlpReceiver {
    pub(crate) fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the OTLP receiver");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let address = listener.local_addr().expect("OTLP receiver address");
        let counts = Arc::new(Counts::default());
        let counting = counts.clone();
        std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .expect("receiver runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    while let Ok((stream, _)) = listener.accept().await {
                        counting.connections.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(serve(stream, counting.clone()));
                    }
                });
            })
            .expect("spawn the OTLP receiver thread");
        Self { address, counts }
    }

    /// The URL spans are POSTed to.
    pub(crate) fn traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.address)
    }

    pub(crate) fn received(&self) -> Received {
        Received {
            requests: self.counts.requests.load(Ordering::Relaxed),
            signed: self.counts.signed.load(Ordering::Relaxed),
            spans: self.counts.spans.load(Ordering::Relaxed),
            body_bytes: self.counts.body_bytes.load(Ordering::Relaxed),
            connections: self.counts.connections.load(Ordering::Relaxed),
        }
    }
}

/// Serves one connection until the client closes it.
async fn serve(stream: TcpStream, counts: Arc<Counts>) {
    // The answer is one small write: without NODELAY it could wait out a delayed ACK.
    let _ = stream.set_nodelay(true);
    let mut stream = BufReader::new(stream);
    while let Some((signed, body)) = read_request(&mut stream).await {
        if stream.get_mut().write_all(OK).await.is_err() {
            return;
        }
        counts.requests.fetch_add(1, Ordering::Relaxed);
        if signed {
            counts.signed.fetch_add(1, Ordering::Relaxed);
        }
        counts.body_bytes.fetch_add(body.len(), Ordering::Relaxed);
        if let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) {
            let spans: usize = request
                .resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .map(|scope| scope.spans.len())
                .sum();
            counts.spans.fetch_add(spans, Ordering::Relaxed);
        }
    }
}

/// Reads one request: whether it carries a SigV4 `Authorization` header, and its body
/// (`content-length` or chunked). `None` at the end of the stream or on anything unexpected.
async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(bool, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut signed = false;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("authorization") {
            signed = value.starts_with("AWS4-HMAC-SHA256 ");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.contains("chunked");
        }
    }
    let mut body = Vec::new();
    if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body).await.ok()?;
    } else if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).await.ok()?;
            let size = usize::from_str_radix(line.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Some((signed, body))
}
