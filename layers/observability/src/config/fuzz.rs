//! Fuzzing [`Config::from_lookup`] with arbitrary values for every variable it reads: it never
//! panics; a value it cannot use is replaced by the documented default with a warning naming the
//! variable, or fails with a [`ConfigError`] naming it; and no secret (credentials, OTLP header
//! values, the password of an endpoint's `user:password@`) is ever echoed, in a warning, an
//! error or the configuration's `Debug`.
//!
//! Short in `make test` (proptest's 256 cases), long in `make fuzz`
//! (`PROPTEST_CASES=20000 cargo test --workspace fuzz`).

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use proptest::prelude::*;

use super::{
    Config, ConfigError, LogFormat,
    telemetry::{DEFAULT_EXPORT_TIMEOUT, SamplerSetting},
};

/// Every variable `Config::from_lookup` reads (`docs/environment.md` lists them with the ones
/// only the function or the runtime reads). `fuzz_reads_only_the_listed_variables` fails when the
/// code reads one more, so that it gets fuzzed too.
const VARIABLES: &[&str] = &[
    // lambda.rs
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_MAX_CONCURRENCY",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "EXPOSE_X_AMZN_TRACE_ID",
    // logs.rs
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_LAMBDA_LOG_LEVEL",
    "POWERTOOLS_LOG_LEVEL",
    "RUST_LOG",
    "LOG_EVENT_PAYLOAD",
    "POWERTOOLS_LOGGER_LOG_EVENT",
    // metrics.rs
    "POWERTOOLS_METRICS_NAMESPACE",
    "METRICS_NAMESPACE",
    "POWERTOOLS_METRICS_DISABLED",
    // traces.rs
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SERVICE_NAME",
    "POWERTOOLS_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_SDK_DISABLED",
    "POWERTOOLS_TRACE_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "AWS_XRAY_DAEMON_ADDRESS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTLP_TRACES_SIGV4",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "LOG_BUFFERING",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// Whose whole value is a secret.
const CREDENTIALS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// Whose `key=value` entries' values are secrets.
const HEADERS: &[&str] = &[
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_HEADERS",
];

/// Whose URL may carry a `user:password@`.
const ENDPOINTS: &[&str] = &[
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Every secret starts with this: no other generated value contains it.
const SECRET_MARK: &str = "S3CR";

/// Values near what the parsers look for (and just past it), for every variable.
const SAMPLES: &[&str] = &[
    "",
    "  ",
    "true",
    "TRUE",
    "false",
    "1",
    "0",
    "yes",
    "JSON",
    "json",
    "Text",
    "xml",
    "TRACE",
    "debug",
    "FATAL",
    "CRITICAL",
    "SILENT",
    "info,hyper=off",
    "[{",
    "a[",
    "=",
    "otlp",
    "xray",
    "console",
    "none",
    "otlp,xray",
    "xray, console, none",
    "bogus,otlp,,",
    "http://localhost:4318",
    "https://xray.eu-west-1.amazonaws.com",
    "https://xray.cn-north-1.amazonaws.com.cn/v1/traces",
    "https://xray..amazonaws.com",
    "http://[::1]:4318/",
    "ftp://x",
    "http://",
    "://",
    "http:// /",
    "127.0.0.1:2000",
    "localhost:2000",
    "localhost:99999",
    "tcp:127.0.0.1:2000 udp:127.0.0.2:2001",
    "[::1]:2000",
    "udp:",
    "65536",
    "4294967296",
    "18446744073709551616",
    "-1",
    "0.5",
    "1e309",
    "NaN",
    "inf",
    "-0",
    "traceidratio",
    "parentbased_traceidratio",
    "always_off",
    "tracecontext,baggage,xray",
    "none,xray",
    "a=b,service.name=svc",
    "service.name=",
    "%",
    "%zz",
    "%C3%A9=x",
    "%+1=%-1",
    "grpc",
    "http/json",
    "http/protobuf",
    "gzip",
    "on-demand",
    "provisioned-concurrency",
    "snap-start",
    "lambda-managed-instances",
    "eu-west-1",
    "$LATEST",
];

/// Any value: arbitrary text, printable ASCII, or a sample (with blanks around it).
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        2 => "[ -~]{0,24}",
        4 => (prop::sample::select(SAMPLES), "[ \t]{0,1}", "[ \t]{0,1}")
            .prop_map(|(sample, before, after)| format!("{before}{sample}{after}")),
    ]
}

