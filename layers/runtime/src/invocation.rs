//! From a `/next` answer to a [`LambdaInvocation`]: the headers checked before
//! `lambda_runtime::Context::new` sees them (it panics on a missing request id or deadline).

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{HeaderValue, response::Parts};
use lambda_runtime::{Config, Context, LambdaInvocation};

use crate::facts::EnvironmentFacts;

const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";

/// Lambda's longest timeout: the deadline of an invocation that came without a usable one.
pub(crate) const NO_DEADLINE: Duration = Duration::from_secs(900);

/// Why a `/next` answer could not become an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// No usable request id: the invocation cannot even be answered.
    NoRequestId(String),
    /// A request id, but other headers `Context::new` rejects; the error is posted for it.
    Context { request_id: String, reason: String },
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRequestId(reason) => f.pad(&format!(
                "an event without a usable request id was skipped: {reason}"
            )),
            Self::Context { reason, .. } => f.pad(&format!(
                "the invocation's headers are not usable: {reason}"
            )),
        }
    }
}

/// The deadline in `headers`, made absolute (emulators send a relative one), as epoch
/// milliseconds; [`NO_DEADLINE`] from now when it is missing or not a number.
pub(crate) fn deadline_ms(headers: &http::HeaderMap) -> (u64, bool) {
    let parsed = headers
        .get(DEADLINE_MS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let deadline = match parsed {
        Some(ms) => crate::deadline::deadline(ms),
        None => SystemTime::now() + NO_DEADLINE,
    };
    let ms = deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    (ms, parsed.is_some())
}

/// Builds the invocation and attaches the facts of it that `environment` decides.
pub(crate) fn invocation(
    mut parts: Parts,
    body: Bytes,
    config: &Arc<Config>,
    environment: &EnvironmentFacts,
) -> Result<LambdaInvocation, Unusable> {
    let request_id = match parts.headers.get(REQUEST_ID).map(HeaderValue::to_str) {
        Some(Ok(id)) if !id.trim().is_empty() => id.trim().to_owned(),
        Some(Ok(_)) => return Err(Unusable::NoRequestId("the request id is empty".into())),
        Some(Err(_)) => {
            return Err(Unusable::NoRequestId(
                "the request id is not visible ASCII".into(),
            ));
        }
        None => {
            return Err(Unusable::NoRequestId(format!(
                "the {REQUEST_ID} header is missing"
            )));
        }
    };
    let (deadline_ms, received) = deadline_ms(&parts.headers);
    if !received {
        tracing::warn!(
            request_id,
            "the invocation came without a usable deadline: assuming {NO_DEADLINE:?}"
        );
    }
    // Everything downstream (the context, every layer, the handler) reads this one deadline.
    parts
        .headers
        .insert(DEADLINE_MS, HeaderValue::from(deadline_ms));
    let context = Context::new(&request_id, config.clone(), &parts.headers).map_err(|err| {
        Unusable::Context {
            request_id: request_id.clone(),
            reason: err.to_string(),
        }
    })?;
    let mut invocation = LambdaInvocation {
        parts,
        body,
        context,
    };
    environment
        .next_invocation(deadline_ms)
        .attach(&mut invocation);
    Ok(invocation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cold_start::InitializationType, facts::InvocationFacts};
    use std::time::Instant;

    fn parts(headers: &[(&str, &[u8])]) -> Parts {
        let mut response = http::Response::new(());
        for (name, value) in headers {
            response.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_bytes(value).expect("value"),
            );
        }
        response.into_parts().0
    }

    fn build(headers: &[(&str, &[u8])]) -> Result<LambdaInvocation, Unusable> {
        let environment = EnvironmentFacts::new(InitializationType::OnDemand, Instant::now());
        environment.init_done();
        invocation(
            parts(headers),
            Bytes::from_static(b"{}"),
            &Arc::new(Config::default()),
            &environment,
        )
    }

    #[test]
    fn a_missing_request_id_is_unusable_not_a_panic() {
        assert!(matches!(
            build(&[(DEADLINE_MS, b"1700000000000")]),
            Err(Unusable::NoRequestId(_))
        ));
        assert!(matches!(
            build(&[(REQUEST_ID, b"  ")]),
            Err(Unusable::NoRequestId(_))
        ));
        assert!(matches!(
            build(&[(REQUEST_ID, b"\xff")]),
            Err(Unusable::NoRequestId(_))
        ));
    }

    #[test]
    fn a_missing_or_garbled_deadline_is_the_longest_timeout() {
        for headers in [
            &[(REQUEST_ID, &b"id-1"[..])][..],
            &[(REQUEST_ID, &b"id-1"[..]), (DEADLINE_MS, &b"soon"[..])][..],
        ] {
            let invocation = build(headers).expect("usable");
            let left = crate::deadline::remaining_in(&invocation.context);
            assert!(
                left > NO_DEADLINE - Duration::from_secs(5) && left <= NO_DEADLINE,
                "{left:?}"
            );
        }
    }

    /// An invocation without a usable deadline is served (with the longest timeout) but said
    /// once; one with a deadline is not.
    #[test]
    fn a_missing_deadline_is_warned_about_with_the_request_id() {
        for (headers, warnings) in [
            (&[(REQUEST_ID, &b"id-w"[..])][..], 1),
            (
                &[(REQUEST_ID, &b"id-w"[..]), (DEADLINE_MS, &b"600000"[..])][..],
                0,
            ),
        ] {
            let (logs, subscriber) = crate::test_logs::Logs::capture();
            tracing::subscriber::with_default(subscriber, || {
                build(headers).expect("usable");
            });
            assert_eq!(
                logs.count("came without a usable deadline"),
                warnings,
                "{}",
                logs.text()
            );
            assert_eq!(logs.count("id-w"), warnings, "{}", logs.text());
        }
    }

    #[test]
    fn a_relative_deadline_is_made_absolute_once_and_facts_are_attached() {
        let invocation = build(&[(REQUEST_ID, b"id-2"), (DEADLINE_MS, b"600000")]).expect("usable");
        assert_eq!(invocation.context.request_id, "id-2");
        assert!(invocation.context.deadline > 1_000_000_000_000);
        assert_eq!(
            invocation.parts.headers.get(DEADLINE_MS),
            Some(&HeaderValue::from(invocation.context.deadline))
        );
        let facts = InvocationFacts::of(&invocation).expect("facts attached");
        assert!(facts.cold_start);
        assert_eq!(facts.deadline, invocation.context.deadline());
    }

    #[test]
    fn headers_context_new_rejects_are_reported_for_the_request() {
        let unusable = build(&[
            (REQUEST_ID, b"id-3"),
            ("lambda-runtime-client-context", b"{not json"),
        ])
        .map(|_| ())
        .expect_err("unusable");
        assert!(
            matches!(&unusable, Unusable::Context { request_id, .. } if request_id == "id-3"),
            "{unusable:?}"
        );
    }

    #[test]
    fn unusable_answers_say_why() {
        assert_eq!(
            Unusable::NoRequestId("the request id is empty".into()).to_string(),
            "an event without a usable request id was skipped: the request id is empty"
        );
        let context = Unusable::Context {
            request_id: "r".into(),
            reason: "bad header".into(),
        };
        assert_eq!(
            context.to_string(),
            "the invocation's headers are not usable: bad header"
        );
    }
}
