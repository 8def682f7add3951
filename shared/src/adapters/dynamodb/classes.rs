//! What kind of item a key names, told from the key's shape: the call ledger groups load by
//! class, and the capacity model spreads each class's load over as many items (and partitions)
//! as its scope says. The one place to change when the table's layout changes (a test below
//! checks every key `keys.rs` builds).

use serde::{Deserialize, Serialize};

use super::capacity::IndexKeys;
use super::keys::{attr, index};

/// How a class's items multiply as the crowd grows, so how its load spreads at scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// One per event (or one for the whole table): it takes all of the class's load.
    One,
    /// One per visitor: it sees only its own visitor's pace.
    PerVisitor,
    /// One per serving move: it takes the load of the visitors that move let in.
    PerMove,
    /// A fixed set per event: the load spreads over the set (as evenly as measured).
    Striped,
    /// One per write (log entries): never written twice.
    PerEntry,
}

/// A kind of item (or of index partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ItemClass {
    pub name: &'static str,
    /// How the class's items multiply.
    pub item: Scope,
    /// How the partitions holding them multiply.
    pub partition: Scope,
}

const fn class(name: &'static str, item: Scope, partition: Scope) -> ItemClass {
    ItemClass {
        name,
        item,
        partition,
    }
}

/// Table items by the start of their partition key (see the table in `keys.rs`).
const TABLE_CLASSES: [(&str, ItemClass); 6] = [
    ("EVENT#", class("event", Scope::One, Scope::One)),
    (
        "REQUEST#",
        class("request", Scope::PerVisitor, Scope::PerVisitor),
    ),
    (
        "SERVING#",
        class("serving-move", Scope::PerMove, Scope::One),
    ),
    ("AUDIT#", class("audit", Scope::PerEntry, Scope::One)),
    ("CODE#", class("code", Scope::PerEntry, Scope::One)),
    ("EVENTS", class("catalog", Scope::One, Scope::One)),
];

/// Anything else the table holds.
const OTHER: ItemClass = class("other", Scope::One, Scope::One);

/// The sparse indexes, with their key attributes and the class of their partitions.
pub const INDEXES: [(IndexKeys, ItemClass); 2] = [
    (
        IndexKeys {
            name: index::ACTIVE,
            partition: attr::ACTIVE_PK,
            sort: attr::ACTIVE_EXP,
        },
        // Striped by position over `INDEX_SHARDS` partitions per event.
        class("index:active_by_expiry", Scope::Striped, Scope::Striped),
    ),
    (
        IndexKeys {
            name: index::EXPIRED,
            partition: attr::EXPIRED_PK,
            sort: attr::EXPIRED_RID,
        },
        class("index:expired_by_request", Scope::One, Scope::One),
    ),
];

/// The class of a table item, from its partition key.
pub fn of_partition_key(pk: &str) -> ItemClass {
    TABLE_CLASSES
        .iter()
        .find(|(prefix, _)| pk.starts_with(prefix))
        .map_or(OTHER, |(_, class)| *class)
}

/// The class of an index's partitions.
pub fn of_index(name: &str) -> ItemClass {
    INDEXES
        .iter()
        .find(|(keys, _)| keys.name == name)
        .map_or(OTHER, |(_, class)| *class)
}

/// The key attributes of every index.
pub fn index_keys() -> Vec<IndexKeys> {
    INDEXES.iter().map(|(keys, _)| *keys).collect()
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::adapters::dynamodb::items::Item;
    use crate::adapters::dynamodb::keys::{self, PK};
    use crate::domain::{BypassCode, EventConfig, EventId, RequestId};
    use crate::ports::AuditEntry;

    fn pk(item: &Item) -> &str {
        match item.get(PK) {
            Some(AttributeValue::S(pk)) => pk,
            other => panic!("no pk: {other:?}"),
        }
    }

    #[test]
    fn every_key_the_store_builds_has_its_class() {
        let event = EventId::parse("e").unwrap();
        let request = RequestId::new(0, 0);
        let [event_put, catalog_put] = keys::create_event(&EventConfig::new(event.clone()), 0);
        let code = BypassCode {
            code: "CODE1".into(),
            uses_left: 1,
            created_at_ms: 0,
        };
        let audit = AuditEntry {
            event_id: event.clone(),
            at_ms: 0,
            actor: "test".into(),
            action: "create".into(),
            detail: String::new(),
        };
        let cases = [
            (keys::event_key(&event), "event"),
            (event_put.item, "event"),
            (catalog_put.item, "catalog"),
            (keys::request_key(&event, &request), "request"),
            (keys::increment_key(&event, 0, 5), "serving-move"),
            (keys::put_code(&event, &code).item, "code"),
            (keys::audit_entry(&audit).item, "audit"),
        ];
        for (item, name) in cases {
            assert_eq!(of_partition_key(pk(&item)).name, name, "{item:?}");
        }
    }

    #[test]
    fn every_index_of_the_table_has_its_class() {
        for name in [index::ACTIVE, index::EXPIRED] {
            assert_eq!(of_index(name).name, format!("index:{name}"));
        }
    }
}
