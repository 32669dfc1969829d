//! The function: a hello world that greets, converts an age to hexadecimal, and shows on the
//! way everything a production Lambda needs for observability.
//!
//! Read it in the order of one invocation's life:
//! [`config`] (read once per execution environment) → [`handler`] (the execution context built
//! once, then one event through it) → [`worker`] (the pure business logic) → [`error`] (what can
//! go wrong, typed). [`observability`] wires the layers of `lambda-observability` from the
//! configuration; `main.rs` puts it all together.

pub mod config;
pub mod error;
pub mod handler;
pub mod observability;
pub mod worker;

pub use config::FunctionConfig;
pub use error::HandlerError;
pub use handler::{ExecutionContext, Handler};
pub use worker::{Greeting, process_request};
