//! Every key, attribute name, index and expression of the DynamoDB store, in one place.
//!
//! One table, keyed `pk` (S) + `sk` (S), holds five kinds of item:
//!
//! | item | pk | sk | what |
//! |---|---|---|---|
//! | event | `EVENT#<event>` | `EVENT` | config + counters (atomic `ADD`) + `generation` |
//! | catalog entry | `EVENTS` | `<event>` | lets `list_events` query instead of scan |
//! | request | `REQUEST#<event>#<request>` | `REQUEST` | claim, position, token, session status |
//! | serving move | `SERVING#<event>#<generation>` | counter reached, 20 digits | `previous`, `at_ms`, `claimed`, `swept` |
//! | audit entry | `AUDIT#<event>` | `<at_ms, 20 digits>#<uuid>` | who did what |
//!
//! Request items get their own partition each, so enqueue spreads its writes. Serving moves
//! are sorted by the counter value they reached (zero-padded so text order is number order):
//! "the move that let position p in" is the first move at or after p. A reset bumps the event's
//! `generation`; request items carry the generation they were written in and count as absent in
//! any other, and serving moves live under a per-generation partition, so nothing is deleted.
//!
//! Bypass codes live beside them: pk `CODE#<event>`, sk the code, with `uses_left`.
//!
//! Two sparse, keys-only global secondary indexes find work without a scan. An item is in an
//! index only while it has the index's key attributes, so each index holds only what is due:
//!
//! | index | partition | sort | holds |
//! |---|---|---|---|
//! | `active_by_expiry` | `<event>#<generation>#<shard>` | token expiry, epoch s (N) | active sessions |
//! | `expired_by_request` | `<event>#<generation>` | request id (S) | expired tokens, for paging |
//!
//! The first is striped over [`INDEX_SHARDS`] partitions by `position % INDEX_SHARDS`: tokens
//! are claimed roughly in position order, so an unstriped index partition would take every
//! write of the event and cap token issue at one partition's ~1,000 writes/s. Readers query
//! every stripe. Expired places need no index: a serving move counts its own claims, so closing
//! its claim window counts the unclaimed remainder from the move item alone.
//!
//! Expressions use attribute names that are not DynamoDB reserved words (`queue_position`, not
//! `position`; `session_status`, not `status`), so none needs `ExpressionAttributeNames`.

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

use super::items::{ConfigAttributes, Item, boolean, num, string};
use crate::domain::{
    BypassCode, EnqueueRequest, EventConfig, EventId, RequestId, SessionEnd, SessionStatus,
    TokenRecord,
};
use crate::ports::AuditEntry;

pub(super) const PK: &str = "pk";
pub(super) const SK: &str = "sk";
/// The table's TTL attribute (epoch seconds): DynamoDB deletes the item some time after it.
pub(super) const TTL: &str = "expires_at";

/// Stripes of the position and expiry indexes (see the module docs).
pub(super) const INDEX_SHARDS: u64 = 8;
/// Requests and serving moves are kept this long after they were written.
pub(super) const RETENTION_SECS: i64 = 30 * 24 * 3600;
/// A claimed request is kept at least this long after its token expires.
pub(super) const TOKEN_RETENTION_SECS: i64 = 7 * 24 * 3600;
/// Audit entries are kept a year.
pub(super) const AUDIT_RETENTION_SECS: i64 = 365 * 24 * 3600;

