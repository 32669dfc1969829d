//! The real `bootstrap` binary against a mock Lambda Runtime API: what it posts to `/response`
//! and `/error`, that it keeps serving whatever the event, and what it logs.

mod support;

use serde_json::json;
use support::{
    BootstrapExt as _, CheckIp, Event, FixtureExt as _, Function, MockRuntimeApi, Outcome,
};

fn response(outcome: &Outcome) -> &serde_json::Value {
    match outcome {
        Outcome::Response { body, .. } => body,
        Outcome::Error { body, .. } => panic!("expected a response, got error {body}"),
    }
}

fn error(outcome: &Outcome) -> (&str, &str) {
    match outcome {
        Outcome::Error { body, .. } => (
            body["errorType"].as_str().unwrap_or_default(),
            body["errorMessage"].as_str().unwrap_or_default(),
        ),
        Outcome::Response { body, .. } => panic!("expected an error, got response {body}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_every_event_with_a_response_or_a_typed_error_and_keeps_serving() {
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start(vec![
        Event::fixture("ok-1", "success.json"),
        Event::fixture("throw", "throw-error.json"),
        Event::fixture("invalid", "invalid.json"),
        Event::new("not-json", "{oops"),
        Event::new("not-utf8", vec![0xff, 0xfe, 0x00]),
        Event::new("array", "[1, 2]"),
        Event::new(
            "float-age",
            r#"{"firstName": "B", "lastName": "M", "age": 3.5}"#,
        ),
        Event::fixture("snake", "snake-case.json"),
        Event::fixture("ok-2", "success.json"),
    ])
    .await;
    let mut function = Function::start(&runtime, &[("CHECKIP_URL", &checkip.url)]);
    let outcomes = runtime.outcomes(9).await;
    let ids: Vec<&str> = outcomes.iter().map(Outcome::request_id).collect();
    assert_eq!(
        ids,
        [
            "ok-1",
            "throw",
            "invalid",
            "not-json",
            "not-utf8",
            "array",
            "float-age",
            "snake",
            "ok-2"
        ]
    );

    let expected = json!({
        "greeting": "Hello Bogdan-Eugen Mihai, this is a Rust AWS Lambda function developed using cargo!",
        "result": "Your age in hexadecimal is 0x22"
    });
    assert_eq!(response(&outcomes[0]), &expected);
    assert_eq!(response(&outcomes[8]), &expected);
    assert_eq!(
        error(&outcomes[1]),
        (
            "SimpleException",
            "Sorry, but the caller wants to me to throw an error"
        )
    );
    let (kind, message) = error(&outcomes[2]);
    assert_eq!(kind, "InvalidEvent");
    assert!(
        message.contains("`age`") && message.contains("negative"),
        "{message}"
    );
    for (outcome, fragment) in [
        (&outcomes[3], "not valid JSON"),
        (&outcomes[4], "not valid JSON"),
        (&outcomes[5], "JSON object"),
        (&outcomes[6], "whole number"),
    ] {
        let (kind, message) = error(outcome);
        assert_eq!(kind, "InvalidEvent", "{message}");
        assert!(message.contains(fragment), "{message}");
    }
    assert_eq!(
        response(&outcomes[7])["greeting"],
        "Hello Ada Lovelace, this is a Rust AWS Lambda function developed using cargo!"
    );
    if let Outcome::Error {
        error_type_header, ..
    } = &outcomes[1]
    {
        // The errorType travels in the header too, for Lambda's metrics and the caller.
        assert_eq!(error_type_header.as_deref(), Some("SimpleException"));
    }

    // Still alive and asking for the next event.
    runtime.wait_next_calls(10).await;
    assert!(
        function.is_running(),
        "the process must survive every event:\n{}",
        function.logs()
    );

    // The outbound call reached the public-IP stand-in once per invocation that got that far:
    // the two bodies that are not JSON never reach the handler.
    assert_eq!(checkip.requests.lock().expect("lock").len(), 7);

    let logs = function.json_logs();
    let raw = function.logs();
    assert!(
        !raw.contains("must-never-be-logged"),
        "credentials leaked into the logs"
    );
    assert!(
        !raw.contains("Bogdan-Eugen\",\"lastName"),
        "the payload is not logged by default"
    );
    let context_line = logs
        .iter()
        .find(|l| {
            l["requestId"] == "ok-1"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("seconds to live"))
        })
        .expect("function context line");
    assert_eq!(context_line["functionName"], "hello-it");
    assert_eq!(context_line["memory_mb"], 256);
    assert_eq!(context_line["coldStart"], true);
    assert_eq!(context_line["log_group"], "/aws/lambda/hello-it");
    assert!(context_line["message"].as_str().is_some_and(|m| {
        // The mock's deadline is 30 s after /next: whole seconds left, at most 30.
        m.split("has ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n <= 30)
            && m.ends_with("seconds to live")
    }));
    let public_ip = logs
        .iter()
        .find(|l| l["requestId"] == "ok-1" && l["public_ip"].is_string())
        .expect("public ip line");
    assert_eq!(public_ip["public_ip"], "198.51.100.7");
    let counters: Vec<u64> = logs
        .iter()
        .filter_map(|l| l["invocation"].as_u64())
        .collect();
    assert_eq!(
        counters,
        (1..=7).collect::<Vec<u64>>(),
        "the invocation counter survives between invocations (of the handler: 9 less the 2 bodies that are not JSON)"
    );
    let randoms: std::collections::HashSet<u64> = logs
        .iter()
        .filter_map(|l| l["static_random"].as_u64())
        .collect();
    assert_eq!(randoms.len(), 1, "STATIC_RANDOM is per environment");
    let later = logs
        .iter()
        .find(|l| l["requestId"] == "ok-2")
        .expect("ok-2 lines");
    assert_eq!(later["coldStart"], false);
    // EMF: the cold start once (with the init time), and the handler's `Greetings` once per
    // greeting sent (ok-1, snake, ok-2). No `Duration`: Lambda publishes its own.
    let emf: Vec<&serde_json::Value> = logs.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(emf.len(), 4, "{emf:?}");
    let cold: Vec<&&serde_json::Value> = emf
        .iter()
        .filter(|d| d.get("ColdStart").is_some())
        .collect();
    assert_eq!(cold.len(), 1, "{emf:?}");
    assert_eq!(cold[0]["ColdStart"], 1);
    assert!(cold[0]["InitDuration"][0].is_number(), "{}", cold[0]);
    assert_eq!(cold[0]["FunctionName"], "hello-it");
    let greetings: Vec<&&serde_json::Value> = emf
        .iter()
        .filter(|d| d.get("Greetings").is_some())
        .collect();
    assert_eq!(greetings.len(), 3, "{emf:?}");
    for doc in greetings {
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "HelloLambda");
        assert_eq!(
            directive["Dimensions"],
            json!([["service", "FunctionName", "PackageManager"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Greetings", "Unit": "Count"}])
        );
        assert_eq!(doc["Greetings"], 1);
        assert_eq!(doc["PackageManager"], "cargo");
        assert_eq!(doc["service"], "hello-it");
    }
    assert!(emf.iter().all(|d| d.get("Duration").is_none()), "{emf:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_public_ip_service_does_not_fail_the_invocation() {
    let broken = CheckIp::start(503).await;
    let runtime = MockRuntimeApi::start(vec![
        Event::fixture("ok", "success.json"),
        Event::new("unreachable", r#"{"firstName":"A","lastName":"B","age":1}"#),
    ])
    .await;
    let function = Function::start(&runtime, &[("CHECKIP_URL", &broken.url)]);
    let outcomes = runtime.outcomes(2).await;
    assert_eq!(
        response(&outcomes[1])["result"],
        "Your age in hexadecimal is 0x1"
    );
    assert_eq!(
        response(&outcomes[0])["result"],
        "Your age in hexadecimal is 0x22"
    );
    let logs = function.json_logs();
    let lines: Vec<&serde_json::Value> =
        logs.iter().filter(|l| l["public_ip"].is_string()).collect();
    assert_eq!(lines.len(), 2);
    for line in lines {
        let value = line["public_ip"].as_str().unwrap_or_default();
        assert!(
            value.starts_with("unable to get the public IP") && value.contains("503"),
            "{line}"
        );
    }
}

/// Runs one successful event with `env` and returns what the function logged as the public IP.
async fn public_ip_logged(env: &[(&str, &str)]) -> String {
    public_ip_logged_for(Event::fixture("ok", "success.json"), env).await
}

/// [`public_ip_logged`] for `event` (the success fixture, with other headers).
async fn public_ip_logged_for(event: Event, env: &[(&str, &str)]) -> String {
    let runtime = MockRuntimeApi::start(vec![event]).await;
    let function = Function::start(&runtime, env);
    let outcomes = runtime.outcomes(1).await;
    assert_eq!(
        response(&outcomes[0])["result"],
        "Your age in hexadecimal is 0x22"
    );
    let logs = function.json_logs();
    let line = logs
        .iter()
        .find(|l| l["public_ip"].is_string())
        .unwrap_or_else(|| {
            panic!(
                "no public IP line in what the function wrote:\n{}",
                function.logs()
            )
        });
    line["public_ip"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_public_ip_service_is_cut_by_its_timeout() {
    let hanging = CheckIp::hanging().await;
    let value =
        public_ip_logged(&[("CHECKIP_URL", &hanging.url), ("CHECKIP_TIMEOUT_MS", "300")]).await;
    assert_eq!(
        value,
        format!(
            "unable to get the public IP from {}: timed out after 300ms",
            hanging.url
        )
    );
}

/// Less than `DEADLINE_MARGIN` (500 ms) before the deadline Lambda sends: the call is not made,
/// and the invocation is answered. (How long the call may take nearer the deadline is tested in
/// virtual time in `src/handler.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_the_deadline_the_public_ip_call_is_skipped() {
    let hanging = CheckIp::hanging().await;
    let event =
        Event::fixture("ok", "success.json").deadline_in(std::time::Duration::from_millis(400));
    let value = public_ip_logged_for(event, &[("CHECKIP_URL", &hanging.url)]).await;
    assert_eq!(
        value,
        "not checked: less than 500ms left before the deadline"
    );
    assert!(hanging.requests.lock().expect("lock").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_public_ip_service_is_reported_with_its_cause() {
    // Port 9 on loopback: nothing listens, the connection is refused at once.
    let value = public_ip_logged(&[("CHECKIP_URL", "http://127.0.0.1:9/")]).await;
    assert!(
        value.starts_with(
            "unable to get the public IP from http://127.0.0.1:9/: error sending request"
        ),
        "{value}"
    );
    assert!(
        value.to_ascii_lowercase().contains("connection refused"),
        "the cause is named: {value}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_log_format_and_unset_package_management_system() {
    let checkip = CheckIp::start(200).await;
    let runtime = MockRuntimeApi::start(vec![Event::fixture("ok", "success.json")]).await;
    let function = Function::start(
        &runtime,
        &[
            ("CHECKIP_URL", &checkip.url),
            ("AWS_LAMBDA_LOG_FORMAT", "Text"),
            ("PACKAGE_MANAGEMENT_SYSTEM", ""),
        ],
    );
    let outcomes = runtime.outcomes(1).await;
    assert!(
        response(&outcomes[0])["greeting"]
            .as_str()
            .is_some_and(|g| g.ends_with("developed using cargo!"))
    );
    let logs = function.logs();
    assert!(
        logs.lines()
            .any(|l| l.split('\t').nth(1) == Some("ok") && l.contains("\tINFO\t")),
        "{logs}"
    );
    assert!(
        logs.contains("PACKAGE_MANAGEMENT_SYSTEM is not set"),
        "{logs}"
    );
}
