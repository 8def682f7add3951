//! DynamoDB's capacity rules, as the pricing and limits pages state them, for the call ledger
//! ([`super::metrics`]): how large an item is, how many read and write units an access takes,
//! what an update expression does to an item's size, and which index entries a write changes.
//!
//! moto answers `ReturnConsumedCapacity` with fixed figures (1.0 for any `PutItem`, 0.5 for a
//! strongly consistent `GetItem`, nothing for a transaction), so the ledger computes the units
//! from the items themselves, as DynamoDB does.

use aws_sdk_dynamodb::types::AttributeValue;

use super::schema::Item;

/// A read unit covers 4 KB, strongly consistent; an eventually consistent read costs half.
pub const READ_UNIT_BYTES: usize = 4 * 1024;
/// A write unit covers 1 KB.
pub const WRITE_UNIT_BYTES: usize = 1024;
/// A transactional write costs twice a standard one, per item.
pub const TRANSACTION_FACTOR: f64 = 2.0;

/// Bytes an attribute value takes: strings and binaries their length, numbers about one byte
/// per two significant digits plus one, booleans and nulls one, lists and maps 3 bytes plus
/// one per element plus their elements (and the names of a map's entries).
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

fn number_size(n: &str) -> usize {
    let digits = n
        .trim_start_matches('-')
        .trim_start_matches('0')
        .chars()
        .filter(char::is_ascii_digit)
        .count()
        .max(1);
    digits.div_ceil(2) + 1
}

/// An item's size: the names and values of its attributes.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// Read units of `bytes` read in one access (an item, or a whole query page). An access that
/// finds nothing still takes one unit (half when eventually consistent).
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// Write units of a write whose item is `bytes` long (the larger of before and after).
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// The item after an update expression of the shapes the store writes: `SET a = :v`,
/// `SET a = a - :v` (or `+`), `ADD a :v`, `REMOVE a, b`. Arithmetic on numbers is carried out;
/// anything else keeps the value's size, which is all the units depend on.
pub fn apply_update(before: &Item, expression: &str, values: &Item) -> Item {
    let mut item = before.clone();
    for (clause, body) in clauses(expression) {
        for action in body.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match clause {
                Clause::Set => {
                    let Some((name, rhs)) = action.split_once('=') else {
                        continue;
                    };
                    let name = name.trim();
                    let rhs: Vec<&str> = rhs.split_whitespace().collect();
                    let value = match rhs.as_slice() {
                        [placeholder] => values.get(*placeholder).cloned(),
                        [left, op @ ("+" | "-"), right] => {
                            let operand = |token: &str| {
                                if token.starts_with(':') {
                                    values.get(token).cloned()
                                } else {
                                    item.get(token).cloned()
                                }
                            };
                            arithmetic(operand(left), operand(right), *op == "-")
                        }
                        _ => None,
                    };
                    if let Some(value) = value {
                        item.insert(name.to_owned(), value);
                    }
                }
                Clause::Add => {
                    let mut parts = action.split_whitespace();
                    let (Some(name), Some(placeholder)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let added = values.get(placeholder).cloned();
                    let value = match item.get(name) {
                        Some(current) => arithmetic(Some(current.clone()), added, false),
                        None => added,
                    };
                    if let Some(value) = value {
                        item.insert(name.to_owned(), value);
                    }
                }
                Clause::Remove => {
                    item.remove(action);
                }
            }
        }
    }
    item
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    Set,
    Add,
    Remove,
}

/// The clauses of an update expression, each with its text.
fn clauses(expression: &str) -> Vec<(Clause, String)> {
    let mut out: Vec<(Clause, String)> = Vec::new();
    for word in expression.split_whitespace() {
        let clause = match word.to_ascii_uppercase().as_str() {
            "SET" => Some(Clause::Set),
            "ADD" => Some(Clause::Add),
            "REMOVE" => Some(Clause::Remove),
            _ => None,
        };
        match (clause, out.last_mut()) {
            (Some(clause), _) => out.push((clause, String::new())),
            (None, Some((_, body))) => {
                body.push(' ');
                body.push_str(word);
            }
            (None, None) => {}
        }
    }
    out
}