/// A secret: the mark, then what makes it this one.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{4,12}".prop_map(|tail| format!("{SECRET_MARK}{tail}"))
}

/// A header list whose values are secrets, with malformed entries among the good ones.
fn headers() -> impl Strategy<Value = String> {
    let entry = prop_oneof![
        ("[a-z][a-z0-9-]{0,8}", secret()).prop_map(|(key, value)| format!("{key}={value}")),
        ("[a-z][a-z0-9-]{0,8}", secret()).prop_map(|(key, value)| format!(" {key} = {value} ")),
        secret().prop_map(|value| format!("={value}")),
        secret(),
        secret().prop_map(|value| format!("bad key={value}")),
        secret().prop_map(|value| format!("k={value}%zz")),
        secret().prop_map(|value| format!("k={value}\u{7f}")),
        secret().prop_map(|value| format!("k=%0A{value}")),
    ];
    prop::collection::vec(entry, 0..4).prop_map(|entries| entries.join(","))
}

/// An endpoint, often with a password in its `user:password@`.
fn endpoint() -> impl Strategy<Value = String> {
    let host = prop::sample::select(
        &[
            "xray.eu-west-1.amazonaws.com",
            "xray.cn-north-1.amazonaws.com.cn",
            "collector:4318",
            "127.0.0.1:4318",
            "",
        ][..],
    );
    prop_oneof![
        value(),
        (
            prop::sample::select(&["http", "https", "ftp"][..]),
            secret(),
            host,
            prop::sample::select(&["", "/", "/v1/traces", "?a=b", "#x"][..]),
        )
            .prop_map(|(scheme, password, host, path)| {
                format!("{scheme}://user:{password}@{host}{path}")
            }),
    ]
}

/// Which variables are set, to what.
fn environment() -> impl Strategy<Value = BTreeMap<&'static str, String>> {
    let entry = prop::sample::select(VARIABLES).prop_flat_map(|name| {
        let value = if CREDENTIALS.contains(&name) {
            prop_oneof![3 => secret(), 1 => value()].boxed()
        } else if HEADERS.contains(&name) {
            headers().boxed()
        } else if ENDPOINTS.contains(&name) {
            endpoint().boxed()
        } else {
            value().boxed()
        };
        (Just(name), value)
    });
    prop::collection::vec(entry, 0..16).prop_map(|entries| entries.into_iter().collect())
}

