//! Counts the DynamoDB calls a store makes, by operation, from inside the SDK (an interceptor
//! sees every operation the client sends, whatever code path sent it). Tests use it to prove
//! "one queue counter move per batch" and to measure calls per visitor; a service can log it.
//!
//! On request ([`super::DynamoStore::record_items`]) it also keeps a ledger: every data call
//! with each item it read or wrote (or the partition a query read, on the table or an index),
//! the item's class ([`super::classes`]) and the capacity units it took, computed from the
//! items' sizes as DynamoDB rounds them ([`super::capacity`]): reads per 4 KB (half when
//! eventually consistent), writes per 1 KB of the larger of the item before and after,
//! transactions twice, and one write per index entry added or removed. To know sizes before
//! and after an update, the ledger keeps a copy of every item it has seen written or read; it
//! is meant for measuring runs, not for a long-lived service.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemInput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsInput,
};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemInput};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use super::assign;
use super::capacity::{self, IndexKeys};
use super::classes::{self, ItemClass};
use super::schema::{self, Item};

/// Calls made so far (operations, not HTTP attempts: SDK retries are not counted twice).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls per DynamoDB operation name (`PutItem`, `TransactWriteItems`...).
    pub by_operation: BTreeMap<String, u64>,
    /// `UpdateItem` calls that moved an event's queue counter.
    pub queue_counter_moves: u64,
}

impl CallCounts {
    pub fn total(&self) -> u64 {
        self.by_operation.values().sum()
    }

    pub fn get(&self, operation: &str) -> u64 {
        self.by_operation.get(operation).copied().unwrap_or(0)
    }

    /// What was called between `earlier` and `self`.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        CallCounts {
            by_operation: self
                .by_operation
                .iter()
                .map(|(op, n)| (op.clone(), n - earlier.get(op)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            queue_counter_moves: self.queue_counter_moves - earlier.queue_counter_moves,
        }
    }
}

impl std::fmt::Display for CallCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} calls", self.total())?;
        for (op, n) in &self.by_operation {
            write!(f, ", {op} {n}")?;
        }
        write!(f, " (queue counter moves {})", self.queue_counter_moves)
    }
}

/// One item a call read or wrote, or one partition a query read (on the table or an index),
/// or one index partition a write changed, with the capacity it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    pub class: ItemClass,
    /// The partition key's value (the index's partition key for index partitions).
    pub partition: String,
    /// `pk|sk` of the item; `None` for a query or an index partition.
    pub item: Option<String>,
    pub read_units: f64,
    pub write_units: f64,
}

/// How a recorded call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// A write whose condition failed: charged for the item it checked.
    ConditionFailed,
    /// A transaction that was cancelled (a condition or a conflict): charged as if written.
    Cancelled,
    /// Throttled or failed on the way: nothing charged.
    Failed,
}

/// One DynamoDB data call, with what it touched.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub operation: String,
    pub table: String,
    pub outcome: Outcome,
    pub touches: Vec<Touch>,
}

impl CallRecord {
    pub fn read_units(&self) -> f64 {
        self.touches.iter().map(|t| t.read_units).sum()
    }

    pub fn write_units(&self) -> f64 {
        self.touches.iter().map(|t| t.write_units).sum()
    }

    pub fn is_transaction(&self) -> bool {
        self.operation == "TransactWriteItems"
    }
}

#[derive(Debug, Default)]
struct Ledger {
    calls: Vec<CallRecord>,
    /// The last known state of every item seen, by `(pk, sk)`.
    items: HashMap<(String, String), Item>,
}

#[derive(Debug, Default)]
struct Tally {
    counts: CallCounts,
    ledger: Option<Ledger>,
}

/// The interceptor; clones share one tally.
#[derive(Debug, Clone, Default)]
pub(super) struct CountCalls {
    // std Mutex: held for one update, never across an `.await`.
    tally: Arc<Mutex<Tally>>,
}

impl CountCalls {
    pub fn snapshot(&self) -> CallCounts {
        self.tally
            .lock()
            .map(|t| t.counts.clone())
            .unwrap_or_default()
    }

    /// Starts keeping the ledger (from an empty one).
    pub fn record_items(&self) {
        if let Ok(mut tally) = self.tally.lock() {
            tally.ledger = Some(Ledger::default());
        }
    }

