//! The span export pipeline, built once per execution environment: the per-invocation pipeline
//! of [`lambda_observability_tower::export`] (re-exported here), fed by the exporters the
//! configuration chose.
//!
//! Lambda freezes the process as soon as the runtime asks for the next event, so a background
//! batch exporter can lose spans, and a synchronous `force_flush` from inside the invocation has
//! deadlocked on single-threaded runtimes (opentelemetry-rust #3176). This pipeline does neither:
//! [`InvocationSpanProcessor`] only buffers finished spans, keyed by trace, and
//! [`SpanFlusher::flush`] exports one trace's spans *asynchronously, inside the invocation
//! future*, after the response has been sent and before the runtime polls for the next event.
//! Every span lost on the way is counted by reason ([`SpanFlusher::stats`],
//! [`SpanFlusher::take_dropped`], [`FlushOutcome`]).
//!
//! Where spans go is [`TelemetrySettings::exporters`]; each batch goes to each of them:
//!
//! | `TracesExporter` | destination |
//! |---|---|
//! | `XraySegments` | X-Ray segment documents over UDP to the daemon |
//! | `OtlpUdp` | OTLP protobuf over UDP to the daemon, as ADOT's Lambda distributions send it |
//! | `OtlpHttp` | OTLP/HTTP protobuf (the ADOT collector layer on `localhost:4318`, or X-Ray's OTLP endpoint with SigV4) |
//! | `Console` | a readable timeline of each invocation's spans on stderr |
//!
//! None at all: spans are not even recorded. The daemon exporters, the OTLP/HTTP exporter's
//! builder and the resource are built at the first export, after the first response.
//!
//! ```
//! use lambda_observability::{
//!     config::{TelemetrySettings, telemetry::TracesExporter},
//!     export,
//! };
//!
//! # fn main() -> Result<(), lambda_observability::BoxError> {
//! let settings = TelemetrySettings {
//!     exporters: vec![TracesExporter::Console],
//!     service_name: "hello".into(),
//!     ..TelemetrySettings::default()
//! };
//! let telemetry = export::init(&settings, None)?;
//! assert!(telemetry.tracer().is_some());
//! # Ok(())
//! # }
//! ```

#[cfg(any(feature = "xray-segments", feature = "otlp-udp"))]
mod daemon;
#[cfg(feature = "otlp-http")]
mod otlp_http;

pub use lambda_observability_tower::export::*;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::{Resource, resource::TelemetryResourceDetector, trace::Sampler};

#[cfg(any(
    feature = "xray-segments",
    feature = "otlp-udp",
    feature = "otlp-http",
    feature = "console"
))]
use crate::config::telemetry::TracesExporter;
use crate::{
    BoxError,
    config::{
        LambdaSettings,
        telemetry::{SamplerSetting, TelemetrySettings},
    },
};

/// Span attributes that the X-Ray segment exporter turns into indexed annotations.
pub const ANNOTATIONS: &[&str] = &["ColdStart", "Service", "ErrorKind"];

