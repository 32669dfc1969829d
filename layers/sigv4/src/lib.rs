#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::{fmt, time::SystemTime};

use async_trait::async_trait;
use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SigningSettings, sign},
    sign::v4,
};
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderValue;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

pub use aws_credential_types::Credentials;

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
    /// `None` when the configuration has no credentials: requests fail without being sent.
    identity: Option<Identity>,
}

impl<C> SigV4Client<C> {
    /// Signs requests for X-Ray's OTLP endpoint in `region` with `credentials`, then sends them
    /// with `inner`. Without credentials every request fails, unsent.
    pub fn new(inner: C, region: impl Into<String>, credentials: Option<Credentials>) -> Self {
        Self {
            inner,
            region: region.into(),
            service: XRAY_SERVICE.to_owned(),
            identity: credentials.map(Identity::from),
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

    /// Adds the signature headers to `request` as of `time`.
    fn sign(&self, request: &mut Request<Bytes>, time: SystemTime) -> Result<(), SigV4Error> {
        let identity = self.identity.as_ref().ok_or_else(|| {
            SigV4Error::new(format!(
                "no AWS credentials to sign the request to {} in {}: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN with temporary credentials); \
                 nothing was sent",
                self.service, self.region
            ))
        })?;
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
            .field("credentials", &self.identity.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

#[async_trait]
impl<C: HttpClient> HttpClient for SigV4Client<C> {
    async fn send_bytes(&self, mut request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        self.sign(&mut request, SystemTime::now())?;
        self.inner.send_bytes(request).await
    }
}

/// Why a request could not be signed (and was not sent): no credentials, or a request the signer
/// cannot represent.
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
}
