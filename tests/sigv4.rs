//! SigV4-signed OTLP/HTTP, as to X-Ray's OTLP endpoint, checked by botocore
//! (`tests/sigv4/verify.py`), a signer independent of aws-sigv4, on every request a local
//! receiver saw: the real `bootstrap` configured from the environment (`OTLP_TRACES_SIGV4`, the
//! function's credentials) against a mock Runtime API, with the span tree it carries; and
//! opentelemetry-otlp's span exporter sending through `SigV4Client` directly.
//!
//! botocore comes from the worktree's `.venv` (`make tools`, which `make test` runs), else the
//! system `python3`; without it these tests fail: a signature nobody checked is not a pass.

mod support;

use std::{
    borrow::Cow,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use lambda_observability::{
    http_client::install_crypto_provider,
    sigv4::{Credentials, SigV4Client},
};
use opentelemetry::{
    InstrumentationScope, KeyValue,
    trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
};
use opentelemetry_http::HttpClient;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks},
};
use prost::Message;
use support::{Request, Response, hex, serve_http};

const REGION: &str = "eu-west-1";
const SERVICE: &str = "xray";
const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE//////////session+token/=";

fn credentials() -> Credentials {
    Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        Some(SESSION_TOKEN.into()),
        None,
        "test",
    )
}

/// The signing client for the test's region and service.
fn signing(credentials: Option<Credentials>) -> SigV4Client<reqwest::Client> {
    SigV4Client::new(reqwest_client(), REGION, credentials).service(SERVICE)
}

/// An OTLP/HTTP receiver on 127.0.0.1 that keeps each request as it arrived.
struct Receiver {
    endpoint: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    async fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let address = serve_http(move |request| {
            seen.lock().expect("lock").push(request);
            async move {
                // An empty body is an empty ExportTraceServiceResponse: everything accepted.
                Some(
                    Response::new(200, Vec::new())
                        .with_header("content-type", "application/x-protobuf"),
                )
            }
        })
        .await;
        Self {
            endpoint: format!("http://{address}/v1/traces"),
            requests,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }
}

/// The same three spans on every call (fixed ids and times), so two exports encode alike.
fn spans() -> Vec<SpanData> {
    let trace_id = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").expect("trace id");
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_760_000_000);
    ["invocation", "handler", "GET checkip"]
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let span_id = SpanId::from_hex(&format!("53995c3f42cd8ad{i}")).expect("span id");
            SpanData {
                span_context: SpanContext::new(
                    trace_id,
                    span_id,
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::default(),
                ),
                parent_span_id: SpanId::INVALID,
                parent_span_is_remote: false,
                span_kind: SpanKind::Internal,
                name: Cow::Borrowed(name),
                start_time: start,
                end_time: start + Duration::from_millis(10),
                attributes: vec![KeyValue::new("faas.invocation_id", format!("request-{i}"))],
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                status: Status::Ok,
                instrumentation_scope: InstrumentationScope::builder("sigv4-test").build(),
            }
        })
        .collect()
}

fn reqwest_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// Exports [`spans`] to `endpoint` through `client`, as the pipeline's OTLP/HTTP exporter does.
async fn export(client: impl HttpClient + 'static, endpoint: &str) -> OTelSdkResult {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(endpoint)
        .build()
        .expect("exporter");
    exporter.export(spans()).await
}

