//! The durable store of the local server: what it accepted survives `kill -9` and a power cut.
//!
//! The working set is a [`MemoryStore`], so reads cost what they cost in memory and the rules of
//! every operation are written once. Each change is also appended as a [`Record`] to a journal
//! in the data directory (SQLite, see [`journal`]) and its caller is answered only once that
//! record is committed. On start the journal is replayed into a fresh working set, and the joins
//! it holds that were answered `202` but never given a position go back into the enqueue buffer,
//! so the consumer and the strategy runner go on where they stopped.
//!
//! Changes are applied and appended under one lock, so the journal's order is the order in
//! which they were applied. A read may see a change a few milliseconds before it is committed;
//! if the process dies in that window the change is lost, but nobody was told it was made
//! (the join stays in the journal and gets its position after the restart).

mod journal;
mod record;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use self::journal::{Journal, JournalReader, Ticket};
use self::record::Record;
use crate::adapters::{MemoryBuffer, MemoryStore};
use crate::domain::{
    Admission, BypassCode, Draw, EnqueueRequest, EventConfig, EventCounters, EventId, RequestId,
    RequestRecord, ServingIncrement, SessionEnd, TokenRecord,
};
use crate::ports::{
    AssignOutcome, AuditEntry, BufferError, ClaimOutcome, EndOutcome, EnqueueBuffer, ExitsSettled,
    Page, RedeemOutcome, ServingMoves, Store, StoreError,
};

/// The journal's file in the data directory.
pub const JOURNAL_FILE: &str = "journal.sqlite";

/// The room's signing key (PEM) in the data directory, created on first start: tokens issued
/// before a restart still verify after it.
pub const SIGNING_KEY_FILE: &str = "signing-key.pem";

/// The [`Store`] of the local server with `--data-dir`.
#[derive(Clone)]
pub struct DurableStore {
    memory: MemoryStore,
    journal: Arc<Journal>,
    /// Held while a change is applied and appended (never while waiting for the commit): the
    /// journal's order is the working set's.
    order: Arc<tokio::sync::Mutex<()>>,
}

/// What opening a data directory found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Changes replayed.
    pub records: u64,
    /// Joins answered `202` and not yet given a position, in the order they came.
    pub waiting: Vec<EnqueueRequest>,
    pub took: Duration,
}

impl DurableStore {
    /// Opens the store in `dir` (created if missing) and replays its journal.
    pub async fn open(dir: &Path) -> Result<(Self, Recovered), StoreError> {
        let started = Instant::now();
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let mut reader = JournalReader::open(&dir.join(JOURNAL_FILE))?;
        let memory = MemoryStore::new();
        let mut recovered = Recovered::default();
        // Joins in the order they were answered, each with its place in that order; the
        // batches that assigned them take them out.
        let mut waiting: std::collections::HashMap<RequestId, (u64, EnqueueRequest)> =
            Default::default();
        let mut joined = 0u64;
        while let Some(records) = reader.next_commit()? {
            for record in records {
                recovered.records += 1;
                match &record {
                    Record::Enqueued { request } => {
                        joined += 1;
                        waiting.insert(request.request_id, (joined, request.clone()));
                    }
                    Record::AssignPositions { requests, .. } => {
                        for request in requests {
                            waiting.remove(&request.request_id);
                        }
                    }
                    _ => {}
                }
                record.replay(&memory).await?;
            }
        }
        let mut waiting: Vec<(u64, EnqueueRequest)> = waiting.into_values().collect();
        waiting.sort_unstable_by_key(|(order, _)| *order);
        // A join for an event that no longer exists would only be dropped by the consumer.
        let events = memory.list_events().await?;
        recovered.waiting = waiting
            .into_iter()
            .map(|(_, request)| request)
            .filter(|request| events.iter().any(|e| e.event_id == request.event_id))
            .collect();
        let store = Self {
            memory,
            journal: Arc::new(reader.into_journal()?),
            order: Arc::new(tokio::sync::Mutex::new(())),
        };
        recovered.took = started.elapsed();
        Ok((store, recovered))
    }

