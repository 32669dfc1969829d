//! The log lines: format, level filter, and whether the event payload is logged.

use super::env::Env;
use crate::log_format::check_filter;

/// The filter when no variable sets one.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// Line format, from `AWS_LAMBDA_LOG_FORMAT`: the subscriber's own type.
pub use crate::log_format::LogFormat;

/// What the log subscriber and the logging layer are asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `AWS_LAMBDA_LOG_FORMAT`. Defaults to text.
    pub format: LogFormat,
    /// A log filter directive this build takes (`log_format::check_filter`): `AWS_LAMBDA_LOG_LEVEL`, else
    /// `POWERTOOLS_LOG_LEVEL`, else `RUST_LOG`, else `info`.
    pub filter: String,
    /// Log each event's payload: `LOG_EVENT_PAYLOAD`, else `POWERTOOLS_LOGGER_LOG_EVENT`.
    /// Defaults to `false` (payloads may carry personal data).
    pub log_event: bool,
    /// Write an invocation's `INFO`-and-below lines together when it yields or ends:
    /// `LOG_BUFFERING`. Defaults to `true`; `false` writes each line as it is logged (see
    /// `lambda_observability_tower::log_format`).
    pub buffered: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: DEFAULT_LOG_FILTER.to_owned(),
            log_event: false,
            buffered: true,
        }
    }
}

pub(super) fn read(env: &mut Env<'_>) -> LogSettings {
    let format = match env.get("AWS_LAMBDA_LOG_FORMAT") {
        None => LogFormat::Text,
        Some(value) if value.eq_ignore_ascii_case("json") => LogFormat::Json,
        Some(value) if value.eq_ignore_ascii_case("text") => LogFormat::Text,
        Some(value) => {
            env.warn(format!(
                "AWS_LAMBDA_LOG_FORMAT={value:?} is not JSON or Text; using Text"
            ));
            LogFormat::Text
        }
    };
    let filter = level(env, "AWS_LAMBDA_LOG_LEVEL", lambda_level)
        .or_else(|| level(env, "POWERTOOLS_LOG_LEVEL", powertools_level))
        .or_else(|| rust_log(env))
        .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
    // The first switch that is set decides, so `LOG_EVENT_PAYLOAD=false` can turn off what
    // `POWERTOOLS_LOGGER_LOG_EVENT` turned on.
    let log_event = env
        .flag("LOG_EVENT_PAYLOAD")
        .or_else(|| env.flag("POWERTOOLS_LOGGER_LOG_EVENT"))
        .unwrap_or(false);
    let buffered = env.flag("LOG_BUFFERING").unwrap_or(true);
    LogSettings {
        format,
        filter,
        log_event,
        buffered,
    }
}

/// A level variable mapped to a filter directive; a name it does not know warns and lets
/// the next variable in the precedence decide.
fn level(env: &mut Env<'_>, name: &str, map: fn(&str) -> Option<&'static str>) -> Option<String> {
    let value = env.get(name)?;
    match map(&value.to_ascii_uppercase()) {
        Some(directive) => Some(directive.to_owned()),
        None => {
            env.warn(format!("{name}={value:?} is not a log level; ignored"));
            None
        }
    }
}

