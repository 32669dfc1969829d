//! Pieces shared by the bench targets (each target includes this file with `#[path]`).
#![allow(dead_code)]

use std::{
    net::{SocketAddr, UdpSocket},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

/// The function name every bench environment uses.
pub(crate) const FUNCTION_NAME: &str = "hello-bench";

/// The invoked function ARN the mock Runtime API and the in-process contexts use.
pub(crate) const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:hello-bench";

/// A sampled `Lambda-Runtime-Trace-Id` as Lambda sends it with active tracing, distinct for each
/// `n`. The root's time part is now: X-Ray (and the exporter's translator) rejects trace ids older
/// than 30 days.
pub(crate) fn trace_header(n: u64) -> String {
    static EPOCH: OnceLock<u64> = OnceLock::new();
    let epoch = EPOCH.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!("Root=1-{epoch:08x}-{n:024x};Parent=53995c3f42cd8ad8;Sampled=1")
}

/// A UDP socket on 127.0.0.1 standing in for the X-Ray daemon. A thread drains it, so that the
/// receive buffer never fills up and datagrams are never dropped on the floor by the kernel. It
/// tells the two payloads the daemon accepts apart: after the `{"format":"json","version":1}`
/// header line, a segment document is JSON, an OTLP span batch starts with `T1` (`T1S` sampled,
/// `T1U` not) followed by base64 protobuf, whose spans it counts ([`otlp_spans`]).
#[derive(Debug)]
pub(crate) struct XrayDaemon {
    pub(crate) address: SocketAddr,
    counts: Arc<DaemonCounts>,
}

#[derive(Debug, Default)]
struct DaemonCounts {
    received: AtomicUsize,
    segments: AtomicUsize,
    otlp: AtomicUsize,
    otlp_spans: AtomicUsize,
}

impl XrayDaemon {
    pub(crate) fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the X-Ray daemon socket");
        // This thread decodes every datagram while 64 invocations send theirs: on a loaded
        // machine the default receive buffer (about 200 KB) can fill, and loopback UDP then drops
        // without telling the sender, which reads as spans lost by the process under test (a
        // loaded run was 3 datagrams short). A daemon that keeps up is what is measured: as large
        // a buffer as the kernel allows (`net.core.rmem_max`); `kernel_drops` tells if it filled.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(8 << 20);
        let address = socket.local_addr().expect("X-Ray daemon address");
        let counts = Arc::new(DaemonCounts::default());
        let counting = counts.clone();
        std::thread::Builder::new()
            .name("xray-daemon".into())
            .spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while let Ok(n) = socket.recv(&mut buf) {
                    counting.received.fetch_add(1, Ordering::Relaxed);
                    let body = buf[..n]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(&[][..], |at| &buf[at + 1..n]);
                    if body.starts_with(b"{") {
                        counting.segments.fetch_add(1, Ordering::Relaxed);
                    } else if body.starts_with(b"T1") {
                        counting.otlp.fetch_add(1, Ordering::Relaxed);
                        let spans = base64::Engine::decode(
                            &base64::engine::general_purpose::STANDARD,
                            body.get(3..).unwrap_or_default(),
                        )
                        .ok()
                        .and_then(|bytes| otlp_spans(&bytes));
                        counting
                            .otlp_spans
                            .fetch_add(spans.unwrap_or(0), Ordering::Relaxed);
                    }
                }
            })
            .expect("spawn the X-Ray daemon thread");
        Self { address, counts }
    }

    /// Datagrams received so far, whatever they carry.
    pub(crate) fn received(&self) -> usize {
        self.counts.received.load(Ordering::Relaxed)
    }

    /// Datagrams so far that carried an X-Ray segment document.
    pub(crate) fn segments(&self) -> usize {
        self.counts.segments.load(Ordering::Relaxed)
    }

    /// Datagrams so far that carried an OTLP span batch.
    pub(crate) fn otlp(&self) -> usize {
        self.counts.otlp.load(Ordering::Relaxed)
    }

    /// Spans so far in the OTLP datagrams (those that decoded).
    pub(crate) fn otlp_spans(&self) -> usize {
        self.counts.otlp_spans.load(Ordering::Relaxed)
    }

    /// Datagrams the kernel dropped on their way into this socket (its receive buffer full), from
    /// the `drops` column of `/proc/net/udp`; `None` where that cannot be read. Spans in them were
    /// sent, and lost here, not by the process under test.
    pub(crate) fn kernel_drops(&self) -> Option<u64> {
        let port = format!(":{:04X}", self.address.port());
        std::fs::read_to_string("/proc/net/udp")
            .ok()?
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.get(1).is_some_and(|local| local.ends_with(&port)))
            .and_then(|fields| fields.get(12)?.parse().ok())
    }
}

/// The number of spans in an OTLP `ExportTraceServiceRequest` (protobuf); `None` if it does not
/// decode.
pub(crate) fn otlp_spans(protobuf: &[u8]) -> Option<usize> {
    use prost::Message as _;
    let request =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
            protobuf,
        )
        .ok()?;
    Some(
        request
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum(),
    )
}

/// Median, mean and spread of a set of durations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) n: usize,
    pub(crate) mean: Duration,
    pub(crate) median: Duration,
    pub(crate) p10: Duration,
    pub(crate) p90: Duration,
    pub(crate) min: Duration,
}

impl Stats {
    pub(crate) fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        let total: Duration = sorted.iter().sum();
        Some(Self {
            n: sorted.len(),
            mean: total / sorted.len() as u32,
            median: at(0.5),
            p10: at(0.1),
            p90: at(0.9),
            min: sorted[0],
        })
    }
}

/// Milliseconds with three decimals.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// When a bench's JSON was written (seconds since the epoch) and on what machine: the fields
/// every bench document starts with.
pub(crate) fn generated_on() -> (u64, serde_json::Value) {
    let generated = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let machine = serde_json::json!({
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
    });
    (generated, machine)
}

/// The order the cases of a round run in: Fisher–Yates with xorshift64, seeded the same in every
/// run (so that runs are comparable), so that no case always runs after the same neighbour.
#[derive(Debug)]
pub(crate) struct Shuffle(u64);

impl Shuffle {
    pub(crate) fn new() -> Self {
        Self(0x9E37_79B9_7F4A_7C15)
    }

    /// `0..n` in the next order.
    pub(crate) fn order(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            order.swap(i, (self.0 % (i as u64 + 1)) as usize);
        }
        order
    }
}
