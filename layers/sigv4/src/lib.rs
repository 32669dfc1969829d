#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::{fmt, sync::Arc, time::SystemTime};

use async_trait::async_trait;
use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SigningSettings, sign},
    sign::v4,
};
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderValue;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

pub use aws_credential_types::Credentials;
pub use container::{ContainerCredentials, REFRESH_BEFORE_EXPIRY};

mod container;

/// A type-erased error.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service X-Ray's OTLP endpoint is signed for.
pub const XRAY_SERVICE: &str = "xray";

/// An [`HttpClient`] that signs each request with SigV4, then sends it with the inner client.
///
/// Signs the host, path, query, every header present when it is called (the OTLP exporter's
/// `content-type` and configured headers) and the body. Headers the inner client adds later
/// (`host` from the URL, `content-length`, `user-agent`) are not signed, except `host`, which is
/// signed as the inner client will send it: from the request's URL, default port omitted.
#[derive(Clone)]
pub struct SigV4Client<C> {
    inner: C,
    region: String,
    service: String,
    source: Source,
}

/// Where the credentials come from.
#[derive(Clone)]
enum Source {
    /// None configured: requests fail without being sent.
    Missing,
    /// Given once (the environment's): used as they are.
    Fixed(Identity),
    /// Fetched from an endpoint, refreshed before they expire.
    Container(Arc<container::Refreshing>),
}

impl<C> SigV4Client<C> {
    /// Signs requests for X-Ray's OTLP endpoint in `region` with `credentials`, then sends them
    /// with `inner`. Without credentials every request fails, unsent.
    pub fn new(inner: C, region: impl Into<String>, credentials: Option<Credentials>) -> Self {
        Self {
            inner,
            region: region.into(),
            service: XRAY_SERVICE.to_owned(),
            source: credentials.map_or(Source::Missing, |c| Source::Fixed(Identity::from(c))),
        }
    }

    /// Signs with credentials from a container credentials `endpoint`, sending with `inner`: the
    /// first request fetches them (through `inner`), later ones reuse them until
    /// [`REFRESH_BEFORE_EXPIRY`] before they expire, then fetch again. When a fetch fails the
    /// request is not sent, unless the credentials at hand have not expired yet: those sign it.
    pub fn with_container_credentials(
        inner: C,
        region: impl Into<String>,
        endpoint: ContainerCredentials,
    ) -> Self {
        Self {
            inner,
            region: region.into(),
            service: XRAY_SERVICE.to_owned(),
            source: Source::Container(Arc::new(container::Refreshing::new(endpoint))),
        }
    }

    /// The service the requests are signed for. Defaults to [`XRAY_SERVICE`] (`xray`).
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// The inner client.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The inner client, mutably.
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// The inner client, consuming the signer.
    pub fn into_inner(self) -> C {
        self.inner
    }

    /// The error of a request that has no credentials to be signed with.
    fn missing(&self) -> SigV4Error {
        SigV4Error::new(format!(
            "no AWS credentials to sign the request to {} in {}: set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN with temporary credentials), or \
             AWS_CONTAINER_CREDENTIALS_FULL_URI; nothing was sent",
            self.service, self.region
        ))
    }

    /// Adds the signature headers to `request` as of `time`, with fixed credentials (tests).
    #[cfg(test)]
    fn sign(&self, request: &mut Request<Bytes>, time: SystemTime) -> Result<(), SigV4Error> {
        match &self.source {
            Source::Fixed(identity) => self.sign_with(identity, request, time),
            _ => Err(self.missing()),
        }
    }

    /// Adds the signature headers to `request` as of `time`, signed with `identity`.
    fn sign_with(
        &self,
        identity: &Identity,
        request: &mut Request<Bytes>,
        time: SystemTime,
    ) -> Result<(), SigV4Error> {
        if request.uri().host().is_none() {
            // aws-sigv4 panics on a URI without a host; the exporter always sends absolute URLs.
            return Err(SigV4Error::new(format!(
                "cannot sign a request to `{}`: the URL has no host",
                request.uri()
            )));
        }
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = value.to_str().map_err(|_| {
                    SigV4Error::new(format!(
                        "cannot sign header `{name}`: its value is not visible ASCII"
                    ))
                })?;
                Ok((name.as_str(), value))
            })
            .collect::<Result<Vec<_>, SigV4Error>>()?;
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers.into_iter(),
            SignableBody::Bytes(request.body()),
        )
        .map_err(|e| SigV4Error::with_source("cannot sign the request", e))?;
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| SigV4Error::with_source("cannot sign the request", e))?
            .into();
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| SigV4Error::with_source("cannot sign the request", e))?
            .into_parts();
        let (signature_headers, _query) = instructions.into_parts();
        for header in signature_headers {
            // Not `apply_to_request_http1x`: it panics on a value that is not a valid header
            // value (a session token with a newline, say).
            let mut value = HeaderValue::from_str(header.value()).map_err(|_| {
                SigV4Error::new(format!(
                    "cannot send header `{}`: the credentials hold characters a header cannot carry",
                    header.name()
                ))
            })?;
            value.set_sensitive(header.sensitive());
            request.headers_mut().insert(header.name(), value);
        }
        Ok(())
    }
}

