//! The baseline: the smallest `lambda_runtime` function that answers with a JSON greeting. No
//! tracing subscriber, no OpenTelemetry, no HTTP client; `lambda_runtime::run` as the crate's
//! README shows it, on the same current-thread runtime `#[tokio::main(flavor = "current_thread")]`
//! builds for `bootstrap`.
//!
//! A reference point next to `bare-work` (the baseline the ratios use): what `lambda_runtime`
//! alone costs. This file is the `bare-hello` package's code (`benches/baselines/bare-hello`,
//! which includes it and is built on its own with the release profile, as `bootstrap`), and
//! `tests/runtime_loop.rs` includes it too (its soak's baseline, played by that test binary), as
//! does the cold-start bench executable (`HELLO_LAMBDA_BENCH_ROLE=bare-hello`, which
//! `scripts/instructions.py` sets).

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
