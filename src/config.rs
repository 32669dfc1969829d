//! Configuration, read once per execution environment (never per invocation).

use std::time::Duration;

/// Used when `PACKAGE_MANAGEMENT_SYSTEM` is unset or empty: this function *is* built with cargo,
/// so a missing variable should not fail every invocation. The fallback is logged once at init.
pub const DEFAULT_PACKAGE_MANAGEMENT_SYSTEM: &str = "cargo";

/// The public-IP service the function calls, like the Python original.
pub const DEFAULT_CHECKIP_URL: &str = "http://checkip.amazonaws.com/";

/// Upper bound on the public-IP call; the invocation's remaining time may cut it shorter.
pub const DEFAULT_CHECKIP_TIMEOUT: Duration = Duration::from_secs(3);

/// The reserved variables Lambda sets, as shown in the logs. Credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) are deliberately absent.
pub const RESERVED_VARIABLES: &[&str] = &[
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
];

/// The function's EMF namespace when neither `POWERTOOLS_METRICS_NAMESPACE` nor
/// `METRICS_NAMESPACE` names one.
pub const METRICS_NAMESPACE: &str = "HelloLambda";

/// The function's own configuration.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// `PACKAGE_MANAGEMENT_SYSTEM`, the custom variable the greeting names.
    pub package_management_system: String,
    /// `CHECKIP_URL`.
    pub checkip_url: String,
    /// `CHECKIP_TIMEOUT_MS`.
    pub checkip_timeout: Duration,
    /// The reserved variables that are set, in [`RESERVED_VARIABLES`] order.
    pub reserved: Vec<(&'static str, String)>,
    /// Problems found while reading, to be logged once logging is up.
    pub warnings: Vec<String>,
}

impl FunctionConfig {
    /// Whether the public-IP call needs TLS (`CHECKIP_URL` is `https://`).
    pub fn checkip_needs_tls(&self) -> bool {
        lambda_observability::http_client::is_https(&self.checkip_url)
    }
}

impl FunctionConfig {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut warnings = Vec::new();
        let package_management_system = match lookup("PACKAGE_MANAGEMENT_SYSTEM") {
            Some(value) if !value.trim().is_empty() => value.trim().to_owned(),
            _ => {
                warnings.push(format!(
                    "PACKAGE_MANAGEMENT_SYSTEM is not set; greeting with {DEFAULT_PACKAGE_MANAGEMENT_SYSTEM:?}"
                ));
                DEFAULT_PACKAGE_MANAGEMENT_SYSTEM.to_owned()
            }
        };
        let checkip_url = lookup("CHECKIP_URL")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_CHECKIP_URL.to_owned());
        let checkip_timeout = match lookup("CHECKIP_TIMEOUT_MS").map(|v| v.parse::<u64>()) {
            Some(Ok(ms)) => Duration::from_millis(ms),
            Some(Err(_)) => {
                warnings
                    .push("CHECKIP_TIMEOUT_MS is not a number of milliseconds; using 3000".into());
                DEFAULT_CHECKIP_TIMEOUT
            }
            None => DEFAULT_CHECKIP_TIMEOUT,
        };
        let reserved = RESERVED_VARIABLES
            .iter()
            .filter_map(|name| lookup(name).map(|value| (*name, value)))
            .collect();
        Self {
            package_management_system,
            checkip_url,
            checkip_timeout,
            reserved,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_package_management_system_falls_back_to_cargo_with_a_warning() {
        let config = FunctionConfig::from_lookup(|_| None);
        assert_eq!(config.package_management_system, "cargo");
        assert_eq!(config.checkip_url, DEFAULT_CHECKIP_URL);
        assert_eq!(config.warnings.len(), 1);
    }

    #[test]
    fn reads_custom_and_reserved_variables_but_never_credentials() {
        let config = FunctionConfig::from_lookup(|name| match name {
            "PACKAGE_MANAGEMENT_SYSTEM" => Some("pip".into()),
            "CHECKIP_TIMEOUT_MS" => Some("250".into()),
            "AWS_REGION" => Some("eu-west-1".into()),
            "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN" => Some("secret".into()),
            _ => None,
        });
        assert_eq!(config.package_management_system, "pip");
        assert_eq!(config.checkip_timeout, Duration::from_millis(250));
        assert_eq!(
            config.reserved,
            vec![("AWS_REGION", "eu-west-1".to_owned())]
        );
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn tls_is_needed_only_for_an_https_checkip_url() {
        let with = |url: &'static str| {
            FunctionConfig::from_lookup(move |name| (name == "CHECKIP_URL").then(|| url.to_owned()))
        };
        assert!(!with("http://checkip.amazonaws.com/").checkip_needs_tls());
        assert!(with("https://checkip.amazonaws.com/").checkip_needs_tls());
        assert!(with(" HTTPS://checkip.amazonaws.com/").checkip_needs_tls());
        assert!(
            !FunctionConfig::from_lookup(|_| None).checkip_needs_tls(),
            "the default is plain HTTP"
        );
    }
}
