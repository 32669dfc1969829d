//! The `bootstrap` executable: the function's own configuration and handler, served with
//! everything `lambda-observability` wires from the environment (traces, logs, metrics, error
//! reports, init errors, the SIGTERM flush, Managed Instances concurrency).

use hello_lambda::{ExecutionContext, FunctionConfig, Handler, METRICS_NAMESPACE};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let function = FunctionConfig::from_env();
    lambda_observability::Function::new()
        .metrics_namespace(METRICS_NAMESPACE)
        .tls(function.checkip_needs_tls())
        .run(|init| {
            function.warnings.iter().for_each(|w| tracing::warn!("{w}"));
            let context = ExecutionContext::new(function, init.http_client(), init.outbound());
            Ok(Handler::new(std::sync::Arc::new(context)))
        })
        .await
}
