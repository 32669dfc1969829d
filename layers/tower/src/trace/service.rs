use std::{
    sync::Arc,
    task::{Context, Poll},
    time::SystemTime,
};

use lambda_observability_runtime::BeforeAnswer;
use lambda_runtime::LambdaInvocation;
use opentelemetry::trace::{TraceContextExt, TraceId};
use tower::Service;
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{FlushSpans, ResponseFuture};
use crate::{
    facts::{EnvironmentFacts, InvocationFacts},
    log_format::{AfterSpan, InvocationLogContext, LineBuffer, attach_invocation},
};

/// Middleware that traces each invocation; see the [module docs](super).
#[derive(Clone)]
pub struct Trace<S> {
    pub(super) inner: S,
    pub(super) flusher: Arc<dyn FlushSpans>,
    pub(super) trigger: &'static str,
    pub(super) service_name: Option<Arc<str>>,
    pub(super) function_attributes: bool,
    pub(super) environment: Arc<EnvironmentFacts>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Trace<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("inner", &self.inner)
            .field("trigger", &self.trigger)
            .field("service_name", &self.service_name)
            .finish_non_exhaustive()
    }
}

impl<S> Trace<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<LambdaInvocation> for Trace<S>
where
    S: Service<LambdaInvocation, Response = ()>,
    S::Error: std::fmt::Display,
{
    type Response = ();
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: LambdaInvocation) -> Self::Future {
        // The runtime loop attaches the facts; `lambda_runtime::Runtime` does not, and then this
        // layer, the outermost, does it once for every layer inside.
        let (cold_start, deadline) = match InvocationFacts::of(&req) {
            Some(facts) => (facts.cold_start, facts.deadline),
            None => {
                let facts = self.environment.next_invocation(req.context.deadline);
                let known = (facts.cold_start, facts.deadline);
                facts.attach(&mut req);
                known
            }
        };
        // `Context::deadline` (what the handler reads) agrees with the facts' deadline, which is
        // already absolute even when an emulator sent a relative one.
        req.context.deadline = epoch_ms(deadline).unwrap_or(req.context.deadline);
        // The invocation's log lines and its flush's, written together when it yields or ends.
        let lines = Arc::new(LineBuffer::default());
        let (span, trace_id, after_span) = invocation_span(
            &req,
            self.trigger,
            self.service_name.as_deref(),
            cold_start,
            self.function_attributes,
            lines.clone(),
        );
        // Our runtime's `Respond` writes them before it posts the answer: an invocation's lines
        // are out by the time its caller has the response. The layers inside add their hooks
        // before this one: their EMF and end lines join the lines written here.
        BeforeAnswer::insert(&mut req.parts.extensions, {
            let lines = lines.clone();
            move || lines.flush()
        });
        // Its spans are this invocation's to export: no other invocation's flush takes them.
        self.flusher.open(trace_id);
        let future = {
            // Entered so that spans created by `call` itself hang under the invocation span.
            let _entered = span.enter();
            self.inner.call(req)
        };
        ResponseFuture::new(
            future.instrument(span),
            self.flusher.clone(),
            trace_id,
            deadline,
            after_span,
            lines,
        )
    }
}

/// What the span takes from `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`, found in
/// one pass over its bytes (splitting it twice cost 1.2k instructions per invocation).
struct Arn<'a> {
    /// The fourth part; `None` when empty or missing.
    region: Option<&'a str>,
    /// The fifth part; `None` when empty or missing.
    account: Option<&'a str>,
    /// The ARN without an alias or version qualifier: its first seven parts.
    unqualified: &'a str,
}

impl<'a> Arn<'a> {
    fn parse(arn: &'a str) -> Self {
        // Where each of the first seven colons is (a `:` byte is always a char boundary).
        let mut colons = [arn.len(); 7];
        let mut found = 0;
        for (at, byte) in arn.bytes().enumerate() {
            if byte == b':' {
                colons[found] = at;
                found += 1;
                if found == colons.len() {
                    break;
                }
            }
        }
        // Part `n` (at most 6) lies between colon `n - 1` and colon `n` (the end when there is
        // none), when colon `n - 1` exists.
        let part = |n: usize| {
            (n <= found)
                .then(|| &arn[colons[n - 1] + 1..colons[n]])
                .filter(|part| !part.is_empty())
        };
        Self {
            region: part(3),
            account: part(4),
            unqualified: &arn[..colons[6]],
        }
    }
}

fn epoch_ms(time: SystemTime) -> Option<u64> {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as u64)
}

