//! OTLP/HTTP protobuf: to the ADOT collector layer on `localhost:4318`, or to X-Ray's OTLP
//! endpoint with SigV4-signed requests.

use std::collections::HashMap;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};

use crate::{BoxError, config::telemetry::OtlpHttp};

/// An OTLP/HTTP exporter for `settings`, reusing `http` (the function's one client and
/// connection pool); without one a new client is built. `None` when the requests must be signed
/// but there are no credentials to sign with: the configuration has already warned, once, and
/// sending unsigned requests would only have X-Ray reject each of them.
pub(super) fn exporter(
    settings: &OtlpHttp,
    http: Option<reqwest::Client>,
) -> Result<Option<opentelemetry_otlp::SpanExporter>, BoxError> {
    let client = match http {
        Some(client) => client,
        None => {
            crate::http_client::install_crypto_provider();
            reqwest::Client::new()
        }
    };
    let builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(settings.timeout)
        // No retries: the export runs between the response and the next `/next`, bounded by the
        // timeout and the deadline; a collector that is down would otherwise cost every
        // invocation the retries' backoff (about a second each) before its spans are dropped.
        .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
        .with_headers(settings.headers.iter().cloned().collect::<HashMap<_, _>>());
    let builder = match &settings.sigv4 {
        None => builder.with_http_client(client),
        Some(sigv4) if sigv4.credentials.is_none() => return Ok(None),
        #[cfg(feature = "sigv4")]
        Some(sigv4) => builder.with_http_client(sigv4.client(client)?),
        #[cfg(not(feature = "sigv4"))]
        Some(_) => return Err("SigV4 signing is not in this build (cargo feature `sigv4`)".into()),
    };
    Ok(Some(builder.build()?))
}

#[cfg(all(test, feature = "sigv4"))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::telemetry::{CredentialSource, Credentials, SigV4};

    fn otlp(endpoint: &str, sigv4: Option<SigV4>) -> OtlpHttp {
        OtlpHttp {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            sigv4,
        }
    }

    #[test]
    fn signed_export_without_credentials_is_no_exporter_and_with_them_one() {
        let sigv4 = SigV4 {
            region: "eu-west-1".into(),
            service: "xray".into(),
            credentials: None,
        };
        let endpoint = "https://xray.eu-west-1.amazonaws.com/v1/traces";
        let without = exporter(&otlp(endpoint, Some(sigv4.clone())), None).expect("builds");
        assert!(without.is_none(), "no credentials: nothing to send");
        let signed = SigV4 {
            credentials: Some(CredentialSource::Environment(Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            })),
            ..sigv4
        };
        let with = exporter(&otlp(endpoint, Some(signed)), None).expect("builds");
        assert!(with.is_some());
    }
}
