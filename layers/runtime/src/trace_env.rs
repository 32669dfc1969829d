//! `_X_AMZN_TRACE_ID`, set to the current invocation's X-Ray trace header as Lambda's managed
//! runtimes do, for code that reads it from the environment (the AWS SDK for Rust propagates it on
//! its requests, which Lambda's recursive-loop detection relies on).
//!
//! **Off by default, and costly.** [`Runtime`](crate::Runtime) calls this only after
//! [`expose_trace_env(true)`](crate::Runtime::expose_trace_env), and only with one invocation at a
//! time. Know what you pay:
//!
//! * **Memory grows with every distinct trace id.** glibc's `setenv` never frees a replaced
//!   `NAME=value` string (another thread may still hold a pointer from `getenv`), so each
//!   invocation leaks about 170 bytes: measured with `lambda_runtime` 1.5, which does this on every
//!   invocation, 6.4 MB of RSS after 1 000 invocations and 9.6 MB after 20 000, without bound.
//! * **It is a data race.** Rust's `std::env` functions take a lock, but C code does not: a
//!   `getenv` in another thread (glibc's resolver reads `LOCALDOMAIN` and `RES_OPTIONS` during a
//!   DNS lookup on tokio's blocking pool) can read the environment while it is rewritten. That is
//!   why edition 2024 made `set_var` an `unsafe` function.
//!
//! Prefer the trace header in the invocation context (`Context::xray_trace_id`).

/// The variable Lambda's managed runtimes set for each invocation.
pub(crate) const NAME: &str = "_X_AMZN_TRACE_ID";

/// Sets [`NAME`] to `trace_header`, or removes it when the invocation has none.
#[allow(unsafe_code)]
pub(crate) fn set(trace_header: Option<&str>) {
    // SAFETY: `set_var`/`remove_var` are unsound only when another thread reads or writes the
    // environment at the same time. The runtime calls this only when one invocation runs at a
    // time (`expose_trace_env` is refused above a concurrency of 1), between invocations' `call`s,
    // from the thread polling the runtime loop; Rust's own `std::env` readers take the same lock.
    // What stays is C code reading the environment on another thread (glibc's resolver on tokio's
    // blocking pool): the user opted into that race, which the module docs and
    // `Runtime::expose_trace_env` spell out.
    unsafe {
        match trace_header {
            Some(value) => std::env::set_var(NAME, value),
            None => std::env::remove_var(NAME),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_removes_the_variable() {
        set(Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"));
        assert_eq!(
            std::env::var(NAME).as_deref(),
            Ok("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
        );
        set(None);
        assert!(std::env::var(NAME).is_err());
    }
}
