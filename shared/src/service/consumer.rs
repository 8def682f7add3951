//! Batch position assignment: what the SQS consumer Lambda runs for each batch, and what the
//! local server runs on its in-memory buffer.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::WaitingRoom;
use crate::adapters::MemoryBuffer;
use crate::domain::{EnqueueRequest, EventConfig, EventId};
use crate::error::Error;

/// Messages one consumer takes at once (the SQS event source mapping's batch size).
pub const BATCH_SIZE: usize = 1_000;

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub assigned: u64,
    pub duplicates: u64,
    /// Messages for an event that does not exist, or made before the event's last reset:
    /// acknowledged and dropped, so they neither take a position nor come back forever.
    pub dropped: u64,
    /// Indexes (into the batch) of messages to deliver again because the store failed.
    pub failed: Vec<usize>,
}

impl WaitingRoom {
    /// Assigns positions to a batch, one store call (one queue counter move) per event in it.
    /// A store failure fails only that event's messages; they come back and, being idempotent,
    /// are assigned once.
    pub async fn assign_batch(&self, batch: &[EnqueueRequest]) -> BatchReport {
        let mut by_event: BTreeMap<&EventId, Vec<usize>> = BTreeMap::new();
        for (index, request) in batch.iter().enumerate() {
            by_event.entry(&request.event_id).or_default().push(index);
        }
        let mut report = BatchReport::default();
        for (event_id, indexes) in by_event {
            match self.assign_event(event_id, batch, &indexes).await {
                Ok(Some(outcome)) => {
                    report.assigned += outcome.assigned;
                    report.duplicates += outcome.duplicates;
                    report.dropped += outcome.wiped;
                }
                Ok(None) => {
                    tracing::warn!(event_id = %event_id, messages = indexes.len(), "dropped messages for an unknown event");
                    report.dropped += indexes.len() as u64;
                }
                Err(error) => {
                    tracing::error!(%error, event_id = %event_id, messages = indexes.len(), "batch assignment failed; messages will be retried");
                    report.failed.extend(indexes);
                }
            }
        }
        report.failed.sort_unstable();
        crate::metrics::add("positions_assigned_total", report.assigned);
        crate::metrics::add("redeliveries_total", report.duplicates);
        crate::metrics::add("messages_dropped_total", report.dropped);
        crate::metrics::add("messages_failed_total", report.failed.len() as u64);
        report
    }

    async fn assign_event(
        &self,
        event_id: &EventId,
        batch: &[EnqueueRequest],
        indexes: &[usize],
    ) -> Result<Option<crate::ports::AssignOutcome>, Error> {
        // The cached config: a batch needs only to know the event exists and whether its
        // safety net is on, and the store assigns nothing for an event gone meanwhile.
        let config = match self.cached_config(event_id).await {
            Ok(config) => config,
            Err(Error::UnknownEvent) => return Ok(None),
            Err(error) => return Err(error),
        };
        let requests: Vec<EnqueueRequest> = indexes.iter().map(|&i| batch[i].clone()).collect();
        let outcome = self
            .store
            .assign_positions(event_id, &requests, self.now_ms())
            .await?;
        // Safety net: let the newcomers straight in while the limits allow, instead of
        // waiting for the runner's next pass. A failure here loses nothing: the runner admits
        // them on its next pass.
        if config.safety_net && outcome.assigned > 0 {
            match self.admit_now(&config).await {
                Ok(admitted) if admitted > 0 => self.invalidate(event_id),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, event_id = %event_id, "safety-net admission deferred to the runner")
                }
            }
        }
        Ok(Some(outcome))
    }

    /// Admits on exit counts summed now.
    async fn admit_now(&self, config: &EventConfig) -> Result<u64, Error> {
        let counters = self.counters(&config.event_id).await?;
        self.admit(config, &counters).await
    }
}

/// Drains the in-memory buffer, as the SQS event source mapping does on AWS: failed messages
/// are put back and retried after a pause. Once `stop` is cancelled it places what the buffer
/// still holds (every join answered `202` gets its position) and returns how many it placed
/// after the stop; its caller bounds that with the drain time.
pub async fn run_memory_consumer(
    room: Arc<WaitingRoom>,
    buffer: Arc<MemoryBuffer>,
    stop: CancellationToken,
) -> u64 {
    loop {
        // Cancel-safe: `next_batch` takes nothing until it returns.
        let batch = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            batch = buffer.next_batch(BATCH_SIZE) => batch,
        };
        assign_or_redeliver(&room, &buffer, batch).await;
    }
    let mut placed = 0;
    loop {
        let batch = buffer.take_now(BATCH_SIZE);
        if batch.is_empty() {
            return placed;
        }
        placed += assign_or_redeliver(&room, &buffer, batch).await;
    }
}

/// Assigns one batch; what failed goes back to the front of the buffer after a pause.
async fn assign_or_redeliver(
    room: &WaitingRoom,
    buffer: &MemoryBuffer,
    batch: Vec<EnqueueRequest>,
) -> u64 {
    let report = room.assign_batch(&batch).await;
    if !report.failed.is_empty() {
        let retry: Vec<EnqueueRequest> = report.failed.iter().map(|&i| batch[i].clone()).collect();
        buffer.redeliver(retry);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    report.assigned
}