    /// An enqueue buffer whose joins are journaled before they are answered, in front of
    /// `queue`, the buffer the consumer drains.
    pub fn buffer(&self, queue: Arc<MemoryBuffer>) -> DurableBuffer {
        DurableBuffer {
            journal: self.journal.clone(),
            queue,
        }
    }

    /// The working set, as rebuilt from the journal (to compare two replays).
    pub fn working_set(&self) -> &MemoryStore {
        &self.memory
    }

    /// Commits what is queued and lets go of the directory; later changes are refused.
    pub fn close(&self) {
        self.journal.close();
    }

    /// Applies a change to the working set and journals it: `record` gives the record to keep,
    /// or `None` when the outcome changed nothing. Answers once the change is on disk.
    async fn change<T>(
        &self,
        apply: impl Future<Output = Result<T, StoreError>>,
        record: impl FnOnce(&T) -> Option<Record>,
    ) -> Result<T, StoreError> {
        let (value, ticket): (T, Ticket) = {
            let _order = self.order.lock().await;
            let value = apply.await?;
            let ticket = match record(&value) {
                Some(record) => self.journal.append(record)?,
                // Nothing changed, but the state that decided so may not be committed yet.
                None => self.journal.last()?,
            };
            (value, ticket)
        };
        self.journal.committed(ticket).await?;
        Ok(value)
    }
}

#[async_trait]
impl Store for DurableStore {
    async fn create_event(&self, config: &EventConfig, now_ms: i64) -> Result<bool, StoreError> {
        self.change(self.memory.create_event(config, now_ms), |created| {
            created.then(|| Record::CreateEvent {
                config: config.clone(),
                now_ms,
            })
        })
        .await
    }

    async fn update_event(&self, config: &EventConfig) -> Result<bool, StoreError> {
        self.change(self.memory.update_event(config), |updated| {
            updated.then(|| Record::UpdateEvent {
                config: config.clone(),
            })
        })
        .await
    }

    async fn record_draw(&self, event_id: &EventId, draw: &Draw) -> Result<bool, StoreError> {
        self.change(self.memory.record_draw(event_id, draw), |recorded| {
            recorded.then(|| Record::Draw {
                event_id: event_id.clone(),
                draw: *draw,
            })
        })
        .await
    }

    async fn get_event(&self, event_id: &EventId) -> Result<Option<EventConfig>, StoreError> {
        self.memory.get_event(event_id).await
    }

    async fn list_events(&self) -> Result<Vec<EventConfig>, StoreError> {
        self.memory.list_events().await
    }

    async fn counters(&self, event_id: &EventId) -> Result<Option<EventCounters>, StoreError> {
        self.memory.counters(event_id).await
    }

    async fn count_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<EventCounters>, StoreError> {
        self.memory.count_exits(event_id, now_ms).await
    }

    async fn settle_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<ExitsSettled>, StoreError> {
        self.change(self.memory.settle_exits(event_id, now_ms), |settled| {
            settled.is_some().then(|| Record::SettleExits {
                event_id: event_id.clone(),
                now_ms,
            })
        })
        .await
    }

    async fn assign_positions(
        &self,
        event_id: &EventId,
        requests: &[EnqueueRequest],
        now_ms: i64,
    ) -> Result<AssignOutcome, StoreError> {
        // Kept even when nothing was assigned: the record is also what takes the batch out of
        // the enqueue buffer on replay.
        self.change(
            self.memory.assign_positions(event_id, requests, now_ms),
            |_| {
                (!requests.is_empty()).then(|| Record::AssignPositions {
                    event_id: event_id.clone(),
                    requests: requests.to_vec(),
                    now_ms,
                })
            },
        )
        .await
    }