/// Attribute names.
pub(super) mod attr {
    // event item: config
    pub const EVENT_ID: &str = "event_id";
    pub const EVENT_NAME: &str = "event_name";
    pub const STRATEGY: &str = "event_strategy";
    pub const TOKEN_TTL_SECS: &str = "token_ttl_secs";
    pub const POSITION_EXPIRY_SECS: &str = "position_expiry_secs";
    pub const TARGET_URL: &str = "target_url";
    pub const PAUSED: &str = "is_paused";
    /// The rest of the operator's settings (schedule, limits, flags), as JSON.
    pub const EVENT_OPTIONS: &str = "event_options";
    /// The pre-queue draw, as JSON; written once, by `record_draw` only.
    pub const DRAW: &str = "draw";
    // event item: counters
    pub const QUEUE_COUNTER: &str = "queue_counter";
    pub const SERVING_COUNTER: &str = "serving_counter";
    pub const TOKENS_ISSUED: &str = "tokens_issued";
    pub const TOKENS_BYPASSED: &str = "tokens_bypassed";
    pub const RESET_AT_MS: &str = "reset_at_ms";
    pub const TOKENS_COMPLETED: &str = "tokens_completed";
    pub const TOKENS_ABANDONED: &str = "tokens_abandoned";
    pub const TOKENS_EXPIRED: &str = "tokens_expired";
    pub const POSITIONS_EXPIRED: &str = "positions_expired";
    pub const SERVING_CHANGED_AT_MS: &str = "serving_changed_at_ms";
    pub const QUEUE_CHANGED_AT_MS: &str = "queue_changed_at_ms";
    pub const SWEPT_THROUGH: &str = "swept_through";
    /// On the event item: the current generation. On a request item: the one it belongs to.
    pub const GENERATION: &str = "generation";
    // request item
    pub const REQUEST_ID: &str = "request_id";
    pub const CLAIM_ID: &str = "claim_id";
    pub const CLAIMED_AT_MS: &str = "claimed_at_ms";
    pub const ENTRY_TIME_MS: &str = "entry_time_ms";
    pub const QUEUE_POSITION: &str = "queue_position";
    pub const BYPASS: &str = "bypass";
    pub const USES_LEFT: &str = "uses_left";
    pub const CREATED_AT_MS: &str = "created_at_ms";
    pub const TOKEN_ISSUED_AT: &str = "token_issued_at";
    pub const TOKEN_EXPIRES_AT: &str = "token_expires_at";
    pub const ACCESS_TOKEN: &str = "access_token";
    pub const REFRESH_TOKEN: &str = "refresh_token";
    pub const ID_TOKEN: &str = "id_token";
    pub const SESSION_STATUS: &str = "session_status";
    // request item: sparse index keys
    pub const ACTIVE_PK: &str = "active_pk";
    pub const ACTIVE_EXP: &str = "active_exp";
    pub const EXPIRED_PK: &str = "expired_pk";
    pub const EXPIRED_RID: &str = "expired_rid";
    // serving move
    pub const PREVIOUS: &str = "previous";
    pub const AT_MS: &str = "at_ms";
    pub const CLAIMED: &str = "claimed";
    pub const SWEPT: &str = "swept";
    // audit entry
    pub const ACTOR: &str = "actor";
    pub const AUDIT_ACTION: &str = "audit_action";
    pub const DETAIL: &str = "detail";
}

/// Fields of the strategy map attribute.
pub(super) mod strategy_field {
    pub const TYPE: &str = "type";
    pub const MAX_ACTIVE: &str = "max_active";
    pub const INCREMENT_BY: &str = "increment_by";
    pub const INTERVAL_SECS: &str = "interval_secs";
}

/// Global secondary index names.
pub(super) mod index {
    pub const ACTIVE: &str = "active_by_expiry";
    pub const EXPIRED: &str = "expired_by_request";
}

// ---- keys ------------------------------------------------------------------------------

fn key(pk: String, sk: impl Into<String>) -> Item {
    Item::from([(PK.into(), string(pk)), (SK.into(), string(sk))])
}

/// Zero-padded so that text order is number order.
fn counter_sort_key(counter: u64) -> String {
    format!("{counter:020}")
}

pub(super) fn event_key(event_id: &EventId) -> Item {
    key(format!("EVENT#{event_id}"), "EVENT")
}

fn catalog_key(event_id: &EventId) -> Item {
    key("EVENTS".into(), event_id.as_str())
}

pub(super) fn request_key(event_id: &EventId, request_id: &RequestId) -> Item {
    key(format!("REQUEST#{event_id}#{request_id}"), "REQUEST")
}

fn serving_partition(event_id: &EventId, generation: u64) -> String {
    format!("SERVING#{event_id}#{generation}")
}

pub(super) fn increment_key(event_id: &EventId, generation: u64, serving_counter: u64) -> Item {
    key(
        serving_partition(event_id, generation),
        counter_sort_key(serving_counter),
    )
}

