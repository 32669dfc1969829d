//! The work itself, shared with the cold-start bench's control role `bare-work-in-bench`
//! (`benches/cold_start/bare_work.rs` includes this file), so the two cannot drift apart.

use hello_lambda::{FunctionConfig, Greeting, process_request};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// What an invocation needs, built once at init.
pub(crate) struct Context {
    pub(crate) config: FunctionConfig,
    pub(crate) http: reqwest::Client,
}

pub(crate) async fn handle(
    context: &Context,
    event: LambdaEvent<Value>,
) -> Result<Greeting, Error> {
    // The public IP is fetched as the function does, and dropped: nothing logs it here.
    let public_ip = match context
        .http
        .get(&context.config.checkip_url)
        .timeout(context.config.checkip_timeout)
        .send()
        .await
    {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(err) => err.to_string(),
    };
    std::hint::black_box(public_ip);
    Ok(process_request(
        &event.payload,
        &context.config.package_management_system,
    )?)
}
