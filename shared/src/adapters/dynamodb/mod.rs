//! The DynamoDB [`Store`]: one table (layout in `schema.rs`), shared counters moved only by
//! atomic `ADD` and only once per batch or per runner pass, every once-only step guarded by a
//! condition. One file per feature holds its keys, expressions, calls and tests:
//!
//! - `events.rs`: events, their config, the catalog, resets; the in-process generation cache;
//! - `assign.rs`: positions, one conditional put per visitor and one counter move per batch;
//! - `serving.rs`: serving moves, each with its claim deadline;
//! - `sessions.rs`: a visitor's own item: its position, token claim and session end;
//! - `exits.rs`: the striped exit counts a claim or session end adds to, summed by the runner;
//! - `codes.rs` and `audit.rs`: bypass codes and the admin trail.
//!
//! No visitor's read or write touches an item every visitor shares: a position look-up reads
//! the visitor's item; a claim writes it once (conditionally) and adds to 1 of 96 stripes; a
//! session end likewise. The event item takes one write per consumer batch and two per runner
//! pass, and is read once per batch, per pass and per cache refresh.

mod assign;
mod audit;
mod capacity;
mod classes;
mod codec;
mod codes;
mod errors;
mod events;
mod exits;
mod metrics;
mod retry;
mod schema;
mod serving;
mod sessions;
mod table;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

pub use self::classes::{ItemClass, Scope};
use self::metrics::CountCalls;
pub use self::metrics::{CallCounts, CallRecord, Outcome, Touch};
use self::table::{Read, Table};
use super::aws::AwsConfig;
use super::clock::SystemClock;
use crate::cache::TtlCache;
use crate::domain::{
    Admission, BypassCode, Draw, EnqueueRequest, EventConfig, EventCounters, EventId, RequestId,
    RequestRecord, ServingIncrement, SessionEnd, TokenRecord,
};
use crate::ports::{
    AssignOutcome, AuditEntry, ClaimOutcome, EndOutcome, ExitsSettled, Page, RedeemOutcome,
    ServingMoves, Store, StoreError,
};

/// How long an event's generation is trusted without reading the event item again (see
/// `events.rs`: a reset is seen this late by other processes, as config changes are by the
/// room's config cache).
const GENERATION_TTL: Duration = Duration::from_secs(5);

