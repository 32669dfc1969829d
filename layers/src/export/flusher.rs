//! The per-invocation export: after the response, before the next event.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use opentelemetry_sdk::error::OTelSdkError;

use super::{DEFAULT_EXPORT_TIMEOUT, pipeline::PendingSpans};

/// Exports the spans finished so far; cheap to clone.
#[derive(Clone)]
pub struct SpanFlusher {
    pub(super) pending: Option<Arc<dyn PendingSpans>>,
    pub(super) timeout: Duration,
}

impl fmt::Debug for SpanFlusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanFlusher")
            .field("enabled", &self.pending.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What one flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Export is disabled or nothing was pending.
    Nothing,
    /// This many spans were exported.
    Exported(usize),
    /// The exporter failed; this many spans were dropped.
    Failed(usize),
    /// The export did not finish in time; this many spans were dropped.
    TimedOut(usize),
}

impl SpanFlusher {
    /// A flusher that never exports anything.
    pub fn disabled() -> Self {
        Self {
            pending: None,
            timeout: DEFAULT_EXPORT_TIMEOUT,
        }
    }

    /// Exports every span finished so far. Never fails and never outlives its bound: the
    /// configured export timeout, or the time left until `deadline` when that is shorter.
    /// A failure is logged once when exporting starts failing and once when it recovers.
    pub async fn flush(&self, deadline: Option<SystemTime>) -> FlushOutcome {
        let left = deadline.map_or(self.timeout, |d| {
            d.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        self.flush_within(left).await
    }

    /// Exports every span finished so far within `bound` (and the configured export timeout).
    pub async fn flush_within(&self, bound: Duration) -> FlushOutcome {
        let Some(pending) = &self.pending else {
            return FlushOutcome::Nothing;
        };
        let batch = pending.take();
        let count = batch.len();
        if count == 0 {
            // Nothing was tried: the failing/recovered state stays as it is.
            return FlushOutcome::Nothing;
        }
        let bound = self.timeout.min(bound);
        let result = match tokio::time::timeout(bound, pending.export(batch)).await {
            Ok(result) => result,
            Err(_) => Err(OTelSdkError::Timeout(bound)),
        };
        if pending.record_outcome(&result) {
            match &result {
                Err(err) => {
                    tracing::warn!(target: "lambda_observability::export", error = %err, "span export failing; spans of this invocation are dropped")
                }
                Ok(()) => {
                    tracing::info!(target: "lambda_observability::export", "span export recovered")
                }
            }
        }
        match result {
            Ok(()) => FlushOutcome::Exported(count),
            Err(OTelSdkError::Timeout(_)) => FlushOutcome::TimedOut(count),
            Err(_) => FlushOutcome::Failed(count),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use opentelemetry_sdk::{
        Resource,
        error::{OTelSdkError, OTelSdkResult},
        trace::{SpanData, SpanExporter},
    };

    use super::*;
    use crate::export::{Telemetry, console::tests::span_data};

    #[derive(Debug)]
    struct Scripted {
        hang: bool,
    }

    impl SpanExporter for Scripted {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            if self.hang {
                std::future::pending::<()>().await;
            }
            Err(OTelSdkError::InternalFailure("collector down".into()))
        }
    }

    fn flusher_with(exporter: Scripted, spans: usize) -> (Telemetry, SpanFlusher) {
        let telemetry = Telemetry::with_exporter(
            exporter,
            Resource::builder_empty().build(),
            Duration::from_secs(5),
        );
        let flusher = telemetry.flusher();
        if let Some(pending) = &flusher.pending {
            for id in 0..spans {
                pending.push(span_data(id as u8 + 1, 0, "span", 0));
            }
        }
        (telemetry, flusher)
    }

    #[tokio::test]
    async fn a_passed_deadline_leaves_no_time_and_counts_what_is_dropped() {
        let (_telemetry, flusher) = flusher_with(Scripted { hang: true }, 3);
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(flusher.flush(Some(past)).await, FlushOutcome::TimedOut(3));
        assert_eq!(
            flusher.flush(None).await,
            FlushOutcome::Nothing,
            "the batch was taken"
        );
    }

    #[tokio::test]
    async fn failures_are_counted_and_an_empty_flush_changes_nothing() {
        let (_telemetry, flusher) = flusher_with(Scripted { hang: false }, 2);
        assert_eq!(flusher.flush(None).await, FlushOutcome::Failed(2));
        assert_eq!(flusher.flush(None).await, FlushOutcome::Nothing);
        let failing = flusher
            .pending
            .as_ref()
            .map(|p| p.record_outcome(&Err(OTelSdkError::InternalFailure("x".into()))));
        assert_eq!(
            failing,
            Some(false),
            "still failing after an empty flush: no second log line"
        );
    }
}
