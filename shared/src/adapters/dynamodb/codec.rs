//! Mapping between DynamoDB items and the domain's types, in `From`/`TryFrom` impls. Attribute
//! names come from [`super::schema::attr`]; an item that does not decode is
//! `StoreError::Corrupt`.

use aws_sdk_dynamodb::types::AttributeValue;

use super::schema::{Item, attr, boolean, num, strategy_field, string};
use crate::domain::exits::Stripe;
use crate::domain::{
    Appearance, ChallengeSettings, Draw, EventConfig, EventCounters, EventId, RequestId,
    RequestRecord, Schedule, ServingIncrement, SessionStatus, Strategy, TokenRecord,
};
use crate::ports::{AuditEntry, StoreError};

fn corrupt(name: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("attribute {name}: {what}"))
}

/// Typed reads from an item.
pub(super) trait ItemExt {
    fn string(&self, name: &str) -> Result<&str, StoreError>;
    fn opt_string(&self, name: &str) -> Result<Option<&str>, StoreError>;
    fn opt_number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError>;
    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.opt_number(name)?
            .ok_or_else(|| corrupt(name, "missing"))
    }
    /// Counters start absent on items written before they existed: absent reads as zero.
    fn number_or_zero<T: std::str::FromStr + Default>(&self, name: &str) -> Result<T, StoreError> {
        Ok(self.opt_number(name)?.unwrap_or_default())
    }
    fn flag(&self, name: &str) -> Result<bool, StoreError>;
}

impl ItemExt for Item {
    fn string(&self, name: &str) -> Result<&str, StoreError> {
        self.opt_string(name)?
            .ok_or_else(|| corrupt(name, "missing"))
    }

    fn opt_string(&self, name: &str) -> Result<Option<&str>, StoreError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s)),
            Some(_) => Err(corrupt(name, "not a string")),
        }
    }

    fn opt_number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => n
                .parse()
                .map(Some)
                .map_err(|_| corrupt(name, "not a number of the expected range")),
            Some(_) => Err(corrupt(name, "not a number")),
        }
    }

    fn flag(&self, name: &str) -> Result<bool, StoreError> {
        match self.get(name) {
            None => Ok(false),
            Some(AttributeValue::Bool(b)) => Ok(*b),
            Some(_) => Err(corrupt(name, "not a boolean")),
        }
    }
}

// ---- events ----------------------------------------------------------------------------

/// The operator's settings that no expression reads, kept together as one JSON attribute so a
/// new setting needs no new attribute.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct EventOptions {
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    schedule: Schedule,
    #[serde(default)]
    rate_limit_per_min: Option<u64>,
    #[serde(default)]
    safety_net: bool,
    #[serde(default)]
    authorizer_fail_open: bool,
    #[serde(default)]
    message: String,
    #[serde(default)]
    appearance: Appearance,
    #[serde(default)]
    challenge: ChallengeSettings,
    #[serde(default)]
    updated_at_ms: i64,
}

/// The operator-set attributes of an event item (what `update_event` replaces; never the
/// draw, which only `record_draw` writes).
pub(super) struct ConfigAttributes(pub Item);

impl From<&EventConfig> for ConfigAttributes {
    fn from(config: &EventConfig) -> Self {
        Self(Item::from([
            (attr::EVENT_ID.into(), string(config.event_id.as_str())),
            (attr::EVENT_NAME.into(), string(&config.name)),
            (
                attr::STRATEGY.into(),
                StrategyValue::from(&config.strategy).0,
            ),
            (attr::TOKEN_TTL_SECS.into(), num(config.token_ttl_secs)),
            (
                attr::POSITION_EXPIRY_SECS.into(),
                num(config.position_expiry_secs),
            ),
            (attr::TARGET_URL.into(), string(&config.target_url)),
            (attr::PAUSED.into(), boolean(config.paused)),
            (attr::EVENT_OPTIONS.into(), string(options_json(config))),
        ]))
    }
}

fn options_json(config: &EventConfig) -> String {
    let options = EventOptions {
        closed: config.closed,
        schedule: config.schedule,
        rate_limit_per_min: config.rate_limit_per_min,
        safety_net: config.safety_net,
        authorizer_fail_open: config.authorizer_fail_open,
        message: config.message.clone(),
        appearance: config.appearance.clone(),
        challenge: config.challenge,
        updated_at_ms: config.updated_at_ms,
    };
    // A struct of plain fields always serialises.
    serde_json::to_string(&options).unwrap_or_default()
}

/// The draw as stored (JSON in the `draw` attribute).
pub(super) fn draw_json(draw: &Draw) -> String {
    serde_json::to_string(draw).unwrap_or_default()
}

