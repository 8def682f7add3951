//! The table: its keys, attribute names, index and definition. A leaf: every other module of
//! the adapter builds on these names, and this one on none of them.
//!
//! One table, keyed `pk` (S) + `sk` (S), holds seven kinds of item:
//!
//! | item | pk | sk | what |
//! |---|---|---|---|
//! | event | `EVENT#<event>` | `EVENT` | config, queue and serving counters, `generation`, exit counts as last settled |
//! | catalog entry | `EVENTS` | `<event>` | lets `list_events` query instead of scan |
//! | request | `REQUEST#<event>#<request>` | `REQUEST` | position, token, session status |
//! | serving move | `SERVING#<event>#<generation>` | counter reached, 20 digits | `previous`, `at_ms`, `claim_by_ms` |
//! | stripe | `STRIPE#<event>#<generation>#<n>` | `STRIPE` | exit counts and time buckets (see `exits.rs`) |
//! | bypass code | `CODE#<event>` | the code | `uses_left` |
//! | audit entry | `AUDIT#<event>` | `<at_ms, 20 digits>#<uuid>` | who did what |
//!
//! Every request and every stripe has a partition key of its own, so a visitor's reads and
//! writes touch its own item and 1 of 96 stripes, never an item every visitor shares. Serving
//! moves sort by the counter value they reached (zero-padded so text order is number order):
//! the move that let position p in is the first at or after p. A reset bumps the event's
//! `generation`; request items carry the generation they were written in and count as absent
//! in any other, and moves and stripes live under per-generation keys, so nothing is deleted.
//!
//! One sparse global secondary index lists the tokens whose session has not ended, so that
//! expired ones can be paged in request id order without a scan:
//!
//! | index | partition | sort | projected |
//! |---|---|---|---|
//! | `tokens_by_request` | `token_pk` = `<event>#<generation>#<stripe>` | `request_id` | `token_expires_at` |
//!
//! It is striped like the exit counts, so each index partition takes 1/96 of the claims.
//! Attribute names are not DynamoDB reserved words (`queue_position`, not `position`;
//! `session_status`, not `status`), so expressions need names only for time buckets.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};

use crate::domain::{EventId, RequestId};

/// One DynamoDB item (or key), attribute name to value.
pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) const PK: &str = "pk";
pub(super) const SK: &str = "sk";
/// The table's TTL attribute (epoch seconds): DynamoDB deletes the item some time after it.
pub(super) const TTL: &str = "expires_at";

/// Requests, serving moves and stripes are kept this long after they were last written.
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
    pub const SERVING_CHANGED_AT_MS: &str = "serving_changed_at_ms";
    pub const QUEUE_CHANGED_AT_MS: &str = "queue_changed_at_ms";
    pub const RESET_AT_MS: &str = "reset_at_ms";
    /// On the event item: the current generation. On a request item: the one it belongs to.
    pub const GENERATION: &str = "generation";
    /// The claim deadline of the last serving move (the next may not close before it).
    pub const LAST_CLAIM_BY_MS: &str = "last_claim_by_ms";
    // event item: exit counts as last settled
    pub const TOKENS_ISSUED: &str = "tokens_issued";
    pub const TOKENS_BYPASSED: &str = "tokens_bypassed";
    pub const TOKENS_COMPLETED: &str = "tokens_completed";
    pub const TOKENS_ABANDONED: &str = "tokens_abandoned";
    pub const TOKENS_EXPIRED: &str = "tokens_expired";
    pub const POSITIONS_EXPIRED: &str = "positions_expired";
    /// Every place up to here had its claim window settle at the last settlement.
    pub const SETTLED_THROUGH: &str = "settled_through";
    pub const SETTLED_AT_MS: &str = "settled_at_ms";
    // request item
    pub const REQUEST_ID: &str = "request_id";
    pub const ENTRY_TIME_MS: &str = "entry_time_ms";
    pub const QUEUE_POSITION: &str = "queue_position";
    pub const BYPASS: &str = "bypass";
    pub const TOKEN_ISSUED_AT: &str = "token_issued_at";
    pub const TOKEN_EXPIRES_AT: &str = "token_expires_at";
    pub const ACCESS_TOKEN: &str = "access_token";
    pub const REFRESH_TOKEN: &str = "refresh_token";
    pub const ID_TOKEN: &str = "id_token";
    pub const SESSION_STATUS: &str = "session_status";
    /// The index partition of a token whose session has not ended.
    pub const TOKEN_PK: &str = "token_pk";
    // serving move
    pub const PREVIOUS: &str = "previous";
    pub const AT_MS: &str = "at_ms";
    pub const CLAIM_BY_MS: &str = "claim_by_ms";
    // stripe (time buckets are named by `expiring_attr` and `claims_attr`)
    pub const COMPLETED: &str = "completed";
    pub const ABANDONED: &str = "abandoned";
    pub const BYPASSED: &str = "bypassed";
    pub const EXPIRED: &str = "expired";
    pub const SETTLED_CLAIMS: &str = "settled_claims";
    // bypass code
    pub const USES_LEFT: &str = "uses_left";
    pub const CREATED_AT_MS: &str = "created_at_ms";
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

