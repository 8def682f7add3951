//! The embedded store: everything in process memory, with the semantics a database gives
//! (atomic counters, idempotent writes, one lock per event so events never wait on each other).
//! Exit counts follow the same rules as on DynamoDB (see [`crate::domain::exits`]) with a
//! single stripe: in memory no item has a throughput budget, and the sums are the same.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;

use crate::domain::exits::{Stripe, StripeSums, settled_through};
use crate::domain::{
    Admission, BypassCode, Draw, EnqueueRequest, EventConfig, EventCounters, EventId, RequestId,
    RequestRecord, ServingIncrement, SessionEnd, SessionStatus, TokenRecord,
};
use crate::ports::{
    AssignOutcome, AuditEntry, ClaimOutcome, EndOutcome, ExitsSettled, Page, RedeemOutcome,
    ServingMoves, Store, StoreError,
};

/// Audit entries kept per event; older ones are dropped.
const AUDIT_KEEP: usize = 1_000;

#[derive(Debug, PartialEq)]
struct EventData {
    config: EventConfig,
    /// Queue and serving counters, and the exit counts as last settled.
    counters: EventCounters,
    requests: HashMap<RequestId, RequestRecord>,
    /// Serving moves keyed by the serving counter they reached.
    moves: BTreeMap<u64, ServingIncrement>,
    /// Every place up to here had its claim window settle at the last settlement.
    settled_through: u64,
    stripe: Stripe,
    /// Claimed tokens whose session was not ended, with their expiry (JWT `exp`, seconds).
    open_tokens: BTreeMap<RequestId, i64>,
    codes: HashMap<String, BypassCode>,
    audit: Vec<AuditEntry>,
}

impl EventData {
    fn new(config: EventConfig, now_ms: i64, generation: u64) -> Self {
        Self {
            config,
            counters: EventCounters {
                serving_changed_at_ms: now_ms,
                queue_changed_at_ms: now_ms,
                reset_at_ms: now_ms,
                generation,
                ..EventCounters::default()
            },
            requests: HashMap::new(),
            moves: BTreeMap::new(),
            settled_through: 0,
            stripe: Stripe::default(),
            open_tokens: BTreeMap::new(),
            codes: HashMap::new(),
            audit: Vec::new(),
        }
    }

    /// The counters with the exit counts summed at `now_ms`, and the place settled through.
    fn count(&self, now_ms: i64) -> (EventCounters, u64) {
        let unsettled: Vec<ServingIncrement> = self
            .moves
            .range(self.settled_through + 1..)
            .map(|(_, m)| *m)
            .collect();
        let through = settled_through(self.settled_through, &unsettled, now_ms);
        let sums = StripeSums::of([&self.stripe], now_ms);
        (self.counters.with_exits(&sums, through), through)
    }
}

/// In-memory [`Store`].
#[derive(Default, Clone)]
pub struct MemoryStore {
    // The outer lock is held only to find an event; all work happens under the event's own
    // lock. Both are std locks: no `.await` ever happens while one is held.
    events: Arc<RwLock<BTreeMap<EventId, Arc<Mutex<EventData>>>>>,
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".into())
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `other` holds exactly the same events, requests, tokens, moves, codes and audit
    /// trail (how a replay of a journal is checked against the store it was written from).
    pub fn same_state_as(&self, other: &MemoryStore) -> Result<bool, StoreError> {
        let events = |store: &MemoryStore| -> Result<Vec<_>, StoreError> {
            let events = store.events.read().map_err(|_| poisoned())?;
            Ok(events
                .iter()
                .map(|(id, data)| (id.clone(), data.clone()))
                .collect())
        };
        let (mine, theirs) = (events(self)?, events(other)?);
        if mine.len() != theirs.len() {
            return Ok(false);
        }
        for ((my_id, mine), (their_id, theirs)) in mine.iter().zip(&theirs) {
            if my_id != their_id {
                return Ok(false);
            }
            if Arc::ptr_eq(mine, theirs) {
                continue;
            }
            let mine = mine.lock().map_err(|_| poisoned())?;
            let theirs = theirs.lock().map_err(|_| poisoned())?;
            if *mine != *theirs {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn event(&self, event_id: &EventId) -> Result<Option<Arc<Mutex<EventData>>>, StoreError> {
        let events = self.events.read().map_err(|_| poisoned())?;
        Ok(events.get(event_id).cloned())
    }

    /// Runs `f` under the event's lock; `None` when the event does not exist.
    fn with_event<T>(
        &self,
        event_id: &EventId,
        f: impl FnOnce(&mut EventData) -> T,
    ) -> Result<Option<T>, StoreError> {
        let Some(event) = self.event(event_id)? else {
            return Ok(None);
        };
        let mut data = event.lock().map_err(|_| poisoned())?;
        Ok(Some(f(&mut data)))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_event(&self, config: &EventConfig, now_ms: i64) -> Result<bool, StoreError> {
        let mut events = self.events.write().map_err(|_| poisoned())?;
        if events.contains_key(&config.event_id) {
            return Ok(false);
        }
        let data = EventData::new(config.clone(), now_ms, 0);
        events.insert(config.event_id.clone(), Arc::new(Mutex::new(data)));
        Ok(true)
    }

    async fn update_event(&self, config: &EventConfig) -> Result<bool, StoreError> {
        Ok(self
            .with_event(&config.event_id, |data| {
                let draw = data.config.draw;
                data.config = config.clone();
                data.config.draw = draw;
            })?
            .is_some())
    }

    async fn record_draw(&self, event_id: &EventId, draw: &Draw) -> Result<bool, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                if data.config.draw.is_some() {
                    return false;
                }
                data.config.draw = Some(*draw);
                true
            })?
            .unwrap_or(false))
    }

