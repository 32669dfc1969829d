//! The baseline: the work `bootstrap` does, with no observability. The same configuration read
//! (`hello_lambda::FunctionConfig`), the same HTTP client
//! (`lambda_observability::http_client::client`: reqwest on rustls with `ring`, TLS roots only for
//! an `https://` URL), one GET to `CHECKIP_URL`, the same greeting
//! (`hello_lambda::process_request`), on plain `lambda_runtime` and the same current-thread
//! runtime. No tracing subscriber, no log lines, no spans, no metrics, no layers.
//!
//! Its own package, built by the benches with `cargo build --release -p bare-work`: the release
//! profile `bootstrap` ships with, and nothing else linked in (the cold-start bench used to play
//! this role with its own executable, which links criterion and the bench code; that role is kept
//! as the control `bare-work-in-bench`).
//!
//! With `AWS_LAMBDA_MAX_CONCURRENCY` above 1 (Lambda Managed Instances) it serves through
//! `lambda_runtime::run_concurrent`, which polls that many `/next`s at once on this same
//! current-thread runtime; otherwise through `lambda_runtime::run`, as the old role did
//! (`run_concurrent` would fall back to the same sequential loop).

use std::sync::Arc;

use hello_lambda::FunctionConfig;
use lambda_observability::http_client::client as http_client;
use lambda_runtime::{Error, service_fn};

mod work;

use work::{Context, handle};

/// Whether Lambda asks for more than one invocation at a time.
fn concurrent() -> bool {
    std::env::var("AWS_LAMBDA_MAX_CONCURRENCY")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .is_some_and(|n| n > 1)
}

fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let config = FunctionConfig::from_env();
            let http = http_client(config.checkip_needs_tls())?;
            let context = Arc::new(Context { config, http });
            let handler = service_fn(move |event| {
                let context = context.clone();
                async move { handle(&context, event).await }
            });
            if concurrent() {
                lambda_runtime::run_concurrent(handler).await
            } else {
                lambda_runtime::run(handler).await
            }
        })
}
