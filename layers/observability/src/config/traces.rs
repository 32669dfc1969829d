//! Reads [`TelemetrySettings`] as the OpenTelemetry SDK environment specification describes, with
//! the choices AWS's ADOT Lambda distributions make for `otlp` inside Lambda.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use reqwest::Url;

use super::{
    ConfigError,
    env::{self, Env},
    lambda::LambdaSettings,
    telemetry::{
        ContainerEndpoint, CredentialSource, Credentials, DEFAULT_DAEMON_ADDRESS,
        DEFAULT_EXPORT_TIMEOUT, OtlpHttp, Propagator, SamplerSetting, SigV4, TelemetrySettings,
        TracesExporter,
    },
};

/// Where `otlp` sends spans outside Lambda when no endpoint is configured (the spec's default
/// for OTLP/HTTP, `/v1/traces` included).
pub const DEFAULT_OTLP_TRACES_ENDPOINT: &str = "http://localhost:4318/v1/traces";

/// The service name when no variable names one (the spec's default).
pub const DEFAULT_SERVICE_NAME: &str = "unknown_service";

/// `OTEL_PROPAGATORS` when unset: `tracecontext,xray`, not the spec's `tracecontext,baggage`.
/// Lambda and X-Ray carry the trace in `X-Amzn-Trace-Id`, services instrumented with W3C in
/// `traceparent`: an outbound call carrying both continues the trace whichever one is downstream.
pub const DEFAULT_PROPAGATORS: [Propagator; 2] = [Propagator::TraceContext, Propagator::Xray];

impl TelemetrySettings {
    /// Whether an exporter needs TLS (an `https://` OTLP endpoint), so that a function can skip
    /// loading root certificates at init when none does.
    pub fn needs_tls(&self) -> bool {
        self.exporters.iter().any(|exporter| match exporter {
            TracesExporter::OtlpHttp(otlp) => crate::http_client::is_https(&otlp.endpoint),
            _ => false,
        })
    }
}

pub(super) fn read(
    env: &mut Env<'_>,
    lambda: &LambdaSettings,
) -> Result<TelemetrySettings, ConfigError> {
    let resource_attributes = resource_attributes(env);
    let service_name = service_name(env, &resource_attributes, lambda);
    let resource_attributes = resource_attributes
        .into_iter()
        .filter(|(key, _)| key != "service.name")
        .collect();
    let sampler = sampler(env);
    let propagators = propagators(env);
    let export_timeout = otlp_timeout(env);
    // Both switches are read (and a bad value warned about) whatever the other says.
    let sdk_disabled = env.otel_bool("OTEL_SDK_DISABLED");
    let powertools_disabled = env.flag("POWERTOOLS_TRACE_DISABLED").unwrap_or(false);
    let exporters = if sdk_disabled || powertools_disabled {
        Vec::new()
    } else {
        exporters(env, lambda, export_timeout)?
    };
    Ok(TelemetrySettings {
        exporters,
        sampler,
        propagators,
        service_name,
        resource_attributes,
        export_timeout,
        lambda: lambda.clone(),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExporterName {
    Otlp,
    Xray,
    Console,
}

fn exporters(
    env: &mut Env<'_>,
    lambda: &LambdaSettings,
    timeout: Duration,
) -> Result<Vec<TracesExporter>, ConfigError> {
    let mut names = Vec::new();
    let mut none = false;
    if let Some(value) = env.get("OTEL_TRACES_EXPORTER") {
        for item in env::list(&value) {
            match item.as_str() {
                "otlp" => names.push(ExporterName::Otlp),
                "xray" => names.push(ExporterName::Xray),
                "console" => names.push(ExporterName::Console),
                "none" => none = true,
                unknown => env.warn(format!(
                    "OTEL_TRACES_EXPORTER={value:?}: unknown exporter {unknown:?} ignored \
                     (known: otlp, xray, console, none)"
                )),
            }
        }
        if none {
            if !names.is_empty() {
                env.warn(format!(
                    "OTEL_TRACES_EXPORTER={value:?}: `none` turns tracing off; the other exporters are ignored"
                ));
            }
            return Ok(Vec::new());
        }
    }
    if names.is_empty() {
        // Unset, or nothing we know: the spec's default.
        names.push(ExporterName::Otlp);
    }
    let mut exporters = Vec::new();
    for name in names {
        let exporter = match name {
            ExporterName::Otlp => otlp(env, lambda, timeout)?,
            ExporterName::Xray => TracesExporter::XraySegments {
                daemon: daemon(env, "xray")?,
            },
            ExporterName::Console => TracesExporter::Console,
        };
        if let Some(feature) = exporter.missing_feature() {
            env.warn(format!(
                "OTEL_TRACES_EXPORTER asks for the {} exporter, which this build leaves out \
                 (cargo feature `{feature}`): its spans are not exported",
                exporter.name()
            ));
        } else if !exporters.contains(&exporter) {
            exporters.push(exporter);
        }
    }
    Ok(exporters)
}

/// `otlp` as ADOT's Lambda distributions resolve it: a configured endpoint gets OTLP/HTTP;
/// inside Lambda without one, OTLP over UDP to the X-Ray daemon (no collector layer needed);
/// outside Lambda without one, the spec's default endpoint.
fn otlp(
    env: &mut Env<'_>,
    lambda: &LambdaSettings,
    timeout: Duration,
) -> Result<TracesExporter, ConfigError> {
    let endpoint = match env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        // The signal-specific endpoint is used as-is (spec).
        Some(url) => Some(("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)),
        // The generic one is a base URL: the signal's path is appended (spec), after the base's
        // own path and without doubling a trailing slash.
        None => env.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| {
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("{}/v1/traces", base.trim_end_matches('/')),
            )
        }),
    };
    let (variable, endpoint) = match endpoint {
        Some(configured) => configured,
        None if lambda.in_lambda() => {
            return Ok(TracesExporter::OtlpUdp {
                daemon: daemon(env, "otlp (no OTLP endpoint is set, so UDP to the daemon)")?,
            });
        }
        None => ("", DEFAULT_OTLP_TRACES_ENDPOINT.to_owned()),
    };
    let url = http_url(&endpoint).map_err(|problem| {
        ConfigError::new(format!(
            "{variable}={:?} is not an http(s) URL ({problem}); no span could be exported",
            without_userinfo(&env.get(variable).unwrap_or_default())
        ))
    })?;
    let headers = headers(env);
    protocol(env);
    compression(env);
    let sigv4 = sigv4(env, &url, &endpoint, lambda);
    Ok(TracesExporter::OtlpHttp(OtlpHttp {
        endpoint,
        headers,
        timeout,
        sigv4,
    }))
}

fn http_url(endpoint: &str) -> Result<Url, String> {
    let url = Url::parse(endpoint).map_err(|err| err.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?}", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".to_owned());
    }
    Ok(url)
}