    async fn get_event(&self, event_id: &EventId) -> Result<Option<EventConfig>, StoreError> {
        self.with_event(event_id, |data| data.config.clone())
    }

    async fn list_events(&self) -> Result<Vec<EventConfig>, StoreError> {
        let events: Vec<_> = {
            let map = self.events.read().map_err(|_| poisoned())?;
            map.values().cloned().collect()
        };
        events
            .iter()
            .map(|event| Ok(event.lock().map_err(|_| poisoned())?.config.clone()))
            .collect()
    }

    async fn counters(&self, event_id: &EventId) -> Result<Option<EventCounters>, StoreError> {
        self.with_event(event_id, |data| data.counters)
    }

    async fn count_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<EventCounters>, StoreError> {
        self.with_event(event_id, |data| data.count(now_ms).0)
    }

    async fn settle_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<ExitsSettled>, StoreError> {
        self.with_event(event_id, |data| {
            let previous = data.counters;
            let (current, through) = data.count(now_ms);
            data.counters = current;
            data.settled_through = through;
            data.stripe.fold(now_ms);
            ExitsSettled { previous, current }
        })
    }

    async fn assign_positions(
        &self,
        event_id: &EventId,
        requests: &[EnqueueRequest],
        now_ms: i64,
    ) -> Result<AssignOutcome, StoreError> {
        let outcome = self.with_event(event_id, |data| {
            let mut outcome = AssignOutcome::default();
            let mut in_order: Vec<&EnqueueRequest> = requests.iter().collect();
            // Stable: requests that entered in the same millisecond keep the batch's order.
            in_order.sort_by_key(|r| r.entry_time_ms);
            for request in in_order {
                if request.request_id.generation() < data.counters.generation {
                    outcome.wiped += 1;
                    continue;
                }
                if data.requests.contains_key(&request.request_id) {
                    outcome.duplicates += 1;
                    continue;
                }
                outcome.assigned += 1;
                let position = data.counters.queue_counter + outcome.assigned;
                data.requests.insert(
                    request.request_id,
                    RequestRecord {
                        request_id: request.request_id,
                        position,
                        entry_time_ms: request.entry_time_ms,
                        bypass: false,
                        token: None,
                    },
                );
            }
            // One counter move for the whole batch, as on DynamoDB.
            if outcome.assigned > 0 {
                data.counters.queue_counter += outcome.assigned;
                data.counters.queue_changed_at_ms = now_ms;
            }
            outcome
        })?;
        // A batch for an event that vanished (deleted mid-flight) assigns nothing.
        Ok(outcome.unwrap_or_default())
    }

