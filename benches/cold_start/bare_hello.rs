//! The baseline: the smallest `lambda_runtime` function that answers with a JSON greeting. No
//! tracing subscriber, no OpenTelemetry, no HTTP client; `lambda_runtime::run` as the crate's
//! README shows it, on the same current-thread runtime `#[tokio::main(flavor = "current_thread")]`
//! builds for `bootstrap`.
//!
//! A reference point next to [`bare_work`](crate::bare_work) (the baseline the ratios use): what
//! `lambda_runtime` alone costs. It lives inside the bench executable, which re-executes itself
//! with the role variable set (see [`crate::roles`]): that way the baselines are compiled by the
//! same `cargo bench` (same profile, target, toolchain and flags as `bootstrap`) without adding a
//! binary to the package, which `cargo lambda` would otherwise package, and without a workspace
//! member that plain `cargo bench` would not build.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn hello(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let first_name = event
        .payload
        .get("firstName")
        .and_then(Value::as_str)
        .unwrap_or("world");
    Ok(json!({ "greeting": format!("Hello {first_name}!") }))
}

/// `main` of the bare hello world.
pub(crate) fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(lambda_runtime::run(service_fn(hello)))
}
