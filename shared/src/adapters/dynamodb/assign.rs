//! Position assignment: one write per visitor and one counter move per batch.
//!
//! A request made before the event's last reset (its id carries the generation it was made in)
//! gets no position: its line is gone. An SQS message may be delivered twice, even to two
//! consumers at once, and a consumer may die half-way. A batch therefore runs in three steps:
//!
//! 1. **Read** the batch's request items (one batched read per 100): a request that already
//!    has a position in the current generation is a redelivery and keeps it.
//! 2. **Move the counter once**: `ADD queue_counter :n` for the `n` requests left, which
//!    returns the new value and so a range of positions no other batch can get.
//! 3. **Write** each request with its position, in order of entry time, with a put that only
//!    lands on a request not yet assigned in this generation.
//!
//! No position is given twice (ranges come from one atomic `ADD`) and no request gets two
//! (the put's condition). A position is left unused, a gap, when its put loses to a copy of the
//! same message assigned by another consumer between steps 1 and 3, or when a batch fails
//! after step 2: its redelivery finds the requests written so far and numbers the rest from a
//! new range. A gap is served like any place and, never claimed, expires with its serving
//! move's claim window. An operator's reset between steps 2 and 3 is caught by reading the
//! generation again after the writes; the batch is then assigned again in the new line.

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt};

use super::DynamoStore;
use super::codec::{ItemExt, StoredRequest};
use super::retry::{Try, retry};
use super::schema::{
    RETENTION_SECS, TTL, attr, event_key, item, num, request_key, string, ttl_after,
};
use super::table::{Put, Read, Returns, Update, Written};
use crate::domain::{EnqueueRequest, EventId};
use crate::ports::{AssignOutcome, StoreError};

/// Position writes in flight at once.
const PARALLEL_WRITES: usize = 64;

const MOVE_QUEUE_COUNTER: &str = "ADD queue_counter :n SET queue_changed_at_ms = :now";

/// Step 2: the one queue counter move of a batch; returns the new counter value.
fn move_queue_counter(event_id: &EventId, generation: u64, n: u64, now_ms: i64) -> Update {
    Update::new(
        event_key(event_id),
        MOVE_QUEUE_COUNTER,
        item([
            (":n", num(n)),
            (":now", num(now_ms)),
            (":generation", num(generation)),
        ]),
    )
    .when("generation = :generation")
    .returning(Returns::UpdatedNew)
}

/// Whether an update expression is the queue counter move (for the call counter).
pub(super) fn moves_queue_counter(expression: &str) -> bool {
    expression == MOVE_QUEUE_COUNTER
}

/// Step 3: a request with its position, unless it already has one in this generation.
fn write_position(
    event_id: &EventId,
    request: &EnqueueRequest,
    generation: u64,
    position: u64,
) -> Put {
    let mut request_item = request_key(event_id, &request.request_id);
    request_item.extend(item([
        (attr::REQUEST_ID, string(request.request_id.to_string())),
        (attr::EVENT_ID, string(event_id.as_str())),
        (attr::GENERATION, num(generation)),
        (attr::ENTRY_TIME_MS, num(request.entry_time_ms)),
        (attr::QUEUE_POSITION, num(position)),
        (TTL, ttl_after(request.entry_time_ms, RETENTION_SECS)),
    ]));
    Put {
        item: request_item,
        condition: Some("attribute_not_exists(pk) OR generation < :generation"),
        values: item([(":generation", num(generation))]),
    }
}

/// How the write of one position ended.
enum Placed {
    Written,
    /// Another consumer assigned the request first: this position is a gap.
    AlreadyAssigned,
    Failed(StoreError),
}

