//! Cold start detection shared by the layers.
//!
//! An invocation is a cold start when it is the first one served by this execution environment
//! *and* the environment was initialised on demand. Under provisioned concurrency or SnapStart the
//! initialisation happened ahead of time (`AWS_LAMBDA_INITIALIZATION_TYPE` is
//! `provisioned-concurrency` or `snap-start`), so the first invocation is not a cold start.

use std::sync::atomic::{AtomicBool, Ordering};

/// How the execution environment was initialised (`AWS_LAMBDA_INITIALIZATION_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitializationType {
    /// `on-demand` (also assumed when the variable is unset, as in local emulators).
    OnDemand,
    /// `provisioned-concurrency`.
    ProvisionedConcurrency,
    /// `snap-start`.
    SnapStart,
}

impl InitializationType {
    /// Reads `AWS_LAMBDA_INITIALIZATION_TYPE`.
    pub fn from_env() -> Self {
        Self::parse(
            std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE")
                .ok()
                .as_deref(),
        )
    }

    /// Parses the value of `AWS_LAMBDA_INITIALIZATION_TYPE`.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("provisioned-concurrency") => Self::ProvisionedConcurrency,
            Some("snap-start") => Self::SnapStart,
            _ => Self::OnDemand,
        }
    }
}

/// Answers "is this invocation a cold start?" exactly once with `true`, then `false`.
#[derive(Debug)]
pub struct ColdStart {
    first: AtomicBool,
}

impl ColdStart {
    /// A tracker for an environment initialised as `init_type`.
    pub fn new(init_type: InitializationType) -> Self {
        Self {
            first: AtomicBool::new(init_type == InitializationType::OnDemand),
        }
    }

    /// A tracker for this environment, from `AWS_LAMBDA_INITIALIZATION_TYPE`.
    pub fn from_env() -> Self {
        Self::new(InitializationType::from_env())
    }

    /// `true` for the first call on an on-demand environment, `false` afterwards.
    pub fn take(&self) -> bool {
        self.first.swap(false, Ordering::Relaxed)
    }
}

impl Default for ColdStart {
    fn default() -> Self {
        Self::from_env()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_on_demand_invocation_is_cold() {
        let cold = ColdStart::new(InitializationType::OnDemand);
        assert!(cold.take());
        assert!(!cold.take());
    }

    #[test]
    fn provisioned_and_snapstart_are_never_cold() {
        for value in ["provisioned-concurrency", "snap-start"] {
            let cold = ColdStart::new(InitializationType::parse(Some(value)));
            assert!(!cold.take(), "{value}");
        }
        assert_eq!(
            InitializationType::parse(None),
            InitializationType::OnDemand
        );
        assert_eq!(
            InitializationType::parse(Some("on-demand")),
            InitializationType::OnDemand
        );
    }
}