impl TryFrom<&Item> for EventConfig {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let event_id = EventId::parse(item.string(attr::EVENT_ID)?)
            .map_err(|e| corrupt(attr::EVENT_ID, &e.to_string()))?;
        let strategy = match item.get(attr::STRATEGY) {
            Some(value) => Strategy::try_from(&StrategyValue(value.clone()))?,
            None => Strategy::default(),
        };
        let options: EventOptions = match item.opt_string(attr::EVENT_OPTIONS)? {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| corrupt(attr::EVENT_OPTIONS, &e.to_string()))?,
            None => EventOptions::default(),
        };
        let draw = item
            .opt_string(attr::DRAW)?
            .map(serde_json::from_str::<Draw>)
            .transpose()
            .map_err(|e| corrupt(attr::DRAW, &e.to_string()))?;
        Ok(EventConfig {
            event_id,
            name: item
                .opt_string(attr::EVENT_NAME)?
                .unwrap_or_default()
                .into(),
            strategy,
            token_ttl_secs: item.number(attr::TOKEN_TTL_SECS)?,
            position_expiry_secs: item.number(attr::POSITION_EXPIRY_SECS)?,
            target_url: item
                .opt_string(attr::TARGET_URL)?
                .unwrap_or_default()
                .into(),
            paused: item.flag(attr::PAUSED)?,
            closed: options.closed,
            schedule: options.schedule,
            rate_limit_per_min: options.rate_limit_per_min,
            safety_net: options.safety_net,
            authorizer_fail_open: options.authorizer_fail_open,
            message: options.message,
            appearance: options.appearance,
            challenge: options.challenge,
            updated_at_ms: options.updated_at_ms,
            draw,
        })
    }
}

/// A strategy as a map attribute: `{type, max_active | increment_by + interval_secs}`.
pub(super) struct StrategyValue(pub AttributeValue);

impl From<&Strategy> for StrategyValue {
    fn from(strategy: &Strategy) -> Self {
        let map = match *strategy {
            Strategy::Manual => Item::from([(strategy_field::TYPE.into(), string("Manual"))]),
            Strategy::MaxSize { max_active } => Item::from([
                (strategy_field::TYPE.into(), string("MaxSize")),
                (strategy_field::MAX_ACTIVE.into(), num(max_active)),
            ]),
            Strategy::Periodic {
                increment_by,
                interval_secs,
            } => Item::from([
                (strategy_field::TYPE.into(), string("Periodic")),
                (strategy_field::INCREMENT_BY.into(), num(increment_by)),
                (strategy_field::INTERVAL_SECS.into(), num(interval_secs)),
            ]),
        };
        Self(AttributeValue::M(map))
    }
}

impl TryFrom<&StrategyValue> for Strategy {
    type Error = StoreError;
    fn try_from(value: &StrategyValue) -> Result<Self, StoreError> {
        let AttributeValue::M(map) = &value.0 else {
            return Err(corrupt(attr::STRATEGY, "not a map"));
        };
        match map.string(strategy_field::TYPE)? {
            "Manual" => Ok(Strategy::Manual),
            "MaxSize" => Ok(Strategy::MaxSize {
                max_active: map.number(strategy_field::MAX_ACTIVE)?,
            }),
            "Periodic" => Ok(Strategy::Periodic {
                increment_by: map.number(strategy_field::INCREMENT_BY)?,
                interval_secs: map.number(strategy_field::INTERVAL_SECS)?,
            }),
            other => Err(corrupt(
                attr::STRATEGY,
                &format!("unknown strategy type {other:?}"),
            )),
        }
    }
}

impl TryFrom<&Item> for EventCounters {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        Ok(EventCounters {
            queue_counter: item.number_or_zero(attr::QUEUE_COUNTER)?,
            serving_counter: item.number_or_zero(attr::SERVING_COUNTER)?,
            tokens_issued: item.number_or_zero(attr::TOKENS_ISSUED)?,
            tokens_bypassed: item.number_or_zero(attr::TOKENS_BYPASSED)?,
            tokens_completed: item.number_or_zero(attr::TOKENS_COMPLETED)?,
            tokens_abandoned: item.number_or_zero(attr::TOKENS_ABANDONED)?,
            tokens_expired: item.number_or_zero(attr::TOKENS_EXPIRED)?,
            positions_expired: item.number_or_zero(attr::POSITIONS_EXPIRED)?,
            serving_changed_at_ms: item.number_or_zero(attr::SERVING_CHANGED_AT_MS)?,
            queue_changed_at_ms: item.number_or_zero(attr::QUEUE_CHANGED_AT_MS)?,
            generation: item.number_or_zero(attr::GENERATION)?,
            reset_at_ms: item.number_or_zero(attr::RESET_AT_MS)?,
        })
    }
}