/// Creates the invocation span under the Lambda segment and attaches the log context and `lines`
/// to it. Returns it with its trace id, whose spans the invocation exports, and the same context
/// and lines for its flush, which runs after the span closed.
fn invocation_span(
    req: &LambdaInvocation,
    trigger: &'static str,
    service_name: Option<&str>,
    cold_start: bool,
    function_attributes: bool,
    lines: Arc<LineBuffer>,
) -> (tracing::Span, TraceId, AfterSpan) {
    let ctx = &req.context;
    let config = &ctx.env_config;
    let arn = ctx.invoked_function_arn.as_str();
    // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    let Arn {
        region,
        account,
        unqualified,
    } = Arn::parse(arn);
    // One name for the function everywhere: the span (X-Ray's segment or subsegment name), the
    // `Service` annotation, the resource and the log lines.
    let name = service_name.unwrap_or(&config.function_name);
    // Two call sites: with the function's attributes, or without them (the resource has them).
    // A field recorded after the span is created would cost an `on_record` each.
    macro_rules! invocation_span {
        ($($function:tt)*) => {
            tracing::info_span!(
                target: "lambda_observability::invocation",
                "invocation",
                otel.name = name,
                otel.kind = Empty,
                otel.status_code = Empty,
                otel.status_description = Empty,
                faas.invocation_id = ctx.request_id.as_str(),
                faas.trigger = trigger,
                faas.coldstart = cold_start,
                cloud.account.id = account.unwrap_or_default(),
                // The function's ARN: the invoked one without an alias or version qualifier.
                cloud.resource_id = unqualified,
                aws.lambda.invoked_arn = arn,
                // No semantic convention names the tenant yet: this follows
                // `aws.lambda.invoked_arn`.
                aws.lambda.tenant_id = ctx.tenant_id.as_deref(),
                ColdStart = cold_start,
                Service = name,
                $($function)*
            )
        };
    }
    let span = if function_attributes {
        let span = invocation_span!(
            faas.name = config.function_name.as_str(),
            faas.version = config.version.as_str(),
            faas.max_memory = i64::from(config.memory) * 1024 * 1024,
            cloud.provider = "aws",
            cloud.platform = "aws_lambda",
            // From the ARN, not the environment (read once, by the configuration); emulators'
            // ARNs have none, and then the attribute is left out.
            cloud.region = region,
        );
        if !config.log_group.is_empty() {
            // A string array by the semantic conventions, which tracing fields cannot express.
            span.set_attribute(
                "aws.log.group.names",
                opentelemetry::Value::Array(
                    vec![opentelemetry::StringValue::from(config.log_group.clone())].into(),
                ),
            );
        }
        span
    } else {
        invocation_span!()
    };
    match ctx
        .xray_trace_id
        .as_deref()
        .and_then(super::xray_header::parent_from_header)
        // A `Root` without a usable `Parent` parses to a context with no span id: nothing to
        // hang under, and as a parent it would have the sampler drop the invocation's spans.
        .filter(opentelemetry::trace::SpanContext::is_valid)
    {
        // Under Lambda's function segment: an internal span, i.e. an X-Ray subsegment.
        Some(parent) => {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
        }
        // No segment to hang under (local runs): the span is the root, i.e. an X-Ray segment.
        None => {
            span.record("otel.kind", "server");
        }
    }
    // Builds the OpenTelemetry span now, so its ids can go into every log line.
    let otel = span.context();
    let ids = otel.span().span_context().clone();
    let context = InvocationLogContext {
        request_id: ctx.request_id.clone(),
        xray_trace_id: ctx.xray_trace_id.clone(),
        trace_id: ids
            .is_valid()
            .then(|| hex_string(&ids.trace_id().to_bytes())),
        span_id: ids
            .is_valid()
            .then(|| hex_string(&ids.span_id().to_bytes())),
        cold_start,
        function_name: config.function_name.clone(),
        tenant_id: ctx.tenant_id.clone(),
    };
    let after_span = attach_invocation(&span, context, lines);
    (span, ids.trace_id(), after_span)
}

/// `bytes` as lowercase hex (what the ids' `Display` writes, without the formatting machinery).
fn hex_string(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    crate::http_client::hex(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Arn, hex_string};

    fn unqualified(arn: &str) -> &str {
        Arn::parse(arn).unqualified
    }

    #[test]
    fn the_qualifier_is_cut_from_the_arn() {
        let function = "arn:aws:lambda:eu-west-1:123456789012:function:hello";
        for arn in [
            function,
            &format!("{function}:live"),
            &format!("{function}:7"),
        ] {
            assert_eq!(unqualified(arn), function);
        }
        assert_eq!(unqualified("not-an-arn"), "not-an-arn");
    }

    proptest! {
        #[test]
        fn the_ids_in_log_lines_are_what_their_display_writes(trace in any::<u128>(), span in any::<u64>()) {
            let trace = opentelemetry::trace::TraceId::from(trace);
            let span = opentelemetry::trace::SpanId::from(span);
            prop_assert_eq!(hex_string(&trace.to_bytes()), trace.to_string());
            prop_assert_eq!(hex_string(&span.to_bytes()), span.to_string());
        }

        #[test]
        fn it_keeps_the_first_seven_parts(arn in "[a-z0-9:]{0,40}") {
            let seven = arn.split(':').take(7).collect::<Vec<_>>().join(":");
            prop_assert_eq!(unqualified(&arn), seven.as_str());
        }

        #[test]
        fn region_and_account_are_the_fourth_and_fifth_parts(arn in "[a-z0-9:]{0,40}") {
            let mut parts = arn.split(':');
            let region = parts.nth(3).filter(|r| !r.is_empty());
            let account = parts.next().filter(|a| !a.is_empty());
            let parsed = Arn::parse(&arn);
            prop_assert_eq!((parsed.region, parsed.account), (region, account));
        }
    }
}
