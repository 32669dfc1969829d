//! The log lines a test's code writes, captured on the test's thread.

use std::{
    io::Write,
    sync::{Arc, Mutex, PoisonError},
};

/// Where the captured lines go; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// A subscriber writing every level, plain text, into a new buffer: install it with
    /// `tracing::subscriber::set_default` (this thread only) or `with_default`.
    ///
    /// Two undecided subscribers are kept alive first
    /// (`lambda_observability_test_support::keep_call_sites_undecided`): without them, a test
    /// thread with no subscriber could leave a call site disabled for the whole process, or
    /// another test's subscriber coming or going could lower tracing's maximum level, while this
    /// one is installed (`a_missing_deadline_is_warned_about_with_the_request_id` lost its line
    /// both ways). With them every call site stays "sometimes" and the maximum level `TRACE`.
    pub(crate) fn capture() -> (Self, impl tracing::Subscriber + Send + Sync) {
        lambda_observability_test_support::keep_call_sites_undecided();
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, subscriber)
    }

    /// The text written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// How many lines contain `needle`.
    pub(crate) fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `body` with its log lines captured (on this thread: a current-thread runtime's tasks
/// included).
pub(crate) async fn capture_logs<F: Future>(body: F) -> (F::Output, Logs) {
    let (logs, subscriber) = Logs::capture();
    let _guard = tracing::subscriber::set_default(subscriber);
    let output = body.await;
    (output, logs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The race `keep_call_sites_undecided` closes, made certain: a thread without a
    /// subscriber hits a call site first while this test's capturing subscriber is installed.
    #[test]
    fn a_first_hit_on_a_thread_without_a_subscriber_leaves_the_line_to_the_capture() {
        fn warn() {
            tracing::warn!("a line only this test writes");
        }
        let (logs, subscriber) = Logs::capture();
        tracing::subscriber::with_default(subscriber, || {
            std::thread::spawn(warn).join().expect("the other thread");
            warn();
        });
        assert_eq!(
            logs.count("a line only this test writes"),
            1,
            "{}",
            logs.text()
        );
    }
}
