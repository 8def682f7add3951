//! The serving counter and its moves. A move is written with the counter, in one transaction,
//! under the event's per-generation serving partition, sorted by the counter value it reached,
//! with the claim deadline of the places it let in. Moves are only ever added, so processes
//! may cache them: a move once read stays true.

use super::DynamoStore;
use super::codec::EventState;
use super::retry::{Try, retry};
use super::schema::{
    RETENTION_SECS, TTL, attr, counter_sort_key, event_key, item, move_key, num, serving_partition,
    string, ttl_after,
};
use super::table::{Put, Query, Read, Tx, Update};
use crate::domain::{EventId, ServingIncrement};
use crate::ports::{ServingMoves, StoreError};

/// Moves the serving counter from the value read, never past the queue counter, and records
/// the move (written together).
fn advance_serving(event_id: &EventId, state: &EventState, made: &ServingIncrement) -> [Tx; 2] {
    let generation = state.counters.generation;
    let counter = Update::new(
        event_key(event_id),
        "ADD serving_counter :step \
         SET serving_changed_at_ms = :now, last_claim_by_ms = :claim_by",
        item([
            (":step", num(made.size())),
            (":now", num(made.at_ms)),
            (":claim_by", num(made.claim_by_ms)),
            (":read", num(made.previous)),
            (":reached", num(made.serving_counter)),
            (":generation", num(generation)),
        ]),
    )
    .when("serving_counter = :read AND queue_counter >= :reached AND generation = :generation");
    let mut record = move_key(event_id, generation, made.serving_counter);
    record.extend(item([
        (attr::PREVIOUS, num(made.previous)),
        (attr::SERVING_COUNTER, num(made.serving_counter)),
        (attr::AT_MS, num(made.at_ms)),
        (attr::CLAIM_BY_MS, num(made.claim_by_ms)),
        (TTL, ttl_after(made.at_ms, RETENTION_SECS)),
    ]));
    [
        Tx::Update(counter),
        Tx::Put(Put {
            item: record,
            condition: Some("attribute_not_exists(pk)"),
            values: Default::default(),
        }),
    ]
}

/// Moves that reached past `after`, oldest first. Eventual: moves are only ever added, so a
/// stale read can only miss the newest, which the caller takes as "not let in yet".
fn moves_after(event_id: &EventId, generation: u64, after: u64) -> Query {
    Query {
        read: Read::Eventual,
        ..Query::new(
            "pk = :pk AND sk > :after",
            item([
                (":pk", string(serving_partition(event_id, generation))),
                (":after", string(counter_sort_key(after))),
            ]),
        )
    }
}

/// Moves, newest first (read until older than wanted). Eventual, as above: the admission rate
/// they give is a second late at most.
fn moves_newest_first(event_id: &EventId, generation: u64) -> Query {
    Query {
        read: Read::Eventual,
        forward: false,
        limit: Some(50),
        ..Query::new(
            "pk = :pk",
            item([(":pk", string(serving_partition(event_id, generation)))]),
        )
    }
}

impl DynamoStore {
    pub(super) async fn advance(
        &self,
        event_id: &EventId,
        from: Option<u64>,
        by: u64,
        now_ms: i64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        retry(|| async move {
            let Some(state) = self.event_state(event_id, Read::Strong).await? else {
                return Ok(Try::Done(None));
            };
            let counters = state.counters;
            if from.is_some_and(|from| from != counters.serving_counter) {
                return Ok(Try::Done(None));
            }
            let step = by.min(counters.waiting());
            if step == 0 {
                return Ok(Try::Done(None));
            }
            let made = ServingIncrement {
                previous: counters.serving_counter,
                serving_counter: counters.serving_counter + step,
                at_ms: now_ms,
                claim_by_ms: (now_ms + state.claim_window_ms).max(state.last_claim_by_ms),
            };
            let ops = advance_serving(event_id, &state, &made).into();
            Ok(match self.table.transact(ops).await? {
                Ok(()) => Try::Done(Some(made)),
                // Another move landed since the read: read again.
                Err(_) => Try::Again,
            })
        })
        .await
    }

    pub(super) async fn moves(
        &self,
        event_id: &EventId,
        after: u64,
    ) -> Result<Option<ServingMoves>, StoreError> {
        let Some(generation) = self.generation(event_id).await? else {
            return Ok(None);
        };
        Ok(Some(ServingMoves {
            generation,
            moves: self.moves_of(event_id, generation, after).await?,
        }))
    }

    /// The moves of `generation` that reached past `after`, oldest first.
    pub(super) async fn moves_of(
        &self,
        event_id: &EventId,
        generation: u64,
        after: u64,
    ) -> Result<Vec<ServingIncrement>, StoreError> {
        self.table
            .query_all(&moves_after(event_id, generation, after))
            .await?
            .iter()
            .map(ServingIncrement::try_from)
            .collect()
    }

    pub(super) async fn history(
        &self,
        event_id: &EventId,
        since_ms: i64,
    ) -> Result<Vec<ServingIncrement>, StoreError> {
        let Some(generation) = self.generation(event_id).await? else {
            return Ok(Vec::new());
        };
        let query = moves_newest_first(event_id, generation);
        let mut recent = Vec::new();
        let mut failed = None;
        self.table
            .query_while(&query, |item| match ServingIncrement::try_from(item) {
                Ok(made) if made.at_ms >= since_ms => {
                    recent.push(made);
                    true
                }
                Ok(_) => false,
                Err(error) => {
                    failed = Some(error);
                    false
                }
            })
            .await?;
        if let Some(error) = failed {
            return Err(error);
        }
        recent.reverse();
        Ok(recent)
    }
}
