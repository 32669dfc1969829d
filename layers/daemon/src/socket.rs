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
        // An error already pending is not this send's: a port unreachable that came back after
        // the previous send had taken the socket's error (the daemon went away, or the ICMP was
        // slow). Linux hands it to the next `send`, which then sends nothing: the first datagram
        // that fails so is sent again, and the error reported apart, as `late_error`. (Asking the
        // socket for its error first would cost every export a system call for a rare case.)
        let mut attempted = false;
        for (datagram, spans) in datagrams {
            let mut sent = self.0.send(datagram);
            if !attempted
                && let Err(err) = &sent
                && err.kind() == io::ErrorKind::ConnectionRefused
            {
                delivery.late_error = Some(daemon_error(err));
                sent = self.0.send(datagram);
            }
            attempted = true;
            match sent {
                Ok(_) => delivery.sent += spans,
                // `WouldBlock` (socket buffer full) included: waiting would stall the invocation.
                Err(err) => delivery.error = Some(daemon_error(&err)),
            }
        }
        // A closed daemon port answers with ICMP "port unreachable", which the kernel reports on
        // the connected socket: on the local link, by the time the sends return. Then what was
        // sent is lost. An answer that comes later is the next send's `late_error`; with nothing
        // sent, what is pending is one.
        if let Ok(Some(err)) = self.0.take_error() {
            if attempted {
                delivery.sent = 0;
                delivery.error = Some(daemon_error(&err));
            } else {
                delivery.late_error = Some(daemon_error(&err));
            }
        }
        delivery
    }
}

fn daemon_error(err: &io::Error) -> OTelSdkError {
    OTelSdkError::InternalFailure(format!("sending to the daemon: {err}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::Interest;

    use super::*;

    /// Waits until `socket` holds an error (readiness, which does not take it), up to 10 s.
    async fn error_pending(socket: &UdpSocket) {
        let watched = tokio::net::UdpSocket::from_std(socket.try_clone().expect("clone"))
            .expect("tokio socket");
        let ready = tokio::time::timeout(Duration::from_secs(10), watched.ready(Interest::ERROR))
            .await
            .expect("the port unreachable arrives")
            .expect("readiness");
        assert!(ready.is_error(), "{ready:?}");
    }

    #[tokio::test]
    async fn a_late_port_unreachable_is_not_charged_to_the_next_send() {
        // A port nobody listens on: the earlier send's datagram comes back as port unreachable.
        let closed = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let address = closed.local_addr().expect("address");
        drop(closed);
        let socket = DaemonSocket::connect(address).expect("connect");
        // The earlier send, whose own check came before the ICMP did (as a slow one would).
        socket.0.send(b"earlier").expect("sent");
        error_pending(&socket.0).await;
        // The daemon is back on that port: this send's spans all reach it.
        let daemon = UdpSocket::bind(address).expect("the daemon binds the port again");
        daemon
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let report = socket.send(
            [(&b"one"[..], 2), (&b"two"[..], 3)],
            SendReport {
                batch: 5,
                ..SendReport::default()
            },
        );
        assert_eq!(report.sent, 5, "{report:?}");
        assert!(report.error.is_none(), "{report:?}");
        assert_eq!(report.failed(), 0);
        let late = report.late_error.as_ref().map(ToString::to_string);
        assert!(
            late.as_deref()
                .is_some_and(|e| e.contains("sending to the daemon")),
            "the late error is reported apart: {report:?}"
        );
        let mut buf = [0; 16];
        for expected in [&b"one"[..], b"two"] {
            let n = daemon.recv(&mut buf).expect("a datagram");
            assert_eq!(&buf[..n], expected);
        }
        // Nothing pending any more: the next send is clean too.
        let report = socket.send([(&b"three"[..], 1)], SendReport::default());
        assert!(
            report.late_error.is_none() && report.error.is_none(),
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn a_port_unreachable_for_this_send_is_charged_to_it() {
        let closed = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let address = closed.local_addr().expect("address");
        drop(closed);
        let socket = DaemonSocket::connect(address).expect("connect");
        let mut report = socket.send([(&b"lost"[..], 4)], SendReport::default());
        if report.error.is_none() {
            // The ICMP came after the send's own check: the next send reports it, apart.
            error_pending(&socket.0).await;
            report = socket.send(std::iter::empty(), SendReport::default());
            assert!(report.late_error.is_some(), "{report:?}");
        } else {
            assert_eq!(report.sent, 0, "{report:?}");
            assert!(report.late_error.is_none(), "{report:?}");
        }
    }
}
