//! Sets `_X_AMZN_TRACE_ID` to the current invocation's X-Ray trace header, as Lambda's managed
//! runtimes do, for code that reads it from the environment (the AWS SDK for Rust propagates it on
//! its requests, which Lambda's recursive-loop detection relies on).
//!
//! **Off by default, and costly.** `lambda_observability::runtime::Runtime` calls this only after
//! `expose_trace_env(true)`, and only with one invocation at a time. Know what you pay:
//!
//! * **Memory grows with every distinct trace id.** glibc's `setenv` never frees a replaced
//!   `NAME=value` string (another thread may still hold a pointer from `getenv`), so each
//!   invocation leaks about 170 bytes: measured with `lambda_runtime` 1.5, which does this on every
//!   invocation, 6.4 MB of RSS after 1 000 invocations and 9.6 MB after 20 000, without bound.
//! * **It is a data race.** Rust's `std::env` functions take a lock, but C code does not: a
//!   `getenv` in another thread (glibc's resolver reads `LOCALDOMAIN` and `RES_OPTIONS` during a
//!   DNS lookup on tokio's blocking pool) can read the environment while it is rewritten. That is
//!   why edition 2024 made `set_var` an `unsafe` function. This crate is edition 2021, where it is
//!   safe to call: it keeps `unsafe` out of the workspace, it does not make the race go away.
//!
//! Prefer the trace header in the invocation context (`Context::xray_trace_id`).
//!
//! ```
//! lambda_trace_env::set(Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"));
//! assert!(std::env::var(lambda_trace_env::NAME).is_ok());
//! lambda_trace_env::set(None);
//! assert!(std::env::var(lambda_trace_env::NAME).is_err());
//! ```

#![forbid(unsafe_code)]

/// The variable Lambda's managed runtimes set for each invocation.
pub const NAME: &str = "_X_AMZN_TRACE_ID";

/// Sets [`NAME`] to `trace_header`, or removes it when the invocation has none.
pub fn set(trace_header: Option<&str>) {
    match trace_header {
        Some(value) => std::env::set_var(NAME, value),
        None => std::env::remove_var(NAME),
    }
}
