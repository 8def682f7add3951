//! The scheduled strategy runner: every few seconds, for every event, it settles the exit
//! counts (one batched read of the stripes; nothing per token or per place, so expiry work
//! never delays admission), draws the pre-queue when the sale starts, and lets the strategy
//! move the serving counter.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::WaitingRoom;
use crate::domain::{Draw, EventConfig, EventCounters, EventId, EventState};
use crate::error::Error;

/// The window of the rate limit.
const RATE_WINDOW_MS: i64 = 60_000;
/// An open event with no join for this long needs no pass until someone joins again.
const QUIET_AFTER_MS: i64 = 10 * 60 * 1000;
/// How far ahead of a scheduled start the runner keeps passing, so the draw is on time.
const START_AHEAD_MS: i64 = 2 * 60 * 1000;

/// What one pass did to one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrategyReport {
    /// Tokens counted as expired by this pass.
    pub tokens_expired: u64,
    /// Places counted as expired (never claimed) by this pass.
    pub positions_expired: u64,
    /// The pre-queue was drawn in this pass.
    pub drawn: Option<Draw>,
    pub admitted: u64,
    /// The event wants another pass within seconds: visitors wait to be let in, people
    /// joined lately, or its sale starts soon. When no event does, the runner stops early.
    pub busy: bool,
}

impl StrategyReport {
    /// Whether the pass changed anything a reader may have cached.
    fn changed(&self) -> bool {
        self.tokens_expired > 0
            || self.positions_expired > 0
            || self.drawn.is_some()
            || self.admitted > 0
    }
}

impl WaitingRoom {
    /// One pass over one event.
    pub async fn apply_strategy(&self, config: &EventConfig) -> Result<StrategyReport, Error> {
        let event_id = &config.event_id;
        let now = self.now_ms();
        let settled = self
            .store
            .settle_exits(event_id, now)
            .await?
            .ok_or(Error::UnknownEvent)?;
        let (previous, counters) = (settled.previous, settled.current);
        let mut report = StrategyReport {
            tokens_expired: counters
                .tokens_expired
                .saturating_sub(previous.tokens_expired),
            positions_expired: counters
                .positions_expired
                .saturating_sub(previous.positions_expired),
            ..StrategyReport::default()
        };
        let mut config = config.clone();
        if config.awaits_draw() && config.schedule.start_at_ms.is_some_and(|at| now >= at) {
            report.drawn = self.draw(&config, counters.queue_counter, now).await?;
            // Whoever drew (this pass or a concurrent one), the stored draw is the one.
            config = self.event(event_id).await?;
        }
        report.admitted = self.admit(&config, &counters).await?;
        report.busy = busy(&config, &counters, now);
        if report.changed() {
            self.invalidate(event_id);
            tracing::info!(event_id = %event_id, ?report, "strategy pass");
        }
        Ok(report)
    }

    /// Orders the pre-queue: everyone with a position now is shuffled with a fresh seed, which
    /// is recorded (once, whichever runner gets there first) so the draw can be replayed.
    async fn draw(&self, config: &EventConfig, size: u64, now: i64) -> Result<Option<Draw>, Error> {
        let draw = Draw {
            size,
            // 64 bits from the OS generator (a v4 UUID's random half).
            seed: uuid::Uuid::new_v4().as_u64_pair().1,
            drawn_at_ms: now,
        };
        if !self.store.record_draw(&config.event_id, &draw).await? {
            return Ok(None);
        }
        self.audit(
            "strategy-runner",
            "draw",
            &config.event_id,
            format!(
                "pre-queue of {} shuffled with seed {}",
                draw.size, draw.seed
            ),
        )
        .await;
        Ok(Some(draw))
    }

