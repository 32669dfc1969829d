//! What the span pipeline is asked to do: pure data, read from the environment only by
//! [`Config::from_lookup`](super::Config::from_lookup) (never by the pipeline itself).

use std::{fmt, net::SocketAddr, time::Duration};

use super::lambda::LambdaSettings;

/// Default bound on one export (the OTel spec's `OTEL_EXPORTER_OTLP_TIMEOUT` default). The
/// invocation's deadline may cut it shorter.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where Lambda's X-Ray daemon listens when `AWS_XRAY_DAEMON_ADDRESS` is unset.
pub const DEFAULT_DAEMON_ADDRESS: &str = "127.0.0.1:2000";

/// One destination for finished spans. Several may be configured at once
/// (`OTEL_TRACES_EXPORTER=otlp,console`): each batch goes to each of them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TracesExporter {
    /// X-Ray segment documents over UDP to the daemon (`OTEL_TRACES_EXPORTER=xray`).
    XraySegments {
        /// The daemon's UDP address.
        daemon: SocketAddr,
    },
    /// OTLP protobuf over UDP to the daemon, as ADOT's Lambda distributions send it
    /// (`otlp` with no OTLP endpoint configured, inside Lambda).
    OtlpUdp {
        /// The daemon's UDP address.
        daemon: SocketAddr,
    },
    /// OTLP/HTTP protobuf to an endpoint (a collector, or X-Ray's OTLP endpoint with SigV4).
    OtlpHttp(OtlpHttp),
    /// A readable timeline of each invocation's spans on stderr.
    Console,
}

impl TracesExporter {
    /// The name it goes by in log lines and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::XraySegments { .. } => "X-Ray segments",
            Self::OtlpUdp { .. } => "OTLP/UDP",
            Self::OtlpHttp(otlp) if otlp.sigv4.is_some() => "SigV4-signed OTLP/HTTP",
            Self::OtlpHttp(_) => "OTLP/HTTP",
            Self::Console => "console",
        }
    }

    /// The cargo feature (of `lambda-observability`, forwarded by the function crate) this
    /// exporter needs, when this build left it out; `None` when it is built in.
    pub fn missing_feature(&self) -> Option<&'static str> {
        let (feature, built) = match self {
            Self::XraySegments { .. } => ("xray-segments", cfg!(feature = "xray-segments")),
            Self::OtlpUdp { .. } => ("otlp-udp", cfg!(feature = "otlp-udp")),
            Self::OtlpHttp(_) if !cfg!(feature = "otlp-http") => ("otlp-http", false),
            Self::OtlpHttp(otlp) => ("sigv4", otlp.sigv4.is_none() || cfg!(feature = "sigv4")),
            Self::Console => ("console", cfg!(feature = "console")),
        };
        (!built).then_some(feature)
    }
}

/// OTLP/HTTP settings, signal-specific variables first.
#[derive(Clone, PartialEq)]
pub struct OtlpHttp {
    /// The full URL spans are POSTed to, `/v1/traces` included.
    pub endpoint: String,
    /// Extra request headers (`OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `..._HEADERS`).
    pub headers: Vec<(String, String)>,
    /// Bound on one export.
    pub timeout: Duration,
    /// Sign each request with SigV4 (X-Ray's OTLP endpoint, or forced on by the user).
    pub sigv4: Option<SigV4>,
}

impl fmt::Debug for OtlpHttp {
    /// Header values are often API keys: only their names are shown; so is the endpoint's
    /// `user:password@`: redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("OtlpHttp")
            .field("endpoint", &super::traces::without_userinfo(&self.endpoint))
            .field("headers", &header_names)
            .field("timeout", &self.timeout)
            .field("sigv4", &self.sigv4)
            .finish()
    }
}

/// How to sign OTLP/HTTP requests.
#[derive(Clone, PartialEq)]
pub struct SigV4 {
    /// The region in the signature (taken from the endpoint's host, else `AWS_REGION`).
    pub region: String,
    /// The service name in the signature: `xray`.
    pub service: String,
    /// Where the credentials come from, `None` when no variable names any (a warning was given;
    /// nothing is sent).
    pub credentials: Option<CredentialSource>,
}

