//! The serving moves of each event, kept in process: whether a place is served, and until when
//! it may claim, without a store read per visitor.
//!
//! Moves are only ever added, so a move found here stays true for good: a stale log can only
//! answer "not served yet". A place the log lacks makes it read the moves after the last one
//! it holds, once for all callers waiting on that event and at most once per refresh interval
//! (sooner after this process moved the counter itself). A visitor is thus let in within that
//! interval of the move that reached them, and never before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::{EventId, ServingIncrement};
use crate::ports::{Clock, Store, StoreError};

/// One event's moves, oldest first, as last read.
#[derive(Default)]
struct Log {
    generation: u64,
    moves: Vec<ServingIncrement>,
    /// When the moves were last read, on the room's clock; `None`: read at the next miss.
    read_at_ms: Option<i64>,
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

pub(super) struct MovesCache {
    /// Shortest pause between two reads of one event's moves.
    refresh_ms: i64,
    clock: Arc<dyn Clock>,
    // std Mutex: held only to find an event's log. Each log's tokio Mutex is held across its
    // read, so concurrent misses on one event make a single read.
    logs: Mutex<HashMap<EventId, Arc<tokio::sync::Mutex<Log>>>>,
}

impl MovesCache {
    pub fn new(refresh: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            refresh_ms: i64::try_from(refresh.as_millis()).unwrap_or(i64::MAX),
            clock,
            logs: Mutex::new(HashMap::new()),
        }
    }

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
        let now_ms = self.clock.now_ms();
        if log
            .read_at_ms
            .is_some_and(|at| (0..self.refresh_ms).contains(&(now_ms - at)))
        {
            return Ok(None);
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
        log.read_at_ms = Some(now_ms);
        Ok(log.covering(place))
    }

    /// Reads the moves again at the next miss (after this process moved the counter).
    pub fn refresh_soon(&self, event_id: &EventId) {
        if let Ok(mut log) = self.log(event_id).try_lock() {
            log.read_at_ms = None;
        }
    }

    /// Forgets an event's moves (after this process reset it).
    pub fn forget(&self, event_id: &EventId) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.remove(event_id);
        }
    }
}