    /// Lets in what the strategy and the rate limit allow given `counters` (exit counts summed
    /// now: a late sum only admits fewer), if the event is open. The move is made only if the
    /// serving counter still stands where `counters` saw it, so two admitters at once (the
    /// runner and a consumer's safety net) never both fill the same free slots.
    pub(super) async fn admit(
        &self,
        config: &EventConfig,
        counters: &EventCounters,
    ) -> Result<u64, Error> {
        let now = self.now_ms();
        if config.state(now) != EventState::Open {
            return Ok(0);
        }
        let admitted_last_minute = match config.rate_limit_per_min {
            Some(_) => self
                .store
                .serving_history(&config.event_id, now - RATE_WINDOW_MS)
                .await?
                .iter()
                .map(|inc| inc.size())
                .sum(),
            None => 0,
        };
        let admit = config.admissions(counters, now, admitted_last_minute);
        if admit == 0 {
            return Ok(0);
        }
        Ok(self
            .store
            .advance_serving(&config.event_id, Some(counters.serving_counter), admit, now)
            .await?
            .map_or(0, |inc| inc.size()))
    }

    /// One pass over every event; an error on one event does not stop the others.
    pub async fn apply_strategies(
        &self,
    ) -> Result<Vec<(EventId, Result<StrategyReport, Error>)>, Error> {
        let mut reports = Vec::new();
        for config in self.events().await? {
            let report = self.apply_strategy(&config).await;
            if let Err(error) = &report {
                tracing::error!(%error, event_id = %config.event_id, "strategy pass failed");
            }
            reports.push((config.event_id.clone(), report));
        }
        Ok(reports)
    }
}

/// Whether an event wants another pass within seconds (see [`StrategyReport::busy`]).
fn busy(config: &EventConfig, counters: &EventCounters, now: i64) -> bool {
    let soon = |at: Option<i64>| at.is_some_and(|at| at - now <= START_AHEAD_MS);
    match config.state(now) {
        EventState::Open | EventState::Paused => {
            counters.waiting() > 0 || now - counters.queue_changed_at_ms < QUIET_AFTER_MS
        }
        EventState::PreQueue | EventState::NotOpen => soon(config.schedule.start_at_ms),
        EventState::Closed => false,
    }
}

/// Runs [`WaitingRoom::apply_strategies`] every `every` until `stop` is cancelled; a pass
/// under way when it is finishes first (the local server; the Lambda runs
/// [`crate::lambda::handle_schedule`]).
pub async fn run_strategy_loop(room: Arc<WaitingRoom>, every: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(error) = room.apply_strategies().await {
            tracing::error!(%error, "strategy pass could not list events");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventId, Schedule};

    const NOW: i64 = 1_767_225_600_000;

    #[test]
    fn only_live_or_imminent_events_keep_the_runner_going() {
        let mut config = EventConfig::new(EventId::parse("e").unwrap());
        let quiet = EventCounters {
            queue_counter: 10,
            serving_counter: 10,
            queue_changed_at_ms: NOW - QUIET_AFTER_MS,
            ..EventCounters::default()
        };
        assert!(
            !busy(&config, &quiet, NOW),
            "open, nobody waiting, no join lately"
        );
        let waiting = EventCounters {
            queue_counter: 11,
            ..quiet
        };
        assert!(busy(&config, &waiting, NOW));
        let joined = EventCounters {
            queue_changed_at_ms: NOW - 1_000,
            ..quiet
        };
        assert!(busy(&config, &joined, NOW));
        config.schedule = Schedule {
            prequeue_at_ms: Some(NOW - 1_000),
            start_at_ms: Some(NOW + START_AHEAD_MS + 1),
            end_at_ms: None,
        };
        assert!(
            !busy(&config, &waiting, NOW),
            "a pre-queue far from its start"
        );
        config.schedule.start_at_ms = Some(NOW + START_AHEAD_MS);
        assert!(busy(&config, &waiting, NOW), "the draw is due soon");
        config.schedule = Schedule::default();
        config.closed = true;
        assert!(!busy(&config, &waiting, NOW));
    }
}
