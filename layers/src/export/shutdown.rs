//! The last export of an execution environment, on SIGTERM.

use std::time::Duration;

use super::Telemetry;

/// Bound on the export at shutdown (SIGTERM).
pub const SHUTDOWN_FLUSH_BOUND: Duration = Duration::from_millis(250);

impl Telemetry {
    /// Exports what is pending, then shuts the provider down (on SIGTERM). Bounded by
    /// [`SHUTDOWN_FLUSH_BOUND`]: Lambda gives a runtime only a few hundred milliseconds after
    /// SIGTERM, and with the ADOT layer the collector still needs its share to forward the spans.
    pub async fn shutdown(&self) {
        self.flusher.flush_within(SHUTDOWN_FLUSH_BOUND).await;
        if let Some(provider) = &self.provider {
            let _ = provider.shutdown();
        }
    }
}

/// Exports pending spans and shuts the pipeline down on SIGTERM or SIGINT, then exits.
///
/// Lambda sends SIGTERM before it shuts an execution environment down, but only when an extension
/// is registered (the ADOT collector layer is one). Spans still pending then — from work that
/// outlived its invocation — are exported instead of lost. Needs a tokio runtime with signals.
pub fn spawn_shutdown_flush(telemetry: Telemetry) {
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
        std::process::exit(0);
    });
}
