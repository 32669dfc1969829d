//! Stopping the loop: on a signal ([`shutdown_signal`]) or a Runtime API answer that says the
//! environment cannot go on, no more `/next`; invocations in flight get a grace to finish
//! ([`DRAIN_BOUND`]); what outlives it is cut off, logged with its request id and counted
//! ([`Drained`]).

use std::{
    fmt,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::watch;

/// The longest an invocation in flight is given to finish once the runtime stops (its own
/// remaining time when that is shorter).
///
/// Lambda sends SIGTERM only when an extension is registered, and then reserves the runtime
/// 300 ms to shut down when only external extensions are (500 ms with an internal one; the rest
/// of the 2 s shutdown phase goes to the external extensions), after which it sends SIGKILL. The
/// drain (at most 200 ms) and the span flush after it (the rest of
/// `lambda_observability_tower::export::SHUTDOWN_BUDGET`, 280 ms in all) fit in the 300 ms.
pub const DRAIN_BOUND: Duration = Duration::from_millis(200);

/// What the drain did: the invocations in flight when the runtime stopped, by request id, those
/// that finished (answered, spans flushed) and those cut off at the end of their grace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    /// What stopped the runtime (`SIGTERM`, `SIGINT`, or the reason the Runtime API gave).
    pub reason: String,
    /// Invocations that finished within their grace.
    pub finished: Vec<String>,
    /// Invocations cut off at the end of their grace: not answered by this process.
    pub cut_off: Vec<String>,
    /// From the stop to the last invocation's end.
    pub took: Duration,
}

impl fmt::Display for Drained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} invocations in flight drained in {} ms: {} finished, {} cut off",
            self.finished.len() + self.cut_off.len(),
            self.took.as_millis(),
            self.finished.len(),
            self.cut_off.len()
        )
    }
}

/// Listens for SIGTERM and SIGINT from now on (the handlers are installed when this is called,
/// so a signal that arrives before the future is polled is not lost). The future gives the
/// signal's name. Pass it to [`Runtime::run_until`](crate::Runtime::run_until). Needs a tokio
/// runtime with I/O (not tokio's `signal` feature).
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = String> + Send + 'static> {
    let pipe = SelfPipe::register()?;
    Ok(async move { pipe.arrived().await.to_owned() })
}

/// The signals that stop the runtime, and their names; a signal's index is the byte its handler
/// writes.
const SIGNALS: [(std::ffi::c_int, &str); 2] = [
    (signal_hook::consts::SIGTERM, "SIGTERM"),
    (signal_hook::consts::SIGINT, "SIGINT"),
];

/// One self-pipe for both signals: each handler writes its signal's byte to one end of a socket
/// pair (about all a signal handler may do), the runtime reads the other. Not tokio's `signal`
/// feature: tokio builds its signal driver with every runtime, ready for every signal whether or
/// not one is awaited, which cost each cold start 25k instructions and a socket pair
/// (docs/cold-start-levers.md). One pair, not one per signal as signal-hook's `pipe` makes: five
/// system calls fewer at init (a socket pair, its non-blocking flag, its epoll registration and
/// signal-hook's probing `send`) and two at exit.
struct SelfPipe(tokio::net::UnixStream);

impl SelfPipe {
    #[allow(unsafe_code)]
    fn register() -> std::io::Result<Self> {
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        // The read end first: once a handler is registered, nothing may fail before its reader
        // exists (a registered handler cannot be taken back: signal-hook does not restore the
        // default action).
        let read = tokio::net::UnixStream::from_std(read)?;
        // The handlers write for the rest of the process: the write end is never closed.
        let write = std::os::fd::IntoRawFd::into_raw_fd(write);
        for (byte, (signal, _)) in (0u8..).zip(SIGNALS) {
            let action = move || {
                // Errors are dropped on purpose: a full pipe already holds a byte to wake on, and
                // a reader gone (the runtime has stopped) has nothing left to stop.
                // SAFETY: `send` on a descriptor that stays open, of one byte the closure owns
                // (signal-hook keeps the closure for the life of the process).
                unsafe {
                    libc::send(
                        write,
                        (&raw const byte).cast(),
                        1,
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    );
                }
            };
            // SAFETY: the action is async-signal-safe: one `send(2)`, no allocation, no lock
            // (signal-hook keeps `errno` around it).
            unsafe { signal_hook::low_level::register(signal, action) }?;
        }
        Ok(Self(read))
    }