fn arithmetic(
    left: Option<AttributeValue>,
    right: Option<AttributeValue>,
    minus: bool,
) -> Option<AttributeValue> {
    match (left, right) {
        (Some(AttributeValue::N(a)), Some(AttributeValue::N(b))) => {
            match (a.parse::<i128>(), b.parse::<i128>()) {
                (Ok(a), Ok(b)) => Some(AttributeValue::N(
                    (if minus { a - b } else { a + b }).to_string(),
                )),
                _ => Some(AttributeValue::N(a)),
            }
        }
        (Some(value), _) | (None, Some(value)) => Some(value),
        (None, None) => None,
    }
}

/// A sparse index as the ledger sees it: its name and its key attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexKeys {
    pub name: &'static str,
    pub partition: &'static str,
    pub sort: &'static str,
}

impl IndexKeys {
    /// The entry an item has in this index (its partition and sort values), if any.
    fn entry<'a>(&self, item: &'a Item) -> Option<(&'a AttributeValue, &'a AttributeValue)> {
        Some((item.get(self.partition)?, item.get(self.sort)?))
    }
}

/// One write to an index partition caused by a table write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexWrite {
    pub index: &'static str,
    pub partition: String,
}

/// The index writes a table write makes: an entry that appears or disappears is one write on
/// its partition, an entry whose keys change is two (the old one removed, the new one added),
/// an entry whose keys stay is none (the indexes are keys-only).
pub fn index_writes(
    before: Option<&Item>,
    after: Option<&Item>,
    indexes: &[IndexKeys],
) -> Vec<IndexWrite> {
    let mut writes = Vec::new();
    for index in indexes {
        let old = before.and_then(|item| index.entry(item));
        let new = after.and_then(|item| index.entry(item));
        if old == new {
            continue;
        }
        for (partition, _) in old.into_iter().chain(new) {
            writes.push(IndexWrite {
                index: index.name,
                partition: partition_text(partition),
            });
        }
    }
    writes
}

/// A key value as text (strings as they are, numbers as written).
pub fn partition_text(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.clone(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: i64) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn units_round_up_as_dynamodb_does() {
        assert_eq!(read_units(0, true), 1.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert_eq!(write_units(1), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(3 * 1024 + 1), 4.0);
    }

    #[test]
    fn sizes_count_names_and_values() {
        assert_eq!(item_size(&item(&[("pk", s("abc"))])), 5);
        // 12345 has five significant digits: three bytes plus one.
        assert_eq!(value_size(&n(12345)), 4);
        assert_eq!(value_size(&n(0)), 2);
    }

    #[test]
    fn updates_set_add_and_remove() {
        let before = item(&[("pk", s("a")), ("count", n(2)), ("gone", s("x"))]);
        let values = item(&[(":one", n(1)), (":name", s("long value"))]);
        let after = apply_update(
            &before,
            "SET label = :name, count = count - :one ADD total :one REMOVE gone",
            &values,
        );
        assert_eq!(after.get("label"), Some(&s("long value")));
        assert_eq!(after.get("count"), Some(&n(1)));
        assert_eq!(after.get("total"), Some(&n(1)));
        assert!(!after.contains_key("gone"));
        let again = apply_update(&after, "ADD total :one", &values);
        assert_eq!(again.get("total"), Some(&n(2)));
    }

    #[test]
    fn index_entries_count_one_write_each_way() {
        let index = [IndexKeys {
            name: "by_x",
            partition: "xp",
            sort: "xs",
        }];
        let without = item(&[("pk", s("a"))]);
        let with = item(&[("pk", s("a")), ("xp", s("P1")), ("xs", n(1))]);
        let moved = item(&[("pk", s("a")), ("xp", s("P2")), ("xs", n(1))]);
        assert_eq!(index_writes(Some(&without), Some(&with), &index).len(), 1);
        assert_eq!(index_writes(Some(&with), Some(&without), &index).len(), 1);
        assert_eq!(index_writes(Some(&with), Some(&with), &index).len(), 0);
        let both = index_writes(Some(&with), Some(&moved), &index);
        assert_eq!(
            both.iter()
                .map(|w| w.partition.as_str())
                .collect::<Vec<_>>(),
            ["P1", "P2"]
        );
    }
}
