//! The DynamoDB [`Store`]: one table (layout in `keys.rs`), counters moved only by atomic `ADD`,
//! every once-only step guarded by a condition, multi-item steps in transactions.
//!
//! ## Assigning positions (the one subtle part)
//!
//! A batch moves the queue counter once, and an SQS message may be delivered twice, even to two
//! consumers at the same moment. So a batch runs in three phases:
//!
//! 1. **Claim** each request with a conditional put (`attribute_not_exists(pk)`, or an item left
//!    by an earlier generation), stamped with this batch's claim id. Exactly one batch wins
//!    each request. A request found with a position is a duplicate; one found claimed by another
//!    batch but without a position is either in progress (its claim is younger than the lease:
//!    waited for, see below) or abandoned by a consumer that died (older than the lease: taken
//!    over with an update conditional on the old claim id).
//! 2. **Move the counter once**: `ADD queue_counter :won` for the claims won, which returns the
//!    new value and so a range of positions no other batch can get.
//! 3. **Write** the positions, in batch order, each conditional on the item still holding this
//!    batch's claim id.
//!
//! No request gets two positions (only the claim holder writes one, once), no position is given
//! twice (ranges come from one atomic `ADD`), and a position is left unused only when a consumer
//! dies between phases 2 and 3 (or outlives its lease): a gap, never a duplicate. A request
//! claimed by a consumer that died before phase 2 loses nothing: the redelivered message takes
//! the claim over once the lease has run out. Requests still in another batch's hands after a
//! short wait fail the batch with `Unavailable`, so SQS delivers them again later. A batch that
//! fails after claiming (say, throttled past its retries) releases its unnumbered claims, so its
//! redelivery need not wait for the lease.

mod capacity;
mod classes;
mod errors;
mod items;
mod keys;
mod metrics;
mod table;

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use futures_util::stream::{self, StreamExt, TryStreamExt};

pub use self::classes::{ItemClass, Scope};
use self::items::{EventState, Item, ItemExt, StoredRequest};
use self::keys::attr;
use self::metrics::CountCalls;
pub use self::metrics::{CallCounts, CallRecord, Outcome, Touch};
use self::table::{Table, Tx, Written};
use super::aws::AwsConfig;
use crate::domain::{
    BypassCode, Draw, EnqueueRequest, EventConfig, EventCounters, EventId, RequestId,
    ServingIncrement, SessionEnd, SessionStatus, TokenRecord,
};
use crate::ports::{
    AssignOutcome, AuditEntry, ClaimOutcome, EndOutcome, Page, RedeemOutcome, Store, StoreError,
};

/// How long a batch's claim on a request holds before a redelivery may take it over. Longer
/// than a consumer invocation can run, so a live consumer never loses its claims.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(120);

/// Requests written at once by one call (claims, positions, marks).
const PARALLEL_WRITES: usize = 32;
/// Most operations in one `TransactWriteItems` (DynamoDB allows 100); one is the event item.
const TRANSACTION_ITEMS: usize = 100;
/// Attempts of an optimistic step (a compare-and-set or a transaction) before giving up.
const ATTEMPTS: u32 = 8;
/// Pauses while waiting for another batch to finish requests it claimed.
const SETTLE_PAUSES_MS: [u64; 6] = [50, 100, 200, 400, 800, 1600];

/// [`Store`] on one DynamoDB table.
#[derive(Clone)]
pub struct DynamoStore {
    table: Table,
    calls: CountCalls,
    claim_lease_ms: i64,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table.name())
            .finish_non_exhaustive()
    }
}

