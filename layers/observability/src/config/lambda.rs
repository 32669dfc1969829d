//! What Lambda tells the execution environment about itself (its reserved variables), and the
//! two runtime switches that go with them.

use super::env::Env;
use crate::cold_start::InitializationType;

/// The most invocations one environment serves at once, whatever `AWS_LAMBDA_MAX_CONCURRENCY`
/// says: each one is a worker loop and a pooled connection to the Runtime API.
pub const MAX_CONCURRENCY: usize = 1024;

/// The execution environment, from Lambda's reserved variables. Every `Option` is `None` outside
/// Lambda (local runs, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaSettings {
    /// `AWS_LAMBDA_FUNCTION_NAME`; set means "inside Lambda".
    pub function_name: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub function_version: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB.
    pub memory_mb: Option<u32>,
    /// `AWS_LAMBDA_LOG_GROUP_NAME`.
    pub log_group: Option<String>,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`.
    pub log_stream: Option<String>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`; on-demand when unset.
    pub initialization_type: InitializationType,
    /// `AWS_LAMBDA_MAX_CONCURRENCY`: how many invocations one environment serves at once
    /// (Lambda Managed Instances). Defaults to 1.
    pub max_concurrency: usize,
    /// `EXPOSE_X_AMZN_TRACE_ID=true`: set `_X_AMZN_TRACE_ID` in the process environment for each
    /// invocation, for code that reads it (the AWS SDKs). Off by default: with more than one
    /// invocation at a time a process-wide variable names the wrong trace.
    pub expose_trace_env: bool,
}

impl LambdaSettings {
    /// Whether this runs inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set).
    pub fn in_lambda(&self) -> bool {
        self.function_name.is_some()
    }

    /// The function's facts as `lambda_runtime` carries them in every `Context`.
    pub fn function_config(&self) -> lambda_runtime::Config {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        lambda_runtime::Config {
            function_name: text(&self.function_name),
            memory: self
                .memory_mb
                .and_then(|mb| i32::try_from(mb).ok())
                .unwrap_or_default(),
            version: text(&self.function_version),
            log_stream: text(&self.log_stream),
            log_group: text(&self.log_group),
        }
    }
}

impl Default for LambdaSettings {
    /// Outside Lambda: nothing known, one invocation at a time.
    fn default() -> Self {
        Self {
            function_name: None,
            function_version: None,
            memory_mb: None,
            log_group: None,
            log_stream: None,
            region: None,
            initialization_type: InitializationType::OnDemand,
            max_concurrency: 1,
            expose_trace_env: false,
        }
    }
}

pub(super) fn read(env: &mut Env<'_>) -> LambdaSettings {
    let memory_mb = env
        .get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .and_then(|value| match value.parse::<u32>() {
            Ok(mb) => Some(mb),
            Err(_) => {
                env.warn(format!(
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE={value:?} is not a number of MB; ignored"
                ));
                None
            }
        });
    let max_concurrency = match env.get("AWS_LAMBDA_MAX_CONCURRENCY") {
        None => 1,
        Some(value) => match value.parse::<usize>() {
            Ok(n) if n > MAX_CONCURRENCY => {
                env.warn(format!(
                    "AWS_LAMBDA_MAX_CONCURRENCY={value:?} is more than {MAX_CONCURRENCY}; using {MAX_CONCURRENCY}"
                ));
                MAX_CONCURRENCY
            }
            Ok(n) if n > 0 => n,
            _ => {
                env.warn(format!(
                    "AWS_LAMBDA_MAX_CONCURRENCY={value:?} is not a positive integer; using 1"
                ));
                1
            }
        },
    };
    LambdaSettings {
        function_name: env.get("AWS_LAMBDA_FUNCTION_NAME"),
        function_version: env.get("AWS_LAMBDA_FUNCTION_VERSION"),
        memory_mb,
        log_group: env.get("AWS_LAMBDA_LOG_GROUP_NAME"),
        log_stream: env.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        region: env
            .first(&["AWS_REGION", "AWS_DEFAULT_REGION"])
            .map(|(_, region)| region),
        initialization_type: InitializationType::parse(
            env.get("AWS_LAMBDA_INITIALIZATION_TYPE").as_deref(),
        ),
        max_concurrency,
        expose_trace_env: env.flag("EXPOSE_X_AMZN_TRACE_ID").unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;
    use super::*;

    #[test]
    fn reads_the_reserved_variables() {
        let config = config(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "hello"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/hello"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]abc"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start"),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "8"),
            ("EXPOSE_X_AMZN_TRACE_ID", "TRUE"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ]);
        let lambda = config.lambda;
        assert!(lambda.in_lambda());
        assert_eq!(lambda.function_name.as_deref(), Some("hello"));
        assert_eq!(lambda.function_version.as_deref(), Some("$LATEST"));
        assert_eq!(lambda.memory_mb, Some(128));
        assert_eq!(lambda.log_group.as_deref(), Some("/aws/lambda/hello"));
        assert_eq!(
            lambda.log_stream.as_deref(),
            Some("2026/11/27/[$LATEST]abc")
        );
        assert_eq!(lambda.region.as_deref(), Some("eu-west-1"));
        assert_eq!(lambda.initialization_type, InitializationType::SnapStart);
        assert_eq!(lambda.max_concurrency, 8);
        assert!(lambda.expose_trace_env);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn outside_lambda_nothing_is_known_and_one_invocation_runs_at_a_time() {
        let config = config(&[("OTEL_TRACES_EXPORTER", "none")]);
        assert_eq!(config.lambda, LambdaSettings::default());
        assert!(!config.lambda.in_lambda());
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn aws_region_wins_over_aws_default_region() {
        let config = config(&[
            ("AWS_REGION", "us-west-2"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]);
        assert_eq!(config.lambda.region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn a_huge_max_concurrency_is_capped_with_a_warning() {
        let config = config(&[("AWS_LAMBDA_MAX_CONCURRENCY", "1000000")]);
        assert_eq!(config.lambda.max_concurrency, MAX_CONCURRENCY);
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("1000000"));
    }

    #[test]
    fn a_bad_max_concurrency_warns_and_means_one() {
        for bad in ["0", "-3", "many"] {
            let config = config(&[("AWS_LAMBDA_MAX_CONCURRENCY", bad)]);
            assert_eq!(config.lambda.max_concurrency, 1, "{bad}");
            assert_eq!(
                config.warnings,
                vec![format!(
                    "AWS_LAMBDA_MAX_CONCURRENCY={bad:?} is not a positive integer; using 1"
                )]
            );
        }
    }

    #[test]
    fn a_bad_memory_size_or_switch_warns() {
        let config = config(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"),
            ("EXPOSE_X_AMZN_TRACE_ID", "yes please"),
        ]);
        assert_eq!(config.lambda.memory_mb, None);
        assert!(!config.lambda.expose_trace_env);
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=\"lots\""));
        assert!(config.warnings[1].contains("EXPOSE_X_AMZN_TRACE_ID=\"yes please\""));
    }
}