/// Builds the pipeline `settings` describe. `http` is reused by the OTLP/HTTP exporter so that
/// the function's single HTTP client (and its connection pool) serves both; without one a new
/// client is built. No exporter configured: no provider, and spans are not recorded.
pub fn init(
    settings: &TelemetrySettings,
    http: Option<reqwest::Client>,
) -> Result<Telemetry, BoxError> {
    if settings.exporters.is_empty() {
        return Ok(Telemetry::disabled());
    }
    let timeout = settings.export_timeout;
    let mut builder = Telemetry::builder();
    for exporter in &settings.exporters {
        // The configuration has already dropped (with a warning) what this build left out;
        // settings built in code get an error.
        if let Some(feature) = exporter.missing_feature() {
            return Err(format!(
                "the {} exporter is not in this build (cargo feature `{feature}`)",
                exporter.name()
            )
            .into());
        }
        builder = match exporter {
            // Built at the first export, after the first response.
            #[cfg(feature = "xray-segments")]
            TracesExporter::XraySegments { daemon } => {
                let daemon = *daemon;
                builder.deliver_to_lazy("xray", timeout, move || {
                    Ok(daemon::Daemon(
                        lambda_observability_daemon::SegmentExporter::connect(daemon)?
                            .annotations(ANNOTATIONS.iter().copied()),
                    ))
                })
            }
            #[cfg(feature = "otlp-udp")]
            TracesExporter::OtlpUdp { daemon } => {
                let daemon = *daemon;
                builder.deliver_to_lazy("otlp-udp", timeout, move || {
                    Ok(daemon::Daemon(
                        lambda_observability_daemon::OtlpUdpExporter::connect(daemon)?,
                    ))
                })
            }
            // Requests to sign without credentials to sign with: no exporter at all (the
            // configuration has warned once); anything else is built at the first export.
            #[cfg(feature = "otlp-http")]
            TracesExporter::OtlpHttp(otlp)
                if otlp
                    .sigv4
                    .as_ref()
                    .is_some_and(|sigv4| sigv4.credentials.is_none()) =>
            {
                builder
            }
            #[cfg(feature = "otlp-http")]
            TracesExporter::OtlpHttp(otlp) => {
                let (settings, http) = (otlp.clone(), http.clone());
                builder.deliver_to_lazy("otlp-http", otlp.timeout, move || {
                    match otlp_http::exporter(&settings, http.clone())? {
                        Some(exporter) => Ok(Plain(exporter)),
                        None => Err("no AWS credentials to sign the requests with".into()),
                    }
                })
            }
            #[cfg(feature = "console")]
            TracesExporter::Console => {
                builder.exporter("console", timeout, ConsoleExporter::stderr())
            }
            // Left out of this build: refused above.
            #[allow(unreachable_patterns)]
            _ => builder,
        };
    }
    #[cfg(not(feature = "otlp-http"))]
    drop(http);
    // Built at the first export, after the first response (see `ResourceSource`).
    let resource_settings = settings.clone();
    Ok(builder
        .resource(ResourceSource::new(move || resource(&resource_settings)))
        .sampler(sampler(settings.sampler))
        .export_timeout(timeout)
        .build())
}

/// The SDK sampler for a setting. The parent-based ones follow the `Sampled` flag of the
/// invocation's `Lambda-Runtime-Trace-Id`; a trace started here (no header) uses the root rule.
pub fn sampler(setting: SamplerSetting) -> Sampler {
    match setting {
        SamplerSetting::AlwaysOn => Sampler::AlwaysOn,
        SamplerSetting::AlwaysOff => Sampler::AlwaysOff,
        SamplerSetting::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio),
        SamplerSetting::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerSetting::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerSetting::ParentBasedTraceIdRatio(ratio) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
        }
    }
}

/// The resource describing this function: `telemetry.sdk.*`, `cloud.*` and `faas.*` from the
/// configuration's [`LambdaSettings`] (the attributes `opentelemetry-aws`'s
/// `LambdaResourceDetector` sets, without reading the environment a second time), then
/// `settings.resource_attributes`, then `service.name`.
pub fn resource(settings: &TelemetrySettings) -> Resource {
    // One list, later keys winning, so the SDK merges once instead of once per source.
    let configured = settings
        .resource_attributes
        .iter()
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()));
    let service_name = KeyValue::new("service.name", settings.service_name.clone());
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(
            lambda_attributes(&settings.lambda)
                .into_iter()
                .chain(configured)
                .chain([service_name]),
        )
        .build()
}

/// Where the Lambda runtime leaves the account id: a symlink whose target is the id.
const ACCOUNT_ID_SYMLINK: &str = "/tmp/.otel-aws-account-id";

/// Whether [`resource`] describes the function (its `cloud.*` and `faas.*` attributes): inside
/// Lambda, where the function has a name. The invocation span then leaves those attributes to the
/// resource ([`TraceLayer::function_attributes`](lambda_observability_tower::TraceLayer::function_attributes)).
pub fn resource_describes_function(settings: &TelemetrySettings) -> bool {
    function_name(&settings.lambda).is_some()
}

fn function_name(lambda: &LambdaSettings) -> Option<&str> {
    lambda.function_name.as_deref().filter(|n| !n.is_empty())
}