/// `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or `tcp:host:port udp:host:port` (spans go over
/// UDP). Fatal when it does not parse: the exporter that asked for it could send nothing.
fn daemon(env: &Env<'_>, exporter: &str) -> Result<SocketAddr, ConfigError> {
    let value = env
        .get("AWS_XRAY_DAEMON_ADDRESS")
        .unwrap_or_else(|| DEFAULT_DAEMON_ADDRESS.to_owned());
    let udp = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(&value);
    parse_socket_address(udp).ok_or_else(|| {
        ConfigError::new(format!(
            "AWS_XRAY_DAEMON_ADDRESS={value:?} is not host:port or \"tcp:host:port udp:host:port\"; \
             the {exporter} exporter sends spans to it"
        ))
    })
}

/// An IP address and port; `localhost` is accepted by name (no DNS lookup at init).
fn parse_socket_address(text: &str) -> Option<SocketAddr> {
    if let Ok(address) = text.parse() {
        return Some(address);
    }
    let port = text.strip_prefix("localhost:")?.parse().ok()?;
    Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`, in milliseconds.
fn otlp_timeout(env: &mut Env<'_>) -> Duration {
    let Some((name, value)) = env.first(&[
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]) else {
        return DEFAULT_EXPORT_TIMEOUT;
    };
    match value.parse::<u64>() {
        Ok(ms) if ms > 0 => Duration::from_millis(ms),
        _ => {
            env.warn(format!(
                "{name}={value:?} is not a positive number of milliseconds; using {}",
                DEFAULT_EXPORT_TIMEOUT.as_millis()
            ));
            DEFAULT_EXPORT_TIMEOUT
        }
    }
}

/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`. A malformed entry is
/// named by its position only: header values are often API keys.
fn headers(env: &mut Env<'_>) -> Vec<(String, String)> {
    let Some((name, value)) = env.first(&[
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ]) else {
        return Vec::new();
    };
    let mut headers = Vec::new();
    for (position, entry) in env::key_values(&value).into_iter().enumerate() {
        let valid = entry.ok().filter(|(key, value)| {
            http::HeaderName::from_bytes(key.as_bytes()).is_ok()
                && http::HeaderValue::from_str(value).is_ok()
        });
        match valid {
            Some(header) => headers.push(header),
            None => env.warn(format!(
                "{name}: entry {} is not a valid key=value header; ignored (value not shown: \
                 headers often carry keys)",
                position + 1
            )),
        }
    }
    headers
}

/// Only `http/protobuf` is implemented; anything else warns and is sent as `http/protobuf`.
fn protocol(env: &mut Env<'_>) {
    if let Some((name, value)) = env.first(&[
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]) && value != "http/protobuf"
    {
        let what = match value.as_str() {
            "grpc" | "http/json" => "is not supported",
            _ => "is not an OTLP protocol",
        };
        env.warn(format!("{name}={value:?} {what}; using http/protobuf"));
    }
}

/// Compression is not implemented: `gzip` warns and spans go uncompressed.
fn compression(env: &mut Env<'_>) {
    if let Some((name, value)) = env.first(&[
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
    ]) && !value.eq_ignore_ascii_case("none")
    {
        env.warn(format!(
            "{name}={value:?} is not supported; spans are sent uncompressed"
        ));
    }
}

/// `value` with any `user:password@` of a URL replaced: the message goes to stderr and to
/// Lambda's init error. Every message and `Debug` naming an endpoint goes through it.
pub(super) fn without_userinfo(value: &str) -> String {
    let Some(scheme_end) = value.find("://").map(|i| i + 3) else {
        return value.to_owned();
    };
    let authority_end = value[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |i| scheme_end + i);
    match value[scheme_end..authority_end].rfind('@') {
        Some(at) => format!(
            "{}[REDACTED]{}",
            &value[..scheme_end],
            &value[scheme_end + at..]
        ),
        None => value.to_owned(),
    }
}

/// The region of X-Ray's OTLP endpoint, `https://xray.<region>.amazonaws.com/…` (or
/// `.amazonaws.com.cn` in the China partition).
fn xray_endpoint_region(url: &Url) -> Option<String> {
    let host = url.host_str()?.strip_prefix("xray.")?;
    let region = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let plausible = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    plausible.then(|| region.to_owned())
}

/// SigV4 is on for X-Ray's OTLP endpoint over https; `OTLP_TRACES_SIGV4` forces it on (VPC
/// endpoints, proxies, test receivers) or off.
fn sigv4(env: &mut Env<'_>, url: &Url, endpoint: &str, lambda: &LambdaSettings) -> Option<SigV4> {
    let host_region = xray_endpoint_region(url);
    let automatic = url.scheme() == "https" && host_region.is_some();
    if !env.flag("OTLP_TRACES_SIGV4").unwrap_or(automatic) {
        return None;
    }
    let Some(region) = host_region.or_else(|| lambda.region.clone()) else {
        env.warn(format!(
            "OTLP_TRACES_SIGV4=true but the endpoint {:?} names no region and neither \
             AWS_REGION nor AWS_DEFAULT_REGION is set; requests are sent unsigned",
            without_userinfo(endpoint)
        ));
        return None;
    };
    let credentials = match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Some(CredentialSource::Environment(Credentials {
                access_key_id,
                secret_access_key,
                session_token: env.get("AWS_SESSION_TOKEN"),
            }))
        }
        (access_key_id, _) => match container_endpoint(env) {
            Some(endpoint) => Some(CredentialSource::Container(endpoint)),
            None => {
                let missing = if access_key_id.is_none() {
                    "AWS_ACCESS_KEY_ID"
                } else {
                    "AWS_SECRET_ACCESS_KEY"
                };
                env.warn(format!(
                    "OTLP requests to {:?} must be signed with SigV4, but {missing} is not set \
                     (nor AWS_CONTAINER_CREDENTIALS_FULL_URI): no spans will be sent there (set \
                     the function's credentials, or OTLP_TRACES_SIGV4=false)",
                    without_userinfo(endpoint)
                ));
                None
            }
        },
    };
    Some(SigV4 {
        region,
        service: "xray".to_owned(),
        credentials,
    })
}