impl DynamoStore {
    pub(super) async fn assign(
        &self,
        event_id: &EventId,
        requests: &[EnqueueRequest],
        now_ms: i64,
    ) -> Result<AssignOutcome, StoreError> {
        // The same request twice in one batch: the first occurrence counts.
        let mut seen = HashSet::new();
        let mut unique: Vec<&EnqueueRequest> = requests
            .iter()
            .filter(|request| seen.insert(request.request_id))
            .collect();
        // Stable: requests that entered in the same millisecond keep the batch's order.
        unique.sort_by_key(|request| request.entry_time_ms);
        let repeated = (requests.len() - unique.len()) as u64;
        let unique = &unique;
        let mut outcome = retry(|| async move {
            let Some(state) = self.event_state(event_id, Read::Strong).await? else {
                return Ok(Try::Done(AssignOutcome::default()));
            };
            let generation = state.counters.generation;
            // Requests made before the last reset: their line is gone. Sorted with the
            // generation the batch is numbered in, so a reset mid-batch sorts them again.
            let (current, wiped): (Vec<&EnqueueRequest>, Vec<&EnqueueRequest>) = unique
                .iter()
                .partition(|request| request.request_id.generation() >= generation);
            Ok(
                match self
                    .assign_in(event_id, generation, &current, now_ms)
                    .await?
                {
                    Some(outcome) => Try::Done(AssignOutcome {
                        wiped: wiped.len() as u64,
                        ..outcome
                    }),
                    // Reset meanwhile: assign in the new line.
                    None => Try::Again,
                },
            )
        })
        .await?;
        outcome.duplicates += repeated;
        Ok(outcome)
    }

    /// The three steps within one generation; `None` when the event was reset meanwhile.
    async fn assign_in(
        &self,
        event_id: &EventId,
        generation: u64,
        requests: &[&EnqueueRequest],
        now_ms: i64,
    ) -> Result<Option<AssignOutcome>, StoreError> {
        let keys = requests
            .iter()
            .map(|request| request_key(event_id, &request.request_id))
            .collect();
        let mut assigned = HashSet::new();
        for found in self.table.batch_get(keys, Read::Strong).await? {
            let stored = StoredRequest::try_from(&found)?;
            if stored.generation > generation {
                return Ok(None);
            }
            if stored.generation == generation {
                assigned.insert(stored.record.request_id);
            }
        }
        let fresh: Vec<&EnqueueRequest> = requests
            .iter()
            .copied()
            .filter(|request| !assigned.contains(&request.request_id))
            .collect();
        let mut outcome = AssignOutcome {
            assigned: 0,
            duplicates: assigned.len() as u64,
            wiped: 0,
        };
        if fresh.is_empty() {
            return Ok(Some(outcome));
        }

        let n = fresh.len() as u64;
        let moved = retry(|| async move {
            let update = move_queue_counter(event_id, generation, n, now_ms);
            Ok(Try::Done(match self.table.update(update).await? {
                Written::Done(new) => Some(new.number::<u64>(attr::QUEUE_COUNTER)?),
                Written::ConditionFailed(_) => None,
            }))
        })
        .await?;
        let Some(last) = moved else {
            return Ok(None);
        };
        let first = last + 1 - n;

        // Futures built first, then run a few at a time (a closure inside the stream trips
        // the compiler's Send check of `async_trait`).
        let writes: Vec<_> = fresh
            .iter()
            .enumerate()
            .map(|(offset, request)| {
                let put = write_position(event_id, request, generation, first + offset as u64);
                async move {
                    match self.table.put(put).await {
                        Ok(Written::Done(())) => Placed::Written,
                        Ok(Written::ConditionFailed(_)) => Placed::AlreadyAssigned,
                        Err(error) => Placed::Failed(error),
                    }
                }
            })
            .collect();
        let placed: Vec<Placed> = stream::iter(writes)
            .buffer_unordered(PARALLEL_WRITES)
            .collect()
            .await;
        let mut failed = Vec::new();
        for result in placed {
            match result {
                Placed::Written => outcome.assigned += 1,
                Placed::AlreadyAssigned => {
                    tracing::info!(event_id = %event_id, "request assigned by another consumer meanwhile; position left unused");
                    outcome.duplicates += 1;
                }
                Placed::Failed(error) => failed.push(error),
            }
        }
        if let Some(error) = failed.first() {
            // Not retried here: the positions written stand, the rest are gaps, and the
            // redelivered messages get new ones.
            return Err(StoreError::Unavailable(format!(
                "{} of {n} positions not written ({error}); the batch is to be delivered again",
                failed.len()
            )));
        }
        let still = self.event_state(event_id, Read::Strong).await?;
        if still.is_none_or(|state| state.counters.generation != generation) {
            return Ok(None);
        }
        Ok(Some(outcome))
    }
}

