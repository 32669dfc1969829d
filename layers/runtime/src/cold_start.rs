//! How the execution environment was initialised, which decides whether its first invocation is
//! a cold start.
//!
//! An invocation is a cold start when it is the first one served by this execution environment
//! *and* the environment was initialised on demand. Under provisioned concurrency or SnapStart the
//! initialisation happened ahead of time (`AWS_LAMBDA_INITIALIZATION_TYPE` is
//! `provisioned-concurrency` or `snap-start`), and so it did on Lambda Managed Instances
//! (`lambda-managed-instances`: an environment gets traffic only once its init is done), so the
//! first invocation is not a cold start. The
//! decision itself is made once per environment, by
//! [`EnvironmentFacts`](crate::facts::EnvironmentFacts).
//!
//! ```
//! use lambda_observability_runtime::cold_start::InitializationType;
//!
//! assert_eq!(InitializationType::parse(Some("snap-start")), InitializationType::SnapStart);
//! assert_eq!(InitializationType::parse(None), InitializationType::OnDemand);
//! ```

/// How the execution environment was initialised (`AWS_LAMBDA_INITIALIZATION_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitializationType {
    /// `on-demand` (also assumed when the variable is unset, as in local emulators).
    #[default]
    OnDemand,
    /// `provisioned-concurrency`.
    ProvisionedConcurrency,
    /// `snap-start`.
    SnapStart,
    /// `lambda-managed-instances`.
    ManagedInstances,
}

impl InitializationType {
    /// Parses the value of `AWS_LAMBDA_INITIALIZATION_TYPE` (read by the configuration).
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("provisioned-concurrency") => Self::ProvisionedConcurrency,
            Some("snap-start") => Self::SnapStart,
            Some("lambda-managed-instances") => Self::ManagedInstances,
            _ => Self::OnDemand,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_initialization_type_and_defaults_to_on_demand() {
        assert_eq!(
            InitializationType::parse(Some("provisioned-concurrency")),
            InitializationType::ProvisionedConcurrency
        );
        assert_eq!(
            InitializationType::parse(Some("snap-start")),
            InitializationType::SnapStart
        );
        assert_eq!(
            InitializationType::parse(Some("lambda-managed-instances")),
            InitializationType::ManagedInstances
        );
        assert_eq!(
            InitializationType::parse(Some("on-demand")),
            InitializationType::OnDemand
        );
        assert_eq!(
            InitializationType::parse(None),
            InitializationType::OnDemand
        );
    }
}