/// The semantic-convention attributes of a Lambda function; none outside Lambda.
fn lambda_attributes(lambda: &LambdaSettings) -> Vec<KeyValue> {
    let Some(name) = function_name(lambda) else {
        return Vec::new();
    };
    let mut attributes = vec![
        KeyValue::new("cloud.provider", "aws"),
        KeyValue::new("cloud.platform", "aws_lambda"),
        KeyValue::new("faas.name", name.to_owned()),
    ];
    let text = [
        ("cloud.region", &lambda.region),
        ("faas.version", &lambda.function_version),
        ("faas.instance", &lambda.log_stream),
    ];
    for (key, value) in text {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            attributes.push(KeyValue::new(key, value.to_owned()));
        }
    }
    if let Some(mb) = lambda.memory_mb {
        attributes.push(KeyValue::new(
            "faas.max_memory",
            i64::from(mb) * 1024 * 1024,
        ));
    }
    if let Some(group) = lambda.log_group.as_deref().filter(|g| !g.is_empty()) {
        attributes.push(KeyValue::new(
            "aws.log.group.names",
            Value::Array(Array::from(vec![StringValue::from(group.to_owned())])),
        ));
    }
    // The one fact that is not in the environment.
    if let Ok(target) = std::fs::read_link(ACCOUNT_ID_SYMLINK)
        && let Some(id) = target
            .to_str()
            .filter(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()))
    {
        attributes.push(KeyValue::new("cloud.account.id", id.to_owned()));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanKind, TraceContextExt, TraceFlags, TraceId};
    use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

    use super::*;

    #[cfg(feature = "sigv4")]
    #[test]
    fn signed_otlp_without_credentials_records_nothing_and_with_them_a_lazy_exporter() {
        use std::time::Duration;

        use crate::config::telemetry::{CredentialSource, Credentials, OtlpHttp, SigV4};
        let settings = |credentials: Option<CredentialSource>| TelemetrySettings {
            exporters: vec![TracesExporter::OtlpHttp(OtlpHttp {
                endpoint: "https://xray.eu-west-1.amazonaws.com/v1/traces".into(),
                headers: Vec::new(),
                timeout: Duration::from_secs(1),
                sigv4: Some(SigV4 {
                    region: "eu-west-1".into(),
                    service: "xray".into(),
                    credentials,
                }),
            })],
            ..TelemetrySettings::default()
        };
        let without = init(&settings(None), None).expect("init never fails for it");
        assert!(
            without.tracer().is_none(),
            "nothing to send: nothing recorded"
        );
        let with = init(
            &settings(Some(CredentialSource::Environment(Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            }))),
            None,
        )
        .expect("init");
        assert!(with.tracer().is_some());
    }

    /// Settings built in code (no `Config` to drop it first) asking for an exporter this build
    /// leaves out: `init` refuses them with an error naming the exporter and its cargo feature;
    /// an exporter built in gives a pipeline. Only builds leaving one out run this (`make
    /// features` builds each exporter feature alone).
    #[cfg(not(all(
        feature = "xray-segments",
        feature = "otlp-udp",
        feature = "otlp-http",
        feature = "sigv4",
        feature = "console"
    )))]
    #[test]
    fn init_refuses_an_exporter_this_build_leaves_out_naming_its_feature() {
        use std::time::Duration;

        use crate::config::telemetry::{
            CredentialSource, Credentials, OtlpHttp, SigV4, TracesExporter,
        };

        let daemon = "127.0.0.1:2000".parse().expect("address");
        let otlp = |sigv4| {
            TracesExporter::OtlpHttp(OtlpHttp {
                endpoint: "http://127.0.0.1:4318/v1/traces".into(),
                headers: Vec::new(),
                timeout: Duration::from_secs(1),
                sigv4,
            })
        };
        let signing = SigV4 {
            region: "eu-west-1".into(),
            service: "xray".into(),
            credentials: Some(CredentialSource::Environment(Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            })),
        };
        let exporters = [
            TracesExporter::XraySegments { daemon },
            TracesExporter::OtlpUdp { daemon },
            otlp(None),
            otlp(Some(signing)),
            TracesExporter::Console,
        ];
        let mut refused = 0;
        for exporter in exporters {
            let settings = TelemetrySettings {
                exporters: vec![exporter.clone()],
                ..TelemetrySettings::default()
            };
            match exporter.missing_feature() {
                Some(feature) => {
                    let Err(error) = init(&settings, None) else {
                        panic!("{exporter:?} is not in this build: init must refuse it");
                    };
                    assert_eq!(
                        error.to_string(),
                        format!(
                            "the {} exporter is not in this build (cargo feature `{feature}`)",
                            exporter.name()
                        )
                    );
                    refused += 1;
                }
                None => {
                    let telemetry = init(&settings, None).expect("built in");
                    assert!(telemetry.tracer().is_some(), "{exporter:?}");
                }
            }
        }
        assert!(refused > 0, "a build leaving an exporter out runs this");
    }

    fn decide(setting: SamplerSetting, parent_sampled: Option<bool>) -> SamplingDecision {
        let parent = parent_sampled.map(|sampled| {
            opentelemetry::Context::new().with_remote_span_context(
                opentelemetry::trace::SpanContext::new(
                    TraceId::from_bytes([7; 16]),
                    opentelemetry::trace::SpanId::from_bytes([7; 8]),
                    if sampled {
                        TraceFlags::SAMPLED
                    } else {
                        TraceFlags::default()
                    },
                    true,
                    Default::default(),
                ),
            )
        });
        let SamplingResult { decision, .. } = sampler(setting).should_sample(
            parent.as_ref(),
            TraceId::from_bytes([7; 16]),
            "invocation",
            &SpanKind::Internal,
            &[],
            &[],
        );
        decision
    }

    #[test]
    fn parent_based_samplers_follow_lambdas_sampled_flag() {
        use SamplingDecision::{Drop, RecordAndSample};
        let cases = [
            (SamplerSetting::ParentBasedAlwaysOn, Some(false), Drop),
            (
                SamplerSetting::ParentBasedAlwaysOn,
                Some(true),
                RecordAndSample,
            ),
            (SamplerSetting::ParentBasedAlwaysOn, None, RecordAndSample),
            (
                SamplerSetting::ParentBasedAlwaysOff,
                Some(true),
                RecordAndSample,
            ),
            (SamplerSetting::ParentBasedAlwaysOff, None, Drop),
            (SamplerSetting::ParentBasedTraceIdRatio(0.0), None, Drop),
            (SamplerSetting::AlwaysOn, Some(false), RecordAndSample),
            (SamplerSetting::AlwaysOff, Some(true), Drop),
            (
                SamplerSetting::TraceIdRatio(1.0),
                Some(false),
                RecordAndSample,
            ),
        ];
        for (setting, parent, expected) in cases {
            assert_eq!(decide(setting, parent), expected, "{setting:?} {parent:?}");
        }
    }

    #[test]
    fn no_exporter_records_nothing() {
        let telemetry = init(&TelemetrySettings::default(), None).expect("init");
        assert!(telemetry.tracer().is_none());
    }

    #[test]
    fn the_resource_carries_the_service_name_and_the_configured_attributes() {
        let settings = TelemetrySettings {
            service_name: "checkout".into(),
            resource_attributes: vec![("deployment.environment".into(), "test".into())],
            ..TelemetrySettings::default()
        };
        let resource = resource(&settings);
        let value = |key: &str| {
            resource
                .get(&opentelemetry::Key::from(key.to_owned()))
                .map(|v| v.to_string())
        };
        assert_eq!(value("service.name").as_deref(), Some("checkout"));
        assert_eq!(value("deployment.environment").as_deref(), Some("test"));
        assert_eq!(value("telemetry.sdk.language").as_deref(), Some("rust"));
        assert_eq!(value("faas.name"), None, "outside Lambda");
    }

    #[test]
    fn inside_lambda_the_resource_describes_the_function_from_the_settings() {
        let settings = TelemetrySettings {
            lambda: LambdaSettings {
                function_name: Some("hello".into()),
                function_version: Some("$LATEST".into()),
                memory_mb: Some(256),
                log_group: Some("/aws/lambda/hello".into()),
                log_stream: Some("2026/11/27/[$LATEST]abc".into()),
                region: Some("eu-west-1".into()),
                ..LambdaSettings::default()
            },
            ..TelemetrySettings::default()
        };
        let resource = resource(&settings);
        let value = |key: &str| resource.get(&opentelemetry::Key::from(key.to_owned()));
        assert_eq!(value("cloud.provider"), Some(Value::from("aws")));
        assert_eq!(value("cloud.platform"), Some(Value::from("aws_lambda")));
        assert_eq!(value("cloud.region"), Some(Value::from("eu-west-1")));
        assert_eq!(value("faas.name"), Some(Value::from("hello")));
        assert_eq!(value("faas.version"), Some(Value::from("$LATEST")));
        assert_eq!(
            value("faas.instance"),
            Some(Value::from("2026/11/27/[$LATEST]abc"))
        );
        assert_eq!(
            value("faas.max_memory"),
            Some(Value::I64(256 * 1024 * 1024))
        );
        assert_eq!(
            value("aws.log.group.names"),
            Some(Value::Array(Array::from(vec![StringValue::from(
                "/aws/lambda/hello"
            )])))
        );
    }
}
