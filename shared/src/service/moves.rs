//! The serving moves of each event, kept in process: whether a place is served, and until when
//! it may claim, without a store read per visitor.
//!
//! Moves are only ever added, so a move found here stays true for good: a stale log can only
//! answer "not served yet". Callers ask only for places a (cached) serving counter has reached,
//! so a place the log lacks means a newer move exists: the log then reads the moves after the
//! last one it holds, once for all callers waiting on that event. A visitor is thus let in as
//! soon as the move that reached them is stored, and never before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::{EventId, ServingIncrement};
use crate::ports::{Store, StoreError};

/// One event's moves, oldest first, as last read.
#[derive(Default)]
struct Log {
    generation: u64,
    moves: Vec<ServingIncrement>,
}

impl Log {
    fn covering(&self, place: u64) -> Option<ServingIncrement> {
        let at = self.moves.partition_point(|m| m.serving_counter < place);
        self.moves.get(at).copied().filter(|m| m.contains(place))
    }

    fn reached(&self) -> u64 {
        self.moves.last().map_or(0, |m| m.serving_counter)
    }
}

#[derive(Default)]
pub(super) struct MovesCache {
    // std Mutex: held only to find an event's log. Each log's tokio Mutex is held across its
    // read, so concurrent misses on one event make a single read.
    logs: Mutex<HashMap<EventId, Arc<tokio::sync::Mutex<Log>>>>,
}

impl MovesCache {
    fn log(&self, event_id: &EventId) -> Arc<tokio::sync::Mutex<Log>> {
        let mut logs = match self.logs.lock() {
            Ok(logs) => logs,
            Err(poisoned) => poisoned.into_inner(),
        };
        logs.entry(event_id.clone()).or_default().clone()
    }

    /// The move that let `place` in, if any has yet (read again when the log lacks it).
    pub async fn covering(
        &self,
        store: &dyn Store,
        event_id: &EventId,
        place: u64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        let log = self.log(event_id);
        let mut log = log.lock().await;
        if let Some(found) = log.covering(place) {
            return Ok(Some(found));
        }
        let after = log.reached();
        let Some(mut newer) = store.serving_moves(event_id, after).await? else {
            return Ok(None);
        };
        if newer.generation != log.generation {
            // Reset since the log was read: start it over in the new line.
            if after > 0 {
                let Some(all) = store.serving_moves(event_id, 0).await? else {
                    return Ok(None);
                };
                newer = all;
            }
            log.generation = newer.generation;
            log.moves.clear();
        }
        log.moves.extend(newer.moves);
        Ok(log.covering(place))
    }

    /// Forgets an event's moves (after this process reset it).
    pub fn forget(&self, event_id: &EventId) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.remove(event_id);
        }
    }
}
