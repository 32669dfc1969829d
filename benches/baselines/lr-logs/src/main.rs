//! A reference for the cold-start bench, not a baseline: the function's own handler
//! (`hello_lambda::Handler`, the one `bootstrap` serves: the same six INFO lines, the
//! `getRuntimeInfo` span and the traced outbound GET) on plain `lambda_runtime`, with the logging
//! `lambda_runtime`'s documentation sets up, and nothing else:
//!
//! - `lambda_runtime::tracing::init_default_subscriber`: a tracing-subscriber registry, an
//!   `EnvFilter` at `AWS_LAMBDA_LOG_LEVEL`, JSON lines on stdout when `AWS_LAMBDA_LOG_FORMAT` is
//!   `JSON`;
//! - `lambda_runtime::run` (with `AWS_LAMBDA_MAX_CONCURRENCY` above 1, `run_concurrent`, as
//!   bare-work), whose `TracingLayer` opens one `Lambda runtime invoke` span per invocation (its
//!   request id and X-Ray trace id are on every line);
//! - no spans exported, no metrics, no error reports.
//!
//! What it measures: what logging through `tracing` costs by itself, at a cold start and per warm
//! invocation, next to bare-work (no subscriber at all, so every `tracing` call site folds away)
//! and `bootstrap` (logs, spans exported, metrics). Built by the benches with
//! `cargo build --release -p lr-logs`, the release profile `bootstrap` ships with.

use std::sync::Arc;

use hello_lambda::{ExecutionContext, FunctionConfig, Handler};
use lambda_observability::{HttpTraceLayer, http_client::client as http_client};
use lambda_runtime::{Error, service_fn};
use tower::ServiceExt as _;

fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            lambda_runtime::tracing::init_default_subscriber();
            let config = FunctionConfig::from_env();
            let http = http_client(config.checkip_needs_tls())?;
            // The outbound layer is the function's own, so the GET opens its span as in
            // `bootstrap` (no tracer: the span goes nowhere).
            let context = Arc::new(ExecutionContext::new(config, http, HttpTraceLayer::new()));
            let handler = service_fn(move |event| {
                let handler = Handler::new(context.clone());
                async move { handler.oneshot(event).await.map_err(Error::from) }
            });
            if concurrent() {
                lambda_runtime::run_concurrent(handler).await
            } else {
                lambda_runtime::run(handler).await
            }
        })
}

/// Whether Lambda asks for more than one invocation at a time (as bare-work decides it).
fn concurrent() -> bool {
    std::env::var("AWS_LAMBDA_MAX_CONCURRENCY")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .is_some_and(|n| n > 1)
}
