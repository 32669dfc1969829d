//! Reads [`TelemetrySettings`] as the OpenTelemetry SDK environment specification describes, with
//! the choices AWS's ADOT Lambda distributions make for `otlp` inside Lambda.

use std::net::{Ipv4Addr, SocketAddr};

use reqwest::Url;

use super::{
    ConfigError,
    env::{self, Env},
    lambda::LambdaSettings,
    telemetry::{
        Credentials, DEFAULT_DAEMON_ADDRESS, DEFAULT_EXPORT_TIMEOUT, OtlpHttp, Propagator,
        SamplerSetting, SigV4, TelemetrySettings, TracesExporter,
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
    timeout: std::time::Duration,
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
        if !exporters.contains(&exporter) {
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
    timeout: std::time::Duration,
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
                daemon: daemon(env, "otlp (UDP to the daemon, as no OTLP endpoint is set)")?,
            });
        }
        None => ("", DEFAULT_OTLP_TRACES_ENDPOINT.to_owned()),
    };
    let url = http_url(&endpoint).map_err(|problem| {
        ConfigError::new(format!(
            "{variable}={:?} is not an http(s) URL ({problem}); no span could be exported",
            env.get(variable).unwrap_or_default()
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
fn otlp_timeout(env: &mut Env<'_>) -> std::time::Duration {
    let Some((name, value)) = env.first(&[
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]) else {
        return DEFAULT_EXPORT_TIMEOUT;
    };
    match value.parse::<u64>() {
        Ok(ms) if ms > 0 => std::time::Duration::from_millis(ms),
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

/// The region of X-Ray's OTLP endpoint, `https://xray.<region>.amazonaws.com/…`.
fn xray_endpoint_region(url: &Url) -> Option<String> {
    let region = url
        .host_str()?
        .strip_prefix("xray.")?
        .strip_suffix(".amazonaws.com")?;
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
            "OTLP_TRACES_SIGV4=true but the endpoint {endpoint:?} names no region and neither \
             AWS_REGION nor AWS_DEFAULT_REGION is set; requests are sent unsigned"
        ));
        return None;
    };
    let credentials = match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: env.get("AWS_SESSION_TOKEN"),
        }),
        (access_key_id, _) => {
            let missing = if access_key_id.is_none() {
                "AWS_ACCESS_KEY_ID"
            } else {
                "AWS_SECRET_ACCESS_KEY"
            };
            env.warn(format!(
                "OTLP requests to {endpoint:?} must be signed with SigV4, but {missing} is not set: \
                 no spans will be sent there (set the function's credentials, or OTLP_TRACES_SIGV4=false)"
            ));
            None
        }
    };
    Some(SigV4 {
        region,
        service: "xray".to_owned(),
        credentials,
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
