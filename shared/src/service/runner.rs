//! The scheduled strategy runner: every few seconds, for every event, it expires what timed
//! out, draws the pre-queue when the sale starts, and lets the strategy move the serving
//! counter.

use std::sync::Arc;
use std::time::Duration;

use super::WaitingRoom;
use crate::domain::{Draw, EventConfig, EventId, EventState};
use crate::error::Error;

/// The window of the rate limit.
const RATE_WINDOW_MS: i64 = 60_000;

/// What one pass did to one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrategyReport {
    pub tokens_expired: u64,
    pub positions_expired: u64,
    /// The pre-queue was drawn in this pass.
    pub drawn: Option<Draw>,
    pub admitted: u64,
}

impl WaitingRoom {
    /// One pass over one event.
    pub async fn apply_strategy(&self, config: &EventConfig) -> Result<StrategyReport, Error> {
        let event_id = &config.event_id;
        let now = self.now_ms();
        let mut report = StrategyReport {
            tokens_expired: self.store.expire_tokens(event_id, now).await?,
            positions_expired: self
                .store
                .expire_positions(event_id, now - config.position_expiry_secs as i64 * 1000)
                .await?,
            ..StrategyReport::default()
        };
        let mut config = config.clone();
        if config.awaits_draw() && config.schedule.start_at_ms.is_some_and(|at| now >= at) {
            report.drawn = self.draw(&config, now).await?;
            // Whoever drew (this pass or a concurrent one), the stored draw is the one.
            config = self.event(event_id).await?;
        }
        report.admitted = self.admit(&config).await?;
        if report != StrategyReport::default() {
            self.invalidate(event_id);
            tracing::info!(event_id = %event_id, ?report, "strategy pass");
        }
        Ok(report)
    }

    /// Orders the pre-queue: everyone with a position now is shuffled with a fresh seed, which
    /// is recorded (once, whichever runner gets there first) so the draw can be replayed.
    async fn draw(&self, config: &EventConfig, now: i64) -> Result<Option<Draw>, Error> {
        let counters = self.counters(&config.event_id).await?;
        let draw = Draw {
            size: counters.queue_counter,
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

    /// Lets in what the strategy and the rate limit allow, if the event is open.
    pub(super) async fn admit(&self, config: &EventConfig) -> Result<u64, Error> {
        let now = self.now_ms();
        if config.state(now) != EventState::Open {
            return Ok(0);
        }
        let counters = self.counters(&config.event_id).await?;
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
        let admit = config.admissions(&counters, now, admitted_last_minute);
        if admit == 0 {
            return Ok(0);
        }
        Ok(self
            .store
            .advance_serving(&config.event_id, admit, now)
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

/// Runs [`WaitingRoom::apply_strategies`] every `every`, forever (the local server; the
/// Lambda runs [`crate::lambda::handle_schedule`]).
pub async fn run_strategy_loop(room: Arc<WaitingRoom>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = room.apply_strategies().await {
            tracing::error!(%error, "strategy pass could not list events");
        }
    }
}
