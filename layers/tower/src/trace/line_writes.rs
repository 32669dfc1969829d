//! An invocation's log lines are gathered and written together: at the end, or once they have
//! waited `MAX_LINE_DELAY` while the invocation waits; a `WARN` at once after what came before
//! it; one `write` per line when buffering is off. `SharedBuf` keeps each `write` the
//! subscriber makes apart, so the tests see the writes, not only the lines.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lambda_observability_runtime::BeforeAnswer;
use lambda_runtime::LambdaInvocation;
use tower::{Layer, ServiceExt, service_fn};
use tracing::Level;

use super::{MAX_LINE_DELAY, TraceLayer};
use crate::{
    LoggingLayer, ObservabilityLayer, TimingLayer,
    log_format::LogConfig,
    metrics::{self, test_support::installed},
    test_support::{SharedBuf, TRACE_HEADER, TestTelemetry, invocation, json_logs},
};

/// The messages of each write, in order.
fn messages(logs: &SharedBuf) -> Vec<Vec<String>> {
    logs.writes()
        .iter()
        .map(|write| {
            write
                .lines()
                .map(|line| {
                    let line: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                    line["message"].as_str().expect("message").to_owned()
                })
                .collect()
        })
        .collect()
}

/// Runs `handler` for one invocation under `TraceLayer`, logging through the production
/// subscriber configured as `logs`, and returns the messages of each write made (`at_init`
/// is logged before the invocation, outside it).
async fn writes_of<F, Fut>(logs: LogConfig, at_init: Option<&str>, handler: F) -> Vec<Vec<String>>
where
    F: FnMut(LambdaInvocation) -> Fut,
    Fut: Future<Output = Result<(), lambda_runtime::Error>>,
{
    let telemetry = TestTelemetry::with_logs(&logs);
    if let Some(message) = at_init {
        tracing::info!("{message}");
    }
    TraceLayer::new(telemetry.flusher())
        .layer(service_fn(handler))
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("ok");
    messages(&telemetry.logs)
}

#[tokio::test]
async fn lines_logged_without_a_yield_go_out_in_one_write_at_the_end() {
    let writes = writes_of(json_logs(), None, |_| async {
        tracing::info!("one");
        tracing::info!("two");
        tracing::debug!("filtered out");
        tracing::info!("three");
        Ok(())
    })
    .await;
    assert_eq!(writes, [["one", "two", "three"]]);
}

/// Runs one invocation whose handler logs, waits on `released`, logs again; `while_waiting`
/// sees the writes made while the handler waits (after `waited` of virtual time).
async fn wait_in_the_middle(waited: Duration) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let telemetry = TestTelemetry::new();
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
    let while_waiting = messages(&telemetry.logs);
    release.send(()).expect("waiting");
    call.await.expect("ok");
    (while_waiting, messages(&telemetry.logs))
}

#[tokio::test(start_paused = true)]
async fn lines_before_a_short_wait_go_out_with_the_rest_at_the_end() {
    let (while_waiting, writes) = wait_in_the_middle(MAX_LINE_DELAY / 2).await;
    assert!(while_waiting.is_empty(), "{while_waiting:?}");
    assert_eq!(writes, [["before the call", "after the call"]]);
}

#[tokio::test(start_paused = true)]
async fn lines_before_a_long_wait_are_written_after_max_line_delay() {
    // A call that hangs (until the timeout, say) does not hold back what was logged before it.
    let (while_waiting, writes) = wait_in_the_middle(MAX_LINE_DELAY).await;
    assert_eq!(while_waiting, [["before the call"]]);
    assert_eq!(writes, [["before the call"], ["after the call"]]);
}

#[tokio::test]
async fn a_warning_writes_what_was_gathered_then_itself_at_once() {
    let writes = writes_of(json_logs(), None, |_| async {
        tracing::info!("gathered");
        tracing::warn!("at once");
        tracing::info!("gathered again");
        Ok(())
    })
    .await;
    assert_eq!(
        writes,
        [vec!["gathered"], vec!["at once"], vec!["gathered again"]]
    );
}

#[tokio::test]
async fn unbuffered_every_line_is_its_own_write() {
    let writes = writes_of(json_logs().buffered(false), None, |_| async {
        tracing::info!("one");
        tracing::info!("two");
        Ok(())
    })
    .await;
    assert_eq!(writes, [["one"], ["two"]]);
}

#[tokio::test]
async fn lines_outside_an_invocation_are_written_at_once() {
    let writes = writes_of(json_logs(), Some("at init"), |_| async { Ok(()) }).await;
    assert_eq!(writes, [["at init"]]);
}

