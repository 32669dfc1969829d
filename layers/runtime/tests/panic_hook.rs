//! The panic hook keeps panics outside `catch_panic` going to the hook installed before it.
//!
//! Its own test binary, with one test: the panic hook is process-wide.

use std::sync::atomic::{AtomicUsize, Ordering};

use lambda_observability_runtime::error::catch_panic;

static PASSED_ON: AtomicUsize = AtomicUsize::new(0);

#[test]
fn only_panics_outside_catch_panic_reach_the_previous_hook() {
    std::panic::set_hook(Box::new(|_| {
        PASSED_ON.fetch_add(1, Ordering::SeqCst);
    }));
    let caught = catch_panic(|| panic!("inside")).expect_err("caught");
    assert_eq!(caught.message(), "inside");
    assert_eq!(
        PASSED_ON.load(Ordering::SeqCst),
        0,
        "a caught panic is ours"
    );
    for round in 1..=2 {
        let outside = std::panic::catch_unwind(|| panic!("outside"));
        assert!(outside.is_err());
        assert_eq!(PASSED_ON.load(Ordering::SeqCst), round, "passed on");
        let again = catch_panic(|| panic!("inside again")).expect_err("caught");
        assert!(again.panic_location().is_some());
        assert_eq!(PASSED_ON.load(Ordering::SeqCst), round);
    }
}