    /// The calls recorded since the last take.
    pub fn take_records(&self) -> Vec<CallRecord> {
        self.tally
            .lock()
            .ok()
            .and_then(|mut t| t.ledger.as_mut().map(|l| std::mem::take(&mut l.calls)))
            .unwrap_or_default()
    }

    fn recording(&self) -> bool {
        self.tally.lock().is_ok_and(|t| t.ledger.is_some())
    }
}

/// What a call asked for, kept from before it was sent until its answer came back.
#[derive(Debug, Clone)]
enum Asked {
    Get {
        table: String,
        key: Item,
        consistent: bool,
    },
    BatchGet {
        tables: Vec<(String, Vec<Item>, bool)>,
    },
    Query {
        table: String,
        index: Option<String>,
        partition: String,
        consistent: bool,
    },
    Write {
        table: String,
        write: Write,
    },
    Transact {
        writes: Vec<(String, Write)>,
    },
}

#[derive(Debug, Clone)]
enum Write {
    Put(Item),
    Update {
        key: Item,
        expression: String,
        values: Item,
    },
    Delete(Item),
}

impl Storable for Asked {
    type Storer = StoreReplace<Self>;
}

fn key_of(item: &Item) -> (String, String) {
    let text = |name: &str| {
        item.get(name)
            .map(capacity::partition_text)
            .unwrap_or_default()
    };
    (text(schema::PK), text(schema::SK))
}

fn asked(input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> Option<Asked> {
    if let Some(get) = input.downcast_ref::<GetItemInput>() {
        return Some(Asked::Get {
            table: get.table_name()?.to_owned(),
            key: get.key()?.clone(),
            consistent: get.consistent_read().unwrap_or(false),
        });
    }
    if let Some(batch) = input.downcast_ref::<BatchGetItemInput>() {
        let tables = batch
            .request_items()?
            .iter()
            .map(|(table, wanted)| {
                (
                    table.clone(),
                    wanted.keys().to_vec(),
                    wanted.consistent_read().unwrap_or(false),
                )
            })
            .collect();
        return Some(Asked::BatchGet { tables });
    }
    if let Some(query) = input.downcast_ref::<QueryInput>() {
        // `pk = :pk ...`: the partition is the value of the first placeholder.
        let condition = query.key_condition_expression()?;
        let placeholder = condition
            .split_whitespace()
            .find(|word| word.starts_with(':'))?;
        let partition = query
            .expression_attribute_values()?
            .get(placeholder)
            .map(capacity::partition_text)?;
        return Some(Asked::Query {
            table: query.table_name()?.to_owned(),
            index: query.index_name().map(str::to_owned),
            partition,
            consistent: query.consistent_read().unwrap_or(false),
        });
    }
    if let Some(put) = input.downcast_ref::<PutItemInput>() {
        return Some(Asked::Write {
            table: put.table_name()?.to_owned(),
            write: Write::Put(put.item()?.clone()),
        });
    }
    if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
        return Some(Asked::Write {
            table: update.table_name()?.to_owned(),
            write: Write::Update {
                key: update.key()?.clone(),
                expression: update.update_expression().unwrap_or_default().to_owned(),
                values: update
                    .expression_attribute_values()
                    .cloned()
                    .unwrap_or_default(),
            },
        });
    }
    if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
        return Some(Asked::Write {
            table: delete.table_name()?.to_owned(),
            write: Write::Delete(delete.key()?.clone()),
        });
    }
    if let Some(transact) = input.downcast_ref::<TransactWriteItemsInput>() {
        let mut writes = Vec::new();
        for op in transact.transact_items() {
            if let Some(put) = op.put() {
                writes.push((put.table_name().to_owned(), Write::Put(put.item().clone())));
            } else if let Some(update) = op.update() {
                writes.push((
                    update.table_name().to_owned(),
                    Write::Update {
                        key: update.key().clone(),
                        expression: update.update_expression().to_owned(),
                        values: update
                            .expression_attribute_values()
                            .cloned()
                            .unwrap_or_default(),
                    },
                ));
            } else if let Some(delete) = op.delete() {
                writes.push((
                    delete.table_name().to_owned(),
                    Write::Delete(delete.key().clone()),
                ));
            }
        }
        return Some(Asked::Transact { writes });
    }
    None
}

