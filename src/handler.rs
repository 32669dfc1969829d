//! The Lambda adapter: the execution context, built once per execution environment, and the
//! handler service that takes one event through it. Kept thin: the logic is in [`worker`].
//!
//! [`worker`]: crate::worker

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use lambda_observability::{HttpTraceLayer, http_client::HttpTrace, metrics};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tower::{Layer, Service, ServiceExt};

use crate::{
    config::FunctionConfig,
    error::HandlerError,
    worker::{Greeting, process_request},
};

/// Time kept back from the invocation's remaining time when bounding the outbound call, so the
/// response and the span export still fit before the deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The function's own metric: greetings sent (Count), by `PackageManager`.
pub const GREETINGS_METRIC: &str = "Greetings";

/// Everything built once per execution environment and reused by every invocation (the Python
/// original's module-level globals).
#[derive(Debug)]
pub struct ExecutionContext {
    config: FunctionConfig,
    http: HttpTrace<reqwest::Client>,
    /// Like the original's `STATIC_RANDOM`: the same in every invocation of this environment.
    static_random: u32,
    invocations: AtomicU64,
    /// The reserved variables as JSON, rendered once: they never change.
    reserved_json: String,
    /// The `Greetings` counter of this environment's package manager, registered once: a handle
    /// increments without looking its key and labels up again (what `counter!` does each call).
    greetings: metrics::Counter,
}

impl ExecutionContext {
    /// Builds the context; `http` is the environment's one HTTP client, traced by `outbound`
    /// (which decides the propagation headers outbound calls carry).
    pub fn new(config: FunctionConfig, http: reqwest::Client, outbound: HttpTraceLayer) -> Self {
        metrics::describe_counter!(
            GREETINGS_METRIC,
            metrics::Unit::Count,
            "greetings sent, by the package manager they name"
        );
        // Sorted by name, as the logs have always shown them; serialized from borrowed strings,
        // with no JSON tree built first.
        let reserved: std::collections::BTreeMap<&str, &str> = config
            .reserved
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let greetings = metrics::counter!(
            GREETINGS_METRIC,
            "PackageManager" => config.package_management_system.clone()
        );
        Self {
            reserved_json: serde_json::to_string(&reserved).unwrap_or_default(),
            greetings,
            config,
            http: outbound.layer(http),
            static_random: static_random(),
            invocations: AtomicU64::new(0),
        }
    }

    /// The configuration read at init.
    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }
}

/// A random number fixed for the life of the environment. std's `RandomState` is seeded from the
/// OS once per thread: no RNG crate to initialise at cold start.
fn static_random() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32
}

/// The handler: a `tower::Service` from the event to the greeting.
#[derive(Debug, Clone)]
pub struct Handler {
    context: Arc<ExecutionContext>,
}

impl Handler {
    /// A handler sharing `context`.
    pub fn new(context: Arc<ExecutionContext>) -> Self {
        Self { context }
    }
}

impl Service<LambdaEvent<Value>> for Handler {
    type Response = Greeting;
    type Error = HandlerError;
    type Future = Pin<Box<dyn Future<Output = Result<Greeting, HandlerError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<Value>) -> Self::Future {
        let context = self.context.clone();
        Box::pin(async move { handle(&context, event).await })
    }
}

/// One invocation, top to bottom.
async fn handle(
    context: &ExecutionContext,
    event: LambdaEvent<Value>,
) -> Result<Greeting, HandlerError> {
    let (payload, lambda) = event.into_parts();

    // Execution context: what survives between invocations of this environment.
    let invocation = context.invocations.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(
        static_random = context.static_random,
        invocation,
        "execution context: STATIC_RANDOM is {} and this environment has served {invocation} invocation(s)",
        context.static_random
    );

    // Function context: this invocation and this function.
    let remaining = lambda_observability::runtime::deadline::remaining_in(&lambda);
    let env = &lambda.env_config;
    tracing::info!(
        function_name = env.function_name.as_str(),
        function_version = env.version.as_str(),
        memory_mb = env.memory,
        invoked_function_arn = lambda.invoked_function_arn.as_str(),
        log_group = env.log_group.as_str(),
        log_stream = env.log_stream.as_str(),
        remaining_ms = remaining.as_millis() as u64,
        "function context: {} has {} seconds to live",
        env.function_name,
        remaining.as_secs()
    );
    tracing::info!(
        reserved = context.reserved_json.as_str(),
        package_management_system = context.config.package_management_system.as_str(),
        "environment variables"
    );

    let runtime_info = get_runtime_info();
    tracing::info!(runtime_info, "runtime information");

    let public_ip = public_ip(context, remaining).await;
    tracing::info!(public_ip = public_ip.as_str(), "public IP address");

    let greeting = process_request(&payload, &context.config.package_management_system)?;
    tracing::info!(
        greeting = greeting.greeting.as_str(),
        result = greeting.result.as_str(),
        "request processed"
    );
    context.greetings.increment(1);
    Ok(greeting)
}

