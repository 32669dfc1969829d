//! The facts of one invocation, computed once and shared.
//!
//! Whether an invocation is a cold start, how the environment was initialised, when the
//! invocation must be done and how long the init took are decided in one place — the runtime
//! loop, through [`EnvironmentFacts::next_invocation`] — and travel with the invocation in its
//! request extensions ([`InvocationFacts::of`]). Layers read them; none tracks them itself, so
//! two layers can never disagree, and concurrent invocations of one environment
//! (Lambda Managed Instances) count the cold start once.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use lambda_runtime::LambdaInvocation;

use crate::cold_start::InitializationType;

/// What is known about one invocation before the handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvocationFacts {
    /// The first invocation of an environment initialised on demand.
    pub cold_start: bool,
    /// How the environment was initialised.
    pub initialization_type: InitializationType,
    /// When the invocation must be done (an emulator's relative deadline already made absolute).
    pub deadline: SystemTime,
    /// The environment's init time (process start to first `/next`), on the first invocation only.
    pub init_duration: Option<Duration>,
}

impl InvocationFacts {
    /// The facts the runtime attached to `invocation`, if it was run by one that does.
    pub fn of(invocation: &LambdaInvocation) -> Option<&Self> {
        invocation.parts.extensions.get::<Self>()
    }

    /// Attaches the facts to `invocation`.
    pub fn attach(self, invocation: &mut LambdaInvocation) {
        invocation.parts.extensions.insert(self);
    }
}

/// The execution environment's side of the facts: created once at init, shared by every worker.
#[derive(Debug)]
pub struct EnvironmentFacts {
    initialization_type: InitializationType,
    init_started: Instant,
    init_duration: Mutex<Option<Duration>>,
    first: AtomicBool,
}

impl EnvironmentFacts {
    /// An environment initialised as `initialization_type`, whose init began at `init_started`.
    pub fn new(initialization_type: InitializationType, init_started: Instant) -> Self {
        Self {
            initialization_type,
            init_started,
            init_duration: Mutex::new(None),
            first: AtomicBool::new(true),
        }
    }

    /// Marks the end of init (called before the first `/next`). Later calls change nothing.
    pub fn init_done(&self) {
        let mut init = self.init_duration.lock().unwrap_or_else(|e| e.into_inner());
        if init.is_none() {
            *init = Some(self.init_started.elapsed());
        }
    }

    /// The facts of the next invocation, whose `Lambda-Runtime-Deadline-Ms` is `deadline_ms`.
    /// Exactly one call per environment sees `cold_start` (on demand) and the init duration.
    pub fn next_invocation(&self, deadline_ms: u64) -> InvocationFacts {
        let first = self.first.swap(false, Ordering::AcqRel);
        InvocationFacts {
            cold_start: first && self.initialization_type == InitializationType::OnDemand,
            initialization_type: self.initialization_type,
            deadline: crate::deadline::deadline(deadline_ms),
            init_duration: if first {
                *self.init_duration.lock().unwrap_or_else(|e| e.into_inner())
            } else {
                None
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cold_start_and_one_init_duration_per_environment() {
        let env = EnvironmentFacts::new(InitializationType::OnDemand, Instant::now());
        env.init_done();
        let first = env.next_invocation(600_000);
        assert!(first.cold_start);
        assert!(first.init_duration.is_some());
        let second = env.next_invocation(600_000);
        assert!(!second.cold_start);
        assert_eq!(second.init_duration, None);
    }

    #[test]
    fn environments_initialised_ahead_of_traffic_are_never_cold_but_still_report_init() {
        for init in [
            InitializationType::ProvisionedConcurrency,
            InitializationType::SnapStart,
            InitializationType::ManagedInstances,
        ] {
            let env = EnvironmentFacts::new(init, Instant::now());
            env.init_done();
            let first = env.next_invocation(600_000);
            assert!(!first.cold_start, "{init:?}");
            assert!(first.init_duration.is_some(), "{init:?}");
        }
    }
}
