//! The `bootstrap` executable: the function's own configuration and handler, served with
//! everything `lambda-observability` wires from the environment (traces, logs, metrics, error
//! reports, init errors, the SIGTERM flush, Managed Instances concurrency).

use std::{process::ExitCode, sync::Arc};

use hello_lambda::{ExecutionContext, FunctionConfig, Handler, METRICS_NAMESPACE};
use lambda_observability::Function;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let function = FunctionConfig::from_env();
    Function::new()
        .metrics_namespace(METRICS_NAMESPACE)
        .tls(function.checkip_needs_tls())
        .run(|init| {
            function.warnings.iter().for_each(|w| tracing::warn!("{w}"));
            let context = ExecutionContext::new(function, init.http_client(), init.outbound());
            Ok(Handler::new(Arc::new(context)))
        })
        .await
}
