//! A circuit breaker for store calls on a hot path (the authorizer's revocation lookup): when
//! too many recent calls failed it stops calling for a while, so a struggling store is not
//! hammered and callers get an answer at once; then it lets one trial call through.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One trial call is let through; its outcome closes or reopens the breaker.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Outcomes remembered for the failure rate.
    pub window: usize,
    /// No opening before this many outcomes are in the window.
    pub min_calls: usize,
    /// Opens when failures / outcomes reaches this.
    pub failure_rate: f64,
    /// How long it stays open before a trial call.
    pub cool_down_ms: i64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            window: 20,
            min_calls: 10,
            failure_rate: 0.5,
            cool_down_ms: 5_000,
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    outcomes: VecDeque<bool>,
    opened_at_ms: i64,
    trial_out: bool,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    // std Mutex: held for a few comparisons, never across an `.await`.
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                outcomes: VecDeque::new(),
                opened_at_ms: 0,
                trial_out: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(inner) => inner,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn state(&self, now_ms: i64) -> BreakerState {
        let mut inner = self.lock();
        self.advance(&mut inner, now_ms);
        inner.state
    }

    fn advance(&self, inner: &mut Inner, now_ms: i64) {
        if inner.state == BreakerState::Open
            && now_ms - inner.opened_at_ms >= self.settings.cool_down_ms
        {
            inner.state = BreakerState::HalfOpen;
            inner.trial_out = false;
        }
    }

    /// May a call go out now? In half-open, only the first caller gets the trial.
    pub fn allow(&self, now_ms: i64) -> bool {
        let mut inner = self.lock();
        self.advance(&mut inner, now_ms);
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen if inner.trial_out => false,
            BreakerState::HalfOpen => {
                inner.trial_out = true;
                true
            }
        }
    }

    /// Reports how an allowed call went.
    pub fn record(&self, success: bool, now_ms: i64) {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::HalfOpen => {
                inner.outcomes.clear();
                if success {
                    inner.state = BreakerState::Closed;
                } else {
                    inner.state = BreakerState::Open;
                    inner.opened_at_ms = now_ms;
                }
                inner.trial_out = false;
            }
            BreakerState::Closed => {
                inner.outcomes.push_back(success);
                if inner.outcomes.len() > self.settings.window {
                    inner.outcomes.pop_front();
                }
                let calls = inner.outcomes.len();
                let failures = inner.outcomes.iter().filter(|ok| !**ok).count();
                if calls >= self.settings.min_calls
                    && failures as f64 / calls as f64 >= self.settings.failure_rate
                {
                    inner.state = BreakerState::Open;
                    inner.opened_at_ms = now_ms;
                    inner.outcomes.clear();
                }
            }
            // A call allowed before the breaker opened: its outcome no longer matters.
            BreakerState::Open => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerSettings {
            window: 10,
            min_calls: 4,
            failure_rate: 0.5,
            cool_down_ms: 1_000,
        })
    }

    #[test]
    fn opens_on_the_failure_rate_only_once_enough_calls_were_seen() {
        let b = breaker();
        b.record(false, 0);
        b.record(false, 0);
        b.record(false, 0);
        assert_eq!(b.state(0), BreakerState::Closed, "3 calls: below min_calls");
        b.record(true, 0);
        assert_eq!(b.state(0), BreakerState::Open, "3 of 4 failed");
        assert!(!b.allow(500));
    }

    #[test]
    fn a_healthy_rate_keeps_it_closed() {
        let b = breaker();
        for i in 0..100 {
            b.record(i % 3 != 2, 0); // every third call fails
        }
        assert_eq!(b.state(0), BreakerState::Closed);
    }

    #[test]
    fn half_open_lets_one_trial_through_and_its_outcome_decides() {
        let b = breaker();
        for _ in 0..4 {
            b.record(false, 0);
        }
        assert_eq!(b.state(999), BreakerState::Open);
        assert_eq!(b.state(1_000), BreakerState::HalfOpen);
        assert!(b.allow(1_000), "the trial call");
        assert!(!b.allow(1_001), "only one trial at a time");
        b.record(false, 1_100);
        assert_eq!(
            b.state(1_100),
            BreakerState::Open,
            "trial failed: open again"
        );
        assert_eq!(b.state(2_100), BreakerState::HalfOpen);
        assert!(b.allow(2_100));
        b.record(true, 2_150);
        assert_eq!(b.state(2_150), BreakerState::Closed, "trial succeeded");
        assert!(b.allow(2_151));
    }
}
