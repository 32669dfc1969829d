//! An invocation's log lines are gathered and written together: at the end, or once they have
//! waited `MAX_LINE_DELAY` while the invocation waits; a `WARN` at once after what came before
//! it; one `write` per line when buffering is off. Each `write` the subscriber makes is recorded on its own, so the tests see the writes,
//! not only the lines.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lambda_runtime::LambdaInvocation;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::InMemorySpanExporter;
use tower::{Layer, ServiceExt, service_fn};

use super::{MAX_LINE_DELAY, TraceLayer};
use crate::{
    export::Telemetry,
    log_format::{self, LogConfig},
    test_support::{TRACE_HEADER, invocation, json_logs},
};

/// Every `write` made through it, each on its own.
#[derive(Debug, Clone, Default)]
struct Writes(Arc<Mutex<Vec<String>>>);

impl std::io::Write for Writes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("lock")
            .push(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Writes {
    /// The messages of each write, in order.
    fn messages(&self) -> Vec<Vec<String>> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|write| {
                write
                    .lines()
                    .map(|line| {
                        let line: serde_json::Value =
                            serde_json::from_str(line).expect("a JSON line");
                        line["message"].as_str().expect("message").to_owned()
                    })
                    .collect()
            })
            .collect()
    }
}

/// Runs `handler` for one invocation under `TraceLayer`, logging through the production
/// subscriber configured as `logs`, and returns the writes made.
async fn writes_of<F, Fut>(logs: LogConfig, during: impl Fn(&Writes), handler: F) -> Writes
where
    F: FnMut(LambdaInvocation) -> Fut,
    Fut: Future<Output = Result<(), lambda_runtime::Error>>,
{
    let telemetry = Telemetry::with_exporter(
        InMemorySpanExporter::default(),
        Resource::builder_empty().build(),
        Duration::from_secs(2),
    );
    let writes = Writes::default();
    let writer = writes.clone();
    let subscriber = log_format::subscriber(&logs, move || writer.clone(), telemetry.tracer())
        .expect("valid filter");
    let _guard = tracing::subscriber::set_default(subscriber);
    during(&writes);
    TraceLayer::new(telemetry.flusher())
        .layer(service_fn(handler))
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("ok");
    writes
}

#[tokio::test]
async fn lines_logged_without_a_yield_go_out_in_one_write_at_the_end() {
    let writes = writes_of(
        json_logs(),
        |_| {},
        |_| async {
            tracing::info!("one");
            tracing::info!("two");
            tracing::debug!("filtered out");
            tracing::info!("three");
            Ok(())
        },
    )
    .await;
    assert_eq!(writes.messages(), [["one", "two", "three"]]);
}

/// Runs one invocation whose handler logs, waits on `released`, logs again; `while_waiting`
/// sees the writes made while the handler waits (after `waited` of virtual time).
async fn wait_in_the_middle(waited: Duration) -> (Vec<Vec<String>>, Writes) {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let writes = Writes::default();
    let telemetry = Telemetry::with_exporter(
        InMemorySpanExporter::default(),
        Resource::builder_empty().build(),
        Duration::from_secs(2),
    );
    let writer = writes.clone();
    let subscriber =
        log_format::subscriber(&json_logs(), move || writer.clone(), telemetry.tracer())
            .expect("valid filter");
    let _guard = tracing::subscriber::set_default(subscriber);
    let service = TraceLayer::new(telemetry.flusher()).layer(service_fn(move |_| {
        let released = released.lock().expect("lock").take().expect("once");
        async move {
            tracing::info!("before the call");
            released.await.expect("released");
            tracing::info!("after the call");
            Ok::<(), lambda_runtime::Error>(())
        }
    }));
    let mut call = std::pin::pin!(service.oneshot(invocation(b"{}", Some(TRACE_HEADER))));
    assert!(futures_util::poll!(call.as_mut()).is_pending(), "waiting");
    tokio::time::sleep(waited).await;
    assert!(
        futures_util::poll!(call.as_mut()).is_pending(),
        "still waiting"
    );
    let while_waiting = writes.messages();
    release.send(()).expect("waiting");
    call.await.expect("ok");
    (while_waiting, writes)
}

#[tokio::test(start_paused = true)]
async fn lines_before_a_short_wait_go_out_with_the_rest_at_the_end() {
    let (while_waiting, writes) = wait_in_the_middle(MAX_LINE_DELAY / 2).await;
    assert!(while_waiting.is_empty(), "{while_waiting:?}");
    assert_eq!(writes.messages(), [["before the call", "after the call"]]);
}

#[tokio::test(start_paused = true)]
async fn lines_before_a_long_wait_are_written_after_max_line_delay() {
    // A call that hangs (until the timeout, say) does not hold back what was logged before it.
    let (while_waiting, writes) = wait_in_the_middle(MAX_LINE_DELAY).await;
    assert_eq!(while_waiting, [["before the call"]]);
    assert_eq!(writes.messages(), [["before the call"], ["after the call"]]);
}

#[tokio::test]
async fn a_warning_writes_what_was_gathered_then_itself_at_once() {
    let writes = writes_of(
        json_logs(),
        |_| {},
        |_| async {
            tracing::info!("gathered");
            tracing::warn!("at once");
            tracing::info!("gathered again");
            Ok(())
        },
    )
    .await;
    assert_eq!(
        writes.messages(),
        [vec!["gathered"], vec!["at once"], vec!["gathered again"]]
    );
}

#[tokio::test]
async fn unbuffered_every_line_is_its_own_write() {
    let writes = writes_of(
        json_logs().buffered(false),
        |_| {},
        |_| async {
            tracing::info!("one");
            tracing::info!("two");
            Ok(())
        },
    )
    .await;
    assert_eq!(writes.messages(), [["one"], ["two"]]);
}

#[tokio::test]
async fn lines_outside_an_invocation_are_written_at_once() {
    let writes = writes_of(
        json_logs(),
        |_| tracing::info!("at init"),
        |_| async { Ok(()) },
    )
    .await;
    assert_eq!(writes.messages(), [["at init"]]);
}
