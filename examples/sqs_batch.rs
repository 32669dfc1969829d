//! An SQS batch function on `lambda-observability`, with partial batch responses (the event
//! source mapping's `ReportBatchItemFailures`): each message gets its own span, and a message
//! whose body is not the expected JSON, or that the business logic rejects, is reported in
//! `batchItemFailures` for redelivery instead of failing the whole batch.
//!
//! Spans follow the OpenTelemetry messaging semantic conventions (v1.27): one `process {queue}`
//! span per message (`messaging.system = "aws_sqs"`, `messaging.operation.type = "process"`,
//! `messaging.message.id`), linked to the trace in the message's `AWSTraceHeader`; the batch
//! (the invocation span) has `messaging.batch.message_count` and the succeeded and failed counts.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use hello_lambda::{HandlerError, process_request};
use lambda_observability::triggers::messaging;
use lambda_runtime::LambdaEvent;
use opentelemetry::trace::Status;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    lambda_observability::run(tower::service_fn(handle)).await
}

async fn handle(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, HandlerError> {
    let (messages, mut response) = (event.payload.records, SqsBatchResponse::default());
    for message in &messages {
        if process(message).is_err() {
            response.add_failure(message.message_id.clone().unwrap_or_default());
        }
    }
    messaging::batch(messages.len(), response.batch_item_failures.len());
    Ok(response)
}

/// One message, in its own span: the body is the `bootstrap` function's event, and the same
/// business logic greets it.
fn process(message: &SqsMessage) -> Result<(), HandlerError> {
    let queue = message.event_source_arn.as_deref().unwrap_or_default();
    let queue = queue.rsplit(':').next().unwrap_or_default();
    let sender = message.attributes.get("AWSTraceHeader").map(String::as_str);
    let span = messaging::process_span("aws_sqs", queue, message.message_id.as_deref(), sender);
    let _entered = span.enter(); // no await inside: the span can simply be entered
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