/// [`Store`] on one DynamoDB table.
#[derive(Clone)]
pub struct DynamoStore {
    table: Table,
    calls: CountCalls,
    /// Each event's current generation (`None`: no such event), shared by clones.
    generations: Arc<TtlCache<EventId, Option<u64>>>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table.name())
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store on `table`, reached with `aws`'s region, credentials and endpoint.
    pub fn new(aws: &AwsConfig, table: impl Into<String>) -> Self {
        let calls = CountCalls::default();
        let config = aws_sdk_dynamodb::config::Builder::from(aws.sdk())
            .interceptor(calls.clone())
            .build();
        Self {
            table: Table::new(Client::from_conf(config), table.into()),
            calls,
            generations: Arc::new(TtlCache::new(GENERATION_TTL, Arc::new(SystemClock))),
        }
    }

    pub fn table(&self) -> &str {
        self.table.name()
    }

    /// DynamoDB calls made through this store (and its clones) so far.
    pub fn calls(&self) -> CallCounts {
        self.calls.snapshot()
    }

    /// From now on, records every data call with the items it touched and the capacity it
    /// took (see `metrics.rs`); for measuring runs, since it keeps a copy of each item seen.
    pub fn record_items(&self) {
        self.calls.record_items();
    }

    /// The calls recorded since the last take (none unless [`Self::record_items`] was called).
    pub fn take_records(&self) -> Vec<CallRecord> {
        self.calls.take_records()
    }

    /// Creates the table and its index and TTL (on AWS the SAM template does this), and waits
    /// until it is active.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        self.table.create().await
    }

    /// Creates the table unless it exists; true when it was created.
    pub async fn create_table_if_missing(&self) -> Result<bool, StoreError> {
        if self.table.exists().await? {
            return Ok(false);
        }
        self.table.create().await?;
        Ok(true)
    }

    pub async fn delete_table(&self) -> Result<(), StoreError> {
        self.table.delete().await
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_event(&self, config: &EventConfig, now_ms: i64) -> Result<bool, StoreError> {
        self.create(config, now_ms).await
    }

    async fn update_event(&self, config: &EventConfig) -> Result<bool, StoreError> {
        self.update(config).await
    }

    async fn record_draw(&self, event_id: &EventId, draw: &Draw) -> Result<bool, StoreError> {
        self.draw(event_id, draw).await
    }

    async fn get_event(&self, event_id: &EventId) -> Result<Option<EventConfig>, StoreError> {
        self.config(event_id).await
    }

    async fn list_events(&self) -> Result<Vec<EventConfig>, StoreError> {
        self.configs().await
    }

    async fn counters(&self, event_id: &EventId) -> Result<Option<EventCounters>, StoreError> {
        // Eventual: these counters feed the cached views (a second old by design); admission
        // and assignment read the event item themselves, strongly.
        Ok(self
            .event_state(event_id, Read::Eventual)
            .await?
            .map(|state| state.counters))
    }

    async fn count_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<EventCounters>, StoreError> {
        Ok(self
            .sum_exits(event_id, now_ms)
            .await?
            .map(|sum| sum.current))
    }

    async fn settle_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<ExitsSettled>, StoreError> {
        self.settle(event_id, now_ms).await
    }

    async fn assign_positions(
        &self,
        event_id: &EventId,
        requests: &[EnqueueRequest],
        now_ms: i64,
    ) -> Result<AssignOutcome, StoreError> {
        self.assign(event_id, requests, now_ms).await
    }

    async fn get_request(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<Option<RequestRecord>, StoreError> {
        self.request(event_id, request_id).await
    }

    async fn advance_serving(
        &self,
        event_id: &EventId,
        from: Option<u64>,
        by: u64,
        now_ms: i64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        self.advance(event_id, from, by, now_ms).await
    }

    async fn serving_moves(
        &self,
        event_id: &EventId,
        after: u64,
    ) -> Result<Option<ServingMoves>, StoreError> {
        self.moves(event_id, after).await
    }

    async fn serving_history(
        &self,
        event_id: &EventId,
        since_ms: i64,
    ) -> Result<Vec<ServingIncrement>, StoreError> {
        self.history(event_id, since_ms).await
    }

    async fn claim_token(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        admission: Admission,
        token: &TokenRecord,
    ) -> Result<ClaimOutcome, StoreError> {
        self.claim(event_id, request_id, admission, token).await
    }

    async fn end_session(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        end: SessionEnd,
        now_ms: i64,
    ) -> Result<EndOutcome, StoreError> {
        self.end(event_id, request_id, end, now_ms).await
    }

    async fn expired_tokens(
        &self,
        event_id: &EventId,
        after: Option<RequestId>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page, StoreError> {
        self.expired(event_id, after, limit, now_ms).await
    }

    async fn put_codes(
        &self,
        event_id: &EventId,
        codes: &[BypassCode],
    ) -> Result<bool, StoreError> {
        self.add_codes(event_id, codes).await
    }

    async fn redeem_code(
        &self,
        event_id: &EventId,
        code: &str,
        request: &EnqueueRequest,
    ) -> Result<RedeemOutcome, StoreError> {
        self.redeem(event_id, code, request).await
    }

    async fn reset_event(&self, event_id: &EventId, now_ms: i64) -> Result<bool, StoreError> {
        self.reset(event_id, now_ms).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.record_audit(entry).await
    }

    async fn audit_log(
        &self,
        event_id: &EventId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_newest_first(event_id, limit).await
    }
}

/// A store on a fresh table of the moto endpoint in `WR_TEST_AWS_ENDPOINT`, holding one event
/// `e` created at `now_ms`, for the adapter's own tests of failures only code inside it can
/// stage; `None` (said out loud) without an endpoint.
#[cfg(test)]
async fn event_on_moto(now_ms: i64) -> Option<(DynamoStore, EventId)> {
    let endpoint = crate::adapters::aws::test_endpoint("dynamodb adapter")?;
    let table = format!("wr-unit-{}", &uuid::Uuid::new_v4().to_string()[..8]);
    let store = DynamoStore::new(&AwsConfig::local(&endpoint), table);
    store
        .create_table()
        .await
        .expect("WR_TEST_AWS_ENDPOINT is set but moto is unreachable");
    let event_id = EventId::parse("e").expect("event id");
    let created = store
        .create_event(&EventConfig::new(event_id.clone()), now_ms)
        .await
        .expect("create the event");
    assert!(created, "a fresh table");
    Some((store, event_id))
}