#[tokio::test]
async fn emf_lines_of_an_invocation_go_out_in_the_write_of_its_log_lines() {
    let (metrics, _guard) = installed().await;
    let telemetry = TestTelemetry::new();
    TraceLayer::new(telemetry.flusher())
        .layer(service_fn(move |_| {
            let metrics = metrics.clone();
            async move {
                tracing::info!("before the metrics");
                metrics::counter!("LineWritesJoined").increment(1);
                metrics.flush();
                tracing::info!("after the metrics");
                Ok::<(), lambda_runtime::Error>(())
            }
        }))
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("ok");
    let writes = telemetry.logs.writes();
    assert_eq!(writes.len(), 1, "one write: {writes:?}");
    let lines: Vec<serde_json::Value> = writes[0]
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["message"], "before the metrics");
    assert_eq!(
        lines[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "LineWritesJoined",
        "the EMF line, in order: {lines:?}"
    );
    assert_eq!(lines[2]["message"], "after the metrics");
}

#[tokio::test]
async fn emf_lines_outside_an_invocation_are_not_joined() {
    assert!(!crate::log_format::join_invocation_lines(b"{}\n"));
}

/// The `message` of a log line, or `EMF` for an EMF line.
fn message_or_emf(line: &str) -> String {
    let line: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    match line["message"].as_str() {
        Some(message) => message.to_owned(),
        None if line["_aws"].is_object() => "EMF".to_owned(),
        None => panic!("neither a log line nor an EMF line: {line}"),
    }
}

#[tokio::test]
async fn before_the_answer_the_lines_emf_and_end_line_go_out_in_one_write() {
    let (metrics, _guard) = installed().await;
    let telemetry = TestTelemetry::new();
    let logs = telemetry.logs.clone();
    let writes_at_the_answer: Arc<Mutex<Option<usize>>> = Arc::default();
    // The handler plays our runtime's `Respond`: it runs the invocation's `BeforeAnswer` hook,
    // then "posts" (notes how many writes were out), then logs after the answer.
    let handler = service_fn({
        let (logs, seen) = (logs.clone(), writes_at_the_answer.clone());
        move |invocation: LambdaInvocation| {
            let (logs, seen) = (logs.clone(), seen.clone());
            async move {
                tracing::info!("handled");
                metrics::counter!("AnsweredInOneWrite").increment(1);
                invocation
                    .parts
                    .extensions
                    .get::<BeforeAnswer>()
                    .expect("the layers put a hook")
                    .run();
                *seen.lock().expect("lock") = Some(logs.writes().len());
                tracing::info!("after the answer");
                Ok::<(), lambda_runtime::Error>(())
            }
        }
    });
    ObservabilityLayer::new(telemetry.flusher())
        .logging(LoggingLayer::new().level(Level::INFO))
        .timing(TimingLayer::new().metrics(metrics))
        .layer(handler)
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("ok");
    let writes: Vec<Vec<String>> = logs
        .writes()
        .iter()
        .map(|write| write.lines().map(message_or_emf).collect())
        .collect();
    assert_eq!(
        *writes_at_the_answer.lock().expect("lock"),
        Some(1),
        "one write out when the answer is posted: {writes:?}"
    );
    assert_eq!(
        writes,
        [
            vec![
                "invocation started",
                "handled",
                "EMF",
                "invocation finished"
            ],
            vec!["after the answer"],
        ],
        "the end line and the EMF line once, before the answer"
    );
}

#[tokio::test]
async fn without_a_runtime_that_runs_the_hook_the_emf_and_end_lines_come_at_the_end() {
    let (metrics, _guard) = installed().await;
    let telemetry = TestTelemetry::new();
    ObservabilityLayer::new(telemetry.flusher())
        .logging(LoggingLayer::new().level(Level::INFO))
        .timing(TimingLayer::new().metrics(metrics))
        .layer(service_fn(|_: LambdaInvocation| async {
            tracing::info!("handled");
            metrics::counter!("AnsweredAtTheEnd").increment(1);
            Ok::<(), lambda_runtime::Error>(())
        }))
        .oneshot(invocation(b"{}", Some(TRACE_HEADER)))
        .await
        .expect("ok");
    let writes: Vec<Vec<String>> = telemetry
        .logs
        .writes()
        .iter()
        .map(|write| write.lines().map(message_or_emf).collect())
        .collect();
    assert_eq!(
        writes,
        [[
            "invocation started",
            "handled",
            "EMF",
            "invocation finished"
        ]]
    );
}