impl<C: fmt::Debug> fmt::Debug for SigV4Client<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigV4Client")
            .field("inner", &self.inner)
            .field("region", &self.region)
            .field("service", &self.service)
            .field(
                "credentials",
                &match &self.source {
                    Source::Missing => None,
                    Source::Fixed(_) => Some("[REDACTED]".to_owned()),
                    Source::Container(refreshing) => Some(format!("{:?}", refreshing.endpoint())),
                },
            )
            .finish()
    }
}

#[async_trait]
impl<C: HttpClient> HttpClient for SigV4Client<C> {
    async fn send_bytes(&self, mut request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let now = SystemTime::now();
        let identity = match &self.source {
            Source::Missing => return Err(self.missing().into()),
            Source::Fixed(identity) => identity.clone(),
            Source::Container(refreshing) => refreshing.identity(&self.inner, now).await?,
        };
        self.sign_with(&identity, &mut request, now)?;
        self.inner.send_bytes(request).await
    }
}

/// Why a request could not be signed (and was not sent): no credentials, credentials that could
/// not be fetched, or a request the signer cannot represent.
#[derive(Debug)]
pub struct SigV4Error {
    message: String,
    source: Option<BoxError>,
}

impl SigV4Error {
    fn new(message: String) -> Self {
        Self {
            message,
            source: None,
        }
    }

    fn with_source(message: &str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: message.to_owned(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for SigV4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.message)
    }
}

