//! A server that takes a request and never answers, for testing time bounds in tokio's paused
//! clock ([`HangingServer`]).

use std::{
    io::{ErrorKind, Read},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::TIMEOUT;

/// An HTTP/1.1 server on 127.0.0.1 that reads requests and never answers, for tests that check
/// a time bound in virtual time (`#[tokio::test(start_paused = true)]`).
///
/// With the clock paused, tokio advances it to the next timer whenever the runtime has nothing
/// to do, and a server task on the same runtime may not have read the request by then: the
/// bound would fire before the request arrived. [`HangingServer::next_request`] therefore
/// accepts and reads in a blocking task, and on a current-thread runtime tokio does not advance
/// a paused clock while a blocking task runs. Until the request has arrived, no timer fires;
/// after that, the only thing left is the bound, so the clock goes straight to it and the
/// virtual time elapsed is the bound, exactly.
#[derive(Debug)]
pub struct HangingServer {
    listener: Arc<TcpListener>,
    /// Where it listens.
    pub address: SocketAddr,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The connections accepted, held open and never answered.
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl HangingServer {
    /// Binds 127.0.0.1 on an ephemeral port. It takes nothing until
    /// [`HangingServer::next_request`].
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let address = listener.local_addr().expect("address");
        Self {
            listener: Arc::new(listener),
            address,
            url: format!("http://{address}"),
            held: Arc::default(),
        }
    }

    /// Accepts the next connection and reads one request from it (its head, then as many body
    /// bytes as its `content-length` says), in a blocking task; the connection is then held
    /// open, unanswered. The task's result is the request head (request line and headers).
    ///
    /// Call it before the code under test starts its timer. Fails (rather than hangs) when no
    /// request arrives within [`TIMEOUT`] of real time.
    pub fn next_request(&self) -> tokio::task::JoinHandle<String> {
        let (listener, held) = (self.listener.clone(), self.held.clone());
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(err) if err.kind() == ErrorKind::WouldBlock => {
                        assert!(started.elapsed() < TIMEOUT, "no connection came");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(err) => panic!("accept: {err}"),
                }
            };
            stream.set_nonblocking(false).expect("blocking");
            stream
                .set_read_timeout(Some(TIMEOUT))
                .expect("read timeout");
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            let head_end = loop {
                if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                let n = stream.read(&mut buf).expect("a request");
                assert!(n > 0, "closed before a whole request head");
                request.extend_from_slice(&buf[..n]);
            };
            let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while request.len() < head_end + length {
                let n = stream.read(&mut buf).expect("the request body");
                assert!(n > 0, "closed before the whole body");
                request.extend_from_slice(&buf[..n]);
            }
            held.lock().expect("lock").push(stream);
            head
        })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.held.lock().expect("lock").len()
    }

    /// A connection waiting to be accepted, if any, taken now without waiting: to check that
    /// nothing connected (a check that may miss a connection still under way, but never finds
    /// one that was not made).
    pub fn try_accept(&self) -> Option<TcpStream> {
        self.listener.accept().ok().map(|(stream, _)| stream)
    }
}
