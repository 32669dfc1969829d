//! What `bootstrap` does with each answer the Runtime API's reference lists for `/next`,
//! `/response` and `/error` (the table in `docs/runtime.md`), and with a broken connection.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{
    BootstrapExt as _, CheckIp, Event, FixtureExt as _, Function, MockRuntimeApi, Outcome, Refusal,
};

/// The log lines saying the answer to `request_id` was not taken.
fn not_taken<'a>(logs: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("the answer to invocation {request_id} ")))
        })
        .collect()
}

fn retries(logs: &[Value]) -> usize {
    logs.iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("could not get the next event, retrying"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_or_broken_post_is_logged_once_with_its_request_id_and_the_loop_goes_on() {
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start(vec![
        Event::fixture("bad-request", "success.json"),
        Event::fixture("forbidden", "throw-error.json"),
        Event::fixture("too-large", "success.json"),
        Event::fixture("broken", "success.json"),
        Event::fixture("ok", "success.json"),
    ])
    .await;
    runtime.refuse_posts("bad-request", Refusal::Status(400));
    runtime.refuse_posts("forbidden", Refusal::Status(403));
    runtime.refuse_posts("too-large", Refusal::Status(413));
    runtime.refuse_posts("broken", Refusal::Disconnect);
    let mut function = Function::start(&runtime, &[("CHECKIP_URL", &checkip.url)]);

    let refused = runtime.wait_refused(4).await;
    let kinds: Vec<(&str, &str)> = refused
        .iter()
        .map(|(id, kind, _)| (id.as_str(), *kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("bad-request", "response"),
            ("forbidden", "error"),
            ("too-large", "response"),
            ("broken", "response"),
        ],
        "each posted once, never again"
    );
    let outcomes = runtime.outcomes(1).await;
    assert!(
        matches!(&outcomes[..], [Outcome::Response { request_id, .. }] if request_id == "ok"),
        "{outcomes:?}"
    );
    runtime.wait_next_calls(6).await;
    assert!(function.is_running(), "{}", function.logs());

    let logs = function.json_logs();
    for (id, status) in [
        ("bad-request", Some(400)),
        ("forbidden", Some(403)),
        ("too-large", Some(413)),
        ("broken", None),
    ] {
        let lines = not_taken(&logs, id);
        assert_eq!(lines.len(), 1, "{id}: logged once: {lines:#?}");
        assert_eq!(lines[0]["request_id"], id);
        assert_eq!(lines[0]["status"].as_u64(), status, "{id}");
        assert_eq!(lines[0]["level"], "ERROR");
    }
    // Nothing else repeats it (the invocation's own end line is not an error).
    assert!(
        !logs.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("could not be completed"))),
        "{}",
        function.logs()
    );
    assert_eq!(
        not_taken(&logs, "too-large")[0]["message"]
            .as_str()
            .map(|m| m.contains("larger than Lambda accepts")),
        Some(true)
    );
    assert_eq!(retries(&logs), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_on_response_stops_the_runtime_and_exits_non_zero() {
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start(vec![
        Event::fixture("fatal", "success.json"),
        Event::fixture("never", "success.json"),
    ])
    .await;
    runtime.refuse_posts("fatal", Refusal::Status(500));
    let mut function = Function::start(&runtime, &[("CHECKIP_URL", &checkip.url)]);
    let exit = function
        .wait_exit(Duration::from_secs(10))
        .expect("exits promptly");
    assert!(!exit.success(), "non-zero: {exit:?}");
    assert_eq!(runtime.next_calls(), 1, "no /next after the 500");
    assert_eq!(runtime.refused().len(), 1);
    let logs = function.json_logs();
    let lines = not_taken(&logs, "fatal");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["status"], 500);
    assert!(
        logs.iter().any(|l| l["message"].as_str().is_some_and(|m| m
            .starts_with("the runtime stopped: invocation fatal: the Runtime API answered 500"))),
        "{}",
        function.logs()
    );
    assert!(
        logs.iter()
            .any(|l| l["message"] == "span export totals: 0 exported, 0 dropped")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_on_next_ends_the_process_at_once_without_retries() {
    let runtime = MockRuntimeApi::start(vec![Event::fixture("never", "success.json")]).await;
    runtime.answer_next_with(500, 1);
    let mut function = Function::start(&runtime, &[]);
    let exit = function
        .wait_exit(Duration::from_secs(10))
        .expect("exits promptly");
    assert!(!exit.success(), "non-zero: {exit:?}");
    assert_eq!(runtime.next_calls(), 1);
    let logs = function.json_logs();
    assert_eq!(retries(&logs), 0);
    assert!(
        logs.iter()
            .any(|l| l["message"].as_str().is_some_and(|m| m.starts_with(
                "the runtime stopped: the Runtime API answered 500 Internal Server Error to /next"
            ))),
        "{}",
        function.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_or_503_on_next_is_retried_with_backoff() {
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start(vec![Event::fixture("after", "success.json")]).await;
    runtime.answer_next_with(503, 1);
    runtime.answer_next_with(403, 1);
    let function = Function::start(&runtime, &[("CHECKIP_URL", &checkip.url)]);
    let outcomes = runtime.outcomes(1).await;
    assert!(matches!(&outcomes[0], Outcome::Response { .. }));
    assert_eq!(retries(&function.json_logs()), 2);
}
