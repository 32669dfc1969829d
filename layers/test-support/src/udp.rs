//! The Lambda daemon's UDP socket: [`XrayDaemon`] receives X-Ray segment documents and OTLP
//! datagrams ([`OtlpDatagram`]) alike, as the daemon does (it tells them apart by the prefix).

use std::{
    net::{SocketAddr, UdpSocket},
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::{
    otlp::{ResourceSpan, request_spans},
    runtime_api::MockRuntimeApi,
};

/// Datagrams, each with the number of the `/next` call before which it had arrived.
pub type Received = Arc<Mutex<Vec<(usize, Vec<u8>)>>>;

/// A UDP socket standing in for the X-Ray daemon.
#[derive(Debug)]
pub struct XrayDaemon {
    socket: UdpSocket,
    /// Where it listens: `AWS_XRAY_DAEMON_ADDRESS`.
    pub address: SocketAddr,
}

impl XrayDaemon {
    /// Binds a UDP socket on 127.0.0.1 (an ephemeral port).
    pub fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        socket.set_nonblocking(true).expect("nonblocking");
        let address = socket.local_addr().expect("address");
        Self { socket, address }
    }

    /// Records, at each `/next` request of `runtime`, the datagrams received until then, tagged
    /// with that request's number. Lambda may freeze the process once it asks for the next
    /// event: whatever has not reached the daemon by then counts as lost.
    pub fn capture_before_next(self: &Arc<Self>, runtime: &MockRuntimeApi) -> Received {
        let received: Received = Arc::default();
        let (daemon, sink) = (self.clone(), received.clone());
        runtime.on_next(move |n| {
            sink.lock()
                .expect("lock")
                .extend(daemon.drain().into_iter().map(|d| (n, d)))
        });
        received
    }

    /// Every datagram received so far, without waiting.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let mut datagrams = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = self.socket.recv(&mut buf) {
            datagrams.push(buf[..n].to_vec());
        }
        datagrams
    }
}

/// The Lambda daemon's UDP socket receiving OTLP datagrams (the same socket as the X-Ray one:
/// the daemon tells the formats apart by the prefix).
pub type OtlpUdpDaemon = XrayDaemon;

/// One datagram of the OTLP-over-UDP protocol (ADOT's Lambda distributions), decoded.
#[derive(Debug, Clone)]
pub struct OtlpDatagram {
    /// Length of the whole datagram, header included.
    pub len: usize,
    /// The first line, `{"format":"json","version":1}`.
    pub header: String,
    /// `T1S` (sampled) or `T1U`.
    pub prefix: String,
    /// The base64 protobuf after the prefix, decoded.
    pub request: ExportTraceServiceRequest,
}

impl OtlpDatagram {
    /// Decodes header line, prefix and base64 protobuf; panics on anything else.
    pub fn decode(datagram: &[u8]) -> Self {
        use base64::Engine as _;
        use prost::Message;
        let text = std::str::from_utf8(datagram).expect("an ASCII datagram");
        let (header, body) = text.split_once('\n').expect("a header line");
        let (prefix, encoded) = body.split_at(3);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64 after the prefix");
        Self {
            len: datagram.len(),
            header: header.to_owned(),
            prefix: prefix.to_owned(),
            request: ExportTraceServiceRequest::decode(bytes.as_slice())
                .expect("a valid ExportTraceServiceRequest"),
        }
    }

    /// Its spans, each with the resource attributes of its batch.
    pub fn spans(&self) -> Vec<ResourceSpan> {
        request_spans(&self.request)
    }
}