/// How one claim attempt (phase 1) ended for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    Won,
    AlreadyAssigned,
    /// Another batch holds a fresh claim and has not written the position yet.
    InProgress,
    /// The event was reset after this batch read its generation.
    NewerGeneration,
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
            claim_lease_ms: DEFAULT_CLAIM_LEASE.as_millis() as i64,
        }
    }

    /// Changes the claim lease (see the module docs); tests shorten it to exercise take-over.
    pub fn with_claim_lease(mut self, lease: Duration) -> Self {
        self.claim_lease_ms = lease.as_millis() as i64;
        self
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

    /// Creates the table, its indexes and TTL (on AWS the SAM template does this), and waits
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

    // ---- reads the operations share ------------------------------------------------------

    async fn event_state(&self, event_id: &EventId) -> Result<Option<EventState>, StoreError> {
        self.table
            .get(keys::event_key(event_id))
            .await?
            .map(|item| EventState::try_from(&item))
            .transpose()
    }

    /// The event and a request of it, in one round trip. The request is `None` unless it
    /// belongs to the event's current generation.
    async fn event_and_request(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<Option<(EventState, Option<StoredRequest>)>, StoreError> {
        let event_key = keys::event_key(event_id);
        let request_key = keys::request_key(event_id, request_id);
        let found = self
            .table
            .batch_get(vec![event_key.clone(), request_key.clone()])
            .await?;
        let is = |item: &Item, key: &Item| item.get(keys::PK) == key.get(keys::PK);
        let Some(event) = found.iter().find(|item| is(item, &event_key)) else {
            return Ok(None);
        };
        let state = EventState::try_from(event)?;
        let request = found
            .iter()
            .find(|item| is(item, &request_key))
            .map(StoredRequest::try_from)
            .transpose()?
            .filter(|request| request.generation == state.counters.generation);
        Ok(Some((state, request)))
    }

    async fn increment_at_or_after(
        &self,
        event_id: &EventId,
        generation: u64,
        position: u64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        let (items, _) = self
            .table
            .query_page(&keys::increment_for(event_id, generation, position), None)
            .await?;
        items
            .first()
            .map(ServingIncrement::try_from)
            .transpose()
            .map(|inc| inc.filter(|inc| inc.contains(position)))
    }

    // ---- position assignment -------------------------------------------------------------

    /// Phase 1 for one request.
    async fn claim(
        &self,
        event_id: &EventId,
        generation: u64,
        claim_id: &str,
        request: &EnqueueRequest,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        let request_id = &request.request_id;
        for _ in 0..ATTEMPTS {
            let put = keys::claim_request(
                event_id,
                request_id,
                generation,
                claim_id,
                request.entry_time_ms,
                now_ms,
            );
            let old = match self.table.put(put).await? {
                Written::Done(()) => return Ok(Claim::Won),
                Written::ConditionFailed(Some(old)) => old,
                // Not sent back (an older DynamoDB or emulator): read it.
                Written::ConditionFailed(None) => {
                    match self
                        .table
                        .get(keys::request_key(event_id, request_id))
                        .await?
                    {
                        Some(old) => old,
                        None => continue,
                    }
                }
            };
            let old = StoredRequest::try_from(&old)?;
            if old.generation > generation {
                return Ok(Claim::NewerGeneration);
            }
            if old.generation < generation {
                continue; // replaced between our put and our read: try again
            }
            if old.record.is_some() {
                return Ok(Claim::AlreadyAssigned);
            }
            if old.claim_id.as_deref() == Some(claim_id) {
                // Our own put, landed but answered with an error and retried by the SDK
                // (repeats within a batch were removed before claiming).
                return Ok(Claim::Won);
            }
            if now_ms - old.claimed_at_ms < self.claim_lease_ms {
                return Ok(Claim::InProgress);
            }
            let stale = old.claim_id.unwrap_or_default();
            let take_over =
                keys::reown_request(event_id, request_id, generation, &stale, claim_id, now_ms);
            if let Written::Done(_) = self.table.update(take_over).await? {
                tracing::info!(event_id = %event_id, request_id = %request_id, "took over an abandoned claim");
                return Ok(Claim::Won);
            }
        }
        Err(StoreError::Unavailable(format!(
            "request {request_id} kept changing while being claimed"
        )))
    }

    /// The three phases within one generation; `None` when the event was reset meanwhile.
    async fn assign_in_generation(
        &self,
        event_id: &EventId,
        generation: u64,
        requests: &[&EnqueueRequest],
        now_ms: i64,
    ) -> Result<Option<AssignOutcome>, StoreError> {
        let claim_id = uuid::Uuid::new_v4().to_string();
        // Futures built first, then run a few at a time (a closure inside the stream trips
        // the compiler's Send check of `async_trait`).
        let claiming: Vec<_> = requests
            .iter()
            .map(|request| self.claim(event_id, generation, &claim_id, request, now_ms))
            .collect();
        let results: Vec<Result<Claim, StoreError>> = stream::iter(claiming)
            .buffered(PARALLEL_WRITES)
            .collect()
            .await;
        let won: Vec<&EnqueueRequest> = requests
            .iter()
            .zip(&results)
            .filter(|(_, claim)| matches!(claim, Ok(Claim::Won)))
            .map(|(request, _)| *request)
            .collect();
        // Some claims failed: hand back those won, so the redelivery need not wait for them.
        let claims = match results
            .into_iter()
            .collect::<Result<Vec<Claim>, StoreError>>()
        {
            Ok(claims) => claims,
            Err(error) => {
                self.release_claims(event_id, generation, &claim_id, &won)
                    .await;
                return Err(error);
            }
        };
        if claims.contains(&Claim::NewerGeneration) {
            return Ok(None);
        }
        let count = |wanted: Claim| claims.iter().filter(|c| **c == wanted).count() as u64;
        let mut outcome = AssignOutcome {
            assigned: won.len() as u64,
            duplicates: count(Claim::AlreadyAssigned),
            wiped: 0,
        };

        if !won.is_empty() {
            match self
                .number_claims(event_id, generation, &claim_id, &won, now_ms)
                .await
            {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(error) => {
                    self.release_claims(event_id, generation, &claim_id, &won)
                        .await;
                    return Err(error);
                }
            }
        }

        let in_progress: Vec<RequestId> = requests
            .iter()
            .zip(&claims)
            .filter(|(_, claim)| **claim == Claim::InProgress)
            .map(|(request, _)| request.request_id)
            .collect();
        if !in_progress.is_empty() {
            tracing::debug!(event_id = %event_id, requests = in_progress.len(), "waiting for requests another consumer claimed");
            let unsettled = self
                .wait_for_others(event_id, generation, in_progress)
                .await?;
            if unsettled > 0 {
                return Err(StoreError::Unavailable(format!(
                    "{unsettled} requests are being assigned by another consumer; deliver again later"
                )));
            }
            outcome.duplicates += count(Claim::InProgress);
        }
        Ok(Some(outcome))
    }

    /// Phases 2 and 3 for the requests this batch won; `false` when the event was reset.
    async fn number_claims(
        &self,
        event_id: &EventId,
        generation: u64,
        claim_id: &str,
        won: &[&EnqueueRequest],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let count = won.len() as u64;
        let moved = keys::move_queue_counter(event_id, generation, count, now_ms);
        // A throttled or conflicting ADD did not apply, so trying again cannot count twice.
        let mut attempt = 0;
        let last = loop {
            match self.table.update(moved.clone()).await {
                Ok(Written::Done(new)) => break new.number::<u64>(attr::QUEUE_COUNTER)?,
                Ok(Written::ConditionFailed(_)) => return Ok(false),
                Err(StoreError::Throttled) if attempt + 1 < ATTEMPTS => {
                    pause(attempt).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        };
        let first = last + 1 - count;
        let writing: Vec<_> = won
            .iter()
            .enumerate()
            .map(|(offset, request)| {
                let position = first + offset as u64;
                let write = keys::write_position(
                    event_id,
                    &request.request_id,
                    generation,
                    claim_id,
                    position,
                );
                async move {
                    if let Written::ConditionFailed(_) = self.table.update(write).await? {
                        tracing::warn!(event_id = %event_id, request_id = %request.request_id, position, "claim taken over before its position was written; position left unused");
                    }
                    Ok::<_, StoreError>(())
                }
            })
            .collect();
        stream::iter(writing)
            .buffer_unordered(PARALLEL_WRITES)
            .try_collect::<()>()
            .await?;
        Ok(true)
    }

    /// After a failure, hands this batch's unnumbered claims back at once, so the redelivered
    /// messages need not wait out the lease. Best effort: if this fails too, the lease expires.
    async fn release_claims(
        &self,
        event_id: &EventId,
        generation: u64,
        claim_id: &str,
        won: &[&EnqueueRequest],
    ) {
        let releasing: Vec<_> = won
            .iter()
            .map(|request| {
                self.table.update(keys::release_claim(
                    event_id,
                    &request.request_id,
                    generation,
                    claim_id,
                ))
            })
            .collect();
        let released = stream::iter(releasing)
            .buffer_unordered(PARALLEL_WRITES)
            .try_collect::<Vec<_>>()
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, event_id = %event_id, "claims not released; they expire with their lease");
        }
    }

    /// Waits briefly for other batches to write the positions of requests they claimed;
    /// returns how many are still without one.
    async fn wait_for_others(
        &self,
        event_id: &EventId,
        generation: u64,
        mut waiting: Vec<RequestId>,
    ) -> Result<usize, StoreError> {
        for pause_ms in SETTLE_PAUSES_MS {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            let found = self
                .table
                .batch_get(
                    waiting
                        .iter()
                        .map(|id| keys::request_key(event_id, id))
                        .collect(),
                )
                .await?;
            let mut settled = HashSet::new();
            for item in &found {
                let request = StoredRequest::try_from(item)?;
                if (request.record.is_some() || request.generation != generation)
                    && let Some(id) = keys::request_id_of(item)
                {
                    settled.insert(id);
                }
            }
            waiting.retain(|id| !settled.contains(id));
            if waiting.is_empty() {
                break;
            }
        }
        Ok(waiting.len())
    }

    // ---- expiry --------------------------------------------------------------------------

    /// Expires one transaction's worth of due tokens, dropping any whose session ended
    /// meanwhile; `None` when the event was reset.
    async fn expire_token_chunk(
        &self,
        event_id: &EventId,
        generation: u64,
        mut due: Vec<(Item, RequestId)>,
    ) -> Result<Option<u64>, StoreError> {
        for attempt in 0..ATTEMPTS {
            if due.is_empty() {
                return Ok(Some(0));
            }
            let count = due.len() as u64;
            let mut ops: Vec<Tx> = due
                .iter()
                .map(|(key, id)| {
                    Tx::Update(keys::expire_token(event_id, key.clone(), id, generation))
                })
                .collect();
            let event_index = ops.len();
            ops.push(Tx::Update(keys::count_expired_tokens(
                event_id, generation, count,
            )));
            match self.table.transact(ops).await? {
                Ok(()) => return Ok(Some(count)),
                Err(cancelled) => {
                    if cancelled.failed_conditions.contains(&event_index) {
                        return Ok(None);
                    }
                    for index in cancelled.failed_conditions.iter().rev() {
                        due.remove(*index);
                    }
                    if cancelled.conflict {
                        pause(attempt).await;
                    }
                }
            }
        }
        Err(StoreError::Throttled)
    }

    /// Closes one serving move's claim window, counting its unclaimed remainder once: the sweep
    /// is conditional on the claim count it read, and a claim is conditional on the move not
    /// being swept, so a claim racing the sweep is either counted or refused, never both.
    /// Returns the places expired; `None` when the event was reset.
    async fn sweep(
        &self,
        event_id: &EventId,
        generation: u64,
        increment: ServingIncrement,
    ) -> Result<Option<u64>, StoreError> {
        let mut current = increment;
        for attempt in 0..ATTEMPTS {
            let expired = current.size().saturating_sub(current.claimed);
            let ops = keys::sweep_increment(
                event_id,
                generation,
                current.serving_counter,
                current.claimed,
                expired,
            );
            match self.table.transact(ops.map(Tx::Update).into()).await? {
                Ok(()) => return Ok(Some(expired)),
                Err(cancelled) => {
                    if cancelled.failed_conditions.contains(&1) {
                        return Ok(None);
                    }
                    let key = keys::increment_key(event_id, generation, current.serving_counter);
                    match self.table.get(key).await? {
                        None => return Ok(Some(0)),
                        Some(item) => current = ServingIncrement::try_from(&item)?,
                    }
                    if current.swept {
                        return Ok(Some(0)); // another sweeper counted it
                    }
                    if cancelled.conflict {
                        pause(attempt).await;
                    }
                }
            }
        }
        Err(StoreError::Throttled)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_event(&self, config: &EventConfig, now_ms: i64) -> Result<bool, StoreError> {
        for attempt in 0..ATTEMPTS {
            let ops = keys::create_event(config, now_ms).map(Tx::Put).into();
            match self.table.transact(ops).await? {
                Ok(()) => return Ok(true),
                Err(cancelled) if !cancelled.failed_conditions.is_empty() => return Ok(false),
                Err(_) => pause(attempt).await,
            }
        }
        Err(StoreError::Throttled)
    }

    async fn update_event(&self, config: &EventConfig) -> Result<bool, StoreError> {
        Ok(matches!(
            self.table.update(keys::update_event(config)).await?,
            Written::Done(_)
        ))
    }

    async fn record_draw(&self, event_id: &EventId, draw: &Draw) -> Result<bool, StoreError> {
        let update = keys::record_draw(event_id, items::draw_json(draw));
        Ok(matches!(self.table.update(update).await?, Written::Done(_)))
    }

    async fn get_event(&self, event_id: &EventId) -> Result<Option<EventConfig>, StoreError> {
        self.table
            .get(keys::event_key(event_id))
            .await?
            .map(|item| EventConfig::try_from(&item))
            .transpose()
    }

    async fn list_events(&self) -> Result<Vec<EventConfig>, StoreError> {
        let ids = self
            .table
            .query_all(keys::catalog())
            .await?
            .iter()
            .map(|entry| {
                EventId::parse(entry.string(attr::EVENT_ID)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let found = self
            .table
            .batch_get(ids.iter().map(keys::event_key).collect())
            .await?;
        let mut configs = found
            .iter()
            .map(EventConfig::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        configs.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        Ok(configs)
    }

    async fn counters(&self, event_id: &EventId) -> Result<Option<EventCounters>, StoreError> {
        Ok(self
            .event_state(event_id)
            .await?
            .map(|state| state.counters))
    }

    async fn assign_positions(
        &self,
        event_id: &EventId,
        requests: &[EnqueueRequest],
        now_ms: i64,
    ) -> Result<AssignOutcome, StoreError> {
        // The same request twice in one batch: the first occurrence counts.
        let mut seen = HashSet::new();
        let unique: Vec<&EnqueueRequest> = requests
            .iter()
            .filter(|request| seen.insert(request.request_id))
            .collect();
        let repeated = (requests.len() - unique.len()) as u64;
        for _ in 0..ATTEMPTS {
            let Some(state) = self.event_state(event_id).await? else {
                return Ok(AssignOutcome::default());
            };
            let generation = state.counters.generation;
            // Requests made before the last reset: their line is gone. Read with the
            // generation the batch is numbered in, so a reset mid-batch re-sorts them.
            let (current, wiped): (Vec<&EnqueueRequest>, Vec<&EnqueueRequest>) = unique
                .iter()
                .partition(|request| request.request_id.generation() >= generation);
            if let Some(mut outcome) = self
                .assign_in_generation(event_id, generation, &current, now_ms)
                .await?
            {
                outcome.duplicates += repeated;
                outcome.wiped = wiped.len() as u64;
                return Ok(outcome);
            }
        }
        Err(StoreError::Unavailable(
            "event kept being reset during position assignment".into(),
        ))
    }

    async fn get_request(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<Option<crate::domain::RequestRecord>, StoreError> {
        Ok(self
            .event_and_request(event_id, request_id)
            .await?
            .and_then(|(_, request)| request)
            .and_then(|request| request.record))
    }

    async fn advance_serving(
        &self,
        event_id: &EventId,
        by: u64,
        now_ms: i64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        for attempt in 0..ATTEMPTS {
            let Some(state) = self.event_state(event_id).await? else {
                return Ok(None);
            };
            let counters = state.counters;
            let step = by.min(counters.waiting());
            if step == 0 {
                return Ok(None);
            }
            let (counter, record) = keys::advance_serving(
                event_id,
                counters.generation,
                counters.serving_counter,
                step,
                now_ms,
            );
            match self
                .table
                .transact(vec![Tx::Update(counter), Tx::Put(record)])
                .await?
            {
                Ok(()) => {
                    return Ok(Some(ServingIncrement {
                        previous: counters.serving_counter,
                        serving_counter: counters.serving_counter + step,
                        at_ms: now_ms,
                        claimed: 0,
                        swept: false,
                    }));
                }
                // Another move landed since the read: read again.
                Err(_) => pause(attempt).await,
            }
        }
        Err(StoreError::Throttled)
    }

    async fn increment_for(
        &self,
        event_id: &EventId,
        position: u64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        let Some(state) = self.event_state(event_id).await? else {
            return Ok(None);
        };
        self.increment_at_or_after(event_id, state.counters.generation, position)
            .await
    }

    async fn serving_history(
        &self,
        event_id: &EventId,
        since_ms: i64,
    ) -> Result<Vec<ServingIncrement>, StoreError> {
        let Some(state) = self.event_state(event_id).await? else {
            return Ok(Vec::new());
        };
        let query = keys::serving_newest_first(event_id, state.counters.generation, 50);
        let mut recent = Vec::new();
        let mut start = None;
        'pages: loop {
            let (items, next) = self.table.query_page(&query, start).await?;
            for item in &items {
                let increment = ServingIncrement::try_from(item)?;
                if increment.at_ms < since_ms {
                    break 'pages;
                }
                recent.push(increment);
            }
            match next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        recent.reverse();
        Ok(recent)
    }

    async fn claim_token(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        place: u64,
        token: &TokenRecord,
    ) -> Result<ClaimOutcome, StoreError> {
        for attempt in 0..ATTEMPTS {
            let Some((state, Some(request))) = self.event_and_request(event_id, request_id).await?
            else {
                return Ok(ClaimOutcome::UnknownRequest);
            };
            let Some(record) = request.record else {
                return Ok(ClaimOutcome::UnknownRequest);
            };
            if let Some(existing) = record.token {
                return Ok(ClaimOutcome::Existing(existing));
            }
            let generation = state.counters.generation;
            let increment_counter = if record.bypass {
                None
            } else {
                let Some(increment) = self
                    .increment_at_or_after(event_id, generation, place)
                    .await?
                    .filter(|inc| inc.contains(place))
                else {
                    // Not served: the caller checked, so only a reset can bring us here.
                    return Ok(ClaimOutcome::UnknownRequest);
                };
                if increment.swept {
                    return Ok(ClaimOutcome::PositionExpired);
                }
                Some(increment.serving_counter)
            };
            let writes = keys::claim_token(
                event_id,
                request_id,
                generation,
                record.position,
                increment_counter,
                token,
                keys::keep_claimed_until_s(record.entry_time_ms, token),
            );
            match self
                .table
                .transact(writes.into_iter().map(Tx::Update).collect())
                .await?
            {
                Ok(()) => return Ok(ClaimOutcome::Claimed(token.clone())),
                // A concurrent claim, a sweep or a reset got there first: reading again tells.
                Err(cancelled) if cancelled.conflict => pause(attempt).await,
                Err(_) => {}
            }
        }
        Err(StoreError::Throttled)
    }

    async fn end_session(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        end: SessionEnd,
    ) -> Result<EndOutcome, StoreError> {
        for attempt in 0..ATTEMPTS {
            let Some((state, Some(request))) = self.event_and_request(event_id, request_id).await?
            else {
                return Ok(EndOutcome::UnknownRequest);
            };
            let Some(record) = request.record else {
                return Ok(EndOutcome::UnknownRequest);
            };
            let Some(token) = record.token else {
                return Ok(EndOutcome::NoToken);
            };
            if token.status != SessionStatus::Active {
                return Ok(EndOutcome::AlreadyEnded);
            }
            let writes = keys::end_session(event_id, request_id, state.counters.generation, end);
            match self.table.transact(writes.map(Tx::Update).into()).await? {
                Ok(()) => return Ok(EndOutcome::Ended),
                Err(cancelled) if cancelled.conflict => pause(attempt).await,
                Err(_) => {}
            }
        }
        Err(StoreError::Throttled)
    }

    async fn expire_tokens(&self, event_id: &EventId, now_ms: i64) -> Result<u64, StoreError> {
        let Some(state) = self.event_state(event_id).await? else {
            return Ok(0);
        };
        let generation = state.counters.generation;
        // Token expiries are JWT `exp` values, in seconds.
        let now_s = now_ms.div_euclid(1000);
        let mut due = Vec::new();
        for shard in keys::shards() {
            let query = keys::active_tokens_due(event_id, generation, shard, now_s);
            for item in self.table.query_all(query).await? {
                match keys::request_id_of(&item) {
                    Some(id) => due.push((keys::base_key(&item), id)),
                    None => {
                        return Err(StoreError::Corrupt(
                            "active index entry without a request key".into(),
                        ));
                    }
                }
            }
        }
        let mut expired = 0;
        for chunk in due.chunks(TRANSACTION_ITEMS - 1) {
            match self
                .expire_token_chunk(event_id, generation, chunk.to_vec())
                .await?
            {
                Some(count) => expired += count,
                None => break,
            }
        }
        Ok(expired)
    }

    async fn expire_positions(
        &self,
        event_id: &EventId,
        served_before_ms: i64,
    ) -> Result<u64, StoreError> {
        let Some(state) = self.event_state(event_id).await? else {
            return Ok(0);
        };
        let generation = state.counters.generation;
        let query = keys::serving_after(event_id, generation, state.swept_through);
        let mut expired = 0;
        let mut swept_through = None;
        let mut start = None;
        'pages: loop {
            let (items, next) = self.table.query_page(&query, start).await?;
            for item in &items {
                let increment = ServingIncrement::try_from(item)?;
                if increment.at_ms >= served_before_ms {
                    break 'pages;
                }
                if !increment.swept {
                    match self.sweep(event_id, generation, increment).await? {
                        Some(count) => expired += count,
                        None => return Ok(expired),
                    }
                }
                swept_through = Some(increment.serving_counter);
            }
            match next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        if let Some(through) = swept_through {
            // Losing this race to another sweeper is fine: the cursor only moves forward.
            self.table
                .update(keys::advance_sweep_cursor(event_id, generation, through))
                .await?;
        }
        Ok(expired)
    }

    async fn expired_tokens(
        &self,
        event_id: &EventId,
        after: Option<RequestId>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let Some(state) = self.event_state(event_id).await? else {
            return Ok(Page::default());
        };
        // One more than asked, to know whether there is a next page.
        let wanted = limit.saturating_add(1);
        let page_size = i32::try_from(wanted).unwrap_or(i32::MAX);
        let query = keys::expired_tokens_page(
            event_id,
            state.counters.generation,
            after.as_ref(),
            page_size,
        );
        let mut items = Vec::new();
        let mut start = None;
        while items.len() < wanted {
            let (found, next) = self.table.query_page(&query, start).await?;
            for item in &found {
                let id = RequestId::parse(item.string(attr::EXPIRED_RID)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                items.push(id);
            }
            match next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        items.truncate(wanted);
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().copied()
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn put_codes(
        &self,
        event_id: &EventId,
        codes: &[BypassCode],
    ) -> Result<bool, StoreError> {
        if self.event_state(event_id).await?.is_none() {
            return Ok(false);
        }
        let writes: Vec<_> = codes
            .iter()
            .map(|code| self.table.put(keys::put_code(event_id, code)))
            .collect();
        stream::iter(writes)
            .buffer_unordered(PARALLEL_WRITES)
            .try_for_each(|_| async { Ok(()) })
            .await?;
        Ok(true)
    }

    async fn redeem_code(
        &self,
        event_id: &EventId,
        code: &str,
        request: &EnqueueRequest,
    ) -> Result<RedeemOutcome, StoreError> {
        let Some(state) = self.event_state(event_id).await? else {
            return Ok(RedeemOutcome::Refused);
        };
        // One transaction: the code loses a use only if the visitor is recorded, and the other
        // way round, so concurrent redemptions of a single-use code let exactly one in.
        let generation = state.counters.generation;
        for attempt in 0..ATTEMPTS {
            let ops = vec![
                Tx::Update(keys::use_code(event_id, code)),
                Tx::Put(keys::bypass_request(request, generation)),
            ];
            match self.table.transact(ops).await? {
                Ok(()) => return Ok(RedeemOutcome::Redeemed),
                Err(cancelled) if cancelled.conflict => pause(attempt).await,
                // The code is unknown or used up (the request id is fresh, so never taken).
                Err(_) => return Ok(RedeemOutcome::Refused),
            }
        }
        Err(StoreError::Throttled)
    }

    async fn reset_event(&self, event_id: &EventId, now_ms: i64) -> Result<bool, StoreError> {
        Ok(matches!(
            self.table
                .update(keys::reset_event(event_id, now_ms))
                .await?,
            Written::Done(_)
        ))
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.table.put(keys::audit_entry(entry)).await?;
        Ok(())
    }

    async fn audit_log(
        &self,
        event_id: &EventId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let query = keys::audit_newest_first(event_id, i32::try_from(limit).unwrap_or(i32::MAX));
        let mut entries = Vec::new();
        let mut start = None;
        while entries.len() < limit {
            let (items, next) = self.table.query_page(&query, start).await?;
            for item in &items {
                entries.push(AuditEntry::try_from(item)?);
            }
            match next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        entries.truncate(limit);
        Ok(entries)
    }
}

/// Backs off before retrying a lost race: 10 ms doubling, with jitter so racers spread out.
async fn pause(attempt: u32) {
    let base = 10u64 << attempt.min(6);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// Failure paths of position assignment that need a consumer to die half-way, which only code
/// inside the adapter can stage. They run against moto when `WR_TEST_AWS_ENDPOINT` is set.
#[cfg(test)]
mod tests {
    use super::*;

    const T0_MS: i64 = 1_767_225_600_000;

    async fn store_on_moto(lease: Duration) -> Option<DynamoStore> {
        let endpoint = crate::adapters::aws::test_endpoint("dynamodb adapter")?;
        let table = format!("wr-unit-{}", &uuid::Uuid::new_v4().to_string()[..8]);
        let store = DynamoStore::new(&AwsConfig::local(&endpoint), table).with_claim_lease(lease);
        store
            .create_table()
            .await
            .expect("WR_TEST_AWS_ENDPOINT is set but moto is unreachable");
        Some(store)
    }

    async fn event_with(store: &DynamoStore, n: usize) -> (EventId, Vec<EnqueueRequest>) {
        let event_id = EventId::parse("e").unwrap();
        assert!(
            store
                .create_event(&EventConfig::new(event_id.clone()), T0_MS)
                .await
                .unwrap()
        );
        let requests = (0..n)
            .map(|i| EnqueueRequest {
                event_id: event_id.clone(),
                request_id: RequestId::new(T0_MS + i as i64, 0),
                entry_time_ms: T0_MS + i as i64,
            })
            .collect();
        (event_id, requests)
    }

    async fn position_of(
        store: &DynamoStore,
        event_id: &EventId,
        request: &EnqueueRequest,
    ) -> Option<u64> {
        store
            .get_request(event_id, &request.request_id)
            .await
            .unwrap()
            .map(|r| r.position)
    }

    #[tokio::test]
    async fn claims_of_a_consumer_that_died_before_the_counter_move_are_taken_over() {
        let Some(store) = store_on_moto(Duration::from_millis(500)).await else {
            return;
        };
        let (event_id, requests) = event_with(&store, 3).await;
        // A consumer claims the batch (phase 1) and dies before moving the counter.
        for request in &requests {
            let claim = store
                .claim(&event_id, 0, "dead", request, T0_MS)
                .await
                .unwrap();
            assert_eq!(claim, Claim::Won);
        }
        // Redelivered within the lease: the claims may still be live, so the batch is
        // refused (SQS will deliver it again) and nothing moves.
        let early = store
            .assign_positions(&event_id, &requests, T0_MS + 100)
            .await;
        assert!(
            matches!(early, Err(StoreError::Unavailable(_))),
            "{early:?}"
        );
        assert_eq!(
            store
                .counters(&event_id)
                .await
                .unwrap()
                .unwrap()
                .queue_counter,
            0
        );
        // Redelivered after the lease: taken over, positions 1..=3 without a gap.
        let outcome = store
            .assign_positions(&event_id, &requests, T0_MS + 1_000)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            AssignOutcome {
                assigned: 3,
                duplicates: 0,
                wiped: 0
            }
        );
        for (i, request) in requests.iter().enumerate() {
            assert_eq!(
                position_of(&store, &event_id, request).await,
                Some(i as u64 + 1)
            );
        }
        assert_eq!(
            store
                .counters(&event_id)
                .await
                .unwrap()
                .unwrap()
                .queue_counter,
            3
        );
        store.delete_table().await.unwrap();
    }

    #[tokio::test]
    async fn claims_released_by_a_failed_batch_are_taken_over_at_once() {
        let Some(store) = store_on_moto(DEFAULT_CLAIM_LEASE).await else {
            return;
        };
        let (event_id, requests) = event_with(&store, 2).await;
        for request in &requests {
            assert_eq!(
                store
                    .claim(&event_id, 0, "failed", request, T0_MS)
                    .await
                    .unwrap(),
                Claim::Won
            );
        }
        // The batch failed before numbering its claims and handed them back.
        let won: Vec<&EnqueueRequest> = requests.iter().collect();
        store.release_claims(&event_id, 0, "failed", &won).await;
        // Redelivered a moment later, well within the lease: no waiting, positions 1 and 2.
        let outcome = store
            .assign_positions(&event_id, &requests, T0_MS + 10)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            AssignOutcome {
                assigned: 2,
                duplicates: 0,
                wiped: 0
            }
        );
        assert_eq!(position_of(&store, &event_id, &requests[1]).await, Some(2));
        store.delete_table().await.unwrap();
    }

    #[tokio::test]
    async fn a_consumer_that_outlived_its_lease_cannot_overwrite_the_position() {
        let Some(store) = store_on_moto(Duration::from_millis(500)).await else {
            return;
        };
        let (event_id, requests) = event_with(&store, 1).await;
        let request = &requests[0];
        // A slow consumer claims, then stalls past its lease; a redelivery takes over.
        assert_eq!(
            store
                .claim(&event_id, 0, "slow", request, T0_MS)
                .await
                .unwrap(),
            Claim::Won
        );
        let outcome = store
            .assign_positions(&event_id, &requests, T0_MS + 1_000)
            .await
            .unwrap();
        assert_eq!(outcome.assigned, 1);
        // The slow consumer wakes up, moves the counter and tries to write its position: the
        // claim is no longer its own, so the request keeps position 1 and position 2 is a gap.
        let moved = keys::move_queue_counter(&event_id, 0, 1, T0_MS + 2_000);
        assert!(matches!(
            store.table.update(moved).await.unwrap(),
            Written::Done(_)
        ));
        let late = keys::write_position(&event_id, &request.request_id, 0, "slow", 2);
        assert!(matches!(
            store.table.update(late).await.unwrap(),
            Written::ConditionFailed(_)
        ));
        assert_eq!(position_of(&store, &event_id, request).await, Some(1));
        store.delete_table().await.unwrap();
    }
}
