//! The scheduled strategy runner: every few seconds, for every event, it expires what timed
//! out and lets the strategy move the serving counter.

use std::sync::Arc;
use std::time::Duration;

use super::WaitingRoom;
use crate::domain::{EventConfig, EventId};
use crate::error::Error;

/// What one pass did to one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrategyReport {
    pub tokens_expired: u64,
    pub positions_expired: u64,
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
            admitted: 0,
        };
        if !config.paused {
            let counters = self.counters(event_id).await?;
            let admit = config.strategy.admissions(&counters, now);
            if admit > 0
                && let Some(inc) = self.store.advance_serving(event_id, admit, now).await?
            {
                report.admitted = inc.size();
            }
        }
        if report != StrategyReport::default() {
            self.invalidate(event_id);
            tracing::info!(event_id = %event_id, ?report, "strategy pass");
        }
        Ok(report)
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

/// Runs [`WaitingRoom::apply_strategies`] every `every` for as long as `until` allows (the
/// Lambda loops within one scheduled minute; the local server forever).
pub async fn run_strategy_loop(
    room: Arc<WaitingRoom>,
    every: Duration,
    until: Option<tokio::time::Instant>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if until.is_some_and(|deadline| tokio::time::Instant::now() + every > deadline) {
            return;
        }
        if let Err(error) = room.apply_strategies().await {
            tracing::error!(%error, "strategy pass could not list events");
        }
    }
}
