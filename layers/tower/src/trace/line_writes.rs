//! An invocation's log lines are gathered and written together: once per yield and once at the
//! end, a `WARN` at once after what came before it, and one `write` per line when buffering is
//! off. Each `write` the subscriber makes is recorded on its own, so the tests see the writes,
//! not only the lines.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lambda_runtime::LambdaInvocation;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::InMemorySpanExporter;
use tower::{Layer, ServiceExt, service_fn};

use super::TraceLayer;
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

#[tokio::test]
async fn each_yield_writes_what_came_before_it() {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let seen_at_yield: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
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
            // A call that has not returned yet: the line before it must already be out.
            released.await.expect("released");
            tracing::info!("after the call");
            Ok::<(), lambda_runtime::Error>(())
        }
    }));
    let invocation = tokio::spawn({
        let seen = seen_at_yield.clone();
        let writes = writes.clone();
        async move {
            let mut call = std::pin::pin!(service.oneshot(invocation(b"{}", Some(TRACE_HEADER))));
            // One poll: the handler logs, then waits.
            assert!(futures_util::poll!(call.as_mut()).is_pending());
            seen.lock().expect("lock").extend(writes.messages());
            release.send(()).expect("waiting");
            call.await.expect("ok");
        }
    });
    invocation.await.expect("the invocation ran");
    assert_eq!(
        *seen_at_yield.lock().expect("lock"),
        [["before the call"]],
        "written when the invocation yielded"
    );
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
