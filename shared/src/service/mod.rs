//! The waiting room's operations, written against the ports only. The HTTP routes, the SQS
//! consumer and the scheduled strategy runner all call into [`WaitingRoom`].

mod consumer;
pub mod event_state;
mod join_guard;
mod moves;
mod operator;
mod runner;
mod visitor;

use std::sync::Arc;
use std::time::Duration;

use crate::breaker::{BreakerSettings, CircuitBreaker};
use crate::cache::TtlCache;
use crate::domain::{EventConfig, EventCounters, EventId, eta};
use crate::error::Error;
use crate::ports::{Clock, EnqueueBuffer, Store};
use crate::token::TokenIssuer;

pub use consumer::{BatchReport, run_memory_consumer};
pub use operator::{EventMetrics, NewCodes, NewEvent};
pub use runner::{StrategyReport, run_strategy_loop};
pub use visitor::{EdgePass, Proof, QueueStatus, Standing, TokenOutcome};

/// How long in-process caches keep what they read.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// Event configs (enqueue checks the event against this, not the store).
    pub config_ttl: Duration,
    /// Counters and admission rate behind the cacheable reads.
    pub counters_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            config_ttl: Duration::from_secs(5),
            counters_ttl: Duration::from_millis(1000),
        }
    }
}

/// One event as the hot reads see it: config, counters, the measured admission rate, and the
/// shared answers rendered from them.
#[derive(Debug, Clone)]
pub struct EventView {
    pub config: EventConfig,
    pub counters: EventCounters,
    /// Visitors let in per second over the last few minutes.
    pub admission_rate: f64,
    pub answers: event_state::SharedAnswers,
}

/// The room: the ports it works through and its in-process caches. The enqueue buffer and the
/// token issuer are optional so that each Lambda holds only what its routes use (the reads
/// function has no signing key and cannot write to the queue).
pub struct WaitingRoom {
    store: Arc<dyn Store>,
    buffer: Option<Arc<dyn EnqueueBuffer>>,
    clock: Arc<dyn Clock>,
    tokens: Option<TokenIssuer>,
    /// Claims also carry a pass for the gate on CloudFront.
    edge_passes: Option<crate::gate::edge::EdgePasses>,
    configs: TtlCache<EventId, Option<EventConfig>>,
    /// The event's generation, which enqueue stamps on every request id.
    generations: TtlCache<EventId, Option<u64>>,
    /// Swapped atomically on each load: the cached reads take no lock (see [`TtlCache`]).
    views: TtlCache<EventId, Option<Arc<EventView>>>,
    /// Serving moves: whether a place is served, and its claim deadline.
    moves: moves::MovesCache,
    /// Guards the authorizer's revocation lookups.
    revocations: CircuitBreaker,
    /// Recent joins, for the join challenge.
    guard: join_guard::JoinGuard,
}

impl WaitingRoom {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cache: CacheSettings) -> Self {
        Self {
            store,
            buffer: None,
            configs: TtlCache::new(cache.config_ttl, clock.clone()),
            generations: TtlCache::new(cache.counters_ttl, clock.clone()),
            views: TtlCache::new(cache.counters_ttl, clock.clone()),
            moves: moves::MovesCache::new(cache.counters_ttl, clock.clone()),
            clock,
            tokens: None,
            edge_passes: None,
            revocations: CircuitBreaker::new(BreakerSettings::default()),
            guard: join_guard::JoinGuard::new(),
        }
    }

    /// Replaces the revocation breaker's settings (tests, tuning).
    pub fn with_breaker(mut self, settings: BreakerSettings) -> Self {
        self.revocations = CircuitBreaker::new(settings);
        self
    }

    pub fn revocation_breaker(&self) -> &CircuitBreaker {
        &self.revocations
    }

    /// Lets the room take visitors in (enqueue).
    pub fn with_buffer(mut self, buffer: Arc<dyn EnqueueBuffer>) -> Self {
        self.buffer = Some(buffer);
        self
    }

    /// Lets the room issue and verify tokens.
    pub fn with_tokens(mut self, tokens: TokenIssuer) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Every claim also carries a pass for the gate on CloudFront (see [`crate::gate::edge`]).
    pub fn with_edge_passes(mut self, passes: crate::gate::edge::EdgePasses) -> Self {
        self.edge_passes = Some(passes);
        self
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The room's clock, for caches beside it that age on the same time.
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn tokens(&self) -> Result<&TokenIssuer, Error> {
        self.tokens
            .as_ref()
            .ok_or(Error::NotConfigured("token issuer"))
    }

    fn buffer(&self) -> Result<&Arc<dyn EnqueueBuffer>, Error> {
        self.buffer
            .as_ref()
            .ok_or(Error::NotConfigured("enqueue buffer"))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The event's config from the in-process cache.
    pub(crate) async fn cached_config(&self, event_id: &EventId) -> Result<EventConfig, Error> {
        self.configs
            .get_or_load(event_id, || async {
                self.store.get_event(event_id).await.map_err(Error::from)
            })
            .await?
            .as_ref()
            .clone()
            .ok_or(Error::UnknownEvent)
    }

    /// The event's generation from the in-process cache (one read of the counters, no more:
    /// enqueue needs nothing else from them).
    pub(crate) async fn cached_generation(&self, event_id: &EventId) -> Result<u64, Error> {
        self.generations
            .get_or_load(event_id, || async {
                let counters = self.store.counters(event_id).await?;
                Ok::<_, Error>(counters.map(|c| c.generation))
            })
            .await?
            .as_ref()
            .ok_or(Error::UnknownEvent)
    }

    /// Config, counters, admission rate and the shared answers from the in-process cache: what
    /// every poll reads.
    pub async fn view(&self, event_id: &EventId) -> Result<Arc<EventView>, Error> {
        self.views
            .get_or_load(event_id, || self.load_view(event_id))
            .await?
            .as_ref()
            .clone()
            .ok_or(Error::UnknownEvent)
    }

    async fn load_view(&self, event_id: &EventId) -> Result<Option<Arc<EventView>>, Error> {
        let Some(config) = self.store.get_event(event_id).await? else {
            return Ok(None);
        };
        // The config and generation just read are fresher than the cached ones: keep them,
        // saving those caches a read of the event item of their own.
        self.configs.insert(event_id, Some(config.clone()));
        let Some(counters) = self.store.counters(event_id).await? else {
            return Ok(None);
        };
        self.generations.insert(event_id, Some(counters.generation));
        let now = self.now_ms();
        // The window before the last move, not before now: the shared document then depends on
        // the data alone (the rate as of now is computed from the same moves).
        let history = self
            .store
            .serving_history(
                event_id,
                counters.serving_changed_at_ms - eta::RATE_WINDOW_MS,
            )
            .await?;
        Ok(Some(Arc::new(EventView {
            admission_rate: eta::admission_rate(&history, now),
            answers: event_state::render(&config, &counters, &history, now),
            config,
            counters,
        })))
    }

    /// Drops what this process cached about an event after it changed it.
    fn invalidate(&self, event_id: &EventId) {
        self.configs.invalidate(event_id);
        self.generations.invalidate(event_id);
        self.views.invalidate(event_id);
        self.moves.refresh_soon(event_id);
    }
}