impl std::error::Error for SigV4Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use super::*;

    /// The credentials and time of AWS's SigV4 test suite (`aws-signing-test-suite/v4`).
    const SUITE_TIME_SECS: u64 = 1_440_938_160; // 2015-08-30T12:36:00Z
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(SUITE_TIME_SECS)
    }

    /// A client signing for the test suite's region and service.
    fn suite_client<C>(inner: C, session_token: Option<&str>) -> SigV4Client<C> {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            SUITE_SECRET,
            session_token.map(str::to_owned),
            None,
            "test",
        );
        SigV4Client::new(inner, "us-east-1", Some(credentials)).service("service")
    }

    /// Records the requests it is asked to send; answers 200.
    #[derive(Debug, Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Request<Bytes>>>>);

    impl Recorder {
        fn sent(&self) -> Vec<Request<Bytes>> {
            self.0.lock().expect("lock").clone()
        }
    }

    #[async_trait]
    impl HttpClient for Recorder {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            self.0.lock().expect("lock").push(request);
            Ok(Response::new(Bytes::new()))
        }
    }

    fn header<'r>(request: &'r Request<Bytes>, name: &str) -> Option<&'r str> {
        request
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii"))
    }

    #[test]
    fn signs_the_test_suite_post_vanilla_request() {
        let client = suite_client(Recorder::default(), None);
        let mut request = Request::post("https://example.amazonaws.com/")
            .body(Bytes::new())
            .expect("request");
        client.sign(&mut request, suite_time()).expect("signed");
        // aws-signing-test-suite/v4/post-vanilla/header-signed-request.txt
        assert_eq!(header(&request, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&request, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
            )
        );
        assert!(request.headers().get("x-amz-security-token").is_none());
        assert!(request.headers().get("x-amz-content-sha256").is_none());
    }

    #[test]
    fn signs_the_session_token_and_sends_it() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let client = suite_client(Recorder::default(), Some(token));
        let mut request = Request::get("https://example.amazonaws.com/")
            .body(Bytes::new())
            .expect("request");
        client.sign(&mut request, suite_time()).expect("signed");
        // aws-signing-test-suite/v4/get-vanilla-with-session-token/header-signed-request.txt
        assert_eq!(header(&request, "x-amz-security-token"), Some(token));
        assert_eq!(
            header(&request, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date;x-amz-security-token, \
                 Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
            )
        );
        assert!(
            request
                .headers()
                .get("x-amz-security-token")
                .is_some_and(HeaderValue::is_sensitive)
        );
    }

    #[test]
    fn the_body_and_the_headers_present_are_signed() {
        let client = suite_client(Recorder::default(), None);
        let signed = |body: &'static [u8], extra: Option<(&str, &str)>| {
            let mut builder = Request::post("https://xray.us-east-1.amazonaws.com/v1/traces")
                .header("content-type", "application/x-protobuf");
            if let Some((name, value)) = extra {
                builder = builder.header(name, value);
            }
            let mut request = builder.body(Bytes::from_static(body)).expect("request");
            client.sign(&mut request, suite_time()).expect("signed");
            header(&request, "authorization")
                .expect("authorization")
                .to_owned()
        };
        let base = signed(b"spans", None);
        assert!(base.contains("SignedHeaders=content-type;host;x-amz-date,"));
        assert_ne!(base, signed(b"other spans", None), "the body is signed");
        let with_header = signed(b"spans", Some(("x-collector-token", "abc")));
        assert!(
            with_header.contains("SignedHeaders=content-type;host;x-amz-date;x-collector-token,")
        );
        // Changed by proxies: never signed.
        let with_agent = signed(b"spans", Some(("user-agent", "otel")));
        assert_eq!(with_agent, base);
    }

    #[test]
    fn the_host_is_signed_with_its_port_unless_default() {
        let client = suite_client(Recorder::default(), None);
        let signature = |url: &str| {
            let mut request = Request::post(url).body(Bytes::new()).expect("request");
            client.sign(&mut request, suite_time()).expect("signed");
            header(&request, "authorization")
                .expect("authorization")
                .to_owned()
        };
        assert_eq!(
            signature("https://example.amazonaws.com:443/"),
            signature("https://example.amazonaws.com/")
        );
        assert_ne!(
            signature("https://example.amazonaws.com:8443/"),
            signature("https://example.amazonaws.com/")
        );
    }

    #[tokio::test]
    async fn send_bytes_signs_then_forwards_the_request_unchanged_otherwise() {
        let recorder = Recorder::default();
        let client = suite_client(recorder.clone(), Some("token"));
        let request = Request::post("https://xray.us-east-1.amazonaws.com/v1/traces")
            .header("content-type", "application/x-protobuf")
            .body(Bytes::from_static(b"spans"))
            .expect("request");
        let response = client.send_bytes(request).await.expect("sent");
        assert_eq!(response.status(), 200);
        let sent = recorder.sent();
        assert_eq!(sent.len(), 1);
        let sent = &sent[0];
        assert_eq!(sent.body(), &Bytes::from_static(b"spans"));
        assert_eq!(sent.uri(), "https://xray.us-east-1.amazonaws.com/v1/traces");
        assert_eq!(header(sent, "content-type"), Some("application/x-protobuf"));
        assert!(header(sent, "authorization").is_some_and(|a| {
            a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && a.contains("/us-east-1/service/aws4_request,")
        }));
        assert!(header(sent, "x-amz-date").is_some());
        assert_eq!(header(sent, "x-amz-security-token"), Some("token"));
    }

    #[tokio::test]
    async fn without_credentials_nothing_is_sent_and_the_error_says_what_to_set() {
        let recorder = Recorder::default();
        let client = SigV4Client::new(recorder.clone(), "eu-west-1", None);
        let request = Request::post("https://xray.eu-west-1.amazonaws.com/v1/traces")
            .body(Bytes::from_static(b"spans"))
            .expect("request");
        let error = client.send_bytes(request).await.expect_err("not signed");
        assert!(recorder.sent().is_empty());
        let message = error.to_string();
        assert!(
            message.starts_with("no AWS credentials to sign the request to xray in eu-west-1"),
            "{message}"
        );
        assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
        assert!(error.downcast_ref::<SigV4Error>().is_some());
    }

    #[tokio::test]
    async fn a_url_without_host_is_an_error_not_a_panic() {
        let recorder = Recorder::default();
        let client = suite_client(recorder.clone(), None);
        let request = Request::post("/v1/traces")
            .body(Bytes::new())
            .expect("request");
        let error = client.send_bytes(request).await.expect_err("no host");
        assert!(error.to_string().contains("no host"), "{error}");
        assert!(recorder.sent().is_empty());
    }

    #[test]
    fn debug_never_shows_the_credentials() {
        let client = suite_client(Recorder::default(), Some("the-token"));
        let debug = format!("{client:?}");
        assert!(
            debug.contains("us-east-1") && debug.contains("[REDACTED]"),
            "{debug}"
        );
        for secret in ["AKIDEXAMPLE", SUITE_SECRET, "the-token"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn accessors_reach_the_inner_client() {
        let mut client = suite_client(String::from("inner"), None);
        assert_eq!(client.get_ref(), "inner");
        client.get_mut().push('!');
        assert_eq!(client.into_inner(), "inner!");
    }

    /// A container credentials endpoint at `CREDENTIALS_URI` answering each `GET` with the next
    /// of its answers (`None`: a 500), and a sink recording every other request.
    #[derive(Debug, Clone, Default)]
    struct Endpoint {
        answers: Arc<Mutex<Vec<Option<String>>>>,
        fetches: Arc<Mutex<Vec<Request<Bytes>>>>,
        sent: Recorder,
    }

    const CREDENTIALS_URI: &str = "http://127.0.0.1:9/v1/credentials";

    impl Endpoint {
        fn answering(answers: Vec<Option<String>>) -> Self {
            let endpoint = Self::default();
            *endpoint.answers.lock().expect("lock") = answers;
            endpoint
        }

        fn fetches(&self) -> Vec<Request<Bytes>> {
            self.fetches.lock().expect("lock").clone()
        }
    }

    #[async_trait]
    impl HttpClient for Endpoint {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            if request.uri() != CREDENTIALS_URI {
                return self.sent.send_bytes(request).await;
            }
            self.fetches.lock().expect("lock").push(request);
            let mut answers = self.answers.lock().expect("lock");
            let answer = if answers.is_empty() {
                None
            } else {
                answers.remove(0)
            };
            let mut response = Response::new(Bytes::from(answer.clone().unwrap_or_default()));
            if answer.is_none() {
                *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            }
            Ok(response)
        }
    }

    /// The endpoint's JSON for `key`, expiring `in_` from now.
    fn answer(key: &str, in_: Duration) -> Option<String> {
        let expiration = aws_smithy_types::DateTime::from(SystemTime::now() + in_)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .expect("formats");
        Some(format!(
            r#"{{"AccessKeyId":"{key}","SecretAccessKey":"secret","Token":"token-{key}","Expiration":"{expiration}","RoleArn":"ignored"}}"#
        ))
    }

    fn container_client(endpoint: Endpoint) -> SigV4Client<Endpoint> {
        let credentials = ContainerCredentials::new(CREDENTIALS_URI)
            .expect("allowed")
            .authorization_token("the-auth-token");
        SigV4Client::with_container_credentials(endpoint, "eu-west-1", credentials)
    }

    async fn export(client: &SigV4Client<Endpoint>) -> Result<Response<Bytes>, HttpError> {
        let request = Request::post("https://xray.eu-west-1.amazonaws.com/v1/traces")
            .body(Bytes::from_static(b"spans"))
            .expect("request");
        client.send_bytes(request).await
    }

    /// The access key id each sent request was signed with.
    fn signed_with(endpoint: &Endpoint) -> Vec<String> {
        endpoint
            .sent
            .sent()
            .iter()
            .map(|request| {
                let authorization = header(request, "authorization").expect("signed");
                let credential = authorization
                    .split("Credential=")
                    .nth(1)
                    .expect("credential");
                credential.split('/').next().expect("key").to_owned()
            })
            .collect()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn container_credentials_are_fetched_once_with_the_token_then_reused() {
        let endpoint = Endpoint::answering(vec![answer("AKIDFIRST", HOUR)]);
        let client = container_client(endpoint.clone());
        for _ in 0..3 {
            export(&client).await.expect("sent");
        }
        let fetches = endpoint.fetches();
        assert_eq!(fetches.len(), 1, "fresh credentials are reused");
        assert_eq!(fetches[0].method(), http::Method::GET);
        assert_eq!(header(&fetches[0], "authorization"), Some("the-auth-token"));
        assert_eq!(signed_with(&endpoint), ["AKIDFIRST"; 3]);
        assert_eq!(
            header(&endpoint.sent.sent()[0], "x-amz-security-token"),
            Some("token-AKIDFIRST")
        );
    }

    #[tokio::test]
    async fn credentials_close_to_their_expiry_are_replaced_before_the_request() {
        let close = REFRESH_BEFORE_EXPIRY - Duration::from_secs(30);
        let endpoint = Endpoint::answering(vec![
            answer("AKIDFIRST", close),
            answer("AKIDSECOND", close),
            answer("AKIDTHIRD", HOUR),
        ]);
        let client = container_client(endpoint.clone());
        for _ in 0..4 {
            export(&client).await.expect("sent");
        }
        assert_eq!(endpoint.fetches().len(), 3);
        assert_eq!(
            signed_with(&endpoint),
            ["AKIDFIRST", "AKIDSECOND", "AKIDTHIRD", "AKIDTHIRD"]
        );
    }

    #[tokio::test]
    async fn a_failed_refresh_signs_with_the_credentials_until_they_expire() {
        let close = REFRESH_BEFORE_EXPIRY - Duration::from_secs(30);
        let endpoint = Endpoint::answering(vec![answer("AKIDFIRST", close), None, None]);
        let client = container_client(endpoint.clone());
        export(&client).await.expect("sent");
        export(&client)
            .await
            .expect("the refresh failed; the cached credentials sign");
        assert_eq!(endpoint.fetches().len(), 2, "the refresh was tried");
        assert_eq!(signed_with(&endpoint), ["AKIDFIRST"; 2]);
    }

    #[tokio::test]
    async fn without_usable_credentials_a_failed_fetch_sends_nothing() {
        let endpoint = Endpoint::answering(vec![
            None,
            Some("not json".into()),
            answer("AKIDEXPIRED", Duration::ZERO).map(|a| a.replace("AKIDEXPIRED", "AKIDOLD")),
            None,
        ]);
        let client = container_client(endpoint.clone());
        let error = export(&client).await.expect_err("500");
        assert!(
            error.to_string().starts_with(
                "cannot get credentials from the container credentials endpoint \
                 http://127.0.0.1:9/v1/credentials: it answered 500"
            ),
            "{error}"
        );
        let error = export(&client).await.expect_err("not json");
        assert!(
            error.to_string().contains("not the credentials' JSON"),
            "{error}"
        );
        // Fetched, but already expired when the next request comes: refreshed, which fails.
        export(&client)
            .await
            .expect("signed with the credentials just fetched");
        let error = export(&client)
            .await
            .expect_err("expired and the refresh failed");
        assert!(error.to_string().contains("it answered 500"), "{error}");
        assert_eq!(signed_with(&endpoint), ["AKIDOLD"]);
        assert_eq!(endpoint.fetches().len(), 4);
    }

    #[tokio::test]
    async fn the_token_file_is_read_at_every_fetch() {
        let path = std::env::temp_dir().join(format!("sigv4-token-{}", std::process::id()));
        std::fs::write(&path, "first-token\n").expect("written");
        let close = REFRESH_BEFORE_EXPIRY - Duration::from_secs(30);
        let endpoint = Endpoint::answering(vec![answer("AKIDA", close), answer("AKIDB", HOUR)]);
        let credentials = ContainerCredentials::new(CREDENTIALS_URI)
            .expect("allowed")
            .authorization_token_file(&path);
        let client =
            SigV4Client::with_container_credentials(endpoint.clone(), "eu-west-1", credentials);
        export(&client).await.expect("sent");
        std::fs::write(&path, "rotated-token").expect("written");
        export(&client).await.expect("sent");
        std::fs::remove_file(&path).expect("removed");
        let tokens: Vec<_> = endpoint
            .fetches()
            .iter()
            .map(|f| header(f, "authorization").expect("token").to_owned())
            .collect();
        assert_eq!(tokens, ["first-token", "rotated-token"]);
    }

    #[test]
    fn plain_http_is_allowed_only_to_the_hosts_the_sdks_allow() {
        for allowed in [
            "http://127.0.0.1:1338/creds",
            "http://localhost/creds",
            "http://[::1]:80/creds",
            "http://169.254.170.2/v2/credentials/x",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "https://credentials.example.com/creds",
        ] {
            assert!(ContainerCredentials::new(allowed).is_ok(), "{allowed}");
        }
        for refused in [
            "http://10.0.0.1/creds",
            "http://example.com/creds",
            "ftp://127.0.0.1/creds",
            "/creds",
            "not a uri",
        ] {
            assert!(ContainerCredentials::new(refused).is_err(), "{refused}");
        }
        let relative = ContainerCredentials::relative("/v2/credentials/abc").expect("ecs");
        assert_eq!(relative.uri(), "http://169.254.170.2/v2/credentials/abc");
    }

    #[test]
    fn debug_never_shows_the_authorization_token() {
        let client = container_client(Endpoint::default());
        let debug = format!("{client:?}");
        assert!(
            debug.contains("127.0.0.1:9") && debug.contains("[REDACTED]"),
            "{debug}"
        );
        assert!(!debug.contains("the-auth-token"), "{debug}");
    }
}
