//! Events: the event item (config, the queue and serving counters, the generation, the exit
//! counts as last settled), the catalog that lists events without a scan, and resets.
//!
//! The generation of each event is cached in process for [`super::GENERATION_TTL`], refreshed
//! by every read of the event item made for another reason (the views, the runner): a visitor's
//! position look-up, claim and session end need it to tell the current line from one an
//! operator reset, and reading the event item for it would put every visitor on that item.
//! A stale generation is safe for that second: a reset made by another process is seen by
//! this one up to a second late, during which a request of the old line still looks current
//! (its counts go to the old line's stripes, which nothing reads any more). Assignment and the
//! serving counter read the event item itself, so no position is ever given in an old line.

use super::DynamoStore;
use super::codec::{ConfigAttributes, EventState, ItemExt, draw_json};
use super::retry::{Try, retry};
use super::schema::{Item, attr, catalog_key, catalog_partition, event_key, item, num, string};
use super::table::{Put, Query, Read, Tx, Update, Written};
use crate::domain::{Draw, EventConfig, EventId};
use crate::ports::StoreError;

const EXISTS: &str = "attribute_exists(pk)";
const NEW_ITEM: &str = "attribute_not_exists(pk)";

/// Counters an event starts (and restarts) with at zero.
const ZEROED: [&str; 11] = [
    attr::QUEUE_COUNTER,
    attr::SERVING_COUNTER,
    attr::LAST_CLAIM_BY_MS,
    attr::TOKENS_ISSUED,
    attr::TOKENS_BYPASSED,
    attr::TOKENS_COMPLETED,
    attr::TOKENS_ABANDONED,
    attr::TOKENS_EXPIRED,
    attr::POSITIONS_EXPIRED,
    attr::SETTLED_THROUGH,
    attr::SETTLED_AT_MS,
];

