//! The function's one HTTP client (`reqwest` with rustls and the `ring` provider), shared by its
//! outbound calls and the OTLP/HTTP export, and the layer that traces its requests.

pub use lambda_observability_tower::http_client::*;

/// Whether `url` speaks HTTPS, i.e. whether a client for it needs TLS root certificates.
pub fn is_https(url: &str) -> bool {
    url.trim()
        .get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https:"))
}

/// Installs `ring` as the process-wide rustls crypto provider, unless one is installed already.
///
/// `reqwest` is built without a bundled provider (`aws-lc-rs` would double the binary's TLS code
/// and slow every cold start), so call this before building a `reqwest::Client`. Cheap and
/// idempotent.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a provider is installed afterwards.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The environment's HTTP client. TLS root certificates are loaded only when `needs_tls` (a
/// configured URL is https): loading them costs a cold start about a millisecond.
pub fn client(needs_tls: bool) -> reqwest::Result<reqwest::Client> {
    install_crypto_provider();
    let builder = reqwest::Client::builder();
    if needs_tls {
        builder.build()
    } else {
        builder.tls_certs_only(std::iter::empty()).build()
    }
}
