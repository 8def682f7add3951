//! What the waiting room needs from the outside world. The memory adapters implement these for
//! the local server and tests; the DynamoDB and SQS adapters implement them on AWS.

use async_trait::async_trait;

use crate::domain::{
    Admission, BypassCode, Draw, EnqueueRequest, EventConfig, EventCounters, EventId, RequestId,
    RequestRecord, ServingIncrement, SessionEnd, TokenRecord,
};

/// A store call that failed. Every variant is the store's fault, never the visitor's: it maps
/// to `503` with `Retry-After`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store throttled the request")]
    Throttled,
    #[error("store returned a malformed item: {0}")]
    Corrupt(String),
}

/// The enqueue buffer (SQS on AWS) refused a message.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("enqueue buffer full")]
    Full,
    #[error("enqueue buffer unavailable: {0}")]
    Unavailable(String),
}

/// What a batch assignment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AssignOutcome {
    /// New positions handed out. The queue counter moved by this much, or more when positions
    /// were left unused (a gap: a batch that failed part-way, or a copy of a message assigned
    /// at the same moment by another consumer).
    pub assigned: u64,
    /// Requests that already had a position: redeliveries, answered without a new one.
    pub duplicates: u64,
    /// Requests made in an earlier generation of the event: a reset wiped their line, so they
    /// get no position (the look-ups report them gone, and the visitor joins again).
    pub wiped: u64,
}

/// What claiming a token for a served request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This record is now the request's token.
    Claimed(TokenRecord),
    /// The request already had a token (a retry or a concurrent claim): that one stands.
    Existing(TokenRecord),
    /// The request is gone (unknown, or the event was reset).
    UnknownRequest,
}

/// The serving moves of an event's current generation (a reset starts a new one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServingMoves {
    pub generation: u64,
    /// Oldest first.
    pub moves: Vec<ServingIncrement>,
}

/// What settling an event's exit counts did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitsSettled {
    /// The counters as the last settlement left them.
    pub previous: EventCounters,
    /// The counters with the exit counts summed now, as now recorded.
    pub current: EventCounters,
}

/// What ending a session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOutcome {
    Ended,
    /// The session had already ended (completed, abandoned or expired): nothing counted twice.
    AlreadyEnded,
    /// The request never claimed a token.
    NoToken,
    UnknownRequest,
}

/// What redeeming a bypass code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemOutcome {
    /// The request now exists, let in without a place in line.
    Redeemed,
    /// No such code, or it has no uses left.
    Refused,
}

/// One line of the admin audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub event_id: EventId,
    pub detail: String,
}

/// A page of request ids, with the cursor to pass for the next page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub items: Vec<RequestId>,
    pub next: Option<RequestId>,
}

/// Durable state: events, counters, positions, tokens. Every method is atomic on its own and
/// safe to retry; counters only move by atomic adds.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates an event with zeroed counters; `false` when it already exists.
    async fn create_event(&self, config: &EventConfig, now_ms: i64) -> Result<bool, StoreError>;
    /// Replaces an event's config, leaving its counters and its draw alone (only
    /// [`Store::record_draw`] sets the draw); `false` when it does not exist.
    async fn update_event(&self, config: &EventConfig) -> Result<bool, StoreError>;
    /// Records the pre-queue draw, once: `false` when the event already has one (another
    /// runner drew first) or does not exist.
    async fn record_draw(&self, event_id: &EventId, draw: &Draw) -> Result<bool, StoreError>;
    async fn get_event(&self, event_id: &EventId) -> Result<Option<EventConfig>, StoreError>;
    async fn list_events(&self) -> Result<Vec<EventConfig>, StoreError>;
    /// The counters as last settled: the queue and serving counters are current; the token and
    /// exit counts are those the runner summed on its last pass (one read, for the hot path).
    async fn counters(&self, event_id: &EventId) -> Result<Option<EventCounters>, StoreError>;
    /// The counters with the token and exit counts summed now from the stripes (see
    /// [`crate::domain::exits`]), without recording them.
    async fn count_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<EventCounters>, StoreError>;
    /// Sums the exit counts as [`Store::count_exits`] does and records them, so that
    /// [`Store::counters`] shows them: the runner's step, once a pass.
    async fn settle_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<ExitsSettled>, StoreError>;

    /// Gives each request not seen before the next position, in order of entry time, with one
    /// move of the queue counter for the whole batch. A request that already has a position
    /// keeps it; one made before the event's last reset gets none; a position is never given
    /// twice, though one may be left unused.
    async fn assign_positions(
        &self,
        event_id: &EventId,
        requests: &[EnqueueRequest],
        now_ms: i64,
    ) -> Result<AssignOutcome, StoreError>;
    /// A request of the event's current generation; reads the request alone.
    async fn get_request(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<Option<RequestRecord>, StoreError>;

    /// Moves the serving counter forward by up to `by`, never past the queue counter, and
    /// records the move with its claim deadline: `now_ms` plus the event's claim window, never
    /// before the previous move's. With `from`, only if the counter still stands at `from`
    /// (the caller sized the move from counters read there). `None` when nothing moved.
    async fn advance_serving(
        &self,
        event_id: &EventId,
        from: Option<u64>,
        by: u64,
        now_ms: i64,
    ) -> Result<Option<ServingIncrement>, StoreError>;
    /// The moves of the serving counter that reached past `after`, oldest first, with the
    /// generation they belong to; `None` for an unknown event.
    async fn serving_moves(
        &self,
        event_id: &EventId,
        after: u64,
    ) -> Result<Option<ServingMoves>, StoreError>;
    /// Moves of the serving counter since `since_ms`, oldest first.
    async fn serving_history(
        &self,
        event_id: &EventId,
        since_ms: i64,
    ) -> Result<Vec<ServingIncrement>, StoreError>;

    /// Records the token of a request, once: later claims get the first token back. The caller
    /// has established that the request is served and its claim window open; `admission` says
    /// how it was let in, which is what the claim is counted against.
    async fn claim_token(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        admission: Admission,
        token: &TokenRecord,
    ) -> Result<ClaimOutcome, StoreError>;
    /// Ends a session still active at `now_ms` (frees its MaxSize slot and revokes its token).
    async fn end_session(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        end: SessionEnd,
        now_ms: i64,
    ) -> Result<EndOutcome, StoreError>;
    /// Request ids whose token expired by `now_ms` with the session never ended, in id order,
    /// `limit` at a time after `after`.
    async fn expired_tokens(
        &self,
        event_id: &EventId,
        after: Option<RequestId>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page, StoreError>;

    /// Adds codes (replacing any of the same spelling); `false` if the event is unknown.
    async fn put_codes(&self, event_id: &EventId, codes: &[BypassCode])
    -> Result<bool, StoreError>;
    /// Uses a code once and records `request` as let in, in one atomic step: a single-use code
    /// redeemed twice at the same moment lets exactly one request in.
    async fn redeem_code(
        &self,
        event_id: &EventId,
        code: &str,
        request: &EnqueueRequest,
    ) -> Result<RedeemOutcome, StoreError>;

    /// Zeroes the counters and forgets every request of the event; `false` if unknown.
    async fn reset_event(&self, event_id: &EventId, now_ms: i64) -> Result<bool, StoreError>;

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Newest first.
    async fn audit_log(
        &self,
        event_id: &EventId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Where enqueue puts a visitor's request until a consumer assigns it a position (SQS on AWS).
#[async_trait]
pub trait EnqueueBuffer: Send + Sync {
    async fn send(&self, request: &EnqueueRequest) -> Result<(), BufferError>;
}

/// Wall-clock time, injectable so expiry tests need no sleeping.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}
