//! The embedded store: everything in process memory, with the semantics a database gives
//! (atomic counters, idempotent writes, one lock per event so events never wait on each other).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;

use crate::domain::{
    BypassCode, Draw, EnqueueRequest, EventConfig, EventCounters, EventId, RequestId,
    RequestRecord, ServingIncrement, SessionEnd, SessionStatus, TokenRecord,
};
use crate::ports::{
    AssignOutcome, AuditEntry, ClaimOutcome, EndOutcome, Page, RedeemOutcome, Store, StoreError,
};

/// Audit entries kept per event; older ones are dropped.
const AUDIT_KEEP: usize = 1_000;

#[derive(Debug)]
struct EventData {
    config: EventConfig,
    counters: EventCounters,
    requests: HashMap<RequestId, RequestRecord>,
    /// Serving moves keyed by the serving counter they reached.
    increments: BTreeMap<u64, ServingIncrement>,
    /// Active tokens ordered by expiry (JWT `exp`, seconds), so expiring them touches only the
    /// expired ones.
    active_by_expiry: BTreeSet<(i64, RequestId)>,
    expired_tokens: BTreeSet<RequestId>,
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
            increments: BTreeMap::new(),
            active_by_expiry: BTreeSet::new(),
            expired_tokens: BTreeSet::new(),
            codes: HashMap::new(),
            audit: Vec::new(),
        }
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

    async fn assign_positions(
        &self,
        event_id: &EventId,
        requests: &[EnqueueRequest],
        now_ms: i64,
    ) -> Result<AssignOutcome, StoreError> {
        let outcome = self.with_event(event_id, |data| {
            let mut outcome = AssignOutcome::default();
            for request in requests {
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
        by: u64,
        now_ms: i64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                let step = by.min(data.counters.waiting());
                if step == 0 {
                    return None;
                }
                let increment = ServingIncrement {
                    previous: data.counters.serving_counter,
                    serving_counter: data.counters.serving_counter + step,
                    at_ms: now_ms,
                    claimed: 0,
                    swept: false,
                };
                data.counters.serving_counter = increment.serving_counter;
                data.counters.serving_changed_at_ms = now_ms;
                data.increments.insert(increment.serving_counter, increment);
                Some(increment)
            })?
            .flatten())
    }

    async fn increment_for(
        &self,
        event_id: &EventId,
        position: u64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                data.increments
                    .range(position..)
                    .next()
                    .map(|(_, inc)| *inc)
                    .filter(|inc| inc.contains(position))
            })?
            .flatten())
    }

    async fn serving_history(
        &self,
        event_id: &EventId,
        since_ms: i64,
    ) -> Result<Vec<ServingIncrement>, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                // Increments are appended in time order, so the newest are at the end.
                let mut recent: Vec<ServingIncrement> = data
                    .increments
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
        place: u64,
        token: &TokenRecord,
    ) -> Result<ClaimOutcome, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                let Some(request) = data.requests.get(request_id) else {
                    return ClaimOutcome::UnknownRequest;
                };
                if let Some(existing) = &request.token {
                    return ClaimOutcome::Existing(existing.clone());
                }
                if request.bypass {
                    data.counters.tokens_issued += 1;
                    data.counters.tokens_bypassed += 1;
                    data.active_by_expiry
                        .insert((token.expires_at, *request_id));
                    if let Some(request) = data.requests.get_mut(request_id) {
                        request.token = Some(token.clone());
                    }
                    return ClaimOutcome::Claimed(token.clone());
                }
                let Some(increment) = data
                    .increments
                    .range_mut(place..)
                    .next()
                    .map(|(_, inc)| inc)
                    .filter(|inc| inc.contains(place))
                else {
                    // Not served: the caller checked, so only a reset can bring us here.
                    return ClaimOutcome::UnknownRequest;
                };
                if increment.swept {
                    return ClaimOutcome::PositionExpired;
                }
                increment.claimed += 1;
                data.counters.tokens_issued += 1;
                data.active_by_expiry
                    .insert((token.expires_at, *request_id));
                if let Some(request) = data.requests.get_mut(request_id) {
                    request.token = Some(token.clone());
                }
                ClaimOutcome::Claimed(token.clone())
            })?
            .unwrap_or(ClaimOutcome::UnknownRequest))
    }

    async fn end_session(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        end: SessionEnd,
    ) -> Result<EndOutcome, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                let Some(request) = data.requests.get_mut(request_id) else {
                    return EndOutcome::UnknownRequest;
                };
                let Some(token) = request.token.as_mut() else {
                    return EndOutcome::NoToken;
                };
                if token.status != SessionStatus::Active {
                    return EndOutcome::AlreadyEnded;
                }
                token.status = end.status();
                data.active_by_expiry
                    .remove(&(token.expires_at, *request_id));
                match end {
                    SessionEnd::Completed => data.counters.tokens_completed += 1,
                    SessionEnd::Abandoned => data.counters.tokens_abandoned += 1,
                }
                EndOutcome::Ended
            })?
            .unwrap_or(EndOutcome::UnknownRequest))
    }

    async fn expire_tokens(&self, event_id: &EventId, now_ms: i64) -> Result<u64, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                // Token expiries are JWT `exp` values, in seconds; `now_ms` is milliseconds.
                let now_s = now_ms.div_euclid(1000);
                let mut expired = 0;
                while let Some(&(expires_at, request_id)) = data.active_by_expiry.first() {
                    if expires_at > now_s {
                        break;
                    }
                    data.active_by_expiry.pop_first();
                    if let Some(token) = data
                        .requests
                        .get_mut(&request_id)
                        .and_then(|r| r.token.as_mut())
                    {
                        token.status = SessionStatus::Expired;
                    }
                    data.expired_tokens.insert(request_id);
                    expired += 1;
                }
                data.counters.tokens_expired += expired;
                expired
            })?
            .unwrap_or(0))
    }

    async fn expire_positions(
        &self,
        event_id: &EventId,
        served_before_ms: i64,
    ) -> Result<u64, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                let mut expired = 0;
                for increment in data.increments.values_mut() {
                    if increment.swept || increment.at_ms >= served_before_ms {
                        continue;
                    }
                    increment.swept = true;
                    expired += increment.size() - increment.claimed;
                }
                data.counters.positions_expired += expired;
                expired
            })?
            .unwrap_or(0))
    }

    async fn expired_tokens(
        &self,
        event_id: &EventId,
        after: Option<RequestId>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        Ok(self
            .with_event(event_id, |data| {
                let mut items: Vec<RequestId> = match after {
                    Some(after) => data
                        .expired_tokens
                        .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                        .take(limit + 1)
                        .copied()
                        .collect(),
                    None => data
                        .expired_tokens
                        .iter()
                        .take(limit + 1)
                        .copied()
                        .collect(),
                };
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
