//! What the Lambda binaries share: the non-HTTP entry points as plain async functions over the
//! room (the SQS batch consumer, the scheduled strategy runner), JSON logs, CloudWatch metrics,
//! and the IAM caller API Gateway verified. The binaries in `functions/` only wire these to
//! `lambda_runtime` / `lambda_http`.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use serde::Serialize;

use crate::domain::EnqueueRequest;
use crate::http::admin::Actor;
use crate::service::WaitingRoom;

/// Assigns positions to one SQS batch. Messages the store could not take, and messages that
/// cannot be read, are reported as batch item failures: SQS delivers them again (and, after
/// the redrive policy's count, to the dead-letter queue) while the rest of the batch is done.
pub async fn handle_sqs_batch(room: &WaitingRoom, event: SqsEvent) -> SqsBatchResponse {
    let mut failed: Vec<String> = Vec::new();
    let mut requests: Vec<EnqueueRequest> = Vec::with_capacity(event.records.len());
    let mut ids: Vec<String> = Vec::with_capacity(event.records.len());
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        match message
            .body
            .as_deref()
            .map(serde_json::from_str::<EnqueueRequest>)
        {
            Some(Ok(request)) => {
                requests.push(request);
                ids.push(id);
            }
            _ => {
                tracing::error!(message_id = %id, "unreadable enqueue message");
                failed.push(id);
            }
        }
    }
    let report = room.assign_batch(&requests).await;
    tracing::info!(
        assigned = report.assigned,
        duplicates = report.duplicates,
        dropped = report.dropped,
        failed = report.failed.len() + failed.len(),
        "sqs batch"
    );
    failed.extend(report.failed.iter().map(|&i| ids[i].clone()));
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// What one scheduled invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScheduleReport {
    pub passes: u32,
    pub admitted: u64,
    pub failures: u32,
}

/// EventBridge schedules fire at most once a minute, so one invocation runs a pass every
/// `every` until `budget` is spent (keep it under the function timeout and the schedule rate,
/// so invocations do not overlap).
pub async fn handle_schedule(
    room: &WaitingRoom,
    event: EventBridgeEvent,
    every: Duration,
    budget: Duration,
) -> ScheduleReport {
    tracing::info!(source = %event.source, detail_type = %event.detail_type, "scheduled run");
    let deadline = tokio::time::Instant::now() + budget;
    let mut report = ScheduleReport::default();
    loop {
        let started = tokio::time::Instant::now();
        match room.apply_strategies().await {
            Ok(results) => {
                for (_, result) in results {
                    match result {
                        Ok(pass) => report.admitted += pass.admitted,
                        Err(_) => report.failures += 1,
                    }
                }
            }
            Err(_) => report.failures += 1,
        }
        report.passes += 1;
        let next = started + every;
        if next >= deadline {
            return report;
        }
        tokio::time::sleep_until(next).await;
    }
}

/// Structured logs as one JSON object per line, which CloudWatch Logs Insights queries by field.
/// The level comes from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line
        .with_target(false)
        .init();
}

/// CloudWatch namespace of the room's metrics.
pub const METRICS_NAMESPACE: &str = "WaitingRoom";

/// Writes what the counters did since the last call as one CloudWatch EMF line on stdout
/// (CloudWatch turns it into metrics; no API call, no extra latency).
pub fn flush_metrics(function: &str, now_ms: i64) {
    if let Some(document) = crate::metrics::emf_flush(METRICS_NAMESPACE, function, now_ms) {
        println!("{document}");
    }
}

/// The IAM caller API Gateway verified for this request (AWS_IAM authorization), from the
/// request context `lambda_http` attaches: REST APIs put it in the identity, HTTP APIs in the
/// authorizer.
pub fn gateway_caller<B>(request: &axum::http::Request<B>) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.identity.user_arn.clone(),
        RequestContext::ApiGatewayV2(context) => {
            context.authorizer.as_ref()?.iam.as_ref()?.user_arn.clone()
        }
        // Only API Gateway verifies IAM callers.
        _ => None,
    }
}

/// Middleware for the admin Lambda: the verified IAM caller becomes the request's [`Actor`],
/// which [`crate::http::AdminAuth::Gateway`] accepts. Nothing a client sends can set it.
pub async fn gateway_identity(mut request: Request, next: Next) -> Response {
    if let Some(arn) = gateway_caller(&request) {
        request.extensions_mut().insert(Actor(arn));
    }
    next.run(request).await
}
