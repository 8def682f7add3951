//! Estimated wait and polling pace, from the measured admission rate.

use serde::Serialize;

use super::request::ServingIncrement;

/// Window over which the admission rate is measured.
pub const RATE_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Visitors let in per second over the window ending at `now_ms`, from the serving counter's
/// own history (not from configuration: a paused or starved room shows a rate of zero).
pub fn admission_rate(history: &[ServingIncrement], now_ms: i64) -> f64 {
    let since = now_ms - RATE_WINDOW_MS;
    let recent: Vec<&ServingIncrement> = history.iter().filter(|i| i.at_ms > since).collect();
    let Some(first) = recent.first() else {
        return 0.0;
    };
    let admitted: u64 = recent.iter().map(|i| i.size()).sum();
    // Measure from the first move in the window, but never over less than 10 s, so one jump
    // right now does not read as an infinite rate.
    let elapsed_ms = (now_ms - first.at_ms).max(10_000);
    admitted as f64 * 1000.0 / elapsed_ms as f64
}

/// Seconds until `ahead` visitors have been let in at `rate` per second; `None` when nobody is
/// being let in, because any number would be a guess.
pub fn eta_seconds(ahead: u64, rate: f64) -> Option<u64> {
    if ahead == 0 {
        return Some(0);
    }
    (rate > 0.0).then(|| (ahead as f64 / rate).ceil() as u64)
}

/// Shortest and longest pause between two polls of one visitor.
pub const MIN_POLL_MS: u64 = 1_000;
pub const MAX_POLL_MS: u64 = 30_000;

/// How fast a waiting visitor polls. Published in the shared event document, so the page
/// follows the same rule as [`next_poll_ms`] without a copy of these numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PollPolicy {
    pub min_ms: u64,
    pub max_ms: u64,
    /// Added per visitor ahead: far back, polling is rare (polling is most of the bill).
    pub ms_per_place: u64,
    /// Poll again within `eta / eta_divisor`, so nobody misses their turn.
    pub eta_divisor: u64,
}

pub const POLL_POLICY: PollPolicy = PollPolicy {
    min_ms: MIN_POLL_MS,
    max_ms: MAX_POLL_MS,
    ms_per_place: 20,
    eta_divisor: 4,
};

/// When a visitor should poll again: often near the front, rarely far back (polling is most
/// of the bill), and well before the estimated turn so nobody misses it.
pub fn next_poll_ms(ahead: u64, eta_secs: Option<u64>) -> u64 {
    let p = POLL_POLICY;
    let by_distance = p.min_ms + ahead.saturating_mul(p.ms_per_place);
    let by_eta = eta_secs.map_or(u64::MAX, |eta| eta.saturating_mul(1000) / p.eta_divisor);
    by_distance.min(by_eta).clamp(p.min_ms, p.max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(previous: u64, serving_counter: u64, at_ms: i64) -> ServingIncrement {
        ServingIncrement {
            previous,
            serving_counter,
            at_ms,
            claim_by_ms: at_ms + 900_000,
        }
    }

    #[test]
    fn rate_counts_only_the_window() {
        let now = 1_000_000;
        let history = [
            inc(0, 500, now - RATE_WINDOW_MS - 1), // too old
            inc(500, 600, now - 100_000),
            inc(600, 700, now - 50_000),
        ];
        // 200 admitted over the 100 s since the first move in the window.
        assert!((admission_rate(&history, now) - 2.0).abs() < 1e-9);
        assert_eq!(admission_rate(&[], now), 0.0);
    }

    #[test]
    fn eta_is_unknown_without_admissions() {
        assert_eq!(eta_seconds(10, 0.0), None);
        assert_eq!(eta_seconds(0, 0.0), Some(0));
        assert_eq!(eta_seconds(10, 4.0), Some(3));
    }

    #[test]
    fn polling_slows_with_distance_and_stays_bounded() {
        assert_eq!(next_poll_ms(0, Some(0)), MIN_POLL_MS);
        assert!(next_poll_ms(1_000, None) > next_poll_ms(10, None));
        assert_eq!(next_poll_ms(50_000, None), MAX_POLL_MS);
        // A short ETA wins over a long distance.
        assert_eq!(next_poll_ms(50_000, Some(8)), 2_000);
    }
}
