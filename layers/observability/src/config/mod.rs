//! The one configuration of an execution environment, read from the environment once.
//!
//! Only [`Config`]'s constructors read variables; every layer and the pipeline take their
//! settings from it. Reading never fails for a value it can replace by a default: the problem is
//! kept in [`Config::warnings`] (each names the variable and its value), to be logged once when
//! logging is up. It fails ([`ConfigError`]) only where carrying on would silently lose everything
//! the user asked for: an OTLP endpoint that is not an http(s) URL, or an
//! `AWS_XRAY_DAEMON_ADDRESS` that does not parse while a chosen exporter sends to the daemon.
//!
//! Every variable, its default and precedence: `docs/environment.md`.
//!
//! ```
//! use lambda_observability::config::{Config, LogFormat, telemetry::TracesExporter};
//!
//! let config = Config::from_lookup(|name| {
//!     match name {
//!         "AWS_LAMBDA_FUNCTION_NAME" => Some("hello"),
//!         "AWS_LAMBDA_LOG_FORMAT" => Some("JSON"),
//!         "OTEL_TRACES_EXPORTER" => Some("otlp, console"),
//!         "OTEL_TRACES_SAMPLER" => Some("jaeger_remote"),
//!         _ => None,
//!     }
//!     .map(str::to_owned)
//! })?;
//! assert_eq!(config.telemetry.service_name, "hello");
//! assert_eq!(
//!     config.telemetry.exporters,
//!     [
//!         // Inside Lambda with no OTLP endpoint: OTLP over UDP to the daemon.
//!         TracesExporter::OtlpUdp { daemon: "127.0.0.1:2000".parse()? },
//!         TracesExporter::Console,
//!     ]
//! );
//! assert_eq!(config.logs.format, LogFormat::Json);
//! assert_eq!(config.warnings.len(), 1, "the unsupported sampler");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

mod env;
#[cfg(test)]
mod fuzz;
mod lambda;
mod logs;
mod metrics;
pub mod telemetry;
mod traces;

pub use lambda::{LambdaSettings, MAX_CONCURRENCY};
pub use logs::{DEFAULT_LOG_FILTER, LogFormat, LogSettings};
pub use metrics::{DEFAULT_METRICS_NAMESPACE, MetricsSettings};
pub use telemetry::TelemetrySettings;
pub use traces::{DEFAULT_OTLP_TRACES_ENDPOINT, DEFAULT_PROPAGATORS, DEFAULT_SERVICE_NAME};

/// Everything the observability side of a function is configured with. Its `Debug` never shows
/// credentials or OTLP header values.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The span pipeline.
    pub telemetry: TelemetrySettings,
    /// The log lines.
    pub logs: LogSettings,
    /// The EMF metrics.
    pub metrics: MetricsSettings,
    /// The execution environment.
    pub lambda: LambdaSettings,
    /// Values that could not be used and what was used instead, one line each, naming the
    /// variable and its value (never a secret). Log each once, when logging is up.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = env::Env::new(&lookup);
        let lambda = lambda::read(&mut env);
        let logs = logs::read(&mut env);
        let metrics = metrics::read(&mut env);
        let telemetry = traces::read(&mut env, &lambda)?;
        Ok(Self {
            telemetry,
            logs,
            metrics,
            lambda,
            warnings: env.into_warnings(),
        })
    }

    /// Whether anything configured needs TLS at init; see [`TelemetrySettings::needs_tls`].
    pub fn needs_tls(&self) -> bool {
        self.telemetry.needs_tls()
    }
}

/// A setting that would make the function silently lose everything asked for; the message names
/// the variable and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    fn new(message: String) -> Self {
        Self { message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reads `vars` only; panics on a fatal error (tests of those use [`try_config`]).
    pub(crate) fn config(vars: &[(&str, &str)]) -> Config {
        try_config(vars).expect("a usable configuration")
    }

    /// [`read_config`], less the warnings about an exporter this build leaves out: in a build
    /// without some exporter feature (`make features`), the tests of other variables still count
    /// their own warnings exactly. With every feature there are none to leave out; the
    /// missing-feature tests read them with [`read_config`].
    pub(crate) fn try_config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        read_config(vars).map(|mut config| {
            config
                .warnings
                .retain(|warning| !warning.contains("which this build leaves out"));
            config
        })
    }

    /// Reads `vars` only, every warning kept.
    pub(crate) fn read_config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn nothing_set_gives_the_documented_defaults_without_warnings() {
        let config = config(&[]);
        assert_eq!(config.logs, LogSettings::default());
        assert_eq!(config.metrics, MetricsSettings::default());
        assert_eq!(config.lambda, LambdaSettings::default());
        assert_eq!(config.telemetry.service_name, DEFAULT_SERVICE_NAME);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn config_errors_display_their_message_with_padding() {
        let err = ConfigError::new("X=\"y\" is bad".to_owned());
        assert_eq!(format!("{err:>14}"), "  X=\"y\" is bad");
    }

    #[cfg(feature = "sigv4")]
    #[test]
    fn debug_never_shows_credentials_or_header_values() {
        let config = config(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://xray.eu-west-1.amazonaws.com",
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=hunter2"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"),
            ("AWS_SESSION_TOKEN", "FwoGZXIvYXdz"),
        ]);
        let debug = format!("{config:?}");
        for secret in ["hunter2", "AKIDEXAMPLE", "wJalrXUtnFEMI", "FwoGZXIvYXdz"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(
            debug.contains("x-api-key"),
            "header names are shown: {debug}"
        );
        let shown = format!("{:?}", config.warnings);
        assert!(!shown.contains("hunter2"));
    }
}
