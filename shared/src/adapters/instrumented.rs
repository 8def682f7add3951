//! A store wrapper that counts calls per operation and can add latency, inject faults or hand
//! out exit counts a pass late: how tests prove that concurrent reads collapse, that store
//! faults lose nothing and that MaxSize holds when the stripes' sums lag, and how benchmarks
//! count store calls per admitted visitor.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{
    Admission, BypassCode, Draw, EnqueueRequest, EventConfig, EventCounters, EventId, RequestId,
    RequestRecord, ServingIncrement, SessionEnd, TokenRecord,
};
use crate::ports::{
    AssignOutcome, AuditEntry, ClaimOutcome, EndOutcome, ExitsSettled, Page, RedeemOutcome,
    ServingMoves, Store, StoreError,
};

/// What the wrapper does to calls while a fault is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every call fails as an unreachable store would (`StoreError::Unavailable`).
    Unavailable,
    /// About one call in `one_in` is refused as DynamoDB refuses past an item's or a table's
    /// throughput (`StoreError::Throttled`); 1 refuses them all. Which calls is a fixed
    /// pseudo-random pick, so runs repeat, yet no request that makes the same calls on every
    /// retry can be refused forever.
    Throttled { one_in: u64 },
}

pub struct InstrumentedStore<S> {
    inner: S,
    latency: Duration,
    // std Mutexes: held only to read or bump a value.
    fault: Mutex<Option<Fault>>,
    /// Calls made while a throttling fault was set, to pick the ones refused.
    throttle_seen: AtomicU64,
    calls: Mutex<BTreeMap<&'static str, u64>>,
    /// When set, exit counts are handed out as the previous sum found them.
    lagging_exits: Option<Mutex<HashMap<EventId, EventCounters>>>,
}