impl Ledger {
    fn remember(&mut self, item: &Item) {
        self.items.insert(key_of(item), item.clone());
    }

    fn item_touch(key: &Item, read_units: f64, write_units: f64) -> Touch {
        let (pk, sk) = key_of(key);
        Touch {
            class: classes::of_partition_key(&pk),
            item: Some(format!("{pk}|{sk}")),
            partition: pk,
            read_units,
            write_units,
        }
    }

    fn read(&mut self, key: &Item, found: Option<&Item>, consistent: bool) -> Touch {
        if let Some(item) = found {
            self.remember(item);
        }
        let bytes = found.map_or(0, capacity::item_size);
        Self::item_touch(key, capacity::read_units(bytes, consistent), 0.0)
    }

    /// The touches of one write (`factor` 2 in a transaction); applied to the copies only when
    /// it was written.
    fn write(
        &mut self,
        write: &Write,
        factor: f64,
        applied: bool,
        indexes: &[IndexKeys],
    ) -> Vec<Touch> {
        let key = match write {
            Write::Put(item) => item,
            Write::Update { key, .. } | Write::Delete(key) => key,
        };
        let id = key_of(key);
        let before = self.items.get(&id).cloned();
        let after = match write {
            Write::Put(item) => Some(item.clone()),
            Write::Update {
                key,
                expression,
                values,
            } => Some(capacity::apply_update(
                before.as_ref().unwrap_or(key),
                expression,
                values,
            )),
            Write::Delete(_) => None,
        };
        let size = |item: Option<&Item>| item.map_or(0, capacity::item_size);
        let charged_bytes = if applied {
            size(before.as_ref()).max(size(after.as_ref()))
        } else {
            // A failed condition is charged for the item it checked.
            size(before.as_ref())
        };
        let mut touches = vec![Self::item_touch(
            key,
            0.0,
            capacity::write_units(charged_bytes) * factor,
        )];
        if applied {
            for index_write in capacity::index_writes(before.as_ref(), after.as_ref(), indexes) {
                touches.push(Touch {
                    class: classes::of_index(index_write.index),
                    partition: index_write.partition,
                    item: None,
                    read_units: 0.0,
                    // Keys-only entries are far below 1 KB; index writes are standard writes.
                    write_units: 1.0,
                });
            }
            match after {
                Some(item) => {
                    self.items.insert(id, item);
                }
                None => {
                    self.items.remove(&id);
                }
            }
        }
        touches
    }
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }

    // Once per operation (before its attempts), and late enough for the operation's metadata
    // to be in the config bag.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown", |m| m.name())
            .to_owned();
        let moves_counter = context
            .input()
            .downcast_ref::<UpdateItemInput>()
            .and_then(|input| input.update_expression())
            .is_some_and(assign::moves_queue_counter);
        if let Ok(mut tally) = self.tally.lock() {
            *tally.counts.by_operation.entry(operation).or_default() += 1;
            if moves_counter {
                tally.counts.queue_counter_moves += 1;
            }
        }
        if self.recording()
            && let Some(asked) = asked(context.input())
        {
            cfg.interceptor_state().store_put(asked);
        }
        Ok(())
    }

    // Once per operation, after its last attempt: the answer says what was found and whether
    // the write happened.
    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(asked) = cfg.load::<Asked>().cloned() else {
            return Ok(());
        };
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown", |m| m.name())
            .to_owned();
        let Some(answer) = context.output_or_error() else {
            return Ok(());
        };
        let outcome = match answer {
            Ok(_) => Outcome::Done,
            Err(error) => {
                let error = error.as_operation_error();
                let condition_failed = error.is_some_and(|e| {
                    e.downcast_ref::<PutItemError>()
                        .is_some_and(PutItemError::is_conditional_check_failed_exception)
                        || e.downcast_ref::<UpdateItemError>()
                            .is_some_and(UpdateItemError::is_conditional_check_failed_exception)
                });
                let cancelled = error.is_some_and(|e| {
                    e.downcast_ref::<TransactWriteItemsError>()
                        .is_some_and(TransactWriteItemsError::is_transaction_canceled_exception)
                });
                if condition_failed {
                    Outcome::ConditionFailed
                } else if cancelled {
                    Outcome::Cancelled
                } else {
                    Outcome::Failed
                }
            }
        };
        let output = answer.ok();
        let indexes = classes::index_keys();
        let Ok(mut tally) = self.tally.lock() else {
            return Ok(());
        };
        let Some(ledger) = tally.ledger.as_mut() else {
            return Ok(());
        };
        let mut table_name = String::new();
        let mut touches = Vec::new();
        if outcome != Outcome::Failed {
            match &asked {
                Asked::Get {
                    table,
                    key,
                    consistent,
                } => {
                    table_name.clone_from(table);
                    let found = output
                        .and_then(|o| o.downcast_ref::<GetItemOutput>())
                        .and_then(|o| o.item());
                    touches.push(ledger.read(key, found, *consistent));
                }
                Asked::BatchGet { tables } => {
                    let answer = output.and_then(|o| o.downcast_ref::<BatchGetItemOutput>());
                    for (table, wanted, consistent) in tables {
                        table_name.clone_from(table);
                        let found: Vec<Item> = answer
                            .and_then(|a| a.responses())
                            .and_then(|r| r.get(table))
                            .cloned()
                            .unwrap_or_default();
                        let left: Vec<(String, String)> = answer
                            .and_then(|a| a.unprocessed_keys())
                            .and_then(|u| u.get(table))
                            .map(|k| k.keys().iter().map(key_of).collect())
                            .unwrap_or_default();
                        for key in wanted {
                            let id = key_of(key);
                            if left.contains(&id) {
                                continue; // not read: asked again later, and counted then
                            }
                            let item = found.iter().find(|item| key_of(item) == id);
                            touches.push(ledger.read(key, item, *consistent));
                        }
                    }
                }
                Asked::Query {
                    table,
                    index,
                    partition,
                    consistent,
                } => {
                    table_name.clone_from(table);
                    let items: Vec<Item> = output
                        .and_then(|o| o.downcast_ref::<QueryOutput>())
                        .map(|o| o.items().to_vec())
                        .unwrap_or_default();
                    if index.is_none() {
                        for item in &items {
                            ledger.remember(item);
                        }
                    }
                    let bytes = items.iter().map(capacity::item_size).sum();
                    touches.push(Touch {
                        class: match index {
                            Some(index) => classes::of_index(index),
                            None => classes::of_partition_key(partition),
                        },
                        partition: partition.clone(),
                        item: None,
                        read_units: capacity::read_units(bytes, *consistent),
                        write_units: 0.0,
                    });
                }
                Asked::Write { table, write } => {
                    table_name.clone_from(table);
                    touches = ledger.write(write, 1.0, outcome == Outcome::Done, &indexes);
                }
                Asked::Transact { writes } => {
                    for (table, write) in writes {
                        table_name.clone_from(table);
                        touches.extend(ledger.write(
                            write,
                            capacity::TRANSACTION_FACTOR,
                            outcome == Outcome::Done,
                            &indexes,
                        ));
                    }
                }
            }
        }
        ledger.calls.push(CallRecord {
            operation,
            table: table_name,
            outcome,
            touches,
        });
        Ok(())
    }
}