/// The stripe attribute counting the tokens that expire in `bucket`.
pub(super) fn expiring_attr(bucket: i64) -> String {
    format!("x_{bucket}")
}

/// The stripe attribute counting the claims whose serving move's window closes in `bucket`.
pub(super) fn claims_attr(bucket: i64) -> String {
    format!("w_{bucket}")
}

/// The global secondary index (see the module docs).
pub(super) const TOKENS_INDEX: &str = "tokens_by_request";

// ---- values ----------------------------------------------------------------------------

pub(super) fn num(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn boolean(value: bool) -> AttributeValue {
    AttributeValue::Bool(value)
}

/// An item (or expression values) from name-value pairs.
pub(super) fn item<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// The TTL of an item written at `at_ms` and kept `keep_secs`.
pub(super) fn ttl_after(at_ms: i64, keep_secs: i64) -> AttributeValue {
    num(at_ms.div_euclid(1000) + keep_secs)
}

// ---- keys ------------------------------------------------------------------------------

fn key(pk: String, sk: impl Into<String>) -> Item {
    item([(PK, string(pk)), (SK, string(sk))])
}

/// Zero-padded so that text order is number order.
pub(super) fn counter_sort_key(counter: u64) -> String {
    format!("{counter:020}")
}

pub(super) fn event_key(event_id: &EventId) -> Item {
    key(format!("EVENT#{event_id}"), "EVENT")
}

pub(super) fn catalog_partition() -> &'static str {
    "EVENTS"
}

pub(super) fn catalog_key(event_id: &EventId) -> Item {
    key(catalog_partition().into(), event_id.as_str())
}

pub(super) fn request_key(event_id: &EventId, request_id: &RequestId) -> Item {
    key(format!("REQUEST#{event_id}#{request_id}"), "REQUEST")
}

pub(super) fn serving_partition(event_id: &EventId, generation: u64) -> String {
    format!("SERVING#{event_id}#{generation}")
}

pub(super) fn move_key(event_id: &EventId, generation: u64, serving_counter: u64) -> Item {
    key(
        serving_partition(event_id, generation),
        counter_sort_key(serving_counter),
    )
}

pub(super) fn stripe_key(event_id: &EventId, generation: u64, stripe: u64) -> Item {
    key(format!("STRIPE#{event_id}#{generation}#{stripe}"), "STRIPE")
}

/// The index partition of a token counted in `stripe`.
pub(super) fn token_partition(event_id: &EventId, generation: u64, stripe: u64) -> String {
    format!("{event_id}#{generation}#{stripe}")
}

pub(super) fn code_key(event_id: &EventId, code: &str) -> Item {
    key(format!("CODE#{event_id}"), code.to_owned())
}

pub(super) fn audit_partition(event_id: &EventId) -> String {
    format!("AUDIT#{event_id}")
}

// ---- the table -------------------------------------------------------------------------

/// The table definition (the SAM template declares the same): on-demand, keys `pk`/`sk`, the
/// sparse tokens index. TTL on [`TTL`] is enabled separately.
pub(super) fn define_table(
    request: CreateTableFluentBuilder,
) -> Result<CreateTableFluentBuilder, BuildError> {
    let string_key = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
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
    let tokens = GlobalSecondaryIndex::builder()
        .index_name(TOKENS_INDEX)
        .set_key_schema(Some(schema(attr::TOKEN_PK, attr::REQUEST_ID)?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes(attr::TOKEN_EXPIRES_AT)
                .build(),
        )
        .build()?;
    Ok(request
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![
            string_key(PK)?,
            string_key(SK)?,
            string_key(attr::TOKEN_PK)?,
            string_key(attr::REQUEST_ID)?,
        ]))
        .set_key_schema(Some(schema(PK, SK)?))
        .set_global_secondary_indexes(Some(vec![tokens])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sort_key(key: &Item) -> &str {
        match key.get(SK) {
            Some(AttributeValue::S(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serving_moves_sort_by_counter_value() {
        let e = EventId::parse("e").unwrap();
        let sk = |n| sort_key(&move_key(&e, 0, n)).to_owned();
        assert!(sk(9) < sk(10));
        assert!(sk(99_999) < sk(100_000));
        assert!(sk(u64::MAX - 1) < sk(u64::MAX));
    }

    #[test]
    fn generations_never_share_a_partition() {
        let e = EventId::parse("e").unwrap();
        assert_ne!(move_key(&e, 1, 5), move_key(&e, 2, 5));
        assert_ne!(stripe_key(&e, 1, 5), stripe_key(&e, 2, 5));
        assert_ne!(token_partition(&e, 1, 5), token_partition(&e, 2, 5));
    }

    #[test]
    fn every_stripe_is_its_own_partition() {
        let e = EventId::parse("e").unwrap();
        let partitions: std::collections::HashSet<String> = (0..crate::domain::exits::STRIPES)
            .map(|s| match stripe_key(&e, 0, s).remove(PK) {
                Some(AttributeValue::S(pk)) => pk,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(partitions.len() as u64, crate::domain::exits::STRIPES);
    }
}