/// The container credentials endpoint the AWS SDKs would use: `AWS_CONTAINER_CREDENTIALS_FULL_URI`,
/// else `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on ECS's host; with its token, from
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
fn container_endpoint(env: &mut Env<'_>) -> Option<ContainerEndpoint> {
    let uri = match env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        Some(full) => full,
        None => {
            let relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")?;
            let separator = if relative.starts_with('/') { "" } else { "/" };
            format!("http://169.254.170.2{separator}{relative}")
        }
    };
    let token_file = env
        .get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        .map(std::path::PathBuf::from);
    let token = match token_file {
        Some(_) => None,
        None => env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    Some(ContainerEndpoint {
        uri,
        token,
        token_file,
    })
}

/// `OTEL_TRACES_SAMPLER`, with `OTEL_TRACES_SAMPLER_ARG` for the ratio samplers.
fn sampler(env: &mut Env<'_>) -> SamplerSetting {
    let Some(value) = env.get("OTEL_TRACES_SAMPLER") else {
        return SamplerSetting::default();
    };
    match value.to_ascii_lowercase().as_str() {
        "always_on" => SamplerSetting::AlwaysOn,
        "always_off" => SamplerSetting::AlwaysOff,
        "traceidratio" => SamplerSetting::TraceIdRatio(ratio(env)),
        "parentbased_always_on" => SamplerSetting::ParentBasedAlwaysOn,
        "parentbased_always_off" => SamplerSetting::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => SamplerSetting::ParentBasedTraceIdRatio(ratio(env)),
        _ => {
            env.warn(format!(
                "OTEL_TRACES_SAMPLER={value:?} is not supported; using parentbased_always_on"
            ));
            SamplerSetting::default()
        }
    }
}

/// `OTEL_TRACES_SAMPLER_ARG`: a probability in [0, 1], 1.0 when unset (spec).
fn ratio(env: &mut Env<'_>) -> f64 {
    let Some(value) = env.get("OTEL_TRACES_SAMPLER_ARG") else {
        return 1.0;
    };
    match value.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => ratio,
        _ => {
            env.warn(format!(
                "OTEL_TRACES_SAMPLER_ARG={value:?} is not a probability in [0, 1]; using 1.0"
            ));
            1.0
        }
    }
}

/// `OTEL_PROPAGATORS`; unset (or nothing usable listed) means [`DEFAULT_PROPAGATORS`].
fn propagators(env: &mut Env<'_>) -> Vec<Propagator> {
    let Some(value) = env.get("OTEL_PROPAGATORS") else {
        return DEFAULT_PROPAGATORS.to_vec();
    };
    let mut propagators = Vec::new();
    let mut none = false;
    for item in env::list(&value) {
        let propagator = match item.as_str() {
            "tracecontext" => Propagator::TraceContext,
            "baggage" => Propagator::Baggage,
            "xray" => Propagator::Xray,
            "none" => {
                none = true;
                continue;
            }
            other => {
                env.warn(format!(
                    "OTEL_PROPAGATORS={value:?}: {other:?} is not supported and is ignored \
                     (supported: tracecontext, baggage, xray, none)"
                ));
                continue;
            }
        };
        if !propagators.contains(&propagator) {
            propagators.push(propagator);
        }
    }
    if none {
        if !propagators.is_empty() {
            env.warn(format!(
                "OTEL_PROPAGATORS={value:?}: `none` turns propagation off; the others are ignored"
            ));
        }
        return Vec::new();
    }
    if propagators.is_empty() {
        return DEFAULT_PROPAGATORS.to_vec();
    }
    propagators
}

/// `OTEL_RESOURCE_ATTRIBUTES`, decoded; a malformed entry warns and is skipped, the others kept.
fn resource_attributes(env: &mut Env<'_>) -> Vec<(String, String)> {
    let Some(value) = env.get("OTEL_RESOURCE_ATTRIBUTES") else {
        return Vec::new();
    };
    let mut attributes: Vec<(String, String)> = Vec::new();
    for entry in env::key_values(&value) {
        match entry {
            Ok((key, value)) => {
                // A key given twice: the last one wins, as in a map.
                attributes.retain(|(existing, _)| *existing != key);
                attributes.push((key, value));
            }
            Err(entry) => env.warn(format!(
                "OTEL_RESOURCE_ATTRIBUTES: {entry:?} is not key=value (percent-encoded); ignored"
            )),
        }
    }
    attributes
}

