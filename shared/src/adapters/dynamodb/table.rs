//! The table as the store uses it: operation specs (what to put, update or query) and typed
//! wrappers over the SDK calls that send them (strongly consistent reads, conditional writes
//! whose failure is an answer, all-or-nothing transactions, paged queries). The features build
//! the specs; this module only sends them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure, TableStatus,
    TimeToLiveSpecification, TransactWriteItem,
};

use super::errors::{Cancelled, build_error, cancellation, is_condition_failed, store_error};
use super::retry::{Try, retry};
use super::schema::{self, Item};
use crate::ports::StoreError;

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
    pub expression: String,
    pub condition: Option<String>,
    pub values: Item,
    /// Attribute names made at run time (time buckets), as `#name` placeholders.
    pub names: HashMap<String, String>,
    pub returns: Returns,
}

/// What an update sends back when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Returns {
    Nothing,
    /// The updated attributes, as they are now.
    UpdatedNew,
    /// The whole item as it was before.
    AllOld,
}

impl Update {
    pub fn new(key: Item, expression: impl Into<String>, values: Item) -> Self {
        Self {
            key,
            expression: expression.into(),
            condition: None,
            values,
            names: HashMap::new(),
            returns: Returns::Nothing,
        }
    }

    pub fn when(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }

    pub fn returning(mut self, returns: Returns) -> Self {
        self.returns = returns;
        self
    }
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// Sees every write that succeeded before it.
    Strong,
    /// May miss the last second of writes, for half the read units (and any replica can
    /// answer): only for reads a stale answer cannot make wrong, each saying why.
    Eventual,
}

impl Read {
    fn consistent(self) -> bool {
        self == Read::Strong
    }
}

/// A Query; the index can only be read eventually consistent.
#[derive(Debug, Clone)]
pub(super) struct Query {
    pub read: Read,
    pub index: Option<&'static str>,
    pub key_condition: &'static str,
    pub filter: Option<&'static str>,
    pub values: Item,
    pub forward: bool,
    pub limit: Option<i32>,
}

impl Query {
    pub fn new(key_condition: &'static str, values: Item) -> Self {
        Self {
            read: Read::Strong,
            index: None,
            key_condition,
            filter: None,
            values,
            forward: true,
            limit: None,
        }
    }
}

/// A write's answer when its condition may fail.
pub(super) enum Written<T> {
    Done(T),
    /// The condition failed; the item as it was, when DynamoDB sent it back.
    ConditionFailed(Option<Item>),
}

/// One operation of a transaction.
pub(super) enum Tx {
    Put(Put),
    Update(Update),
}

/// One DynamoDB table and the client that reaches it.
#[derive(Clone)]
pub(super) struct Table {
    client: Client,
    name: String,
}