    async fn get_request(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<Option<RequestRecord>, StoreError> {
        self.memory.get_request(event_id, request_id).await
    }

    async fn advance_serving(
        &self,
        event_id: &EventId,
        from: Option<u64>,
        by: u64,
        now_ms: i64,
    ) -> Result<Option<ServingIncrement>, StoreError> {
        self.change(
            self.memory.advance_serving(event_id, from, by, now_ms),
            |moved| {
                moved.is_some().then(|| Record::AdvanceServing {
                    event_id: event_id.clone(),
                    from,
                    by,
                    now_ms,
                })
            },
        )
        .await
    }

    async fn serving_moves(
        &self,
        event_id: &EventId,
        after: u64,
    ) -> Result<Option<ServingMoves>, StoreError> {
        self.memory.serving_moves(event_id, after).await
    }

    async fn serving_history(
        &self,
        event_id: &EventId,
        since_ms: i64,
    ) -> Result<Vec<ServingIncrement>, StoreError> {
        self.memory.serving_history(event_id, since_ms).await
    }

    async fn claim_token(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        admission: Admission,
        token: &TokenRecord,
    ) -> Result<ClaimOutcome, StoreError> {
        self.change(
            self.memory
                .claim_token(event_id, request_id, admission, token),
            |outcome| {
                matches!(outcome, ClaimOutcome::Claimed(_)).then(|| Record::ClaimToken {
                    event_id: event_id.clone(),
                    request_id: *request_id,
                    admission,
                    token: token.clone(),
                })
            },
        )
        .await
    }

    async fn end_session(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        end: SessionEnd,
        now_ms: i64,
    ) -> Result<EndOutcome, StoreError> {
        self.change(
            self.memory.end_session(event_id, request_id, end, now_ms),
            |outcome| {
                (*outcome == EndOutcome::Ended).then(|| Record::EndSession {
                    event_id: event_id.clone(),
                    request_id: *request_id,
                    end,
                    now_ms,
                })
            },
        )
        .await
    }

    async fn expired_tokens(
        &self,
        event_id: &EventId,
        after: Option<RequestId>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page, StoreError> {
        self.memory
            .expired_tokens(event_id, after, limit, now_ms)
            .await
    }

    async fn put_codes(
        &self,
        event_id: &EventId,
        codes: &[BypassCode],
    ) -> Result<bool, StoreError> {
        self.change(self.memory.put_codes(event_id, codes), |put| {
            put.then(|| Record::PutCodes {
                event_id: event_id.clone(),
                codes: codes.to_vec(),
            })
        })
        .await
    }

    async fn redeem_code(
        &self,
        event_id: &EventId,
        code: &str,
        request: &EnqueueRequest,
    ) -> Result<RedeemOutcome, StoreError> {
        self.change(
            self.memory.redeem_code(event_id, code, request),
            |outcome| {
                (*outcome == RedeemOutcome::Redeemed).then(|| Record::RedeemCode {
                    event_id: event_id.clone(),
                    code: code.to_owned(),
                    request: request.clone(),
                })
            },
        )
        .await
    }

    async fn reset_event(&self, event_id: &EventId, now_ms: i64) -> Result<bool, StoreError> {
        self.change(self.memory.reset_event(event_id, now_ms), |reset| {
            reset.then(|| Record::ResetEvent {
                event_id: event_id.clone(),
                now_ms,
            })
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.change(self.memory.append_audit(entry), |_| {
            Some(Record::AppendAudit {
                entry: entry.clone(),
            })
        })
        .await
    }

    async fn audit_log(
        &self,
        event_id: &EventId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.memory.audit_log(event_id, limit).await
    }
}

/// The enqueue buffer of the local server with `--data-dir`: a join is handed to the in-memory
/// queue the consumer drains and answered `202` once it is journaled. Joins of one group commit
/// share one disk sync.
pub struct DurableBuffer {
    journal: Arc<Journal>,
    queue: Arc<MemoryBuffer>,
}

#[async_trait]
impl EnqueueBuffer for DurableBuffer {
    async fn send(&self, request: &EnqueueRequest) -> Result<(), BufferError> {
        // Refused before it is journaled: a join answered 503 must not come back on restart.
        if self.queue.is_full() {
            return Err(BufferError::Full);
        }
        let unavailable = |e: StoreError| BufferError::Unavailable(e.to_string());
        let ticket = self
            .journal
            .append(Record::Enqueued {
                request: request.clone(),
            })
            .map_err(unavailable)?;
        // Queued before the commit, so a caller that goes away while waiting (a client that
        // hangs up) still has its join placed. The consumer's batch is journaled after this
        // record, so it never lands on disk without it.
        self.queue.push(request.clone());
        self.journal.committed(ticket).await.map_err(unavailable)?;
        Ok(())
    }
}
