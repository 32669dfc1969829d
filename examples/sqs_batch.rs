//! An SQS batch function on `lambda-observability`, with partial batch responses (the event
//! source mapping's `ReportBatchItemFailures`): each message gets its own span, and a message
//! whose body is not the expected JSON, or that the business logic rejects, is reported in
//! `batchItemFailures` for redelivery instead of failing the whole batch.
//!
//! Spans follow the OpenTelemetry messaging semantic conventions (v1.27+): one `process {queue}`
//! span per message (`messaging.system = "aws_sqs"`, `messaging.operation.type = "process"`,
//! `messaging.message.id`), linked to the trace in the message's `AWSTraceHeader`; the batch
//! (the invocation span) has `messaging.batch.message_count`, plus the succeeded and failed
//! counts, which no convention names (hence outside the `messaging.*` namespace).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use hello_lambda::{HandlerError, process_request};
use lambda_runtime::LambdaEvent;
use opentelemetry::trace::Status;
use opentelemetry_aws::trace::xray_propagator::span_context_from_str;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    lambda_observability::run(tower::service_fn(handle)).await
}

async fn handle(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, HandlerError> {
    let (messages, mut response) = (event.payload.records, SqsBatchResponse::default());
    let count = messages.len() as i64;
    for message in messages {
        let id = message.message_id.clone().unwrap_or_default();
        if process(&message).is_err() {
            response.add_failure(id);
        }
    }
    // The invocation span is the batch's.
    let span = tracing::Span::current();
    let failed = response.batch_item_failures.len() as i64;
    span.set_attribute("messaging.batch.message_count", count);
    span.set_attribute("batch.succeeded_count", count - failed);
    span.set_attribute("batch.failed_count", failed);
    Ok(response)
}

/// One message, in its own span: the body is the `bootstrap` function's event, and the same
/// business logic greets it.
fn process(message: &SqsMessage) -> Result<(), HandlerError> {
    let queue = message.event_source_arn.as_deref().unwrap_or_default();
    let queue = queue.rsplit(':').next().unwrap_or_default();
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("process {queue}"),
        messaging.system = "aws_sqs",
        messaging.operation.type = "process",
        messaging.destination.name = queue,
        messaging.message.id = message.message_id.as_deref(),
    );
    // The sender's trace is a link, not the parent: a batch mixes messages of many traces, and
    // each message's span stays in the invocation's trace, under the batch. Added before the
    // span starts, so a sampler sees it.
    let sender = message.attributes.get("AWSTraceHeader").map(String::as_str);
    if let Some(sender) = sender.and_then(span_context_from_str) {
        span.add_link(sender);
    }
    // No await inside: the span can simply be entered.
    let _entered = span.enter();
    let body = message.body.as_deref().unwrap_or_default();
    let event =
        serde_json::from_str(body).map_err(|e| HandlerError::invalid_event("body", e.to_string()));
    let result = event.and_then(|event| process_request(&event, "cargo"));
    if let Err(error) = &result {
        tracing::warn!(%error, "message failed: reported for redelivery");
        span.set_status(Status::error(error.to_string()));
    }
    result.map(drop)
}
