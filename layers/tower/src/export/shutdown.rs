//! The last export of an execution environment, on SIGTERM.

use std::time::Duration;

use super::{FlushOutcome, Telemetry};
use crate::metrics::Metrics;

/// Bound on the export at shutdown (SIGTERM).
pub const SHUTDOWN_FLUSH_BOUND: Duration = Duration::from_millis(250);

impl Telemetry {
    /// Exports what is pending, then shuts the provider down (on SIGTERM). Bounded by
    /// [`SHUTDOWN_FLUSH_BOUND`]: Lambda gives a runtime only a few hundred milliseconds after
    /// SIGTERM, and with the ADOT layer the collector still needs its share to forward the spans.
    ///
    /// Then logs the environment's totals at INFO (`span export totals`, fields `exported`,
    /// `dropped` and one per reason): the last word on what left the process.
    pub async fn shutdown(&self) -> FlushOutcome {
        let outcome = self.flusher.flush_within(SHUTDOWN_FLUSH_BOUND).await;
        if let Some(provider) = &self.provider {
            let _ = provider.shutdown();
        }
        let stats = self.flusher.stats();
        let dropped = stats.dropped;
        tracing::info!(
            target: "lambda_observability::export",
            exported = stats.exported,
            dropped = dropped.total(),
            buffer_full = dropped.buffer_full,
            export_failed = dropped.export_failed,
            timed_out = dropped.timed_out,
            oversize = dropped.oversize,
            breaker_open = dropped.breaker_open,
            "span export totals: {} exported, {} dropped",
            stats.exported,
            dropped.total()
        );
        outcome
    }
}

/// Exports pending spans and shuts the pipeline down on SIGTERM or SIGINT, then exits.
///
/// Lambda sends SIGTERM before it shuts an execution environment down, but only when an extension
/// is registered (the ADOT collector layer is one). Spans still pending then — from work that
/// outlived its invocation — are exported instead of lost. Drops are logged only; use
/// [`spawn_shutdown_flush_reporting`] to also write them as the `SpansDropped` metric. Needs a
/// tokio runtime with signals.
pub fn spawn_shutdown_flush(telemetry: Telemetry) {
    spawn_shutdown_flush_reporting(telemetry, Metrics::disabled());
}

/// [`spawn_shutdown_flush`], then the spans dropped and not yet reported (by this flush, or by
/// the last invocation's) written to `metrics` as `SpansDropped` before the process exits.
pub fn spawn_shutdown_flush_reporting(telemetry: Telemetry, metrics: Metrics) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!(
            "could not install the SIGTERM handler; pending spans may be lost at shutdown"
        );
        return;
    };
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: exporting pending spans");
        telemetry.shutdown().await;
        telemetry.flusher().report_dropped(&metrics);
        std::process::exit(0);
    });
}