/// Failure paths that need a consumer to die half-way, which only code inside the adapter can
/// stage. They run against moto when `WR_TEST_AWS_ENDPOINT` is set.
#[cfg(test)]
mod tests {
    use super::super::event_on_moto;
    use super::*;
    use crate::domain::RequestId;
    use crate::ports::Store;

    const T0_MS: i64 = 1_767_225_600_000;

    async fn event_with(n: usize) -> Option<(DynamoStore, EventId, Vec<EnqueueRequest>)> {
        let (store, event_id) = event_on_moto(T0_MS).await?;
        let requests = (0..n)
            .map(|i| EnqueueRequest {
                event_id: event_id.clone(),
                request_id: RequestId::new(T0_MS + i as i64, 0),
                entry_time_ms: T0_MS + i as i64,
            })
            .collect();
        Some((store, event_id, requests))
    }

    async fn position_of(store: &DynamoStore, event_id: &EventId, r: &EnqueueRequest) -> u64 {
        store
            .get_request(event_id, &r.request_id)
            .await
            .unwrap()
            .expect("assigned")
            .position
    }

    #[tokio::test]
    async fn a_batch_that_dies_after_moving_the_counter_leaves_a_gap_never_a_duplicate() {
        let Some((store, event_id, requests)) = event_with(3).await else {
            return;
        };
        // A consumer moves the counter for all three, writes the first and dies.
        let moved = move_queue_counter(&event_id, 0, 3, T0_MS);
        assert!(matches!(
            store.table.update(moved).await.unwrap(),
            Written::Done(_)
        ));
        let first = write_position(&event_id, &requests[0], 0, 1);
        assert!(matches!(
            store.table.put(first).await.unwrap(),
            Written::Done(())
        ));
        // The redelivered batch keeps the first one's place and numbers the other two anew.
        let outcome = store
            .assign_positions(&event_id, &requests, T0_MS + 1_000)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            AssignOutcome {
                assigned: 2,
                duplicates: 1,
                wiped: 0
            }
        );
        let positions = [
            position_of(&store, &event_id, &requests[0]).await,
            position_of(&store, &event_id, &requests[1]).await,
            position_of(&store, &event_id, &requests[2]).await,
        ];
        assert_eq!(positions, [1, 4, 5], "2 and 3 are gaps");
        let counters = store.counters(&event_id).await.unwrap().unwrap();
        assert_eq!(counters.queue_counter, 5);
        store.delete_table().await.unwrap();
    }

    #[tokio::test]
    async fn a_position_write_never_lands_on_a_request_already_assigned() {
        let Some((store, event_id, requests)) = event_with(1).await else {
            return;
        };
        store
            .assign_positions(&event_id, &requests, T0_MS)
            .await
            .unwrap();
        // A slow consumer that read the request before it was assigned writes its own
        // position: refused, the request keeps position 1.
        let late = write_position(&event_id, &requests[0], 0, 2);
        assert!(matches!(
            store.table.put(late).await.unwrap(),
            Written::ConditionFailed(_)
        ));
        assert_eq!(position_of(&store, &event_id, &requests[0]).await, 1);
        // After a reset the same request may start the new line.
        assert!(store.reset_event(&event_id, T0_MS + 10).await.unwrap());
        let again = write_position(&event_id, &requests[0], 1, 1);
        assert!(matches!(
            store.table.put(again).await.unwrap(),
            Written::Done(())
        ));
        store.delete_table().await.unwrap();
    }

    #[test]
    fn only_the_batch_counter_move_is_counted_as_one() {
        let e = EventId::parse("e").unwrap();
        assert!(moves_queue_counter(
            &move_queue_counter(&e, 0, 5, 0).expression
        ));
        assert!(!moves_queue_counter("ADD serving_counter :step"));
    }
}