/// Lambda's advanced logging controls: `TRACE`…`FATAL`. Rust has no `FATAL`; `error` is closest.
fn lambda_level(level: &str) -> Option<&'static str> {
    Some(match level {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

/// Powertools' names: Lambda's, plus `CRITICAL` (Python's name for the highest level) and
/// `SILENT` (TypeScript's "log nothing").
fn powertools_level(level: &str) -> Option<&'static str> {
    match level {
        "CRITICAL" => Some("error"),
        "SILENT" => Some("off"),
        other => lambda_level(other),
    }
}

/// `RUST_LOG`, only if this build can filter with it: a directive that does not parse (or names
/// a span in a build without the `env-filter` feature) would otherwise be dropped silently, or
/// fail the subscriber's init.
fn rust_log(env: &mut Env<'_>) -> Option<String> {
    let value = env.get("RUST_LOG")?;
    match check_filter(&value) {
        Ok(()) => Some(value),
        Err(err) => {
            env.warn(format!(
                "RUST_LOG={value:?} is not used ({err}); using {DEFAULT_LOG_FILTER}"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;
    use super::*;

    fn filter(vars: &[(&str, &str)]) -> String {
        config(vars).logs.filter
    }

    #[test]
    fn the_format_is_json_only_when_asked_for() {
        assert_eq!(config(&[]).logs.format, LogFormat::Text);
        assert_eq!(
            config(&[("AWS_LAMBDA_LOG_FORMAT", "json")]).logs.format,
            LogFormat::Json
        );
        assert_eq!(
            config(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).logs.format,
            LogFormat::Text
        );
        let odd = config(&[("AWS_LAMBDA_LOG_FORMAT", "yaml")]);
        assert_eq!(odd.logs.format, LogFormat::Text);
        assert!(
            odd.warnings
                .iter()
                .any(|w| w.starts_with("AWS_LAMBDA_LOG_FORMAT=\"yaml\"")),
            "{:?}",
            odd.warnings
        );
    }

    #[test]
    fn lambda_level_wins_then_powertools_then_rust_log_then_info() {
        let all = [
            ("AWS_LAMBDA_LOG_LEVEL", "FATAL"),
            ("POWERTOOLS_LOG_LEVEL", "DEBUG"),
            ("RUST_LOG", "trace"),
        ];
        assert_eq!(filter(&all), "error", "FATAL maps to error");
        assert_eq!(filter(&all[1..]), "debug");
        assert_eq!(filter(&all[2..]), "trace");
        assert_eq!(filter(&[]), "info");
        assert_eq!(filter(&[("AWS_LAMBDA_LOG_LEVEL", "warn")]), "warn");
        assert_eq!(filter(&[("POWERTOOLS_LOG_LEVEL", "critical")]), "error");
        assert_eq!(filter(&[("POWERTOOLS_LOG_LEVEL", "SILENT")]), "off");
        assert_eq!(
            filter(&[("RUST_LOG", "info,hello_lambda=debug")]),
            "info,hello_lambda=debug"
        );
    }

    #[test]
    fn a_bad_level_warns_and_the_next_variable_decides() {
        let config = config(&[
            ("AWS_LAMBDA_LOG_LEVEL", "LOUD"),
            ("POWERTOOLS_LOG_LEVEL", "WARN"),
        ]);
        assert_eq!(config.logs.filter, "warn");
        assert_eq!(
            config.warnings,
            vec!["AWS_LAMBDA_LOG_LEVEL=\"LOUD\" is not a log level; ignored".to_owned()]
        );
        let critical = super::super::tests::config(&[("AWS_LAMBDA_LOG_LEVEL", "CRITICAL")]);
        assert_eq!(
            critical.logs.filter, "info",
            "CRITICAL is a Powertools name only"
        );
        assert_eq!(critical.warnings.len(), 1);
    }

    #[test]
    fn an_invalid_rust_log_warns_and_falls_back_to_info() {
        let config = config(&[("RUST_LOG", "hello=loud")]);
        assert_eq!(config.logs.filter, "info");
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(
            config.warnings[0]
                .starts_with("RUST_LOG=\"hello=loud\" is not used (invalid log filter"),
            "{:?}",
            config.warnings
        );
    }

    #[test]
    fn a_rust_log_that_names_a_span_needs_the_env_filter_feature() {
        let config = config(&[("RUST_LOG", "warn,[invocation]=debug")]);
        if cfg!(feature = "env-filter") {
            assert_eq!(config.logs.filter, "warn,[invocation]=debug");
            assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        } else {
            assert_eq!(config.logs.filter, "info");
            let [warning] = config.warnings.as_slice() else {
                panic!("one warning: {:?}", config.warnings)
            };
            assert!(warning.contains("cargo feature `env-filter`"), "{warning}");
        }
    }

    #[test]
    fn payload_logging_is_off_unless_a_switch_turns_it_on() {
        let log_event = |vars: &[(&str, &str)]| config(vars).logs.log_event;
        assert!(!log_event(&[]));
        assert!(log_event(&[("LOG_EVENT_PAYLOAD", "TRUE")]));
        assert!(log_event(&[("LOG_EVENT_PAYLOAD", "1")]));
        assert!(log_event(&[("POWERTOOLS_LOGGER_LOG_EVENT", "true")]));
        assert!(!log_event(&[
            ("LOG_EVENT_PAYLOAD", "false"),
            ("POWERTOOLS_LOGGER_LOG_EVENT", "true")
        ]));
        let bad = config(&[("LOG_EVENT_PAYLOAD", "sometimes")]);
        assert!(!bad.logs.log_event);
        assert_eq!(bad.warnings.len(), 1, "{:?}", bad.warnings);
    }

    #[test]
    fn log_lines_are_buffered_unless_turned_off() {
        let buffered = |vars: &[(&str, &str)]| config(vars).logs.buffered;
        assert!(buffered(&[]));
        assert!(!buffered(&[("LOG_BUFFERING", "false")]));
        assert!(buffered(&[("LOG_BUFFERING", "true")]));
        let bad = config(&[("LOG_BUFFERING", "maybe")]);
        assert!(bad.logs.buffered, "a bad value keeps the default");
        assert_eq!(bad.warnings.len(), 1, "{:?}", bad.warnings);
    }
}
