//! The per-event counters. Each only ever grows; everything an operator or the strategy needs is
//! derived from them, so no count needs a scan. The queue counter moves once per consumer batch
//! and the serving counter once per move; the token and exit counts are summed from stripes by
//! the runner (see [`super::exits`]), so no visitor's claim or session end writes a shared item.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventCounters {
    /// Last position given out.
    pub queue_counter: u64,
    /// Highest position allowed in.
    pub serving_counter: u64,
    /// Tokens claimed, derived from the stripes (nothing counts claims one by one).
    pub tokens_issued: u64,
    /// Of `tokens_issued`, those claimed through a bypass code (not through the line).
    #[serde(default)]
    pub tokens_bypassed: u64,
    pub tokens_completed: u64,
    pub tokens_abandoned: u64,
    pub tokens_expired: u64,
    /// Served positions whose visitor never claimed a token in time.
    pub positions_expired: u64,
    /// When the serving counter last changed (ms since the epoch): the cache validator.
    pub serving_changed_at_ms: i64,
    /// When the queue counter last changed (ms since the epoch).
    pub queue_changed_at_ms: i64,
    /// Bumped by every reset, so caches and old requests of a previous run are told apart.
    pub generation: u64,
    /// When the event was created or last reset (ms since the epoch).
    #[serde(default)]
    pub reset_at_ms: i64,
}

impl EventCounters {
    /// Visitors with a position who are not yet allowed in.
    pub fn waiting(&self) -> u64 {
        self.queue_counter.saturating_sub(self.serving_counter)
    }

    /// Tokens issued and not yet completed, abandoned or expired.
    pub fn active_tokens(&self) -> u64 {
        self.tokens_issued
            .saturating_sub(self.tokens_completed + self.tokens_abandoned + self.tokens_expired)
    }

    /// Served positions not yet claimed and not yet expired: visitors on their way in.
    pub fn pending_claims(&self) -> u64 {
        let claimed_from_line = self.tokens_issued - self.tokens_bypassed.min(self.tokens_issued);
        self.serving_counter
            .saturating_sub(claimed_from_line + self.positions_expired)
    }

    /// What MaxSize caps: everyone let in who still holds (or may still claim) a slot, that is
    /// served + bypassed − (completed + abandoned + tokens expired + positions expired). Exit
    /// counts summed late only make it larger: the room then admits late, never too many.
    pub fn in_flight(&self) -> u64 {
        self.active_tokens() + self.pending_claims()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_counts_follow_the_raw_counters() {
        let c = EventCounters {
            queue_counter: 100,
            serving_counter: 40,
            tokens_issued: 30,
            tokens_completed: 5,
            tokens_abandoned: 3,
            tokens_expired: 2,
            positions_expired: 4,
            ..EventCounters::default()
        };
        assert_eq!(c.waiting(), 60);
        assert_eq!(c.active_tokens(), 20);
        assert_eq!(c.pending_claims(), 6);
        assert_eq!(c.in_flight(), 26);
    }

    #[test]
    fn bypass_tokens_take_a_slot_but_no_place_in_line() {
        let c = EventCounters {
            queue_counter: 10,
            serving_counter: 4,
            tokens_issued: 5,
            tokens_bypassed: 2,
            ..EventCounters::default()
        };
        assert_eq!(c.active_tokens(), 5);
        assert_eq!(c.pending_claims(), 1, "3 of 4 served places claimed");
        assert_eq!(c.in_flight(), 6);
    }
}
