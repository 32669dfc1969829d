//! Log capture that a test thread without a subscriber cannot defeat.

use std::sync::OnceLock;

use tracing::{Dispatch, Metadata, span, subscriber::Interest};

/// Keeps two subscribers alive for the rest of the test binary, undecided about every call site.
/// Call it before installing a thread's capturing subscriber.
///
/// With at most one subscriber alive, tracing decides a call site's first hit by asking only the
/// hitting thread's subscriber, without its lock: a test thread with none caches "never" for the
/// whole process, even while another test's capturing subscriber is installed, and that test's
/// line at the same call site is dropped. With these two always alive, every decision asks every
/// live subscriber under tracing's lock and comes out "sometimes": each event then asks the
/// subscriber of its own thread.
pub fn keep_call_sites_undecided() {
    static UNDECIDED: OnceLock<[Dispatch; 2]> = OnceLock::new();
    UNDECIDED.get_or_init(|| [Dispatch::new(Undecided), Dispatch::new(Undecided)]);
}

/// Says "sometimes" to every call site and takes nothing.
struct Undecided;

impl tracing::Subscriber for Undecided {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}
