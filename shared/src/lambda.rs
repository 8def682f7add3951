//! The non-HTTP Lambda entry points, as plain async functions over the room: the SQS batch
//! consumer and the scheduled strategy runner. The binaries in `functions/` only wire them to
//! `lambda_runtime`.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::Serialize;

use crate::domain::EnqueueRequest;
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
