//! The function: a hello world that greets, converts an age to hexadecimal, and shows on the
//! way everything a production Lambda needs for observability.
//!
//! Read it in the order of one invocation's life:
//! [`config`] (read once per execution environment) → [`handler`] (the execution context built
//! once, then one event through it) → [`worker`] (the pure business logic) → [`error`] (what can
//! go wrong, typed). `main.rs` hands the handler to `lambda-observability`, which wires everything
//! else from the environment.

pub mod config;
pub mod error;
pub mod handler;
pub mod worker;

pub use config::{FunctionConfig, METRICS_NAMESPACE};
pub use error::HandlerError;
pub use handler::{ExecutionContext, Handler};
pub use worker::{Greeting, process_request};

/// The README's Rust examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
