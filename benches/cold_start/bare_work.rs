//! The control `bare-work-in-bench`: the baseline as it was before issue 16, the work `bootstrap`
//! does with no observability, played by the bench executable itself. The same code is the
//! `bare-work` package (`benches/baselines/bare-work`, its own release binary), which the ratios
//! now use; this copy stays so that the size of that correction is measured in every run.
//!
//! The same configuration read ([`FunctionConfig`]), the same HTTP client
//! ([`http_client`](lambda_observability::http_client::client): reqwest on rustls with `ring`, TLS
//! roots only for an `https://` URL), one GET to `CHECKIP_URL`, the same greeting
//! (`process_request`), on plain `lambda_runtime::run` and the same current-thread runtime. No
//! tracing subscriber, no log lines, no spans, no metrics, no layers.
//!
//! The bench executable re-executes itself with the role variable set (see [`crate::roles`]); it
//! links criterion, plotters, the bench code and the whole library, which is what made it a
//! flattering baseline.

use std::sync::Arc;

use hello_lambda::FunctionConfig;
use lambda_observability::http_client::client as http_client;
use lambda_runtime::{Error, service_fn};

#[path = "../baselines/bare-work/src/work.rs"]
mod work;

use work::{Context, handle};

/// `main` of the bare-work function.
pub(crate) fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let config = FunctionConfig::from_env();
            let http = http_client(config.checkip_needs_tls())?;
            let context = Arc::new(Context { config, http });
            lambda_runtime::run(service_fn(move |event| {
                let context = context.clone();
                async move { handle(&context, event).await }
            }))
            .await
        })
}