/// The custom subsegment: the Rust counterpart of the original's platform string.
#[tracing::instrument(name = "getRuntimeInfo", level = "info")]
pub fn get_runtime_info() -> &'static str {
    concat!(
        env!("BUILD_RUSTC_VERSION"),
        " on ",
        env!("BUILD_TARGET"),
        " (",
        env!("BUILD_PROFILE"),
        " build)"
    )
}

/// Calls the public-IP service through the traced client. Never fails the invocation: on error
/// it returns a descriptive string, as the original did. Bounded by the configured timeout and by
/// the remaining time less [`DEADLINE_MARGIN`].
async fn public_ip(context: &ExecutionContext, remaining: Duration) -> String {
    let url = &context.config.checkip_url;
    let budget = remaining.saturating_sub(DEADLINE_MARGIN);
    if budget.is_zero() {
        return format!("not checked: less than {DEADLINE_MARGIN:?} left before the deadline");
    }
    let timeout = context.config.checkip_timeout.min(budget);
    let request = match context.http.get_ref().get(url).timeout(timeout).build() {
        Ok(request) => request,
        Err(err) => return format!("could not build the request to {url}: {err}"),
    };
    let outcome = async {
        let response = context
            .http
            .clone()
            .oneshot(request)
            .await?
            .error_for_status()?;
        response.text().await
    };
    // reqwest's own timeout covers connecting, the request and reading the body, and ends the
    // client span with the timeout as its error (an outer timer would drop the span unmarked).
    match outcome.await {
        Ok(body) => body.trim().to_owned(),
        Err(err) => {
            let reason = if err.is_timeout() {
                format!("timed out after {timeout:?}")
            } else {
                lambda_observability::error::error_chain(&err)
            };
            tracing::warn!(error = %reason, url = %url, "public IP lookup failed");
            format!("unable to get the public IP from {url}: {reason}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::AtomicUsize;

    use lambda_observability::{error::error_chain, http_client::client};

    /// Set in the child run of
    /// [`the_client_with_tls_roots_trusts_the_platforms_roots_and_only_them`]: `SSL_CERT_FILE`
    /// then names the test CA, as a platform whose roots include it.
    const TRUSTS_TEST_CA: &str = "HANDLER_TEST_TRUSTS_TEST_CA";

    fn tls_fixture(name: &str) -> String {
        format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// An HTTPS server on 127.0.0.1 whose certificate, for `localhost` and `127.0.0.1`, is issued
    /// by the test CA of `tests/fixtures/tls` (its key thrown away). Answers `200 ok` to each
    /// request; returns its URL and the number of requests that came through a handshake.
    async fn https_server() -> (String, Arc<AtomicUsize>) {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let certs = CertificateDer::pem_file_iter(tls_fixture("server.pem"))
            .expect("server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = PrivateKeyDer::from_pem_file(tls_fixture("server.key")).expect("server.key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let served = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, served) = (acceptor.clone(), served.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake here.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                    let answer =
                        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (format!("https://localhost:{port}/"), requests)
    }

    /// Whether `outcome` is a refusal of the server's certificate at the TLS handshake.
    fn refused_certificate(outcome: &reqwest::Result<reqwest::Response>) -> bool {
        match outcome {
            Ok(_) => false,
            Err(err) => {
                let chain = error_chain(err);
                err.is_connect() && chain.contains("invalid peer certificate: UnknownIssuer")
            }
        }
    }

    /// `client(false)`, what `bootstrap` builds when no configured URL is https (the public-IP
    /// service over http, spans over UDP): plain HTTP works, and with no root certificate loaded
    /// it trusts no server at all, so an https URL fails at the handshake, before any request.
    #[tokio::test]
    async fn the_client_without_tls_roots_speaks_http_and_refuses_every_server_certificate() {
        let http = client(false).expect("client");
        let checkip = lambda_observability_test_support::CheckIp::start(200).await;
        let response = http.get(&checkip.url).send().await.expect("plain HTTP");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), "198.51.100.7\n");
        assert_eq!(checkip.requests.lock().expect("lock").len(), 1);

        let (url, requests) = https_server().await;
        let outcome = http.get(&url).send().await;
        assert!(refused_certificate(&outcome), "{outcome:?}");
        assert_eq!(requests.load(Ordering::SeqCst), 0, "no request was sent");
    }

    /// `client(true)` loads the platform's root certificates (`SSL_CERT_FILE`, else the system's
    /// bundle) and trusts exactly those: run here, the test CA is not among them and the server
    /// is refused; run again as a child with `SSL_CERT_FILE` naming the test CA, the same server
    /// is trusted, while `client(false)` still refuses it (it loads no roots, whatever the
    /// platform has).
    #[tokio::test]
    async fn the_client_with_tls_roots_trusts_the_platforms_roots_and_only_them() {
        let (url, requests) = https_server().await;
        if std::env::var_os(TRUSTS_TEST_CA).is_some() {
            let response = client(true)
                .expect("client")
                .get(&url)
                .send()
                .await
                .expect("the test CA is a platform root");
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.expect("body"), "ok");
            let outcome = client(false).expect("client").get(&url).send().await;
            assert!(refused_certificate(&outcome), "{outcome:?}");
            assert_eq!(requests.load(Ordering::SeqCst), 1);
            return;
        }
        let outcome = client(true).expect("client").get(&url).send().await;
        assert!(refused_certificate(&outcome), "{outcome:?}");
        assert_eq!(requests.load(Ordering::SeqCst), 0);

        let name =
            "handler::tests::the_client_with_tls_roots_trusts_the_platforms_roots_and_only_them";
        let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env("SSL_CERT_FILE", tls_fixture("ca.pem"))
            .env_remove("SSL_CERT_DIR")
            .env(TRUSTS_TEST_CA, "1")
            .output()
            .expect("run the child");
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr)
        );
        assert!(
            child.status.success() && output.contains("1 passed"),
            "{output}"
        );
    }

    #[test]
    fn each_execution_context_draws_its_own_static_random() {
        let context = || {
            let http = lambda_observability::http_client::client(false).expect("client");
            ExecutionContext::new(
                FunctionConfig::from_lookup(|_| None),
                http,
                HttpTraceLayer::new(),
            )
        };
        // Independent draws: equal values are a 1 in 2^32 event.
        assert_ne!(context().static_random, context().static_random);
    }

    // The public-IP call's bounds, in virtual time: tokio's clock is paused, the service takes
    // the request and never answers, and the tests assert how much virtual time the call took.
    // reqwest's timeout is a `tokio::time::sleep`, so the paused clock applies to it.

    use lambda_observability_test_support::HangingServer;
    use tokio::time::Instant;

    /// tokio's timer resolution: a timer fires at the first millisecond tick at or after its
    /// deadline.
    const TICK: Duration = Duration::from_millis(1);

    /// A context calling `checkip` (a hanging service) with `CHECKIP_TIMEOUT_MS=timeout_ms`.
    fn calling(checkip: &HangingServer, timeout_ms: u64) -> ExecutionContext {
        let url = format!("{}/", checkip.url);
        let timeout = timeout_ms.to_string();
        let config = FunctionConfig::from_lookup(|name| match name {
            "CHECKIP_URL" => Some(url.clone()),
            "CHECKIP_TIMEOUT_MS" => Some(timeout.clone()),
            _ => None,
        });
        let http = lambda_observability::http_client::client(false).expect("client");
        ExecutionContext::new(config, http, HttpTraceLayer::new())
    }

    /// Asserts that the call took `bound` of virtual time (to the tick) and that the service got
    /// the request.
    async fn assert_cut_at(
        started: Instant,
        bound: Duration,
        request: tokio::task::JoinHandle<String>,
    ) {
        let elapsed = started.elapsed();
        assert!(
            elapsed >= bound && elapsed <= bound + TICK,
            "took {elapsed:?} of virtual time, bound {bound:?}"
        );
        let head = request.await.expect("the service read a request");
        assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    }

    #[tokio::test(start_paused = true)]
    async fn near_the_deadline_the_public_ip_call_gets_the_remaining_time_less_the_margin() {
        let checkip = HangingServer::start();
        let context = calling(&checkip, 20_000);
        let request = checkip.next_request();
        let started = Instant::now();
        let public_ip = public_ip(&context, Duration::from_millis(600)).await;
        let budget = Duration::from_millis(600) - DEADLINE_MARGIN;
        assert_cut_at(started, budget, request).await;
        assert!(
            public_ip.ends_with(&format!("timed out after {budget:?}")),
            "{public_ip}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn far_from_the_deadline_the_configured_timeout_bounds_the_call() {
        let checkip = HangingServer::start();
        let context = calling(&checkip, 2_000);
        let request = checkip.next_request();
        let started = Instant::now();
        let public_ip = public_ip(&context, Duration::from_secs(30)).await;
        assert_cut_at(started, Duration::from_secs(2), request).await;
        assert!(public_ip.ends_with("timed out after 2s"), "{public_ip}");
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_more_than_the_margin_left_the_call_is_skipped() {
        let checkip = HangingServer::start();
        let context = calling(&checkip, 20_000);
        for remaining in [DEADLINE_MARGIN, Duration::from_millis(400), Duration::ZERO] {
            let started = Instant::now();
            let public_ip = public_ip(&context, remaining).await;
            assert_eq!(started.elapsed(), Duration::ZERO, "{remaining:?}");
            assert_eq!(
                public_ip, "not checked: less than 500ms left before the deadline",
                "{remaining:?}"
            );
        }
        // Nothing tried to connect: a connection would wait in the backlog.
        assert_eq!(checkip.accepted(), 0);
        assert!(
            checkip.try_accept().is_none(),
            "no connection to the service"
        );
    }

    /// An invocation of the success event whose deadline (`Lambda-Runtime-Deadline-Ms`, epoch
    /// milliseconds) is `deadline`.
    fn invocation(deadline: std::time::SystemTime) -> LambdaEvent<Value> {
        let ms = deadline
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "lambda-runtime-deadline-ms",
            ms.to_string().parse().expect("value"),
        );
        let context =
            lambda_runtime::Context::new("req-1", Arc::default(), &headers).expect("context");
        let payload = serde_json::json!({"firstName": "Ada", "lastName": "L", "age": 36});
        LambdaEvent::new(payload, context)
    }

    #[tokio::test(start_paused = true)]
    async fn the_handler_bounds_the_call_by_the_invocations_deadline() {
        const DEADLINE_IN: Duration = Duration::from_millis(600);
        let checkip = HangingServer::start();
        let mut handler = Handler::new(Arc::new(calling(&checkip, 20_000)));
        let request = checkip.next_request();
        // The handler reads the wall clock once, between these two readings, for the time left.
        let wall_before = std::time::SystemTime::now();
        let deadline = wall_before + DEADLINE_IN;
        let event = invocation(deadline);
        // The header carries whole milliseconds.
        let deadline = std::time::UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        let started = Instant::now();
        let greeting = handler.ready().await.expect("ready").call(event).await;
        let elapsed = started.elapsed();
        let wall_after = std::time::SystemTime::now();
        assert_eq!(
            greeting.expect("answered").result,
            "Your age in hexadecimal is 0x24"
        );
        let left = |at: std::time::SystemTime| {
            deadline
                .duration_since(at)
                .unwrap_or_default()
                .saturating_sub(DEADLINE_MARGIN)
        };
        let (least, most) = (left(wall_after), left(wall_before));
        assert!(
            elapsed >= least && elapsed <= most + TICK,
            "took {elapsed:?} of virtual time; the budget was between {least:?} and {most:?}"
        );
        request.await.expect("the service read a request");
    }

    #[tokio::test(start_paused = true)]
    async fn the_handler_skips_the_call_with_less_than_the_margin_left_and_still_answers() {
        let checkip = HangingServer::start();
        let mut handler = Handler::new(Arc::new(calling(&checkip, 20_000)));
        let event = invocation(std::time::SystemTime::now() + Duration::from_millis(400));
        let started = Instant::now();
        let greeting = handler.ready().await.expect("ready").call(event).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(
            greeting.expect("answered").result,
            "Your age in hexadecimal is 0x24"
        );
        assert!(
            checkip.try_accept().is_none(),
            "no connection to the service"
        );
    }
}