    /// Resolves with the name of the first signal that arrives (never, should the pipe fail).
    async fn arrived(&self) -> &'static str {
        let mut byte = [0; 1];
        loop {
            if self.0.readable().await.is_err() {
                break;
            }
            match self.0.try_read(&mut byte) {
                Ok(0) => break,
                Ok(_) => {
                    if let Some((_, name)) = SIGNALS.get(usize::from(byte[0])) {
                        return name;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        std::future::pending().await
    }
}

/// Shared by the loop, its workers and `Respond`: whether, when and why the runtime stops.
#[derive(Debug)]
pub(crate) struct Stopping {
    since: watch::Sender<Option<Instant>>,
    reason: Mutex<Option<String>>,
    /// Set when the Runtime API said the environment cannot go on: `run` ends with an error.
    fatal: Mutex<Option<String>>,
    in_flight: AtomicUsize,
}

/// Counts an invocation in flight while it lives.
#[derive(Debug)]
pub(crate) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Stopping {
    pub(crate) fn new() -> Self {
        Self {
            since: watch::Sender::new(None),
            reason: Mutex::new(None),
            fatal: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Counts an invocation in flight until the guard is dropped.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Invocations in flight, all workers together.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Stops the runtime for `reason`: the first reason is kept.
    pub(crate) fn stop(&self, reason: &str) {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(|| reason.to_owned());
        self.since.send_if_modified(|since| {
            let first = since.is_none();
            since.get_or_insert_with(Instant::now);
            first
        });
    }

    /// Stops the runtime because the Runtime API cannot go on; `run` ends with `reason`.
    pub(crate) fn fatal(&self, reason: String) {
        self.fatal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(|| reason.clone());
        self.stop(&reason);
    }

    /// When the runtime stopped, if it did.
    pub(crate) fn since(&self) -> Option<Instant> {
        *self.since.borrow()
    }

    /// Resolves when the runtime stops (at once if it has), with when it did.
    pub(crate) async fn stopped(&self) -> Instant {
        let mut since = self.since.subscribe();
        let stopped = since.wait_for(Option::is_some).await.ok().and_then(|s| *s);
        match stopped {
            Some(at) => at,
            // The sender lives as long as `self`: never reached.
            None => std::future::pending().await,
        }
    }

    pub(crate) fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default()
    }

    pub(crate) fn fatal_reason(&self) -> Option<String> {
        self.fatal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The grace of an invocation whose deadline is `deadline`, from the moment the runtime stopped:
/// its remaining time, at most `bound`.
pub(crate) fn grace(deadline: SystemTime, stopped: Instant, bound: Duration) -> Duration {
    let remaining = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        + stopped.elapsed();
    remaining.min(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_is_the_remaining_time_capped_by_the_bound() {
        let now = Instant::now();
        let bound = Duration::from_millis(200);
        let soon = SystemTime::now() + Duration::from_millis(50);
        assert!(grace(soon, now, bound) <= Duration::from_millis(60));
        let later = SystemTime::now() + Duration::from_secs(30);
        assert_eq!(grace(later, now, bound), bound);
        let past = SystemTime::now() - Duration::from_secs(1);
        assert!(grace(past, now, bound) < Duration::from_millis(20));
    }

    /// The count the stop's log line gives ("draining N invocations in flight"): each guard
    /// counts while it lives, whichever order they end in.
    #[test]
    fn invocations_in_flight_are_counted_while_their_guard_lives() {
        let stopping = Stopping::new();
        assert_eq!(stopping.in_flight(), 0);
        let first = stopping.enter();
        let second = stopping.enter();
        assert_eq!(stopping.in_flight(), 2);
        drop(first);
        assert_eq!(stopping.in_flight(), 1);
        drop(second);
        assert_eq!(stopping.in_flight(), 0);
    }

    /// Both signals come through the one pipe with their own names, a signal raised before the
    /// future is polled included, and the first one to arrive is the one given. The handlers
    /// stay installed for the rest of this test process, so SIGTERM and SIGINT no longer end it.
    #[tokio::test]
    async fn each_signal_is_named_and_the_first_to_arrive_wins() {
        use signal_hook::{consts, low_level::raise};
        for (signal, name) in [(consts::SIGTERM, "SIGTERM"), (consts::SIGINT, "SIGINT")] {
            let arrived = shutdown_signal().expect("the handlers install");
            raise(signal).expect("raised");
            let got = tokio::time::timeout(Duration::from_secs(5), arrived)
                .await
                .expect("the signal arrives");
            assert_eq!(got, name);
        }
        let arrived = shutdown_signal().expect("the handlers install");
        raise(consts::SIGINT).expect("raised");
        raise(consts::SIGTERM).expect("raised");
        assert_eq!(arrived.await, "SIGINT");
    }

    /// The runtime's last log line, and what an embedder may print: the invocations in flight
    /// (finished and cut off together), the drain's time, and each count.
    #[test]
    fn drained_says_how_many_finished_and_how_many_were_cut_off() {
        let drained = Drained {
            reason: "SIGTERM".into(),
            finished: vec!["a".into(), "b".into()],
            cut_off: vec!["c".into()],
            took: Duration::from_millis(150),
        };
        assert_eq!(
            drained.to_string(),
            "3 invocations in flight drained in 150 ms: 2 finished, 1 cut off"
        );
        assert_eq!(
            Drained::default().to_string(),
            "0 invocations in flight drained in 0 ms: 0 finished, 0 cut off"
        );
    }

    /// On tokio's paused clock, so that a waiter that is never woken fails the test at once
    /// (the clock jumps to the timeout) instead of hanging it.
    #[tokio::test(start_paused = true)]
    async fn the_first_reason_is_kept_and_waiters_wake() {
        let stopping = std::sync::Arc::new(Stopping::new());
        assert!(stopping.since().is_none());
        let waiter = tokio::spawn({
            let stopping = stopping.clone();
            async move { stopping.stopped().await }
        });
        stopping.stop("SIGTERM");
        stopping.fatal("the Runtime API answered 500".into());
        let at = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken by the stop")
            .expect("the waiter ran");
        assert_eq!(Some(at), stopping.since());
        assert_eq!(stopping.reason(), "SIGTERM");
        assert_eq!(
            stopping.fatal_reason().as_deref(),
            Some("the Runtime API answered 500")
        );
    }
}
