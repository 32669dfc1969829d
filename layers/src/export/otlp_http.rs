//! OTLP/HTTP protobuf, as to the ADOT collector layer on `localhost:4318`.

use std::time::Duration;

use crate::BoxError;

/// An OTLP/HTTP exporter reusing `http_client` (the function's one client and connection pool);
/// without one a new client is built.
pub(super) fn exporter(
    http_client: Option<reqwest::Client>,
    timeout: Duration,
) -> Result<opentelemetry_otlp::SpanExporter, BoxError> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let client = match http_client {
        Some(client) => client,
        None => {
            crate::http_client::install_crypto_provider();
            reqwest::Client::new()
        }
    };
    Ok(opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_timeout(timeout)
        .build()?)
}
