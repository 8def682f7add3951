//! What kind of item a key names, told from the key's shape: the call ledger groups load by
//! class, and the capacity model spreads each class's load over as many items (and partitions)
//! as its scope says. The one place to change when the table's layout changes (a test below
//! checks every key `schema.rs` builds).

use serde::{Deserialize, Serialize};

use super::capacity::IndexKeys;
use super::schema::{TOKENS_INDEX, attr};

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

/// Table items by the start of their partition key (see the table in `schema.rs`).
const TABLE_CLASSES: [(&str, ItemClass); 7] = [
    ("EVENT#", class("event", Scope::One, Scope::One)),
    (
        "REQUEST#",
        class("request", Scope::PerVisitor, Scope::PerVisitor),
    ),
    (
        "SERVING#",
        class("serving-move", Scope::PerMove, Scope::One),
    ),
    // A fixed set of stripes per event and generation, each its own partition.
    ("STRIPE#", class("stripe", Scope::Striped, Scope::Striped)),
    ("AUDIT#", class("audit", Scope::PerEntry, Scope::One)),
    ("CODE#", class("code", Scope::PerEntry, Scope::One)),
    ("EVENTS", class("catalog", Scope::One, Scope::One)),
];

/// Anything else the table holds.
const OTHER: ItemClass = class("other", Scope::One, Scope::One);

/// The sparse index, with its key attributes and the class of its partitions.
pub const INDEXES: [(IndexKeys, ItemClass); 1] = [(
    IndexKeys {
        name: TOKENS_INDEX,
        partition: attr::TOKEN_PK,
        sort: attr::REQUEST_ID,
    },
    // Striped like the exit counts, over `STRIPES` partitions per event.
    class("index:tokens_by_request", Scope::Striped, Scope::Striped),
)];

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

    use super::super::schema::{
        self, Item, PK, audit_partition, catalog_key, code_key, event_key, move_key, request_key,
        stripe_key,
    };
    use super::*;
    use crate::domain::{EventId, RequestId};

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
        let cases = [
            (event_key(&event), "event"),
            (catalog_key(&event), "catalog"),
            (request_key(&event, &request), "request"),
            (move_key(&event, 0, 5), "serving-move"),
            (stripe_key(&event, 0, 5), "stripe"),
            (code_key(&event, "CODE1"), "code"),
        ];
        for (item, name) in cases {
            assert_eq!(of_partition_key(pk(&item)).name, name, "{item:?}");
        }
        assert_eq!(of_partition_key(&audit_partition(&event)).name, "audit");
    }

    #[test]
    fn every_index_of_the_table_has_its_class() {
        assert_eq!(
            of_index(schema::TOKENS_INDEX).name,
            format!("index:{}", schema::TOKENS_INDEX)
        );
    }
}