impl<S: Store> InstrumentedStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            latency: Duration::ZERO,
            fault: Mutex::new(None),
            throttle_seen: AtomicU64::new(0),
            calls: Mutex::new(BTreeMap::new()),
            lagging_exits: None,
        }
    }

    /// Hands out the exit counts of the previous `count_exits` or `settle_exits` call instead of
    /// the current ones (entries stay current: the serving counter and tokens bypassed), as if
    /// the stripes' sums lagged a whole runner pass.
    pub fn with_lagging_exits(mut self) -> Self {
        self.lagging_exits = Some(Mutex::new(HashMap::new()));
        self
    }

    /// `current` with the exit counts the previous sum found (for the first, none at all).
    fn lag(&self, event_id: &EventId, current: EventCounters) -> EventCounters {
        let Some(seen) = &self.lagging_exits else {
            return current;
        };
        let Ok(mut seen) = seen.lock() else {
            return current;
        };
        let previous = seen
            .insert(event_id.clone(), current)
            .filter(|previous| previous.generation == current.generation)
            .unwrap_or_default();
        EventCounters {
            tokens_completed: previous.tokens_completed,
            tokens_abandoned: previous.tokens_abandoned,
            tokens_expired: previous.tokens_expired,
            positions_expired: previous.positions_expired,
            ..current
        }
    }

    /// Every call waits this long first, as a remote store would.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Injects `fault` into the calls that follow; `None` heals the store.
    pub fn set_fault(&self, fault: Option<Fault>) {
        if let Ok(mut current) = self.fault.lock() {
            *current = fault;
        }
        self.throttle_seen.store(0, Ordering::SeqCst);
    }

    /// Calls so far, per operation.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn count(&self, operation: &str) -> u64 {
        self.calls().get(operation).copied().unwrap_or(0)
    }

    async fn enter(&self, operation: &'static str) -> Result<(), StoreError> {
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(operation).or_default() += 1;
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let fault = self.fault.lock().map(|f| *f).unwrap_or(None);
        match fault {
            None => Ok(()),
            Some(Fault::Unavailable) => Err(StoreError::Unavailable(format!(
                "injected fault in {operation}"
            ))),
            Some(Fault::Throttled { one_in }) => {
                let seen = self.throttle_seen.fetch_add(1, Ordering::SeqCst);
                if scramble(seen).is_multiple_of(one_in.max(1)) {
                    Err(StoreError::Throttled)
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// SplitMix64's finaliser: consecutive counts map to well-spread values.
fn scramble(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[async_trait]
impl<S: Store> Store for InstrumentedStore<S> {
    async fn create_event(&self, config: &EventConfig, now_ms: i64) -> Result<bool, StoreError> {
        self.enter("create_event").await?;
        self.inner.create_event(config, now_ms).await
    }

    async fn update_event(&self, config: &EventConfig) -> Result<bool, StoreError> {
        self.enter("update_event").await?;
        self.inner.update_event(config).await
    }

    async fn record_draw(&self, event_id: &EventId, draw: &Draw) -> Result<bool, StoreError> {
        self.enter("record_draw").await?;
        self.inner.record_draw(event_id, draw).await
    }

    async fn get_event(&self, event_id: &EventId) -> Result<Option<EventConfig>, StoreError> {
        self.enter("get_event").await?;
        self.inner.get_event(event_id).await
    }

    async fn list_events(&self) -> Result<Vec<EventConfig>, StoreError> {
        self.enter("list_events").await?;
        self.inner.list_events().await
    }

    async fn counters(&self, event_id: &EventId) -> Result<Option<EventCounters>, StoreError> {
        self.enter("counters").await?;
        self.inner.counters(event_id).await
    }

    async fn count_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<EventCounters>, StoreError> {
        self.enter("count_exits").await?;
        Ok(self
            .inner
            .count_exits(event_id, now_ms)
            .await?
            .map(|counters| self.lag(event_id, counters)))
    }

    async fn settle_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<ExitsSettled>, StoreError> {
        self.enter("settle_exits").await?;
        Ok(self
            .inner
            .settle_exits(event_id, now_ms)
            .await?
            .map(|settled| ExitsSettled {
                current: self.lag(event_id, settled.current),
                ..settled
            }))
    }

    async fn assign_positions(
        &self,
        event_id: &EventId,
        requests: &[EnqueueRequest],
        now_ms: i64,
    ) -> Result<AssignOutcome, StoreError> {
        self.enter("assign_positions").await?;
        self.inner
            .assign_positions(event_id, requests, now_ms)
            .await
    }

    async fn get_request(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<Option<RequestRecord>, StoreError> {
        self.enter("get_request").await?;
        self.inner.get_request(event_id, request_id).await
    }

    async fn advance_serving(
        &self,
        event_id: &EventId,
        from: Option<u64>,
        by: u64,
        now_ms: i64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        self.enter("advance_serving").await?;
        self.inner.advance_serving(event_id, from, by, now_ms).await
    }

    async fn serving_moves(
        &self,
        event_id: &EventId,
        after: u64,
    ) -> Result<Option<ServingMoves>, StoreError> {
        self.enter("serving_moves").await?;
        self.inner.serving_moves(event_id, after).await
    }

    async fn serving_history(
        &self,
        event_id: &EventId,
        since_ms: i64,
    ) -> Result<Vec<ServingIncrement>, StoreError> {
        self.enter("serving_history").await?;
        self.inner.serving_history(event_id, since_ms).await
    }

    async fn claim_token(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        admission: Admission,
        token: &TokenRecord,
    ) -> Result<ClaimOutcome, StoreError> {
        self.enter("claim_token").await?;
        self.inner
            .claim_token(event_id, request_id, admission, token)
            .await
    }

    async fn end_session(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        end: SessionEnd,
        now_ms: i64,
    ) -> Result<EndOutcome, StoreError> {
        self.enter("end_session").await?;
        self.inner
            .end_session(event_id, request_id, end, now_ms)
            .await
    }

    async fn expired_tokens(
        &self,
        event_id: &EventId,
        after: Option<RequestId>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page, StoreError> {
        self.enter("expired_tokens").await?;
        self.inner
            .expired_tokens(event_id, after, limit, now_ms)
            .await
    }

    async fn put_codes(
        &self,
        event_id: &EventId,
        codes: &[BypassCode],
    ) -> Result<bool, StoreError> {
        self.enter("put_codes").await?;
        self.inner.put_codes(event_id, codes).await
    }

    async fn redeem_code(
        &self,
        event_id: &EventId,
        code: &str,
        request: &EnqueueRequest,
    ) -> Result<RedeemOutcome, StoreError> {
        self.enter("redeem_code").await?;
        self.inner.redeem_code(event_id, code, request).await
    }

    async fn reset_event(&self, event_id: &EventId, now_ms: i64) -> Result<bool, StoreError> {
        self.enter("reset_event").await?;
        self.inner.reset_event(event_id, now_ms).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.enter("append_audit").await?;
        self.inner.append_audit(entry).await
    }

    async fn audit_log(
        &self,
        event_id: &EventId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.enter("audit_log").await?;
        self.inner.audit_log(event_id, limit).await
    }
}
