//! The UDP socket both daemon exporters send through: X-Ray segment documents
//! ([`SegmentExporter`](crate::SegmentExporter)) and OTLP over UDP
//! ([`OtlpUdpExporter`](crate::OtlpUdpExporter)) go to the same daemon
//! Lambda runs at `AWS_XRAY_DAEMON_ADDRESS`, one datagram at a time, and lose spans the same ways.

use std::{
    fmt, io,
    net::{SocketAddr, UdpSocket},
};

use opentelemetry_sdk::error::OTelSdkError;

use crate::SendReport;

/// One connected, non-blocking socket to the daemon, for the life of the environment: a send
/// never waits, and an unreachable daemon costs a failed send, never a stalled invocation.
pub(crate) struct DaemonSocket(UdpSocket);

impl fmt::Debug for DaemonSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DaemonSocket")
            .field(&self.0.peer_addr().ok())
            .finish()
    }
}

impl DaemonSocket {
    pub(crate) fn connect(daemon: SocketAddr) -> io::Result<Self> {
        let local: SocketAddr = if daemon.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(daemon)?;
        socket.set_nonblocking(true)?;
        Ok(Self(socket))
    }

    /// Sends each datagram with the number of spans it carries, adding to `delivery` what left
    /// and why the rest did not.
    pub(crate) fn send<'a>(
        &self,
        datagrams: impl IntoIterator<Item = (&'a [u8], u64)>,
        mut delivery: SendReport,
    ) -> SendReport {
        for (datagram, spans) in datagrams {
            match self.0.send(datagram) {
                Ok(_) => delivery.sent += spans,
                // `WouldBlock` (socket buffer full) included: waiting would stall the invocation.
                Err(err) => delivery.error = Some(daemon_error(&err)),
            }
        }
        // A closed daemon port answers with ICMP "port unreachable", which the kernel reports on
        // the connected socket: on the local link, by the time the sends return. Then what was
        // sent is lost.
        if let Ok(Some(err)) = self.0.take_error() {
            delivery.sent = 0;
            delivery.error = Some(daemon_error(&err));
        }
        delivery
    }
}

fn daemon_error(err: &io::Error) -> OTelSdkError {
    OTelSdkError::InternalFailure(format!("sending to the daemon: {err}"))
}