    async fn get_request(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<Option<RequestRecord>, StoreError> {
        Ok(self
            .with_event(event_id, |data| data.requests.get(request_id).cloned())?
            .flatten())
    }

    async fn advance_serving(
        &self,
        event_id: &EventId,
        from: Option<u64>,
        by: u64,
        now_ms: i64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                if from.is_some_and(|from| from != data.counters.serving_counter) {
                    return None;
                }
                let step = by.min(data.counters.waiting());
                if step == 0 {
                    return None;
                }
                let window_ms = data.config.position_expiry_secs as i64 * 1000;
                let increment = ServingIncrement {
                    previous: data.counters.serving_counter,
                    serving_counter: data.counters.serving_counter + step,
                    at_ms: now_ms,
                    claim_by_ms: data
                        .moves
                        .values()
                        .next_back()
                        .map_or(i64::MIN, |last| last.claim_by_ms)
                        .max(now_ms + window_ms),
                };
                data.counters.serving_counter = increment.serving_counter;
                data.counters.serving_changed_at_ms = now_ms;
                data.moves.insert(increment.serving_counter, increment);
                Some(increment)
            })?
            .flatten())
    }

    async fn serving_moves(
        &self,
        event_id: &EventId,
        after: u64,
    ) -> Result<Option<ServingMoves>, StoreError> {
        self.with_event(event_id, |data| ServingMoves {
            generation: data.counters.generation,
            moves: data
                .moves
                .range(after.saturating_add(1)..)
                .map(|(_, m)| *m)
                .collect(),
        })
    }

    async fn serving_history(
        &self,
        event_id: &EventId,
        since_ms: i64,
    ) -> Result<Vec<ServingIncrement>, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                // Moves are made in time order, so the newest are at the end.
                let mut recent: Vec<ServingIncrement> = data
                    .moves
                    .values()
                    .rev()
                    .take_while(|inc| inc.at_ms >= since_ms)
                    .copied()
                    .collect();
                recent.reverse();
                recent
            })?
            .unwrap_or_default())
    }

    async fn claim_token(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        admission: Admission,
        token: &TokenRecord,
    ) -> Result<ClaimOutcome, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                let Some(request) = data.requests.get_mut(request_id) else {
                    return ClaimOutcome::UnknownRequest;
                };
                if let Some(existing) = &request.token {
                    return ClaimOutcome::Existing(existing.clone());
                }
                request.token = Some(token.clone());
                data.stripe.claim(&admission, token.expires_at);
                data.open_tokens.insert(*request_id, token.expires_at);
                ClaimOutcome::Claimed(token.clone())
            })?
            .unwrap_or(ClaimOutcome::UnknownRequest))
    }

    async fn end_session(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        end: SessionEnd,
        now_ms: i64,
    ) -> Result<EndOutcome, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                let Some(request) = data.requests.get_mut(request_id) else {
                    return EndOutcome::UnknownRequest;
                };
                let Some(token) = request.token.as_mut() else {
                    return EndOutcome::NoToken;
                };
                if token.status_at(now_ms) != SessionStatus::Active {
                    return EndOutcome::AlreadyEnded;
                }
                token.status = end.status();
                data.stripe.end(end, token.expires_at);
                data.open_tokens.remove(request_id);
                EndOutcome::Ended
            })?
            .unwrap_or(EndOutcome::UnknownRequest))
    }

    async fn expired_tokens(
        &self,
        event_id: &EventId,
        after: Option<RequestId>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page, StoreError> {
        let now_s = now_ms.div_euclid(1000);
        Ok(self
            .with_event(event_id, |data| {
                let from = match after {
                    Some(after) => std::ops::Bound::Excluded(after),
                    None => std::ops::Bound::Unbounded,
                };
                let mut items: Vec<RequestId> = data
                    .open_tokens
                    .range((from, std::ops::Bound::Unbounded))
                    .filter(|(_, expires_at)| **expires_at <= now_s)
                    .map(|(id, _)| *id)
                    .take(limit.saturating_add(1))
                    .collect();
                let next = if items.len() > limit {
                    items.truncate(limit);
                    items.last().copied()
                } else {
                    None
                };
                Page { items, next }
            })?
            .unwrap_or_default())
    }

    async fn put_codes(
        &self,
        event_id: &EventId,
        codes: &[BypassCode],
    ) -> Result<bool, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                for code in codes {
                    data.codes.insert(code.code.clone(), code.clone());
                }
            })?
            .is_some())
    }

    async fn redeem_code(
        &self,
        event_id: &EventId,
        code: &str,
        request: &EnqueueRequest,
    ) -> Result<RedeemOutcome, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                let Some(stored) = data.codes.get_mut(code).filter(|c| c.uses_left > 0) else {
                    return RedeemOutcome::Refused;
                };
                stored.uses_left -= 1;
                data.requests.insert(
                    request.request_id,
                    RequestRecord {
                        request_id: request.request_id,
                        position: 0,
                        entry_time_ms: request.entry_time_ms,
                        bypass: true,
                        token: None,
                    },
                );
                RedeemOutcome::Redeemed
            })?
            .unwrap_or(RedeemOutcome::Refused))
    }

    async fn reset_event(&self, event_id: &EventId, now_ms: i64) -> Result<bool, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                // The trail and the operator's codes outlive a reset; positions do not.
                let audit = std::mem::take(&mut data.audit);
                let codes = std::mem::take(&mut data.codes);
                let generation = data.counters.generation + 1;
                *data = EventData::new(data.config.clone(), now_ms, generation);
                data.audit = audit;
                data.codes = codes;
            })?
            .is_some())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.with_event(&entry.event_id, |data| {
            data.audit.push(entry.clone());
            if data.audit.len() > AUDIT_KEEP {
                let excess = data.audit.len() - AUDIT_KEEP;
                data.audit.drain(..excess);
            }
        })?;
        Ok(())
    }

    async fn audit_log(
        &self,
        event_id: &EventId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                data.audit.iter().rev().take(limit).cloned().collect()
            })?
            .unwrap_or_default())
    }
}