impl Table {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the table with its index and TTL, and waits until it is active.
    pub async fn create(&self) -> Result<(), StoreError> {
        schema::define_table(self.client.create_table().table_name(&self.name))
            .map_err(build_error)?
            .send()
            .await
            .map_err(store_error)?;
        let mut active = false;
        for _ in 0..120 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .map_err(store_error)?;
            if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                active = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !active {
            return Err(StoreError::Unavailable(format!(
                "table {} did not become active",
                self.name
            )));
        }
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(schema::TTL)
            .build()
            .map_err(build_error)?;
        self.client
            .update_time_to_live()
            .table_name(&self.name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Whether the table exists, in any status.
    pub async fn exists(&self) -> Result<bool, StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.name)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(store_error(err)),
        }
    }

    pub async fn delete(&self) -> Result<(), StoreError> {
        self.client
            .delete_table()
            .table_name(&self.name)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    pub async fn get(&self, key: Item, read: Read) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .consistent_read(read.consistent())
            .send()
            .await
            .map_err(store_error)?
            .item)
    }

    /// Several items, one round trip per 100 keys, in no particular order; keys not found are
    /// absent.
    pub async fn batch_get(&self, keys: Vec<Item>, read: Read) -> Result<Vec<Item>, StoreError> {
        // std Mutexes: held only to copy a value in or out, never across an `.await`.
        let found = Mutex::new(Vec::with_capacity(keys.len()));
        for chunk in keys.chunks(100) {
            let wanted = Mutex::new(Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(read.consistent())
                    .build()
                    .map_err(build_error)?,
            ));
            // Keys left unprocessed (a busy partition) are asked for again after a pause.
            retry(|| {
                let (wanted, found) = (&wanted, &found);
                async move {
                    let Some(asked) = wanted.lock().map_err(|_| poisoned())?.clone() else {
                        return Ok(Try::Done(()));
                    };
                    let mut answer = self
                        .client
                        .batch_get_item()
                        .request_items(&self.name, asked)
                        .send()
                        .await
                        .map_err(store_error)?;
                    if let Some(items) =
                        answer.responses.as_mut().and_then(|r| r.remove(&self.name))
                    {
                        found.lock().map_err(|_| poisoned())?.extend(items);
                    }
                    let left = answer
                        .unprocessed_keys
                        .and_then(|mut left| left.remove(&self.name))
                        .filter(|left| !left.keys().is_empty());
                    let again = left.is_some();
                    *wanted.lock().map_err(|_| poisoned())? = left;
                    Ok(if again { Try::Again } else { Try::Done(()) })
                }
            })
            .await?;
        }
        found.into_inner().map_err(|_| poisoned())
    }

    pub async fn put(&self, put: Put) -> Result<Written<()>, StoreError> {
        let conditional = put.condition.is_some();
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition.map(Into::into))
            .set_expression_attribute_values(non_empty(put.values))
            .set_return_values_on_condition_check_failure(
                conditional.then_some(ReturnValuesOnConditionCheckFailure::AllOld),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Written::Done(())),
            Err(err) if is_condition_failed(&err) => {
                let old = match err.into_service_error() {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => e.item,
                    _ => None,
                };
                Ok(Written::ConditionFailed(old))
            }
            Err(err) => Err(store_error(err)),
        }
    }

    /// The attributes the update was asked to return (empty for [`Returns::Nothing`]).
    pub async fn update(&self, update: Update) -> Result<Written<Item>, StoreError> {
        let conditional = update.condition.is_some();
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(update.key))
            .update_expression(update.expression)
            .set_condition_expression(update.condition)
            .set_expression_attribute_values(non_empty(update.values))
            .set_expression_attribute_names(non_empty(update.names))
            .set_return_values(match update.returns {
                Returns::Nothing => None,
                Returns::UpdatedNew => Some(ReturnValue::UpdatedNew),
                Returns::AllOld => Some(ReturnValue::AllOld),
            })
            .set_return_values_on_condition_check_failure(
                conditional.then_some(ReturnValuesOnConditionCheckFailure::AllOld),
            )
            .send()
            .await;
        match result {
            Ok(answer) => Ok(Written::Done(answer.attributes.unwrap_or_default())),
            Err(err) if is_condition_failed(&err) => {
                let old = match err.into_service_error() {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => e.item,
                    _ => None,
                };
                Ok(Written::ConditionFailed(old))
            }
            Err(err) => Err(store_error(err)),
        }
    }

    fn transact_item(&self, op: Tx) -> Result<TransactWriteItem, StoreError> {
        Ok(match op {
            Tx::Put(put) => TransactWriteItem::builder()
                .put(
                    aws_sdk_dynamodb::types::Put::builder()
                        .table_name(&self.name)
                        .set_item(Some(put.item))
                        .set_condition_expression(put.condition.map(Into::into))
                        .set_expression_attribute_values(non_empty(put.values))
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
            Tx::Update(update) => TransactWriteItem::builder()
                .update(
                    aws_sdk_dynamodb::types::Update::builder()
                        .table_name(&self.name)
                        .set_key(Some(update.key))
                        .update_expression(update.expression)
                        .set_condition_expression(update.condition)
                        .set_expression_attribute_values(non_empty(update.values))
                        .set_expression_attribute_names(non_empty(update.names))
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
        })
    }

    /// All or nothing; `Err(Cancelled)` says which conditions failed or that it lost a race.
    pub async fn transact(&self, ops: Vec<Tx>) -> Result<Result<(), Cancelled>, StoreError> {
        let items = ops
            .into_iter()
            .map(|op| self.transact_item(op))
            .collect::<Result<Vec<_>, _>>()?;
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(err) => cancellation(err).map(Err),
        }
    }

    /// One page of a query, and where the next starts.
    pub async fn query_page(
        &self,
        query: &Query,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let answer = self
            .client
            .query()
            .table_name(&self.name)
            .set_index_name(query.index.map(Into::into))
            .key_condition_expression(query.key_condition)
            .set_filter_expression(query.filter.map(Into::into))
            .set_expression_attribute_values(non_empty(query.values.clone()))
            .scan_index_forward(query.forward)
            .set_limit(query.limit)
            // The index cannot be read consistently; the table can.
            .consistent_read(query.index.is_none() && query.read.consistent())
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        Ok((answer.items.unwrap_or_default(), answer.last_evaluated_key))
    }

    /// Every item the query finds, page after page.
    pub async fn query_all(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        self.query_while(query, |_| true).await
    }

    /// Items the query finds, page after page, up to (not including) the first that `keep`
    /// refuses.
    pub async fn query_while(
        &self,
        query: &Query,
        mut keep: impl FnMut(&Item) -> bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query_page(query, start).await?;
            for item in items {
                if !keep(&item) {
                    return Ok(all);
                }
                all.push(item);
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(all),
            }
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("batch read state lock poisoned".into())
}

/// DynamoDB refuses an empty `ExpressionAttributeValues` or `ExpressionAttributeNames`.
fn non_empty<V>(values: HashMap<String, V>) -> Option<HashMap<String, V>> {
    (!values.is_empty()).then_some(values)
}
