//! How the serving counter moves forward: pure functions of a counters snapshot.

use serde::{Deserialize, Serialize};

use super::counters::EventCounters;
use super::event::check_count;
use crate::error::Error;

/// The rule the strategy runner applies to an event every few seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type")]
pub enum Strategy {
    /// Only an operator (or a script) moves the serving counter.
    #[default]
    Manual,
    /// Keep visitors in flight (served but not yet claimed, plus active tokens) at or under
    /// `max_active`.
    MaxSize { max_active: u64 },
    /// Admit `increment_by` visitors every `interval_secs`.
    Periodic {
        increment_by: u64,
        interval_secs: u64,
    },
}

impl Strategy {
    pub fn validate(&self) -> Result<(), Error> {
        match *self {
            Strategy::Manual => Ok(()),
            Strategy::MaxSize { max_active } => check_count("max_active", max_active, 1),
            Strategy::Periodic {
                increment_by,
                interval_secs,
            } => {
                check_count("increment_by", increment_by, 1)?;
                if (1..=86_400).contains(&interval_secs) {
                    Ok(())
                } else {
                    Err(Error::Invalid(
                        "interval_secs must be between 1 and 86400".into(),
                    ))
                }
            }
        }
    }

    /// How many visitors to admit now. Never more than are waiting, so the serving counter
    /// never passes the queue counter.
    pub fn admissions(&self, counters: &EventCounters, now_ms: i64) -> u64 {
        let waiting = counters.waiting();
        let wanted = match *self {
            Strategy::Manual => 0,
            Strategy::MaxSize { max_active } => max_active.saturating_sub(counters.in_flight()),
            Strategy::Periodic {
                increment_by,
                interval_secs,
            } => {
                let due = now_ms - counters.serving_changed_at_ms >= (interval_secs * 1000) as i64;
                if due { increment_by } else { 0 }
            }
        };
        wanted.min(waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(queue: u64, serving: u64, issued: u64, closed: u64) -> EventCounters {
        EventCounters {
            queue_counter: queue,
            serving_counter: serving,
            tokens_issued: issued,
            tokens_completed: closed,
            ..EventCounters::default()
        }
    }

    #[test]
    fn max_size_fills_free_slots_only() {
        let strategy = Strategy::MaxSize { max_active: 100 };
        // 1000 waiting, nobody in flight: admit exactly the cap.
        assert_eq!(strategy.admissions(&counters(1000, 0, 0, 0), 0), 100);
        // 100 served, 60 claimed tokens, 20 of them completed: 80 in flight, 20 free.
        assert_eq!(strategy.admissions(&counters(1000, 100, 60, 20), 0), 20);
        // Full: nothing.
        assert_eq!(strategy.admissions(&counters(1000, 100, 100, 0), 0), 0);
    }

    #[test]
    fn served_but_unclaimed_visitors_hold_their_slot() {
        // 50 served, none claimed yet: they are on their way and count against the cap.
        let strategy = Strategy::MaxSize { max_active: 50 };
        assert_eq!(strategy.admissions(&counters(500, 50, 0, 0), 0), 0);
    }

    #[test]
    fn no_strategy_passes_the_queue_counter() {
        let max_size = Strategy::MaxSize { max_active: 1000 };
        assert_eq!(max_size.admissions(&counters(30, 10, 10, 10), 0), 20);
        let periodic = Strategy::Periodic {
            increment_by: 500,
            interval_secs: 1,
        };
        assert_eq!(periodic.admissions(&counters(30, 10, 0, 0), 10_000), 20);
        assert_eq!(periodic.admissions(&counters(30, 30, 0, 0), 10_000), 0);
    }

    #[test]
    fn periodic_waits_for_its_interval() {
        let periodic = Strategy::Periodic {
            increment_by: 5,
            interval_secs: 10,
        };
        let mut snapshot = counters(100, 0, 0, 0);
        snapshot.serving_changed_at_ms = 1_000;
        assert_eq!(periodic.admissions(&snapshot, 10_999), 0);
        assert_eq!(periodic.admissions(&snapshot, 11_000), 5);
    }

    #[test]
    fn manual_never_moves_by_itself() {
        assert_eq!(Strategy::Manual.admissions(&counters(100, 0, 0, 0), 0), 0);
    }

    #[test]
    fn limits_are_validated() {
        assert!(Strategy::MaxSize { max_active: 0 }.validate().is_err());
        assert!(
            Strategy::Periodic {
                increment_by: 1,
                interval_secs: 0
            }
            .validate()
            .is_err()
        );
        assert!(Strategy::MaxSize { max_active: 1 }.validate().is_ok());
        assert!(
            Strategy::MaxSize {
                max_active: u64::MAX
            }
            .validate()
            .is_err()
        );
        assert!(
            Strategy::Periodic {
                increment_by: u64::MAX,
                interval_secs: 1
            }
            .validate()
            .is_err()
        );
    }
}