/// What the store's own bookkeeping needs from an event item besides the domain's counters.
#[derive(Debug, Clone, Copy)]
pub(super) struct EventState {
    pub counters: EventCounters,
    /// The claim window of an event's serving moves, in ms.
    pub claim_window_ms: i64,
    /// The claim deadline of the last serving move.
    pub last_claim_by_ms: i64,
    /// Every place up to here had its claim window settle at the last settlement.
    pub settled_through: u64,
}

impl TryFrom<&Item> for EventState {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let window_secs: i64 = item.number(attr::POSITION_EXPIRY_SECS)?;
        Ok(EventState {
            counters: EventCounters::try_from(item)?,
            claim_window_ms: window_secs.saturating_mul(1000),
            last_claim_by_ms: item.number_or_zero(attr::LAST_CLAIM_BY_MS)?,
            settled_through: item.number_or_zero(attr::SETTLED_THROUGH)?,
        })
    }
}

// ---- requests --------------------------------------------------------------------------

/// A request item as stored: the domain record and the generation it belongs to.
#[derive(Debug, Clone)]
pub(super) struct StoredRequest {
    pub generation: u64,
    pub record: RequestRecord,
}

impl TryFrom<&Item> for StoredRequest {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let request_id = RequestId::parse(item.string(attr::REQUEST_ID)?)
            .map_err(|e| corrupt(attr::REQUEST_ID, &e.to_string()))?;
        Ok(StoredRequest {
            generation: item.number_or_zero(attr::GENERATION)?,
            record: RequestRecord {
                request_id,
                position: item.number(attr::QUEUE_POSITION)?,
                entry_time_ms: item.number(attr::ENTRY_TIME_MS)?,
                bypass: item.flag(attr::BYPASS)?,
                token: token_of(item)?,
            },
        })
    }
}

fn token_of(item: &Item) -> Result<Option<TokenRecord>, StoreError> {
    let Some(status) = item.opt_string(attr::SESSION_STATUS)? else {
        return Ok(None);
    };
    Ok(Some(TokenRecord {
        issued_at: item.number(attr::TOKEN_ISSUED_AT)?,
        expires_at: item.number(attr::TOKEN_EXPIRES_AT)?,
        access_token: item.string(attr::ACCESS_TOKEN)?.into(),
        refresh_token: item.string(attr::REFRESH_TOKEN)?.into(),
        id_token: item.string(attr::ID_TOKEN)?.into(),
        status: SessionStatusValue(status.into()).try_into()?,
    }))
}

/// A session status as stored: its snake_case name.
pub(super) struct SessionStatusValue(pub String);

impl From<SessionStatus> for SessionStatusValue {
    fn from(status: SessionStatus) -> Self {
        Self(
            match status {
                SessionStatus::Active => "active",
                SessionStatus::Completed => "completed",
                SessionStatus::Abandoned => "abandoned",
                SessionStatus::Expired => "expired",
            }
            .into(),
        )
    }
}

impl TryFrom<SessionStatusValue> for SessionStatus {
    type Error = StoreError;
    fn try_from(value: SessionStatusValue) -> Result<Self, StoreError> {
        match value.0.as_str() {
            "active" => Ok(SessionStatus::Active),
            "completed" => Ok(SessionStatus::Completed),
            "abandoned" => Ok(SessionStatus::Abandoned),
            "expired" => Ok(SessionStatus::Expired),
            other => Err(corrupt(
                attr::SESSION_STATUS,
                &format!("unknown status {other:?}"),
            )),
        }
    }
}

impl From<SessionStatus> for AttributeValue {
    fn from(status: SessionStatus) -> Self {
        string(SessionStatusValue::from(status).0)
    }
}

// ---- serving moves and audit -------------------------------------------------------------

impl TryFrom<&Item> for ServingIncrement {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let increment = ServingIncrement {
            previous: item.number(attr::PREVIOUS)?,
            serving_counter: item.number(attr::SERVING_COUNTER)?,
            at_ms: item.number(attr::AT_MS)?,
            claim_by_ms: item.number(attr::CLAIM_BY_MS)?,
        };
        if increment.serving_counter < increment.previous {
            return Err(corrupt(attr::SERVING_COUNTER, "below previous"));
        }
        Ok(increment)
    }
}