/// The secrets in `vars`: every credential, each header value, each endpoint's password.
fn secrets(vars: &BTreeMap<&'static str, String>) -> Vec<String> {
    let mut found = Vec::new();
    for value in vars.values() {
        let mut rest = value.as_str();
        while let Some(at) = rest.find(SECRET_MARK) {
            let secret: String = rest[at..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            rest = &rest[at + secret.len()..];
            found.push(secret);
        }
    }
    found
}

/// Reads `vars`, recording which names were asked for.
fn read(vars: &BTreeMap<&'static str, String>) -> (Result<Config, ConfigError>, BTreeSet<String>) {
    let asked = RefCell::new(BTreeSet::new());
    let result = Config::from_lookup(|name| {
        asked.borrow_mut().insert(name.to_owned());
        vars.get(name).cloned()
    });
    (result, asked.into_inner())
}

/// The trimmed value of `name`, `None` when unset or blank (as the configuration reads it).
fn set<'a>(vars: &'a BTreeMap<&'static str, String>, name: &str) -> Option<&'a str> {
    vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A warning about `name` (it starts with the variable's name, as the parsers write them).
fn warned(config: &Config, name: &str) -> bool {
    config.warnings.iter().any(|w| {
        w.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(['=', ':']))
    })
}

proptest! {
    #[test]
    fn fuzz_config_never_panics_warns_or_fails_by_name_and_hides_secrets(vars in environment()) {
        let (result, asked) = read(&vars);
        for name in &asked {
            prop_assert!(VARIABLES.contains(&name.as_str()), "{name} is read but not fuzzed");
        }
        let secrets = secrets(&vars);
        let texts = match &result {
            Ok(config) => {
                for warning in &config.warnings {
                    prop_assert!(
                        VARIABLES.iter().any(|name| warning.contains(name)),
                        "a warning naming no variable: {warning}"
                    );
                }
                let mut texts = config.warnings.clone();
                texts.push(format!("{config:?}"));
                texts
            }
            Err(error) => {
                let message = error.to_string();
                prop_assert!(
                    ["AWS_XRAY_DAEMON_ADDRESS", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
                        .iter()
                        .any(|name| message.contains(name)),
                    "an error naming no variable: {message}"
                );
                vec![message, format!("{error:?}")]
            }
        };
        for text in &texts {
            for secret in &secrets {
                prop_assert!(!text.contains(secret.as_str()), "secret {secret} shown: {text}");
            }
        }
        let Ok(config) = result else { return Ok(()) };
        // The documented defaults, where a value warned.
        if warned(&config, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
            prop_assert_eq!(config.lambda.memory_mb, None);
        }
        if warned(&config, "AWS_LAMBDA_MAX_CONCURRENCY") {
            prop_assert!(matches!(config.lambda.max_concurrency, 1 | super::MAX_CONCURRENCY));
        }
        prop_assert!((1..=super::MAX_CONCURRENCY).contains(&config.lambda.max_concurrency));
        if warned(&config, "AWS_LAMBDA_LOG_FORMAT") {
            prop_assert_eq!(config.logs.format, LogFormat::Text);
        }
        let timeout_warned = warned(&config, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            || warned(&config, "OTEL_EXPORTER_OTLP_TIMEOUT");
        if timeout_warned {
            prop_assert_eq!(config.telemetry.export_timeout, DEFAULT_EXPORT_TIMEOUT);
        }
        prop_assert!(config.telemetry.export_timeout > Duration::ZERO);
        if warned(&config, "OTEL_TRACES_SAMPLER") {
            prop_assert_eq!(config.telemetry.sampler, SamplerSetting::default());
        }
        match config.telemetry.sampler {
            SamplerSetting::TraceIdRatio(ratio) | SamplerSetting::ParentBasedTraceIdRatio(ratio) => {
                prop_assert!((0.0..=1.0).contains(&ratio), "{ratio}");
                if warned(&config, "OTEL_TRACES_SAMPLER_ARG") {
                    prop_assert_eq!(ratio, 1.0);
                }
            }
            _ => {}
        }
        // The log filter is one the subscriber accepts (it `expect`s it at init).
        prop_assert!(
            lambda_observability_tower::log_format::check_filter(&config.logs.filter).is_ok(),
            "{}", config.logs.filter
        );
        if set(&vars, "RUST_LOG").is_some() && warned(&config, "RUST_LOG") {
            prop_assert_ne!(config.logs.filter.as_str(), set(&vars, "RUST_LOG").unwrap_or_default());
        }
        prop_assert!(!config.telemetry.service_name.is_empty());
    }
}

#[test]
fn fuzz_reads_only_the_listed_variables() {
    // Values that take every branch that reads a further variable: inside Lambda, OTLP/HTTP to
    // X-Ray with SigV4 forced on, the ratio sampler, the daemon exporter.
    let everything: BTreeMap<&'static str, String> = VARIABLES
        .iter()
        .map(|name| {
            let value = match *name {
                "OTEL_TRACES_EXPORTER" => "otlp,xray,console",
                "OTEL_TRACES_SAMPLER" => "traceidratio",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" | "OTEL_EXPORTER_OTLP_ENDPOINT" => {
                    "https://xray.eu-west-1.amazonaws.com"
                }
                "OTLP_TRACES_SIGV4" => "true",
                "OTEL_SDK_DISABLED" | "POWERTOOLS_TRACE_DISABLED" => "false",
                "AWS_XRAY_DAEMON_ADDRESS" => "127.0.0.1:2000",
                _ => "x",
            };
            (*name, value.to_owned())
        })
        .collect();
    let (result, mut asked) = read(&everything);
    result.expect("a usable configuration");
    // The variables read only when the ones before them in a precedence are unset.
    let mut fallbacks = everything.clone();
    for preferred in [
        "AWS_REGION",
        "POWERTOOLS_METRICS_NAMESPACE",
        "OTEL_SERVICE_NAME",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "AWS_ACCESS_KEY_ID",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ] {
        fallbacks.remove(preferred);
    }
    let (result, also) = read(&fallbacks);
    result.expect("a usable configuration");
    asked.extend(also);
    let listed: BTreeSet<String> = VARIABLES.iter().map(|name| (*name).to_owned()).collect();
    assert_eq!(asked, listed, "read but not fuzzed, or fuzzed but not read");
}