/// A Python that can import botocore: the worktree's `.venv` (`make tools`), else `python3`.
/// Panics when there is none: the signatures would go unchecked.
fn python_with_botocore() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python3");
    [venv, PathBuf::from("python3")]
        .into_iter()
        .find(|python| {
            Command::new(python)
                .args(["-c", "import botocore"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .expect(
            "botocore not found in .venv/bin/python3 nor python3 (run `make tools`): \
             the signatures cannot be verified",
        )
}

/// Whether botocore accepts `request`'s signature for the test's credentials, this region and
/// service, with its output (why not).
fn botocore_verifies(
    python: &Path,
    request: &Request,
    region: &str,
    body: &[u8],
) -> (bool, String) {
    let keys = [ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN];
    botocore_verifies_with(python, request, region, body, keys)
}

/// [`botocore_verifies`] with these keys: access key id, secret access key, session token.
fn botocore_verifies_with(
    python: &Path,
    request: &Request,
    region: &str,
    body: &[u8],
    [access_key_id, secret_access_key, session_token]: [&str; 3],
) -> (bool, String) {
    let recorded = serde_json::json!({
        "method": request.method,
        "path": request.path,
        "headers": request.headers,
        "body_hex": hex(body),
        "region": region,
        "service": SERVICE,
        "access_key_id": access_key_id,
        "secret_access_key": secret_access_key,
        "session_token": session_token,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigv4/verify.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run verify.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(recorded.to_string().as_bytes())
        .expect("write the request");
    let output = child.wait_with_output().expect("verify.py output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match output.status.code() {
        Some(0) => (true, text),
        Some(1) => (false, text),
        _ => panic!("verify.py failed to run: {text}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_verifies_the_signature_and_rejects_another_region_or_body() {
    let receiver = Receiver::start().await;
    let client = signing(Some(credentials()));
    export(client, &receiver.endpoint).await.expect("export");

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/traces");
    let authorization = request.header("authorization").expect("authorization");
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/"))
            && authorization.contains(&format!("/{REGION}/{SERVICE}/aws4_request, ")),
        "{authorization}"
    );
    assert!(request.header("x-amz-date").is_some());
    assert_eq!(request.header("x-amz-security-token"), Some(SESSION_TOKEN));
    assert_eq!(request.header("x-amz-content-sha256"), None);

    let python = python_with_botocore();
    let (verified, output) = botocore_verifies(&python, request, REGION, &request.body);
    assert!(verified, "botocore rejects the signature: {output}");

    let (verified, output) = botocore_verifies(&python, request, "us-east-1", &request.body);
    assert!(!verified, "another region must not verify: {output}");
    assert!(output.contains("signature mismatch"), "{output}");

    let mut tampered = request.body.clone();
    tampered.push(0);
    let (verified, output) = botocore_verifies(&python, request, REGION, &tampered);
    assert!(!verified, "another body must not verify: {output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signed_body_is_the_protobuf_an_unsigned_exporter_sends() {
    let receiver = Receiver::start().await;
    export(reqwest_client(), &receiver.endpoint)
        .await
        .expect("unsigned export");
    let client = signing(Some(credentials()));
    export(client, &receiver.endpoint)
        .await
        .expect("signed export");

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    let (unsigned, signed) = (&requests[0], &requests[1]);
    assert_eq!(unsigned.header("authorization"), None);
    assert!(signed.header("authorization").is_some());
    assert_eq!(
        signed.header("content-type"),
        Some("application/x-protobuf")
    );
    assert_eq!(signed.body, unsigned.body, "same bytes for the same batch");

    let decoded = ExportTraceServiceRequest::decode(signed.body.as_slice()).expect("protobuf");
    let names: Vec<&str> = decoded
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|span| span.name.as_str())
        .collect();
    assert_eq!(names, ["invocation", "handler", "GET checkip"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_the_export_fails_and_nothing_is_sent() {
    let receiver = Receiver::start().await;
    let client = signing(None);
    let error = export(client, &receiver.endpoint)
        .await
        .expect_err("an export without credentials fails");
    eprintln!("export error: {error}");
    assert!(
        receiver.requests().is_empty(),
        "nothing reaches the receiver"
    );

    // The receiver works: a signed export from the same test reaches it.
    let client = signing(Some(credentials()));
    export(client, &receiver.endpoint).await.expect("export");
    assert_eq!(receiver.requests().len(), 1);
}

/// `bootstrap`'s own signed path, as configured in Lambda for X-Ray's OTLP endpoint behind a
/// proxy: `OTLP_TRACES_SIGV4=true`, the function's credentials from `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, the region from `AWS_REGION`. Every export
/// request is signed for `xray` in that region, botocore re-signs each one to the same
/// `Authorization` (and refuses it for another region), and together they carry the span tree
/// every OTLP transport carries, in the traces of `Lambda-Runtime-Trace-Id`, each invocation's
/// spans received before the runtime asks for the next event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstraps_signed_exports_verify_with_botocore_and_carry_the_span_tree() {
    use support::{BootstrapExt as _, CheckIp, Function, MockRuntimeApi, request_spans};

    let python = python_with_botocore();
    let receiver = Receiver::start().await;
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start(support::traced_events()).await;
    // Requests received when the function asks for event N (Lambda may freeze it from then on).
    let requests_at_next: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    {
        let (seen, counts) = (receiver.requests.clone(), requests_at_next.clone());
        runtime.on_next(move |number| {
            let received = seen.lock().expect("lock").len();
            counts.lock().expect("lock").push((number, received));
        });
    }
    let function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", &checkip.url),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &receiver.endpoint),
            ("OTLP_TRACES_SIGV4", "true"),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN),
            ("OTEL_SERVICE_NAME", "hello-otlp"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
        ],
    );
    let outcomes = runtime.outcomes(4).await;
    runtime.wait_next_calls(5).await;
    assert_eq!(
        outcomes.iter().map(|o| o.request_id()).collect::<Vec<_>>(),
        ["ok", "throw", "invalid", "unsampled"]
    );

    // One export per sampled invocation, each in before the next `/next`; none for Sampled=0.
    let counts = requests_at_next.lock().expect("lock").clone();
    assert_eq!(
        counts,
        vec![(1, 0), (2, 1), (3, 2), (4, 3), (5, 3)],
        "signed exports per invocation, sent before /next"
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    let mut spans = Vec::new();
    for (n, request) in requests.iter().enumerate() {
        assert_eq!(request.method, "POST", "request {n}");
        assert_eq!(request.path, "/v1/traces", "request {n}");
        assert_eq!(
            request.header("content-type"),
            Some("application/x-protobuf"),
            "request {n}"
        );
        let authorization = request.header("authorization").expect("authorization");
        assert!(
            authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/"))
                && authorization.contains(&format!("/{REGION}/{SERVICE}/aws4_request, ")),
            "request {n}: {authorization}"
        );
        assert_eq!(
            request.header("x-amz-security-token"),
            Some(SESSION_TOKEN),
            "request {n}"
        );
        let (verified, output) = botocore_verifies(&python, request, REGION, &request.body);
        assert!(
            verified,
            "request {n}: botocore rejects bootstrap's signature: {output}"
        );
        let (verified, output) = botocore_verifies(&python, request, "us-east-1", &request.body);
        assert!(
            !verified && output.contains("signature mismatch"),
            "request {n}: another region must not verify: {output}"
        );
        let decoded = ExportTraceServiceRequest::decode(request.body.as_slice())
            .unwrap_or_else(|e| panic!("request {n} is not an ExportTraceServiceRequest: {e}"));
        spans.extend(request_spans(&decoded));
    }

    // The tree: the invocation span under Lambda's segment in trace 1, `getRuntimeInfo` and the
    // GET under it, the error and client-error invocations, nothing of the unsampled one.
    let traced = support::assert_traced_span_tree(&spans, &checkip.url);
    assert_eq!(
        support::hex(&traced.invocation.trace_id),
        support::otel_trace_id(1),
        "the trace of Lambda-Runtime-Trace-Id"
    );
    assert_eq!(
        support::hex(&traced.invocation.parent_span_id),
        support::TRACE_PARENT
    );
    assert_eq!(
        support::resource_attr(&traced.resource, "cloud.platform"),
        Some("aws_lambda")
    );

    let logs = function.logs();
    assert!(
        !logs.contains(SECRET_ACCESS_KEY),
        "the secret access key is never logged"
    );
    assert!(
        !logs.contains(SESSION_TOKEN),
        "the session token is never logged"
    );
}

/// `bootstrap` signing with credentials from a container credentials endpoint
/// (`AWS_CONTAINER_CREDENTIALS_FULL_URI` and its token, no keys in the environment), as where an
/// environment outlives its first credentials. The endpoint hands out credentials that expire
/// within [`REFRESH_BEFORE_EXPIRY`](lambda_observability::sigv4::REFRESH_BEFORE_EXPIRY), each time
/// new ones: every export fetches again (with the token) and is signed with the credentials just
/// fetched, which botocore verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_refreshes_container_credentials_before_they_expire() {
    use support::{BootstrapExt as _, CheckIp, Function, MockRuntimeApi};

    const AUTH_TOKEN: &str = "container-auth-token";
    let python = python_with_botocore();
    let receiver = Receiver::start().await;
    let checkip = CheckIp::start(200).await;
    let fetches: Arc<Mutex<Vec<Request>>> = Arc::default();
    let credentials_endpoint = {
        let fetches = fetches.clone();
        serve_http(move |request| {
            let served = {
                let mut fetches = fetches.lock().expect("lock");
                fetches.push(request.clone());
                fetches.len()
            };
            async move {
                if request.header("authorization") != Some(AUTH_TOKEN) {
                    return Some(Response::new(401, "bad token"));
                }
                let expiration = time_in(Duration::from_secs(120));
                let body = serde_json::json!({
                    "AccessKeyId": format!("AKIDCONTAINER{served}"),
                    "SecretAccessKey": format!("secret{served}"),
                    "Token": format!("token{served}"),
                    "Expiration": expiration,
                });
                Some(Response::new(200, body.to_string()))
            }
        })
        .await
    };
    let runtime = MockRuntimeApi::start(support::traced_events()).await;
    let full_uri = format!("http://{credentials_endpoint}/v1/credentials");
    let function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", &checkip.url),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &receiver.endpoint),
            ("OTLP_TRACES_SIGV4", "true"),
            ("AWS_REGION", REGION),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", AUTH_TOKEN),
        ],
    );
    runtime.outcomes(4).await;
    runtime.wait_next_calls(5).await;

    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "one export per sampled invocation");
    let fetches = fetches.lock().expect("lock").clone();
    assert_eq!(
        fetches.len(),
        3,
        "credentials close to expiry: fetched for each export"
    );
    for fetch in &fetches {
        assert_eq!(fetch.method, "GET");
        assert_eq!(fetch.path, "/v1/credentials");
        assert_eq!(fetch.header("authorization"), Some(AUTH_TOKEN));
    }
    for (n, request) in requests.iter().enumerate() {
        let served = n + 1;
        let (key, secret, token) = (
            format!("AKIDCONTAINER{served}"),
            format!("secret{served}"),
            format!("token{served}"),
        );
        let authorization = request.header("authorization").expect("signed");
        assert!(
            authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={key}/")),
            "request {n} is signed with the credentials fetched for it: {authorization}"
        );
        assert_eq!(request.header("x-amz-security-token"), Some(token.as_str()));
        let keys = [key.as_str(), secret.as_str(), token.as_str()];
        let (verified, output) =
            botocore_verifies_with(&python, request, REGION, &request.body, keys);
        assert!(
            verified,
            "request {n}: botocore rejects the signature: {output}"
        );
    }
    let logs = function.logs();
    assert!(!logs.contains(AUTH_TOKEN), "the token is never logged");
    assert!(
        !logs.contains("secret1"),
        "the fetched secret is never logged"
    );
}

/// `now + after` as RFC 3339, as the credentials endpoint writes it.
fn time_in(after: Duration) -> String {
    aws_smithy_types::DateTime::from(SystemTime::now() + after)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .expect("a time after 1970")
}