impl TryFrom<&Item> for Stripe {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let mut stripe = Stripe {
            completed: item.number_or_zero(attr::COMPLETED)?,
            abandoned: item.number_or_zero(attr::ABANDONED)?,
            bypassed: item.number_or_zero(attr::BYPASSED)?,
            expired: item.number_or_zero(attr::EXPIRED)?,
            settled_claims: item.number_or_zero(attr::SETTLED_CLAIMS)?,
            ..Stripe::default()
        };
        for name in item.keys() {
            let (buckets, bucket) = if let Some(b) = name.strip_prefix("x_") {
                (&mut stripe.expiring, b)
            } else if let Some(b) = name.strip_prefix("w_") {
                (&mut stripe.claims, b)
            } else {
                continue;
            };
            let bucket = bucket
                .parse()
                .map_err(|_| corrupt(name, "not a time bucket"))?;
            buckets.insert(bucket, item.number(name)?);
        }
        Ok(stripe)
    }
}

/// The attributes of an audit item besides its key.
pub(super) struct AuditAttributes(pub Item);

impl From<&AuditEntry> for AuditAttributes {
    fn from(entry: &AuditEntry) -> Self {
        Self(Item::from([
            (attr::EVENT_ID.into(), string(entry.event_id.as_str())),
            (attr::AT_MS.into(), num(entry.at_ms)),
            (attr::ACTOR.into(), string(&entry.actor)),
            (attr::AUDIT_ACTION.into(), string(&entry.action)),
            (attr::DETAIL.into(), string(&entry.detail)),
        ]))
    }
}

impl TryFrom<&Item> for AuditEntry {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        Ok(AuditEntry {
            at_ms: item.number(attr::AT_MS)?,
            actor: item.string(attr::ACTOR)?.into(),
            action: item.string(attr::AUDIT_ACTION)?.into(),
            event_id: EventId::parse(item.string(attr::EVENT_ID)?)
                .map_err(|e| corrupt(attr::EVENT_ID, &e.to_string()))?,
            detail: item.opt_string(attr::DETAIL)?.unwrap_or_default().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_config_round_trips() {
        let mut config = EventConfig::new(EventId::parse("sale").unwrap());
        config.strategy = Strategy::Periodic {
            increment_by: 5,
            interval_secs: 10,
        };
        config.paused = true;
        config.target_url = "https://shop.example/".into();
        let item = ConfigAttributes::from(&config).0;
        assert_eq!(EventConfig::try_from(&item).unwrap(), config);
        for strategy in [Strategy::Manual, Strategy::MaxSize { max_active: 7 }] {
            let value = StrategyValue::from(&strategy);
            assert_eq!(Strategy::try_from(&value).unwrap(), strategy);
        }
    }

    #[test]
    fn undecodable_items_are_corrupt_not_panics() {
        let mut item = ConfigAttributes::from(&EventConfig::new(EventId::parse("e").unwrap())).0;
        item.insert(attr::TOKEN_TTL_SECS.into(), string("soon"));
        assert!(matches!(
            EventConfig::try_from(&item),
            Err(StoreError::Corrupt(_))
        ));
        let mut item = Item::new();
        item.insert(attr::REQUEST_ID.into(), string("not-a-uuid"));
        item.insert(attr::QUEUE_POSITION.into(), num(1));
        assert!(matches!(
            StoredRequest::try_from(&item),
            Err(StoreError::Corrupt(_))
        ));
        let item = Item::from([(attr::QUEUE_COUNTER.into(), num(-1))]);
        assert!(matches!(
            EventCounters::try_from(&item),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_stripe_decodes_its_counts_and_buckets() {
        use super::super::schema::{claims_attr, expiring_attr};
        let item = Item::from([
            (attr::COMPLETED.into(), num(3)),
            (attr::EXPIRED.into(), num(4)),
            (expiring_attr(177_000_001), num(2)),
            (expiring_attr(177_000_002), num(0)),
            (claims_attr(177_000_000), num(5)),
            ("pk".into(), string("STRIPE#e#0#1")),
            ("expires_at".into(), num(1)),
        ]);
        let stripe = Stripe::try_from(&item).unwrap();
        assert_eq!((stripe.completed, stripe.expired), (3, 4));
        assert_eq!(
            stripe.expiring.into_iter().collect::<Vec<_>>(),
            [(177_000_001, 2), (177_000_002, 0)]
        );
        assert_eq!(stripe.claims.get(&177_000_000), Some(&5));
    }

    #[test]
    fn a_request_item_decodes_to_its_record_and_generation() {
        let id = RequestId::new(0, 0);
        let item = Item::from([
            (attr::REQUEST_ID.into(), string(id.to_string())),
            (attr::GENERATION.into(), num(2)),
            (attr::ENTRY_TIME_MS.into(), num(5)),
            (attr::QUEUE_POSITION.into(), num(9)),
        ]);
        let stored = StoredRequest::try_from(&item).unwrap();
        assert_eq!(stored.generation, 2);
        let record = stored.record;
        assert_eq!(
            (
                record.request_id,
                record.position,
                record.bypass,
                record.token
            ),
            (id, 9, false, None)
        );
    }
}