/// The ledger against what the feature modules say a step writes. Runs against moto when
/// `WR_TEST_AWS_ENDPOINT` is set (and fails when CI is set without it).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::AwsConfig;
    use crate::adapters::dynamodb::{DynamoStore, exits, sessions};
    use crate::domain::exits::{STRIPES, stripe_of};
    use crate::domain::{
        Admission, EnqueueRequest, EventConfig, EventId, RequestId, SessionStatus, TokenRecord,
    };
    use crate::ports::{ClaimOutcome, Store};

    const T0_MS: i64 = 1_767_225_600_000;

    fn item_id(key: &Item) -> String {
        let (pk, sk) = key_of(key);
        format!("{pk}|{sk}")
    }

    #[tokio::test]
    async fn n_claims_write_exactly_the_items_the_feature_modules_name() {
        let Some(endpoint) = crate::adapters::aws::test_endpoint("call ledger") else {
            return;
        };
        let table = format!("wr-ledger-{}", &uuid::Uuid::new_v4().to_string()[..8]);
        let store = DynamoStore::new(&AwsConfig::local(&endpoint), table);
        store.create_table().await.expect("moto reachable");
        store.record_items();
        const N: usize = 5;
        let event_id = EventId::parse("e").unwrap();
        assert!(
            store
                .create_event(&EventConfig::new(event_id.clone()), T0_MS)
                .await
                .unwrap()
        );
        let requests: Vec<EnqueueRequest> = (0..N)
            .map(|i| EnqueueRequest {
                event_id: event_id.clone(),
                request_id: RequestId::new(T0_MS + i as i64, 0),
                entry_time_ms: T0_MS + i as i64,
            })
            .collect();
        store
            .assign_positions(&event_id, &requests, T0_MS)
            .await
            .unwrap();
        let moved = store
            .advance_serving(&event_id, None, N as u64, T0_MS)
            .await
            .unwrap()
            .expect("a serving move");
        store.take_records();

        let token = |i: usize| TokenRecord {
            issued_at: T0_MS / 1000,
            expires_at: T0_MS / 1000 + 3600,
            // Long enough that the request item passes 1 KB and costs more than one unit.
            access_token: format!("access-{i}-{}", "x".repeat(600)),
            refresh_token: format!("refresh-{i}-{}", "y".repeat(600)),
            id_token: format!("id-{i}"),
            status: SessionStatus::Active,
        };
        let admission = |i: usize| Admission::Line {
            position: i as u64 + 1,
            claim_by_ms: moved.claim_by_ms,
        };
        for (i, request) in requests.iter().enumerate() {
            let outcome = store
                .claim_token(&event_id, &request.request_id, admission(i), &token(i))
                .await
                .unwrap();
            assert!(matches!(outcome, ClaimOutcome::Claimed(_)), "{outcome:?}");
        }
        let records = store.take_records();
        assert!(
            records.iter().all(|r| !r.is_transaction()),
            "no claim is a transaction"
        );
        let writes: Vec<&CallRecord> = records.iter().filter(|r| r.write_units() > 0.0).collect();
        assert_eq!(writes.len(), 2 * N, "two single-item writes per claim");

        // The items as they are now: what each write's units must come from.
        let size_now = |key: &Item| {
            let ledger = store.calls.tally.lock().unwrap();
            let ledger = ledger.ledger.as_ref().unwrap();
            capacity::item_size(&ledger.items[&key_of(key)])
        };
        for (i, claim) in writes.chunks(2).enumerate() {
            let request = &requests[i];
            let stripe = stripe_of(i as u64 + 1, &request.request_id);
            let counted = exits::count_claim(&event_id, 0, stripe, &admission(i), &token(i), 1);
            let written =
                sessions::claim_token(&event_id, &request.request_id, 0, stripe, &token(i), 0);
            let items: Vec<String> = claim
                .iter()
                .flat_map(|call| call.touches.iter().filter_map(|t| t.item.clone()))
                .collect();
            assert_eq!(
                items,
                [item_id(&counted.key), item_id(&written.key)],
                "claim {i}: first its stripe, then its own item"
            );
            assert_eq!(claim[0].touches[0].class.name, "stripe");
            assert_eq!(claim[0].write_units(), 1.0, "a stripe is a small item");
            // The request item: its size in KB, rounded up (it holds the tokens now).
            let request_units = claim[1].touches[0].write_units;
            assert_eq!(request_units, capacity::write_units(size_now(&written.key)));
            assert!(
                request_units >= 2.0,
                "a request item with its tokens passes 1 KB"
            );
            // And one entry in the tokens index, on the claim's stripe.
            let index: Vec<&Touch> = claim[1]
                .touches
                .iter()
                .filter(|t| t.item.is_none())
                .collect();
            assert_eq!(index.len(), 1, "claim {i}: {index:?}");
            assert_eq!(index[0].class.name, "index:tokens_by_request");
            assert_eq!(
                index[0].partition,
                format!("e#0#{}", (i as u64 + 1) % STRIPES)
            );
            assert_eq!(index[0].write_units, 1.0);
        }
        store.delete_table().await.unwrap();
    }
}