/// The table key of an item read from a keys-only index.
pub(super) fn base_key(item: &Item) -> Item {
    item.iter()
        .filter(|(name, _)| *name == PK || *name == SK)
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The request id of a request item read from a keys-only index (it is the end of `pk`).
pub(super) fn request_id_of(item: &Item) -> Option<RequestId> {
    match item.get(PK) {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) => pk
            .strip_prefix("REQUEST#")
            .and_then(|rest| rest.rsplit('#').next())
            .and_then(|id| RequestId::parse(id).ok()),
        _ => None,
    }
}

fn shard(position: u64) -> u64 {
    position % INDEX_SHARDS
}

fn active_partition(event_id: &EventId, generation: u64, shard: u64) -> String {
    format!("{event_id}#{generation}#{shard}")
}

fn expired_partition(event_id: &EventId, generation: u64) -> String {
    format!("{event_id}#{generation}")
}

/// Index stripes to query.
pub(super) fn shards() -> impl Iterator<Item = u64> {
    0..INDEX_SHARDS
}

fn values<const N: usize>(pairs: [(&str, aws_sdk_dynamodb::types::AttributeValue); N]) -> Item {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

fn ttl_after(at_ms: i64, keep_secs: i64) -> aws_sdk_dynamodb::types::AttributeValue {
    num(at_ms.div_euclid(1000) + keep_secs)
}

// ---- operation specs -------------------------------------------------------------------

/// A PutItem (alone or in a transaction).
#[derive(Debug, Clone)]
pub(super) struct Put {
    pub item: Item,
    pub condition: Option<&'static str>,
    pub values: Item,
}

/// An UpdateItem (alone or in a transaction).
#[derive(Debug, Clone)]
pub(super) struct Update {
    pub key: Item,
    pub expression: &'static str,
    pub condition: Option<&'static str>,
    pub values: Item,
    /// Ask for the updated attributes back (`ReturnValues: UPDATED_NEW`).
    pub return_new: bool,
}

impl Update {
    fn new(key: Item, expression: &'static str, condition: &'static str, values: Item) -> Self {
        Self {
            key,
            expression,
            condition: Some(condition),
            values,
            return_new: false,
        }
    }
}

/// A Query; on the table itself it is strongly consistent, on an index it cannot be.
#[derive(Debug, Clone)]
pub(super) struct Query {
    pub index: Option<&'static str>,
    pub key_condition: &'static str,
    pub values: Item,
    pub forward: bool,
    pub limit: Option<i32>,
}

// ---- events ----------------------------------------------------------------------------

const UPDATE_CONFIG: &str = "SET event_name = :event_name, event_strategy = :event_strategy, \
     token_ttl_secs = :token_ttl_secs, position_expiry_secs = :position_expiry_secs, \
     target_url = :target_url, is_paused = :is_paused, event_options = :event_options";

const EXISTS: &str = "attribute_exists(pk)";
const NEW_ITEM: &str = "attribute_not_exists(pk)";
const SAME_GENERATION: &str = "generation = :generation";

/// The event item with zeroed counters, and its catalog entry (written together).
pub(super) fn create_event(config: &EventConfig, now_ms: i64) -> [Put; 2] {
    let mut item = ConfigAttributes::from(config).0;
    item.extend(event_key(&config.event_id));
    for counter in [
        attr::QUEUE_COUNTER,
        attr::SERVING_COUNTER,
        attr::TOKENS_ISSUED,
        attr::TOKENS_BYPASSED,
        attr::TOKENS_COMPLETED,
        attr::TOKENS_ABANDONED,
        attr::TOKENS_EXPIRED,
        attr::POSITIONS_EXPIRED,
        attr::SWEPT_THROUGH,
        attr::GENERATION,
    ] {
        item.insert(counter.into(), num(0));
    }
    item.insert(attr::SERVING_CHANGED_AT_MS.into(), num(now_ms));
    item.insert(attr::QUEUE_CHANGED_AT_MS.into(), num(now_ms));
    item.insert(attr::RESET_AT_MS.into(), num(now_ms));
    let mut entry = catalog_key(&config.event_id);
    entry.insert(attr::EVENT_ID.into(), string(config.event_id.as_str()));
    [
        Put {
            item,
            condition: Some(NEW_ITEM),
            values: Item::new(),
        },
        Put {
            item: entry,
            condition: None,
            values: Item::new(),
        },
    ]
}

pub(super) fn update_event(config: &EventConfig) -> Update {
    let values = ConfigAttributes::from(config)
        .0
        .into_iter()
        .filter(|(name, _)| name != attr::EVENT_ID)
        .map(|(name, value)| (format!(":{name}"), value))
        .collect();
    Update::new(event_key(&config.event_id), UPDATE_CONFIG, EXISTS, values)
}

/// Every event id, from the catalog partition.
pub(super) fn catalog() -> Query {
    Query {
        index: None,
        key_condition: "pk = :pk",
        values: values([(":pk", string("EVENTS"))]),
        forward: true,
        limit: None,
    }
}

/// Zeroes the counters and moves to the next generation; requests and serving moves of the
/// old generation stay where they are (TTL removes them) but no longer count.
pub(super) fn reset_event(event_id: &EventId, now_ms: i64) -> Update {
    Update::new(
        event_key(event_id),
        "SET queue_counter = :zero, serving_counter = :zero, tokens_issued = :zero, \
         tokens_completed = :zero, tokens_abandoned = :zero, tokens_expired = :zero, \
         positions_expired = :zero, swept_through = :zero, serving_changed_at_ms = :now, \
         queue_changed_at_ms = :now, reset_at_ms = :now, tokens_bypassed = :zero \
         ADD generation :one",
        EXISTS,
        values([(":zero", num(0)), (":one", num(1)), (":now", num(now_ms))]),
    )
}

// ---- position assignment ---------------------------------------------------------------

/// Phase 1: claim a request for this batch. Wins when the request is new to this generation.
pub(super) fn claim_request(
    event_id: &EventId,
    request_id: &RequestId,
    generation: u64,
    claim_id: &str,
    entry_time_ms: i64,
    now_ms: i64,
) -> Put {
    let mut item = request_key(event_id, request_id);
    item.extend([
        (attr::REQUEST_ID.into(), string(request_id.to_string())),
        (attr::EVENT_ID.into(), string(event_id.as_str())),
        (attr::GENERATION.into(), num(generation)),
        (attr::CLAIM_ID.into(), string(claim_id)),
        (attr::CLAIMED_AT_MS.into(), num(now_ms)),
        (attr::ENTRY_TIME_MS.into(), num(entry_time_ms)),
        (TTL.into(), ttl_after(entry_time_ms, RETENTION_SECS)),
    ]);
    Put {
        item,
        condition: Some("attribute_not_exists(pk) OR generation < :generation"),
        values: values([(":generation", num(generation))]),
    }
}

/// Phase 1, recovery: take over a claim whose owner stopped before writing a position.
pub(super) fn reown_request(
    event_id: &EventId,
    request_id: &RequestId,
    generation: u64,
    stale_claim_id: &str,
    claim_id: &str,
    now_ms: i64,
) -> Update {
    Update::new(
        request_key(event_id, request_id),
        "SET claim_id = :claim_id, claimed_at_ms = :now",
        "claim_id = :stale AND generation = :generation AND attribute_not_exists(queue_position)",
        values([
            (":claim_id", string(claim_id)),
            (":stale", string(stale_claim_id)),
            (":generation", num(generation)),
            (":now", num(now_ms)),
        ]),
    )
}

/// Gives up a claim that has no position yet (its batch failed): a claim dated 0 is stale at
/// once, so the redelivery takes it over without waiting for the lease.
pub(super) fn release_claim(
    event_id: &EventId,
    request_id: &RequestId,
    generation: u64,
    claim_id: &str,
) -> Update {
    Update::new(
        request_key(event_id, request_id),
        "SET claimed_at_ms = :zero",
        "claim_id = :claim_id AND generation = :generation AND attribute_not_exists(queue_position)",
        values([
            (":zero", num(0)),
            (":claim_id", string(claim_id)),
            (":generation", num(generation)),
        ]),
    )
}

const MOVE_QUEUE_COUNTER: &str = "ADD queue_counter :claimed SET queue_changed_at_ms = :now";

/// Phase 2: the one queue counter move of a batch; returns the new counter value.
pub(super) fn move_queue_counter(
    event_id: &EventId,
    generation: u64,
    claimed: u64,
    now_ms: i64,
) -> Update {
    Update {
        return_new: true,
        ..Update::new(
            event_key(event_id),
            MOVE_QUEUE_COUNTER,
            SAME_GENERATION,
            values([
                (":claimed", num(claimed)),
                (":now", num(now_ms)),
                (":generation", num(generation)),
            ]),
        )
    }
}

/// Whether an update expression is the queue counter move (for the call counter).
pub(super) fn moves_queue_counter(expression: &str) -> bool {
    expression == MOVE_QUEUE_COUNTER
}

/// Phase 3: write the position of a request this batch claimed.
pub(super) fn write_position(
    event_id: &EventId,
    request_id: &RequestId,
    generation: u64,
    claim_id: &str,
    position: u64,
) -> Update {
    Update::new(
        request_key(event_id, request_id),
        "SET queue_position = :position",
        "claim_id = :claim_id AND generation = :generation",
        values([
            (":position", num(position)),
            (":claim_id", string(claim_id)),
            (":generation", num(generation)),
        ]),
    )
}

// ---- serving counter -------------------------------------------------------------------

/// Moves the serving counter from the value read, never past the queue counter, and records
/// the move (written together).
pub(super) fn advance_serving(
    event_id: &EventId,
    generation: u64,
    serving_read: u64,
    step: u64,
    now_ms: i64,
) -> (Update, Put) {
    let reached = serving_read + step;
    let counter = Update::new(
        event_key(event_id),
        "ADD serving_counter :step SET serving_changed_at_ms = :now",
        "serving_counter = :read AND queue_counter >= :reached AND generation = :generation",
        values([
            (":step", num(step)),
            (":now", num(now_ms)),
            (":read", num(serving_read)),
            (":reached", num(reached)),
            (":generation", num(generation)),
        ]),
    );
    let mut item = increment_key(event_id, generation, reached);
    item.extend([
        (attr::PREVIOUS.into(), num(serving_read)),
        (attr::SERVING_COUNTER.into(), num(reached)),
        (attr::AT_MS.into(), num(now_ms)),
        (attr::CLAIMED.into(), num(0)),
        (attr::SWEPT.into(), boolean(false)),
        (TTL.into(), ttl_after(now_ms, RETENTION_SECS)),
    ]);
    let record = Put {
        item,
        condition: Some(NEW_ITEM),
        values: Item::new(),
    };
    (counter, record)
}

/// The first serving move at or after `position`: the one that let it in, if any did.
pub(super) fn increment_for(event_id: &EventId, generation: u64, position: u64) -> Query {
    Query {
        index: None,
        key_condition: "pk = :pk AND sk >= :from",
        values: values([
            (":pk", string(serving_partition(event_id, generation))),
            (":from", string(counter_sort_key(position))),
        ]),
        forward: true,
        limit: Some(1),
    }
}

/// Serving moves, newest first (read until older than wanted).
pub(super) fn serving_newest_first(event_id: &EventId, generation: u64, page: i32) -> Query {
    Query {
        index: None,
        key_condition: "pk = :pk",
        values: values([(":pk", string(serving_partition(event_id, generation)))]),
        forward: false,
        limit: Some(page),
    }
}

/// Serving moves after the sweep cursor, oldest first.
pub(super) fn serving_after(event_id: &EventId, generation: u64, swept_through: u64) -> Query {
    Query {
        index: None,
        key_condition: "pk = :pk AND sk > :after",
        values: values([
            (":pk", string(serving_partition(event_id, generation))),
            (":after", string(counter_sort_key(swept_through))),
        ]),
        forward: true,
        limit: Some(100),
    }
}

// ---- pre-queue draw and bypass codes ---------------------------------------------------

/// Records the pre-queue draw once: refused when the event already has one.
pub(super) fn record_draw(event_id: &EventId, draw_json: String) -> Update {
    Update::new(
        event_key(event_id),
        "SET draw = :draw",
        "attribute_exists(pk) AND attribute_not_exists(draw)",
        values([(":draw", string(draw_json))]),
    )
}

fn code_key(event_id: &EventId, code: &str) -> Item {
    key(format!("CODE#{event_id}"), code.to_owned())
}

/// Adds (or replaces) a bypass code.
pub(super) fn put_code(event_id: &EventId, code: &BypassCode) -> Put {
    let mut item = code_key(event_id, &code.code);
    item.extend([
        (attr::USES_LEFT.into(), num(code.uses_left)),
        (attr::CREATED_AT_MS.into(), num(code.created_at_ms)),
    ]);
    Put {
        item,
        condition: None,
        values: Item::new(),
    }
}

/// Uses a code once: refused when it does not exist or has no use left.
pub(super) fn use_code(event_id: &EventId, code: &str) -> Update {
    Update::new(
        code_key(event_id, code),
        "SET uses_left = uses_left - :one",
        "uses_left >= :one",
        values([(":one", num(1))]),
    )
}

/// A request let in by a code: served at once, with no place in line (position 0).
pub(super) fn bypass_request(request: &EnqueueRequest, generation: u64) -> Put {
    let mut item = request_key(&request.event_id, &request.request_id);
    item.extend([
        (
            attr::REQUEST_ID.into(),
            string(request.request_id.to_string()),
        ),
        (attr::EVENT_ID.into(), string(request.event_id.as_str())),
        (attr::GENERATION.into(), num(generation)),
        (attr::ENTRY_TIME_MS.into(), num(request.entry_time_ms)),
        (attr::QUEUE_POSITION.into(), num(0)),
        (attr::BYPASS.into(), boolean(true)),
        (
            TTL.into(),
            num(request.entry_time_ms.div_euclid(1000) + RETENTION_SECS),
        ),
    ]);
    Put {
        item,
        condition: Some(NEW_ITEM),
        values: Item::new(),
    }
}

// ---- tokens and sessions ---------------------------------------------------------------

/// The writes of a token claim: the request takes the token once (and enters the active
/// index), the serving move counts it unless already swept, the event counts it.
pub(super) fn claim_token(
    event_id: &EventId,
    request_id: &RequestId,
    generation: u64,
    position: u64,
    increment_counter: Option<u64>,
    token: &TokenRecord,
    keep_until_s: i64,
) -> Vec<Update> {
    let request = Update::new(
        request_key(event_id, request_id),
        "SET token_issued_at = :issued_at, token_expires_at = :expires_at, \
         access_token = :access_token, refresh_token = :refresh_token, id_token = :id_token, \
         session_status = :status, active_pk = :active_pk, active_exp = :expires_at, \
         expires_at = :keep_until",
        "generation = :generation AND attribute_exists(queue_position) \
         AND attribute_not_exists(session_status)",
        values([
            (":issued_at", num(token.issued_at)),
            (":expires_at", num(token.expires_at)),
            (":access_token", string(&token.access_token)),
            (":refresh_token", string(&token.refresh_token)),
            (":id_token", string(&token.id_token)),
            (":status", token.status.into()),
            (
                ":active_pk",
                string(active_partition(event_id, generation, shard(position))),
            ),
            (":keep_until", num(keep_until_s)),
            (":generation", num(generation)),
        ]),
    );
    // A claim through the line counts on its serving move (refused once the move's claim
    // window closed); a claim through a bypass code has no move.
    let (event_update, increment) = match increment_counter {
        Some(counter) => (
            "ADD tokens_issued :one",
            Some(Update::new(
                increment_key(event_id, generation, counter),
                "ADD claimed :one",
                "swept = :false",
                values([(":one", num(1)), (":false", boolean(false))]),
            )),
        ),
        None => ("ADD tokens_issued :one, tokens_bypassed :one", None),
    };
    let event = Update::new(
        event_key(event_id),
        event_update,
        SAME_GENERATION,
        values([(":one", num(1)), (":generation", num(generation))]),
    );
    let mut writes = vec![request];
    writes.extend(increment);
    writes.push(event);
    writes
}

/// How long a request item must outlive its token.
pub(super) fn keep_claimed_until_s(entry_time_ms: i64, token: &TokenRecord) -> i64 {
    (entry_time_ms.div_euclid(1000) + RETENTION_SECS).max(token.expires_at + TOKEN_RETENTION_SECS)
}

/// Ends an active session once and counts it.
pub(super) fn end_session(
    event_id: &EventId,
    request_id: &RequestId,
    generation: u64,
    end: SessionEnd,
) -> [Update; 2] {
    let request = Update::new(
        request_key(event_id, request_id),
        "SET session_status = :ended REMOVE active_pk, active_exp",
        "generation = :generation AND session_status = :active",
        values([
            (":ended", end.status().into()),
            (":active", SessionStatus::Active.into()),
            (":generation", num(generation)),
        ]),
    );
    let expression = match end {
        SessionEnd::Completed => "ADD tokens_completed :one",
        SessionEnd::Abandoned => "ADD tokens_abandoned :one",
    };
    let event = Update::new(
        event_key(event_id),
        expression,
        SAME_GENERATION,
        values([(":one", num(1)), (":generation", num(generation))]),
    );
    [request, event]
}

/// Active sessions of one stripe whose token expired at or before `now_s`.
pub(super) fn active_tokens_due(
    event_id: &EventId,
    generation: u64,
    shard: u64,
    now_s: i64,
) -> Query {
    Query {
        index: Some(index::ACTIVE),
        key_condition: "active_pk = :pk AND active_exp <= :now",
        values: values([
            (":pk", string(active_partition(event_id, generation, shard))),
            (":now", num(now_s)),
        ]),
        forward: true,
        limit: None,
    }
}

/// Marks one active session expired: out of the active index, into the expired one.
pub(super) fn expire_token(
    event_id: &EventId,
    request_key: Item,
    request_id: &RequestId,
    generation: u64,
) -> Update {
    Update::new(
        request_key,
        "SET session_status = :expired, expired_pk = :expired_pk, expired_rid = :request_id \
         REMOVE active_pk, active_exp",
        "generation = :generation AND session_status = :active",
        values([
            (":expired", SessionStatus::Expired.into()),
            (":active", SessionStatus::Active.into()),
            (
                ":expired_pk",
                string(expired_partition(event_id, generation)),
            ),
            (":request_id", string(request_id.to_string())),
            (":generation", num(generation)),
        ]),
    )
}

pub(super) fn count_expired_tokens(event_id: &EventId, generation: u64, count: u64) -> Update {
    Update::new(
        event_key(event_id),
        "ADD tokens_expired :count",
        SAME_GENERATION,
        values([(":count", num(count)), (":generation", num(generation))]),
    )
}

/// A page of expired tokens in request id order.
pub(super) fn expired_tokens_page(
    event_id: &EventId,
    generation: u64,
    after: Option<&RequestId>,
    limit: i32,
) -> Query {
    let partition = (":pk", string(expired_partition(event_id, generation)));
    let (key_condition, values) = match after {
        Some(after) => (
            "expired_pk = :pk AND expired_rid > :after",
            values([partition, (":after", string(after.to_string()))]),
        ),
        None => ("expired_pk = :pk", values([partition])),
    };
    Query {
        index: Some(index::EXPIRED),
        key_condition,
        values,
        forward: true,
        limit: Some(limit),
    }
}

// ---- position expiry -------------------------------------------------------------------

/// Closes a serving move's claim window, counting its unclaimed positions once: the move must
/// still be open and hold the claim count the sweeper read, or the sweep is redone.
pub(super) fn sweep_increment(
    event_id: &EventId,
    generation: u64,
    serving_counter: u64,
    claimed_read: u64,
    expired: u64,
) -> [Update; 2] {
    let increment = Update::new(
        increment_key(event_id, generation, serving_counter),
        "SET swept = :true",
        "swept = :false AND claimed = :claimed",
        values([
            (":true", boolean(true)),
            (":false", boolean(false)),
            (":claimed", num(claimed_read)),
        ]),
    );
    let event = Update::new(
        event_key(event_id),
        "ADD positions_expired :expired",
        SAME_GENERATION,
        values([(":expired", num(expired)), (":generation", num(generation))]),
    );
    [increment, event]
}

/// Moves the sweep cursor forward (never back).
pub(super) fn advance_sweep_cursor(event_id: &EventId, generation: u64, through: u64) -> Update {
    Update::new(
        event_key(event_id),
        "SET swept_through = :through",
        "generation = :generation AND swept_through < :through",
        values([(":through", num(through)), (":generation", num(generation))]),
    )
}

// ---- audit -----------------------------------------------------------------------------

pub(super) fn audit_entry(entry: &AuditEntry) -> Put {
    let mut item = super::items::AuditAttributes::from(entry).0;
    item.extend(key(
        format!("AUDIT#{}", entry.event_id),
        format!(
            "{}#{}",
            counter_sort_key(entry.at_ms.max(0) as u64),
            uuid::Uuid::new_v4()
        ),
    ));
    item.insert(TTL.into(), ttl_after(entry.at_ms, AUDIT_RETENTION_SECS));
    Put {
        item,
        condition: None,
        values: Item::new(),
    }
}

pub(super) fn audit_newest_first(event_id: &EventId, limit: i32) -> Query {
    Query {
        index: None,
        key_condition: "pk = :pk",
        values: values([(":pk", string(format!("AUDIT#{event_id}")))]),
        forward: false,
        limit: Some(limit),
    }
}

// ---- table -----------------------------------------------------------------------------

/// The table definition (the SAM template declares the same): on-demand, keys `pk`/`sk`,
/// the three sparse keys-only indexes. TTL on [`TTL`] is enabled separately.
pub(super) fn define_table(
    request: CreateTableFluentBuilder,
) -> Result<CreateTableFluentBuilder, BuildError> {
    let string_key = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let number_key = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::N)
            .build()
    };
    let schema = |hash: &str, range: &str| -> Result<Vec<KeySchemaElement>, BuildError> {
        Ok(vec![
            KeySchemaElement::builder()
                .attribute_name(hash)
                .key_type(KeyType::Hash)
                .build()?,
            KeySchemaElement::builder()
                .attribute_name(range)
                .key_type(KeyType::Range)
                .build()?,
        ])
    };
    let sparse_index = |name: &str, hash: &str, range: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .set_key_schema(Some(schema(hash, range)?))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
    };
    Ok(request
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![
            string_key(PK)?,
            string_key(SK)?,
            string_key(attr::ACTIVE_PK)?,
            number_key(attr::ACTIVE_EXP)?,
            string_key(attr::EXPIRED_PK)?,
            string_key(attr::EXPIRED_RID)?,
        ]))
        .set_key_schema(Some(schema(PK, SK)?))
        .set_global_secondary_indexes(Some(vec![
            sparse_index(index::ACTIVE, attr::ACTIVE_PK, attr::ACTIVE_EXP)?,
            sparse_index(index::EXPIRED, attr::EXPIRED_PK, attr::EXPIRED_RID)?,
        ])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_moves_sort_by_counter_value() {
        let e = EventId::parse("e").unwrap();
        let sk = |n| match increment_key(&e, 0, n).remove(SK) {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(s)) => s,
            other => panic!("{other:?}"),
        };
        assert!(sk(9) < sk(10));
        assert!(sk(99_999) < sk(100_000));
        assert!(sk(u64::MAX - 1) < sk(u64::MAX));
    }

    #[test]
    fn generations_never_share_a_partition() {
        let e = EventId::parse("e").unwrap();
        assert_ne!(increment_key(&e, 1, 5), increment_key(&e, 2, 5));
    }

    #[test]
    fn only_the_batch_counter_move_is_counted_as_one() {
        let e = EventId::parse("e").unwrap();
        assert!(moves_queue_counter(
            move_queue_counter(&e, 0, 5, 0).expression
        ));
        assert!(!moves_queue_counter(reset_event(&e, 0).expression));
    }
}
