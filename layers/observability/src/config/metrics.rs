//! The CloudWatch EMF metrics: their namespace and the off switch.

use super::env::Env;

/// The namespace when no variable and no function default sets one.
pub const DEFAULT_METRICS_NAMESPACE: &str = "LambdaObservability";

/// What the timing layer's EMF metrics are asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// The CloudWatch namespace. Precedence: `POWERTOOLS_METRICS_NAMESPACE`, then
    /// `METRICS_NAMESPACE`, then the function's default
    /// ([`with_default_namespace`](Self::with_default_namespace)), then
    /// [`DEFAULT_METRICS_NAMESPACE`].
    pub namespace: String,
    /// The variable the namespace came from; `None` when it is a default.
    pub namespace_variable: Option<&'static str>,
    /// `POWERTOOLS_METRICS_DISABLED=true`: no metrics are printed. Defaults to `false`.
    pub disabled: bool,
}

impl MetricsSettings {
    /// Uses `namespace` unless a variable set one: the function knows its own name for its
    /// metrics, and the user's variables still win.
    pub fn with_default_namespace(mut self, namespace: impl Into<String>) -> Self {
        if self.namespace_variable.is_none() {
            self.namespace = namespace.into();
        }
        self
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_METRICS_NAMESPACE.to_owned(),
            namespace_variable: None,
            disabled: false,
        }
    }
}

pub(super) fn read(env: &mut Env<'_>) -> MetricsSettings {
    let (namespace_variable, namespace) =
        match env.first(&["POWERTOOLS_METRICS_NAMESPACE", "METRICS_NAMESPACE"]) {
            Some((name, namespace)) => (Some(name), namespace),
            None => (None, DEFAULT_METRICS_NAMESPACE.to_owned()),
        };
    MetricsSettings {
        namespace,
        namespace_variable,
        disabled: env.flag("POWERTOOLS_METRICS_DISABLED").unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;
    use super::*;

    #[test]
    fn powertools_namespace_wins_then_ours_then_the_function_default_then_ours() {
        let both = [
            ("POWERTOOLS_METRICS_NAMESPACE", "Shop"),
            ("METRICS_NAMESPACE", "Other"),
        ];
        let metrics = config(&both).metrics.with_default_namespace("HelloLambda");
        assert_eq!(metrics.namespace, "Shop");
        assert_eq!(
            metrics.namespace_variable,
            Some("POWERTOOLS_METRICS_NAMESPACE")
        );
        assert_eq!(
            config(&both[1..])
                .metrics
                .with_default_namespace("HelloLambda")
                .namespace,
            "Other"
        );
        assert_eq!(
            config(&[])
                .metrics
                .with_default_namespace("HelloLambda")
                .namespace,
            "HelloLambda"
        );
        assert_eq!(config(&[]).metrics, MetricsSettings::default());
        assert_eq!(config(&[]).metrics.namespace, "LambdaObservability");
    }

    #[test]
    fn metrics_are_disabled_only_when_asked_for() {
        assert!(!config(&[]).metrics.disabled);
        assert!(
            config(&[("POWERTOOLS_METRICS_DISABLED", "True")])
                .metrics
                .disabled
        );
        assert!(
            !config(&[("POWERTOOLS_METRICS_DISABLED", "false")])
                .metrics
                .disabled
        );
    }
}