/// The event item with zeroed counters, and its catalog entry (written together).
fn create_event(config: &EventConfig, now_ms: i64) -> [Put; 2] {
    let mut event = ConfigAttributes::from(config).0;
    event.extend(event_key(&config.event_id));
    for counter in ZEROED.into_iter().chain([attr::GENERATION]) {
        event.insert(counter.into(), num(0));
    }
    for at in [
        attr::SERVING_CHANGED_AT_MS,
        attr::QUEUE_CHANGED_AT_MS,
        attr::RESET_AT_MS,
    ] {
        event.insert(at.into(), num(now_ms));
    }
    let mut entry = catalog_key(&config.event_id);
    entry.insert(attr::EVENT_ID.into(), string(config.event_id.as_str()));
    [
        Put {
            item: event,
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

const UPDATE_CONFIG: &str = "SET event_name = :event_name, event_strategy = :event_strategy, \
     token_ttl_secs = :token_ttl_secs, position_expiry_secs = :position_expiry_secs, \
     target_url = :target_url, is_paused = :is_paused, event_options = :event_options";

fn update_event(config: &EventConfig) -> Update {
    let values = ConfigAttributes::from(config)
        .0
        .into_iter()
        .filter(|(name, _)| name != attr::EVENT_ID)
        .map(|(name, value)| (format!(":{name}"), value))
        .collect();
    Update::new(event_key(&config.event_id), UPDATE_CONFIG, values).when(EXISTS)
}

/// Records the pre-queue draw once: refused when the event already has one.
fn record_draw(event_id: &EventId, draw_json: String) -> Update {
    Update::new(
        event_key(event_id),
        "SET draw = :draw",
        item([(":draw", string(draw_json))]),
    )
    .when("attribute_exists(pk) AND attribute_not_exists(draw)")
}

/// Zeroes the counters and moves to the next generation; requests, moves and stripes of the
/// old generation stay where they are (TTL removes them) but no longer count.
fn reset_event(event_id: &EventId, now_ms: i64) -> Update {
    let zeroes: Vec<String> = ZEROED
        .iter()
        .map(|name| format!("{name} = :zero"))
        .collect();
    Update::new(
        event_key(event_id),
        format!(
            "SET {}, serving_changed_at_ms = :now, queue_changed_at_ms = :now, \
             reset_at_ms = :now ADD generation :one",
            zeroes.join(", ")
        ),
        item([(":zero", num(0)), (":one", num(1)), (":now", num(now_ms))]),
    )
    .when(EXISTS)
}

impl DynamoStore {
    pub(super) async fn create(
        &self,
        config: &EventConfig,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let created = retry(|| async move {
            let ops = create_event(config, now_ms).map(Tx::Put).into();
            Ok(match self.table.transact(ops).await? {
                Ok(()) => Try::Done(true),
                Err(cancelled) if !cancelled.failed_conditions.is_empty() => Try::Done(false),
                Err(_) => Try::Again,
            })
        })
        .await?;
        self.generations.invalidate(&config.event_id);
        Ok(created)
    }

    pub(super) async fn update(&self, config: &EventConfig) -> Result<bool, StoreError> {
        Ok(matches!(
            self.table.update(update_event(config)).await?,
            Written::Done(_)
        ))
    }

    pub(super) async fn draw(&self, event_id: &EventId, draw: &Draw) -> Result<bool, StoreError> {
        let update = record_draw(event_id, draw_json(draw));
        Ok(matches!(self.table.update(update).await?, Written::Done(_)))
    }

    pub(super) async fn config(
        &self,
        event_id: &EventId,
    ) -> Result<Option<EventConfig>, StoreError> {
        // Strong: operators change a config by reading it, changing it and writing it back.
        let found = self.table.get(event_key(event_id), Read::Strong).await?;
        self.saw_generation(event_id, found.as_ref())?;
        found.map(|item| EventConfig::try_from(&item)).transpose()
    }

    /// Keeps the generation of an event item read for another reason, so the cache seldom
    /// needs a read of its own.
    fn saw_generation(&self, event_id: &EventId, found: Option<&Item>) -> Result<(), StoreError> {
        let generation = found
            .map(|item| item.number_or_zero(attr::GENERATION))
            .transpose()?;
        self.generations.insert(event_id, generation);
        Ok(())
    }

    pub(super) async fn configs(&self) -> Result<Vec<EventConfig>, StoreError> {
        let catalog = Query::new("pk = :pk", item([(":pk", string(catalog_partition()))]));
        let ids = self
            .table
            .query_all(&catalog)
            .await?
            .iter()
            .map(|entry| {
                EventId::parse(entry.string(attr::EVENT_ID)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let found = self
            .table
            .batch_get(ids.iter().map(event_key).collect(), Read::Strong)
            .await?;
        let mut configs = found
            .iter()
            .map(EventConfig::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        configs.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        Ok(configs)
    }

    /// The event item, as fresh as `read` asks.
    pub(super) async fn event_state(
        &self,
        event_id: &EventId,
        read: Read,
    ) -> Result<Option<EventState>, StoreError> {
        let found = self.table.get(event_key(event_id), read).await?;
        self.saw_generation(event_id, found.as_ref())?;
        found.map(|item| EventState::try_from(&item)).transpose()
    }

    /// The event's current generation from the in-process cache (see the module docs);
    /// `None` for an unknown event.
    pub(super) async fn generation(&self, event_id: &EventId) -> Result<Option<u64>, StoreError> {
        let generation = self
            .generations
            .get_or_load(event_id, || async {
                // Eventual: the cached generation may be late anyway (see the module docs).
                let found = self.table.get(event_key(event_id), Read::Eventual).await?;
                found
                    .map(|item| item.number_or_zero(attr::GENERATION))
                    .transpose()
            })
            .await?;
        Ok(*generation)
    }

    /// Forgets a cached generation found out of date.
    pub(super) fn forget_generation(&self, event_id: &EventId) {
        self.generations.invalidate(event_id);
    }

    pub(super) async fn reset(&self, event_id: &EventId, now_ms: i64) -> Result<bool, StoreError> {
        let done = matches!(
            self.table.update(reset_event(event_id, now_ms)).await?,
            Written::Done(_)
        );
        self.generations.invalidate(event_id);
        Ok(done)
    }
}