/// The one service name: `OTEL_SERVICE_NAME`, `service.name` in `OTEL_RESOURCE_ATTRIBUTES`,
/// `POWERTOOLS_SERVICE_NAME`, the function's name, `unknown_service`.
fn service_name(
    env: &Env<'_>,
    resource_attributes: &[(String, String)],
    lambda: &LambdaSettings,
) -> String {
    env.get("OTEL_SERVICE_NAME")
        .or_else(|| {
            resource_attributes
                .iter()
                .find(|(key, value)| key == "service.name" && !value.is_empty())
                .map(|(_, value)| value.clone())
        })
        .or_else(|| env.get("POWERTOOLS_SERVICE_NAME"))
        .or_else(|| lambda.function_name.clone())
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, read_config, try_config};
    use super::*;

    const IN_LAMBDA: (&str, &str) = ("AWS_LAMBDA_FUNCTION_NAME", "hello");

    fn exporters(vars: &[(&str, &str)]) -> Vec<TracesExporter> {
        config(vars).telemetry.exporters
    }

    #[cfg(feature = "otlp-http")]
    fn otlp_http(vars: &[(&str, &str)]) -> OtlpHttp {
        match exporters(vars).as_slice() {
            [TracesExporter::OtlpHttp(otlp)] => otlp.clone(),
            other => panic!("expected one OtlpHttp exporter, got {other:?}"),
        }
    }

    #[cfg(any(feature = "xray-segments", feature = "otlp-udp"))]
    fn daemon(address: &str) -> SocketAddr {
        address.parse().expect("a socket address")
    }

    #[cfg(feature = "otlp-http")]
    fn local_default() -> TracesExporter {
        TracesExporter::OtlpHttp(OtlpHttp {
            endpoint: DEFAULT_OTLP_TRACES_ENDPOINT.to_owned(),
            headers: Vec::new(),
            timeout: DEFAULT_EXPORT_TIMEOUT,
            sigv4: None,
        })
    }

    #[cfg(all(feature = "xray-segments", feature = "console"))]
    #[test]
    fn the_exporter_list_is_trimmed_case_insensitive_and_skips_unknown_names_with_a_warning() {
        let config = config(&[
            ("OTEL_TRACES_EXPORTER", " XRay , zipkin,console,xray "),
            ("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000"),
        ]);
        assert_eq!(
            config.telemetry.exporters,
            vec![
                TracesExporter::XraySegments {
                    daemon: daemon("169.254.79.129:2000")
                },
                TracesExporter::Console,
            ]
        );
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(
            config.warnings[0].contains("unknown exporter \"zipkin\""),
            "{:?}",
            config.warnings
        );
    }

    #[cfg(feature = "otlp-http")]
    #[test]
    fn only_unknown_exporters_fall_back_to_the_otlp_default() {
        let config = config(&[("OTEL_TRACES_EXPORTER", "jaeger,zipkin")]);
        assert_eq!(config.telemetry.exporters, vec![local_default()]);
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    }

    #[test]
    fn none_turns_tracing_off_even_when_listed_with_others() {
        assert_eq!(exporters(&[("OTEL_TRACES_EXPORTER", "none")]), vec![]);
        let mixed = config(&[("OTEL_TRACES_EXPORTER", "console,none")]);
        assert_eq!(mixed.telemetry.exporters, vec![]);
        assert_eq!(mixed.warnings.len(), 1, "{:?}", mixed.warnings);
    }

    #[cfg(feature = "console")]
    #[test]
    fn otel_sdk_disabled_turns_tracing_off() {
        for value in ["true", "TRUE", "True"] {
            let config = config(&[
                ("OTEL_SDK_DISABLED", value),
                ("OTEL_TRACES_EXPORTER", "console"),
            ]);
            assert_eq!(config.telemetry.exporters, vec![], "{value}");
        }
        assert_eq!(
            exporters(&[
                ("OTEL_SDK_DISABLED", "false"),
                ("OTEL_TRACES_EXPORTER", "console")
            ]),
            vec![TracesExporter::Console]
        );
        let odd = config(&[
            ("OTEL_SDK_DISABLED", "1"),
            ("OTEL_TRACES_EXPORTER", "console"),
        ]);
        assert_eq!(
            odd.telemetry.exporters,
            vec![TracesExporter::Console],
            "only `true` is true"
        );
        assert_eq!(odd.warnings.len(), 1, "{:?}", odd.warnings);
    }

    #[cfg(feature = "console")]
    #[test]
    fn powertools_trace_disabled_turns_tracing_off() {
        assert_eq!(
            exporters(&[("POWERTOOLS_TRACE_DISABLED", "true"), IN_LAMBDA]),
            vec![]
        );
        assert_eq!(
            exporters(&[
                ("POWERTOOLS_TRACE_DISABLED", "false"),
                ("OTEL_TRACES_EXPORTER", "console")
            ]),
            vec![TracesExporter::Console]
        );
    }

    #[test]
    fn disabled_tracing_never_fails_on_settings_it_does_not_use() {
        let config = config(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("AWS_XRAY_DAEMON_ADDRESS", "nowhere"),
            ("OTEL_TRACES_EXPORTER", "otlp,xray"),
        ]);
        assert_eq!(config.telemetry.exporters, vec![]);
    }

    #[cfg(feature = "otlp-udp")]
    #[test]
    fn otlp_inside_lambda_without_an_endpoint_goes_over_udp_to_the_daemon() {
        assert_eq!(
            exporters(&[IN_LAMBDA]),
            vec![TracesExporter::OtlpUdp {
                daemon: daemon(DEFAULT_DAEMON_ADDRESS)
            }],
            "unset OTEL_TRACES_EXPORTER means otlp"
        );
        assert_eq!(
            exporters(&[
                IN_LAMBDA,
                ("OTEL_TRACES_EXPORTER", "otlp"),
                (
                    "AWS_XRAY_DAEMON_ADDRESS",
                    "tcp:127.0.0.1:2000 udp:169.254.79.129:2001"
                ),
            ]),
            vec![TracesExporter::OtlpUdp {
                daemon: daemon("169.254.79.129:2001")
            }]
        );
    }

    #[cfg(feature = "otlp-http")]
    #[test]
    fn otlp_with_an_endpoint_or_outside_lambda_goes_over_http() {
        assert_eq!(
            exporters(&[]),
            vec![local_default()],
            "the spec's default outside Lambda"
        );
        let in_lambda = otlp_http(&[
            IN_LAMBDA,
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
        ]);
        assert_eq!(in_lambda.endpoint, "http://localhost:4318/v1/traces");
    }

    #[cfg(feature = "otlp-http")]
    #[test]
    fn the_generic_endpoint_gets_the_traces_path_and_the_specific_one_is_used_as_is() {
        let endpoint = |vars: &[(&str, &str)]| otlp_http(vars).endpoint;
        assert_eq!(
            endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]),
            "http://collector:4318/v1/traces",
            "no doubled slash"
        );
        assert_eq!(
            endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://gateway/otel/")]),
            "https://gateway/otel/v1/traces",
            "the base's own path is kept"
        );
        assert_eq!(
            endpoint(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://specific:4318/custom"
                ),
            ]),
            "http://specific:4318/custom"
        );
    }

    #[cfg(feature = "otlp-http")]
    #[test]
    fn an_empty_specific_endpoint_is_unset_so_the_generic_https_one_decides_tls() {
        let config = config(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector.example:4318",
            ),
            ("OTEL_TRACES_EXPORTER", ""),
        ]);
        assert_eq!(
            config.telemetry.exporters,
            vec![TracesExporter::OtlpHttp(OtlpHttp {
                endpoint: "https://collector.example:4318/v1/traces".to_owned(),
                headers: Vec::new(),
                timeout: DEFAULT_EXPORT_TIMEOUT,
                sigv4: None,
            })]
        );
        assert!(config.needs_tls());
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[cfg(feature = "otlp-http")]
    #[test]
    fn tls_is_needed_only_for_an_https_otlp_endpoint() {
        let tls = |vars: &[(&str, &str)]| config(vars).needs_tls();
        assert!(!tls(&[]), "the default endpoint is plain HTTP");
        assert!(!tls(&[IN_LAMBDA]), "UDP to the daemon");
        assert!(!tls(&[
            ("OTEL_TRACES_EXPORTER", "xray,console"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
        ]));
        assert!(!tls(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://localhost:4318/v1/traces"
            ),
        ]));
        assert!(tls(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "HTTPS://collector/v1/traces"
        )]));
    }

    #[cfg(feature = "otlp-http")]
    #[test]
    fn headers_are_decoded_and_a_malformed_entry_warns_without_its_value() {
        let config = config(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-ignored=1"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "x-api-key = s%3Dcret%2C1 ,authorization=Basic%20YWxh,hunter2,bad header=x",
            ),
        ]);
        let [TracesExporter::OtlpHttp(otlp)] = config.telemetry.exporters.as_slice() else {
            panic!("{:?}", config.telemetry.exporters);
        };
        assert_eq!(
            otlp.headers,
            vec![
                ("x-api-key".to_owned(), "s=cret,1".to_owned()),
                ("authorization".to_owned(), "Basic YWxh".to_owned()),
            ],
            "the traces-specific variable wins whole"
        );
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        assert!(
            config.warnings[0].contains("entry 3"),
            "{:?}",
            config.warnings
        );
        assert!(
            config.warnings[1].contains("entry 4"),
            "{:?}",
            config.warnings
        );
        assert!(!format!("{:?}", config.warnings).contains("hunter2"));
        assert_eq!(
            otlp_http(&[("OTEL_EXPORTER_OTLP_HEADERS", "a=b")]).headers,
            vec![("a".to_owned(), "b".to_owned())]
        );
    }

    #[cfg(feature = "otlp-http")]
    #[test]
    fn the_traces_timeout_wins_over_the_generic_one() {
        let both = [
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1500"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "700"),
        ];
        let config = config(&both);
        assert_eq!(config.telemetry.export_timeout, Duration::from_millis(1500));
        assert_eq!(otlp_http(&both).timeout, Duration::from_millis(1500));
        assert_eq!(otlp_http(&both[1..]).timeout, Duration::from_millis(700));
        assert_eq!(otlp_http(&[]).timeout, Duration::from_secs(10));
        let bad = super::super::tests::config(&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2s")]);
        assert_eq!(bad.telemetry.export_timeout, DEFAULT_EXPORT_TIMEOUT);
        assert_eq!(
            bad.warnings,
            vec![
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=\"2s\" is not a positive number of milliseconds; using 10000"
                    .to_owned()
            ]
        );
    }

    #[cfg(feature = "otlp-http")]
    #[test]
    fn protocols_other_than_http_protobuf_and_compression_warn() {
        for (name, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ] {
            let config = config(&[(name, value)]);
            assert_eq!(config.telemetry.exporters, vec![local_default()]);
            assert_eq!(config.warnings.len(), 1, "{name}={value}");
            assert!(
                config.warnings[0].starts_with(&format!("{name}={value:?}")),
                "{:?}",
                config.warnings
            );
        }
        for (name, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ] {
            assert!(
                config(&[(name, value)]).warnings.is_empty(),
                "{name}={value}"
            );
        }
    }

    #[cfg(feature = "sigv4")]
    const CREDENTIALS: [(&str, &str); 3] = [
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "SECRET"),
        ("AWS_SESSION_TOKEN", "TOKEN"),
    ];

    #[cfg(feature = "sigv4")]
    fn with_credentials(
        vars: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        vars.iter().chain(CREDENTIALS.iter()).copied().collect()
    }

    #[cfg(feature = "sigv4")]
    #[test]
    fn sigv4_is_on_for_x_rays_otlp_endpoint_with_the_region_from_its_host() {
        let otlp = otlp_http(&with_credentials(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://xray.ap-southeast-2.amazonaws.com/v1/traces",
        )]));
        assert_eq!(
            otlp.sigv4,
            Some(SigV4 {
                region: "ap-southeast-2".to_owned(),
                service: "xray".to_owned(),
                credentials: Some(CredentialSource::Environment(Credentials {
                    access_key_id: "AKID".to_owned(),
                    secret_access_key: "SECRET".to_owned(),
                    session_token: Some("TOKEN".to_owned()),
                })),
            })
        );
        let china = otlp_http(&with_credentials(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://xray.cn-north-1.amazonaws.com.cn/v1/traces",
        )]));
        assert_eq!(
            china.sigv4.map(|sigv4| sigv4.region).as_deref(),
            Some("cn-north-1"),
            "the China partition's endpoint"
        );
        for endpoint in [
            "https://collector.example/v1/traces",
            "http://xray.us-east-1.amazonaws.com/v1/traces",
            "https://xray.amazonaws.com/v1/traces",
            "https://notxray.us-east-1.amazonaws.com/v1/traces",
        ] {
            let otlp = otlp_http(&with_credentials(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                endpoint,
            )]));
            assert_eq!(otlp.sigv4, None, "{endpoint}");
        }
    }

    #[cfg(feature = "sigv4")]
    #[test]
    fn otlp_traces_sigv4_forces_signing_on_or_off() {
        let forced_on = otlp_http(&with_credentials(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318/v1/traces",
            ),
            ("OTLP_TRACES_SIGV4", "true"),
            ("AWS_DEFAULT_REGION", "eu-central-1"),
        ]));
        let sigv4 = forced_on.sigv4.expect("forced on");
        assert_eq!(sigv4.region, "eu-central-1");
        assert_eq!(sigv4.service, "xray");
        assert!(sigv4.credentials.is_some());
        let forced_off = otlp_http(&with_credentials(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://xray.us-east-1.amazonaws.com",
            ),
            ("OTLP_TRACES_SIGV4", "false"),
        ]));
        assert_eq!(forced_off.sigv4, None);
        let no_region = config(&with_credentials(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318/v1/traces",
            ),
            ("OTLP_TRACES_SIGV4", "true"),
        ]));
        assert_eq!(no_region.warnings.len(), 1, "{:?}", no_region.warnings);
        assert!(no_region.warnings[0].contains("AWS_REGION"));
    }

    #[cfg(feature = "sigv4")]
    #[test]
    fn missing_credentials_warn_once_without_showing_any_value() {
        for present in [
            &[][..],
            &[("AWS_ACCESS_KEY_ID", "AKIDVALUE")][..],
            &[("AWS_SECRET_ACCESS_KEY", "SECRETVALUE")][..],
        ] {
            let mut vars = vec![(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://xray.us-west-2.amazonaws.com/v1/traces",
            )];
            vars.extend_from_slice(present);
            let config = config(&vars);
            let [TracesExporter::OtlpHttp(otlp)] = config.telemetry.exporters.as_slice() else {
                panic!("{:?}", config.telemetry.exporters);
            };
            let sigv4 = otlp.sigv4.as_ref().expect("signing stays on");
            assert_eq!(sigv4.credentials, None);
            assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
            assert!(
                config.warnings[0].contains("SigV4"),
                "{:?}",
                config.warnings
            );
            let shown = config.warnings[0].as_str();
            assert!(
                !shown.contains("AKIDVALUE") && !shown.contains("SECRETVALUE"),
                "{shown}"
            );
        }
    }

    #[cfg(feature = "sigv4")]
    #[test]
    fn without_keys_the_container_credentials_endpoint_signs_and_keys_come_first() {
        let signed = |vars: &[(&'static str, &'static str)]| {
            let mut all = vec![(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://xray.us-west-2.amazonaws.com/v1/traces",
            )];
            all.extend_from_slice(vars);
            let config = config(&all);
            assert!(config.warnings.is_empty(), "{:?}", config.warnings);
            let [TracesExporter::OtlpHttp(otlp)] = config.telemetry.exporters.as_slice() else {
                panic!("{:?}", config.telemetry.exporters);
            };
            otlp.sigv4.clone().expect("signed").credentials
        };
        let full = signed(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:1338/creds",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "TOKENVALUE"),
        ]);
        assert_eq!(
            full,
            Some(CredentialSource::Container(ContainerEndpoint {
                uri: "http://127.0.0.1:1338/creds".into(),
                token: Some("TOKENVALUE".into()),
                token_file: None,
            }))
        );
        let shown = format!("{full:?}");
        assert!(
            !shown.contains("TOKENVALUE") && shown.contains("[REDACTED]"),
            "{shown}"
        );
        // The SDKs prefer the token file (rotated by its owner) over the token.
        let file = signed(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "TOKENVALUE"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/token"),
        ]);
        assert_eq!(
            file,
            Some(CredentialSource::Container(ContainerEndpoint {
                uri: "http://169.254.170.23/v1/credentials".into(),
                token: None,
                token_file: Some("/var/run/token".into()),
            }))
        );
        let relative = signed(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/id",
        )]);
        assert_eq!(
            relative,
            Some(CredentialSource::Container(ContainerEndpoint {
                uri: "http://169.254.170.2/v2/credentials/id".into(),
                token: None,
                token_file: None,
            }))
        );
        let both = signed(&with_credentials(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:1338/creds",
        )]));
        assert!(
            matches!(both, Some(CredentialSource::Environment(_))),
            "the keys in the environment come first, as in the SDKs' chain"
        );
    }

    #[test]
    fn samplers_and_their_ratio() {
        let sampler = |vars: &[(&str, &str)]| config(vars).telemetry.sampler;
        assert_eq!(sampler(&[]), SamplerSetting::ParentBasedAlwaysOn);
        assert_eq!(
            sampler(&[("OTEL_TRACES_SAMPLER", "always_on")]),
            SamplerSetting::AlwaysOn
        );
        assert_eq!(
            sampler(&[("OTEL_TRACES_SAMPLER", "always_off")]),
            SamplerSetting::AlwaysOff
        );
        assert_eq!(
            sampler(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]),
            SamplerSetting::ParentBasedAlwaysOff
        );
        assert_eq!(
            sampler(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25")
            ]),
            SamplerSetting::TraceIdRatio(0.25)
        );
        assert_eq!(
            sampler(&[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")]),
            SamplerSetting::ParentBasedTraceIdRatio(1.0),
            "the ratio defaults to 1.0"
        );
    }

    #[test]
    fn a_bad_ratio_or_an_unsupported_sampler_warns_and_uses_the_default() {
        for bad in ["1.5", "-0.1", "half", "NaN"] {
            let config = config(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", bad),
            ]);
            assert_eq!(
                config.telemetry.sampler,
                SamplerSetting::TraceIdRatio(1.0),
                "{bad}"
            );
            assert_eq!(config.warnings.len(), 1, "{bad}: {:?}", config.warnings);
        }
        for unsupported in ["jaeger_remote", "xray", "parentbased_jaeger_remote"] {
            let config = config(&[("OTEL_TRACES_SAMPLER", unsupported)]);
            assert_eq!(
                config.telemetry.sampler,
                SamplerSetting::ParentBasedAlwaysOn
            );
            assert_eq!(
                config.warnings.len(),
                1,
                "{unsupported}: {:?}",
                config.warnings
            );
        }
    }

    #[test]
    fn propagators_default_to_tracecontext_and_xray_and_skip_unsupported_ones() {
        let propagators = |vars: &[(&str, &str)]| config(vars).telemetry.propagators;
        assert_eq!(
            propagators(&[]),
            vec![Propagator::TraceContext, Propagator::Xray]
        );
        assert_eq!(
            propagators(&[("OTEL_PROPAGATORS", "baggage, TraceContext")]),
            vec![Propagator::Baggage, Propagator::TraceContext]
        );
        assert_eq!(propagators(&[("OTEL_PROPAGATORS", "none")]), vec![]);
        let mixed = config(&[(
            "OTEL_PROPAGATORS",
            "b3,xray,b3multi,jaeger,ottrace,xray-lambda",
        )]);
        assert_eq!(mixed.telemetry.propagators, vec![Propagator::Xray]);
        assert_eq!(mixed.warnings.len(), 5, "{:?}", mixed.warnings);
        let only_unsupported = config(&[("OTEL_PROPAGATORS", "b3")]);
        assert_eq!(
            only_unsupported.telemetry.propagators,
            DEFAULT_PROPAGATORS.to_vec()
        );
        assert_eq!(only_unsupported.warnings.len(), 1);
    }

    #[test]
    fn resource_attributes_are_decoded_and_malformed_entries_skipped() {
        let config = config(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,team=a%20b,broken,service.name=shop,x=%zz",
        )]);
        assert_eq!(
            config.telemetry.resource_attributes,
            vec![
                ("deployment.environment".to_owned(), "prod".to_owned()),
                ("team".to_owned(), "a b".to_owned()),
            ]
        );
        assert_eq!(config.telemetry.service_name, "shop");
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        assert!(
            config.warnings[0].contains("\"broken\""),
            "{:?}",
            config.warnings
        );
    }

    #[test]
    fn the_service_name_comes_from_the_first_variable_that_names_one() {
        let chain = [
            ("OTEL_SERVICE_NAME", "otel"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=resource"),
            ("POWERTOOLS_SERVICE_NAME", "powertools"),
            ("AWS_LAMBDA_FUNCTION_NAME", "function"),
        ];
        let expected = ["otel", "resource", "powertools", "function"];
        for (level, expected) in expected.iter().enumerate() {
            let mut vars = chain[level..].to_vec();
            vars.push(("OTEL_TRACES_EXPORTER", "none"));
            assert_eq!(config(&vars).telemetry.service_name, *expected);
        }
        assert_eq!(config(&[]).telemetry.service_name, "unknown_service");
        assert_eq!(
            config(&[
                ("OTEL_RESOURCE_ATTRIBUTES", "service.name="),
                ("POWERTOOLS_SERVICE_NAME", "powertools"),
            ])
            .telemetry
            .service_name,
            "powertools",
            "an empty service.name is unset"
        );
    }

    #[test]
    fn a_fatal_endpoint_error_never_shows_the_urls_credentials() {
        let err = try_config(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "ftp://user:pa55word@collector:4318/v1/traces",
            ),
            IN_LAMBDA,
        ])
        .map(|_| ())
        .expect_err("not http");
        let message = err.to_string();
        assert!(!message.contains("pa55word"), "{message}");
        assert!(
            message.contains("ftp://[REDACTED]@collector:4318/v1/traces"),
            "{message}"
        );
    }

    #[test]
    fn an_otlp_endpoint_that_is_not_an_http_url_is_fatal() {
        for (name, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "grpc://collector:4317",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url"),
        ] {
            let err = try_config(&[(name, value), IN_LAMBDA])
                .map(|_| ())
                .expect_err(value);
            assert!(
                err.to_string()
                    .starts_with(&format!("{name}={value:?} is not an http(s) URL")),
                "{err}"
            );
        }
        assert!(
            try_config(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
                ("OTEL_TRACES_EXPORTER", "console"),
            ])
            .is_ok(),
            "an endpoint no exporter uses is not fatal"
        );
    }

    #[test]
    fn a_daemon_address_that_does_not_parse_is_fatal_only_when_an_exporter_needs_it() {
        for vars in [
            &[
                ("OTEL_TRACES_EXPORTER", "xray"),
                ("AWS_XRAY_DAEMON_ADDRESS", "daemon"),
            ][..],
            &[
                IN_LAMBDA,
                ("AWS_XRAY_DAEMON_ADDRESS", "tcp:127.0.0.1:2000 udp:nowhere"),
            ][..],
        ] {
            let err = try_config(vars).map(|_| ()).expect_err("fatal");
            assert!(
                err.to_string().starts_with("AWS_XRAY_DAEMON_ADDRESS="),
                "{err}"
            );
        }
        assert!(
            try_config(&[
                IN_LAMBDA,
                ("AWS_XRAY_DAEMON_ADDRESS", "daemon"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
            ])
            .is_ok(),
            "OTLP/HTTP does not use the daemon"
        );
        #[cfg(feature = "xray-segments")]
        assert_eq!(
            exporters(&[
                ("OTEL_TRACES_EXPORTER", "xray"),
                ("AWS_XRAY_DAEMON_ADDRESS", "localhost:2001")
            ]),
            vec![TracesExporter::XraySegments {
                daemon: daemon("127.0.0.1:2001")
            }]
        );
    }

    #[test]
    fn an_exporter_this_build_left_out_is_dropped_with_a_warning_naming_its_feature() {
        let config = read_config(&[("OTEL_TRACES_EXPORTER", "xray,console")]).expect("config");
        for (exporter, feature, built) in [
            (
                TracesExporter::XraySegments {
                    daemon: DEFAULT_DAEMON_ADDRESS.parse().expect("address"),
                },
                "xray-segments",
                cfg!(feature = "xray-segments"),
            ),
            (
                TracesExporter::Console,
                "console",
                cfg!(feature = "console"),
            ),
        ] {
            assert_eq!(exporter.missing_feature(), (!built).then_some(feature));
            assert_eq!(config.telemetry.exporters.contains(&exporter), built);
            let warned = config
                .warnings
                .iter()
                .any(|w| w.contains(&format!("cargo feature `{feature}`")));
            assert_eq!(warned, !built, "{:?}", config.warnings);
        }
        let signed = TracesExporter::OtlpHttp(OtlpHttp {
            endpoint: "https://xray.eu-west-1.amazonaws.com/v1/traces".into(),
            headers: Vec::new(),
            timeout: DEFAULT_EXPORT_TIMEOUT,
            sigv4: Some(SigV4 {
                region: "eu-west-1".into(),
                service: "xray".into(),
                credentials: None,
            }),
        });
        let needs = if !cfg!(feature = "otlp-http") {
            Some("otlp-http")
        } else if !cfg!(feature = "sigv4") {
            Some("sigv4")
        } else {
            None
        };
        assert_eq!(signed.missing_feature(), needs);
        assert_eq!(signed.name(), "SigV4-signed OTLP/HTTP");
    }

    /// Each exporter asked for through the environment, as a user would: in a build that leaves
    /// its feature out (`make features` builds each one alone), `Config` drops it with one warning
    /// naming the feature; built in, it is kept without one. Only such builds run this.
    #[cfg(not(all(
        feature = "xray-segments",
        feature = "otlp-udp",
        feature = "otlp-http",
        feature = "sigv4",
        feature = "console"
    )))]
    #[test]
    fn each_exporter_this_build_leaves_out_is_dropped_with_one_warning_naming_its_feature() {
        let signed_needs = if cfg!(feature = "otlp-http") {
            "sigv4"
        } else {
            "otlp-http"
        };
        let cases: [(&[(&str, &str)], &str, bool); 5] = [
            (
                &[("OTEL_TRACES_EXPORTER", "xray")],
                "xray-segments",
                cfg!(feature = "xray-segments"),
            ),
            (
                &[IN_LAMBDA, ("OTEL_TRACES_EXPORTER", "otlp")],
                "otlp-udp",
                cfg!(feature = "otlp-udp"),
            ),
            (
                &[(
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://collector:4318/v1/traces",
                )],
                "otlp-http",
                cfg!(feature = "otlp-http"),
            ),
            (
                &[
                    (
                        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                        "https://xray.eu-west-1.amazonaws.com/v1/traces",
                    ),
                    ("AWS_ACCESS_KEY_ID", "AKID"),
                    ("AWS_SECRET_ACCESS_KEY", "SECRET"),
                ],
                signed_needs,
                cfg!(feature = "sigv4"),
            ),
            (
                &[("OTEL_TRACES_EXPORTER", "console")],
                "console",
                cfg!(feature = "console"),
            ),
        ];
        let mut left_out = 0;
        for (vars, feature, built) in cases {
            let config = read_config(vars).expect("a usable configuration");
            let about: Vec<&String> = config
                .warnings
                .iter()
                .filter(|w| w.contains("which this build leaves out"))
                .collect();
            if built {
                assert_eq!(config.telemetry.exporters.len(), 1, "{vars:?}");
                assert!(about.is_empty(), "{vars:?}: {about:?}");
            } else {
                left_out += 1;
                assert_eq!(config.telemetry.exporters, vec![], "{vars:?}");
                assert_eq!(about.len(), 1, "{vars:?}: {:?}", config.warnings);
                assert!(
                    about[0].contains(&format!("(cargo feature `{feature}`)"))
                        && about[0].contains("its spans are not exported"),
                    "{vars:?}: {}",
                    about[0]
                );
            }
        }
        assert!(left_out > 0, "a build leaving an exporter out runs this");
    }
}
