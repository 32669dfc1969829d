//! The last export of an execution environment, on SIGTERM.

use std::time::Duration;

use super::{FlushOutcome, Telemetry};
use crate::metrics::Metrics;

/// Bound on the export at shutdown (SIGTERM).
pub const SHUTDOWN_FLUSH_BOUND: Duration = Duration::from_millis(250);

/// The whole shutdown after SIGTERM or SIGINT when the runtime drains first
/// (`lambda_observability_runtime::Runtime::run_until`): the drain of the invocations in flight
/// (at most `lambda_observability_runtime::DRAIN_BOUND`, 200 ms), then the last export, given
/// what is left of this budget ([`shutdown_bound_after`]).
///
/// Lambda sends SIGTERM only when an extension is registered; it then reserves the runtime
/// 300 ms when only external extensions are (500 ms with an internal one; the rest of the 2 s
/// shutdown phase goes to the extensions, e.g. the ADOT collector forwarding the spans) before
/// SIGKILL. 280 ms leaves the process 20 ms to exit.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_millis(280);

/// The least the last export is given, however long the drain took.
const SHUTDOWN_FLUSH_FLOOR: Duration = Duration::from_millis(50);

/// The bound of the last export after a drain that took `drained`: what is left of
/// [`SHUTDOWN_BUDGET`], at most [`SHUTDOWN_FLUSH_BOUND`] and at least 50 ms.
pub fn shutdown_bound_after(drained: Duration) -> Duration {
    SHUTDOWN_BUDGET
        .saturating_sub(drained)
        .clamp(SHUTDOWN_FLUSH_FLOOR, SHUTDOWN_FLUSH_BOUND)
}

impl Telemetry {
    /// Exports what is pending, then shuts the provider down (on SIGTERM). Bounded by
    /// [`SHUTDOWN_FLUSH_BOUND`]: Lambda gives a runtime only a few hundred milliseconds after
    /// SIGTERM, and with the ADOT layer the collector still needs its share to forward the spans.
    ///
    /// Then logs the environment's totals at INFO (`span export totals`, fields `exported`,
    /// `dropped` and one per reason): the last word on what left the process.
    pub async fn shutdown(&self) -> FlushOutcome {
        self.shutdown_within(SHUTDOWN_FLUSH_BOUND).await
    }

    /// [`shutdown`](Self::shutdown) within `bound` (e.g. [`shutdown_bound_after`] a drain).
    pub async fn shutdown_within(&self, bound: Duration) -> FlushOutcome {
        let outcome = self.flusher.flush_within(bound).await;
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
            cut_off = dropped.cut_off,
            "span export totals: {} exported, {} dropped",
            stats.exported,
            dropped.total()
        );
        outcome
    }
}

/// Exports pending spans and shuts the pipeline down on SIGTERM or SIGINT, then exits, at once:
/// invocations in flight are not drained. For a stock `lambda_runtime::Runtime`, which has no
/// drain; with `lambda_observability_runtime::Runtime`, use its `run_until(shutdown_signal()?)`,
/// then [`Telemetry::shutdown_within`] (the `lambda-observability` facade does).
///
/// Lambda sends SIGTERM before it shuts an execution environment down, but only when an extension
/// is registered (the ADOT collector layer is one). Spans still pending then — from work that
/// outlived its invocation — are exported instead of lost. Drops are logged only; use
/// [`spawn_shutdown_flush_reporting`] to also write them as the `SpansDropped` metric. Needs a
/// tokio runtime with I/O.
pub fn spawn_shutdown_flush(telemetry: Telemetry) {
    spawn_shutdown_flush_reporting(telemetry, Metrics::disabled());
}

/// [`spawn_shutdown_flush`], then the spans dropped and not yet reported (by this flush, or by
/// the last invocation's) written to `metrics` as `SpansDropped` before the process exits.
pub fn spawn_shutdown_flush_reporting(telemetry: Telemetry, metrics: Metrics) {
    let Ok(signal) = lambda_observability_runtime::shutdown_signal() else {
        tracing::warn!(
            "could not install the SIGTERM handler; pending spans may be lost at shutdown"
        );
        return;
    };
    tokio::spawn(async move {
        let name = signal.await;
        tracing::info!(
            signal = name.as_str(),
            "shutting down: exporting pending spans"
        );
        telemetry.shutdown().await;
        telemetry.flusher().report_dropped(&metrics);
        std::process::exit(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the child process [`sigterm_exports_what_is_pending_then_exits`] starts: the
    /// flush ends the process.
    const CHILD: &str = "LAMBDA_OBSERVABILITY_TOWER_SHUTDOWN_CHILD";

    /// SIGTERM (what Lambda sends before it shuts an environment down) exports the spans still
    /// pending, then exits the process with success. Run in a child process: the signal and the
    /// exit are the process's.
    #[test]
    fn sigterm_exports_what_is_pending_then_exits() {
        let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "export::shutdown::tests::sigterm_child",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .expect("child ran");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{:?}\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        // The console exporter writes the timeline to stdout, past the harness's capture.
        assert!(stdout.contains(" outlived ["), "{stdout}");
        assert!(
            !stdout.contains("test result"),
            "exited before the harness: {stdout}"
        );
    }

    #[tokio::test]
    async fn sigterm_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        use opentelemetry::trace::{Span as _, Tracer as _};
        let telemetry = Telemetry::builder()
            .exporter(
                "console",
                Duration::from_secs(1),
                super::super::ConsoleExporter::new(Box::new(std::io::stdout())),
            )
            .build();
        // Work that outlived its invocation: pending until the shutdown flush.
        telemetry.tracer().expect("enabled").start("outlived").end();
        spawn_shutdown_flush(telemetry);
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        // The flush exits the process; should it not, the test fails instead of hanging.
        tokio::time::sleep(Duration::from_secs(10)).await;
        panic!("still running after SIGTERM");
    }

    /// The last export gets what the drain left of the budget, at most its own bound and at
    /// least the floor.
    #[test]
    fn the_last_export_gets_what_the_drain_left_between_floor_and_bound() {
        let ms = Duration::from_millis;
        assert_eq!(shutdown_bound_after(Duration::ZERO), SHUTDOWN_FLUSH_BOUND);
        assert_eq!(shutdown_bound_after(ms(20)), ms(250));
        assert_eq!(shutdown_bound_after(ms(100)), ms(180));
        assert_eq!(shutdown_bound_after(ms(230)), ms(50));
        assert_eq!(shutdown_bound_after(ms(260)), SHUTDOWN_FLUSH_FLOOR);
        assert_eq!(shutdown_bound_after(Duration::from_secs(5)), ms(50));
    }
}
