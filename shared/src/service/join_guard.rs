//! What one process of the room remembers about recent joins, to decide the join challenge:
//! each event's join pressure, each address's recent joins, and the challenges counted.
//! Nothing here is shared between processes: on Lambda each instance judges the pressure it
//! sees, which is what it can answer for.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clients::{ClientCounts, ClientKey};
use crate::domain::EventId;
use crate::domain::challenge::{ADDRESS_FADE_PER_SEC, ChallengeCounts};

/// The time constant of the join pressure: joins per second over about the last ten seconds.
const PRESSURE_WINDOW_SECS: f64 = 10.0;

/// Events tracked at most (unknown events never get here: a join is counted once its event's
/// config is found).
const MAX_EVENTS: usize = 10_000;

#[derive(Debug, Default)]
struct EventJoins {
    /// Joins weighted by age (e^-age/window), and when that was last brought up to date.
    weight: f64,
    at_ms: i64,
    counts: ChallengeCounts,
}

/// How a challenge ended, for the counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Issued,
    Solved,
    Refused,
}

#[derive(Debug)]
pub(crate) struct JoinGuard {
    // std Mutexes: each held for one small update per join, never across an `.await`.
    events: Mutex<HashMap<EventId, EventJoins>>,
    addresses: Mutex<ClientCounts>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl JoinGuard {
    pub(crate) fn new() -> Self {
        Self {
            events: Mutex::new(HashMap::new()),
            addresses: Mutex::new(ClientCounts::new(ADDRESS_FADE_PER_SEC)),
        }
    }

    /// Counts a join attempt; returns the event's joins per second and the address's recent
    /// joins, this one included.
    pub(crate) fn record(
        &self,
        event_id: &EventId,
        client: Option<ClientKey>,
        now_ms: i64,
    ) -> (f64, f64) {
        let pressure = {
            let mut events = lock(&self.events);
            if events.len() >= MAX_EVENTS && !events.contains_key(event_id) {
                events.clear();
            }
            let joins = events.entry(event_id.clone()).or_default();
            let age = (now_ms - joins.at_ms).max(0) as f64 / 1000.0;
            joins.weight = joins.weight * (-age / PRESSURE_WINDOW_SECS).exp() + 1.0;
            joins.at_ms = now_ms;
            joins.weight / PRESSURE_WINDOW_SECS
        };
        let address = client.map_or(0.0, |client| {
            lock(&self.addresses)
                .add(client, f64::INFINITY, now_ms)
                .unwrap_or_else(|count| count)
        });
        (pressure, address)
    }

    pub(crate) fn count(&self, event_id: &EventId, outcome: Outcome) {
        let label = {
            let mut events = lock(&self.events);
            let counts = &mut events.entry(event_id.clone()).or_default().counts;
            let (field, label) = match outcome {
                Outcome::Issued => (&mut counts.issued, "issued"),
                Outcome::Solved => (&mut counts.solved, "solved"),
                Outcome::Refused => (&mut counts.refused, "refused"),
            };
            *field += 1;
            label
        };
        crate::metrics::add_labelled("challenges_total", "outcome", label);
    }

    pub(crate) fn counts(&self, event_id: &EventId) -> ChallengeCounts {
        lock(&self.events)
            .get(event_id)
            .map(|joins| joins.counts)
            .unwrap_or_default()
    }
}