impl fmt::Debug for SigV4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigV4")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("credentials", &self.credentials)
            .finish()
    }
}

#[cfg(feature = "sigv4")]
impl SigV4 {
    /// A client signing as these settings say, sending with `inner`; an error when the
    /// container credentials URI is not one the SDKs would fetch from.
    #[cfg_attr(docsrs, doc(cfg(feature = "sigv4")))]
    pub fn client<C>(
        &self,
        inner: C,
    ) -> Result<lambda_observability_sigv4::SigV4Client<C>, lambda_observability_sigv4::SigV4Error>
    {
        use lambda_observability_sigv4::{ContainerCredentials, SigV4Client};
        let client = match &self.credentials {
            None => SigV4Client::new(inner, self.region.clone(), None),
            Some(CredentialSource::Environment(c)) => {
                let credentials = lambda_observability_sigv4::Credentials::new(
                    c.access_key_id.clone(),
                    c.secret_access_key.clone(),
                    c.session_token.clone(),
                    None,
                    "environment",
                );
                SigV4Client::new(inner, self.region.clone(), Some(credentials))
            }
            Some(CredentialSource::Container(endpoint)) => {
                let mut credentials = ContainerCredentials::new(&endpoint.uri)?;
                if let Some(token) = &endpoint.token {
                    credentials = credentials.authorization_token(token.clone());
                }
                if let Some(file) = &endpoint.token_file {
                    credentials = credentials.authorization_token_file(file.clone());
                }
                SigV4Client::with_container_credentials(inner, self.region.clone(), credentials)
            }
        };
        Ok(client.service(self.service.clone()))
    }
}

/// Where the signing credentials come from, in the AWS SDKs' order: the environment's keys first,
/// then a container credentials endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`: what Lambda on demand
    /// sets, valid for the life of the execution environment.
    Environment(Credentials),
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` (or `_RELATIVE_URI`): fetched at the first export and
    /// refreshed before they expire, for environments that outlive their first credentials.
    Container(ContainerEndpoint),
}

/// A container credentials endpoint. The token is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ContainerEndpoint {
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`, or `http://169.254.170.2` followed by
    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
    pub uri: String,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    pub token: Option<String>,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, read at every fetch; preferred over `token`.
    pub token_file: Option<std::path::PathBuf>,
}

impl fmt::Debug for ContainerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerEndpoint")
            .field("uri", &self.uri)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("token_file", &self.token_file)
            .finish()
    }
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`. Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN` (Lambda always sets one).
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Credentials([REDACTED])")
    }
}

/// `OTEL_TRACES_SAMPLER` (+ `OTEL_TRACES_SAMPLER_ARG` for the ratio ones).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SamplerSetting {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio`.
    TraceIdRatio(f64),
    /// `parentbased_always_on`, the default: Lambda's `Sampled` flag decides.
    #[default]
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`.
    ParentBasedTraceIdRatio(f64),
}

pub use lambda_observability_tower::http_client::Propagator;

/// Everything the span pipeline needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    /// Where spans go; empty means tracing is off (no spans are even recorded).
    pub exporters: Vec<TracesExporter>,
    /// Which spans are recorded.
    pub sampler: SamplerSetting,
    /// Which headers outbound calls carry. Defaults to `tracecontext,xray`.
    pub propagators: Vec<Propagator>,
    /// The one service name: resource `service.name`, the `Service` annotation, log lines.
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES`, decoded, `service.name` removed (it is in `service_name`).
    pub resource_attributes: Vec<(String, String)>,
    /// Bound on one export for exporters without their own (UDP, console).
    pub export_timeout: Duration,
    /// The execution environment, for the resource's `cloud.*` and `faas.*` attributes: a copy of
    /// [`Config::lambda`](super::Config::lambda). Defaults to outside Lambda (no such attributes).
    pub lambda: LambdaSettings,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            exporters: Vec::new(),
            sampler: SamplerSetting::default(),
            propagators: vec![Propagator::TraceContext, Propagator::Xray],
            service_name: String::from("unknown_service"),
            resource_attributes: Vec::new(),
            export_timeout: DEFAULT_EXPORT_TIMEOUT,
            lambda: LambdaSettings::default(),
        }
    }
}
