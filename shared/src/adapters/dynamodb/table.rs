//! The table as the store uses it: typed wrappers over the SDK calls (strongly consistent
//! reads, conditional writes whose failure is an answer, all-or-nothing transactions, paged
//! queries). Expressions come from [`super::keys`]; this module only sends them.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure, TableStatus,
    TimeToLiveSpecification, TransactWriteItem,
};

use super::errors::{Cancelled, build_error, cancellation, is_condition_failed, store_error};
use super::items::Item;
use super::keys::{self, Put, Query, Update};
use super::{ATTEMPTS, pause};
use crate::ports::StoreError;

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

    /// Creates the table with its indexes and TTL, and waits until it is active.
    pub async fn create(&self) -> Result<(), StoreError> {
        keys::define_table(self.client.create_table().table_name(&self.name))
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
            .attribute_name(keys::TTL)
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

    pub async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?
            .item)
    }

    /// Several items in one round trip (strongly consistent), in no particular order.
    pub async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut wanted = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            for attempt in 0..ATTEMPTS {
                let mut answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, wanted)
                    .send()
                    .await
                    .map_err(store_error)?;
                if let Some(items) = answer.responses.as_mut().and_then(|r| r.remove(&self.name)) {
                    found.extend(items);
                }
                match answer
                    .unprocessed_keys
                    .and_then(|mut left| left.remove(&self.name))
                    .filter(|left| !left.keys().is_empty())
                {
                    None => break,
                    Some(left) if attempt + 1 < ATTEMPTS => {
                        wanted = left;
                        pause(attempt).await;
                    }
                    Some(_) => return Err(StoreError::Throttled),
                }
            }
        }
        Ok(found)
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

    pub async fn update(&self, update: Update) -> Result<Written<Item>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(update.key))
            .update_expression(update.expression)
            .set_condition_expression(update.condition.map(Into::into))
            .set_expression_attribute_values(non_empty(update.values))
            .set_return_values(update.return_new.then_some(ReturnValue::UpdatedNew))
            .send()
            .await;
        match result {
            Ok(answer) => Ok(Written::Done(answer.attributes.unwrap_or_default())),
            Err(err) if is_condition_failed(&err) => Ok(Written::ConditionFailed(None)),
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
                        .set_condition_expression(update.condition.map(Into::into))
                        .set_expression_attribute_values(non_empty(update.values))
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
            .set_expression_attribute_values(non_empty(query.values.clone()))
            .scan_index_forward(query.forward)
            .set_limit(query.limit)
            // Indexes cannot be read consistently; the table can.
            .consistent_read(query.index.is_none())
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        Ok((answer.items.unwrap_or_default(), answer.last_evaluated_key))
    }

    pub async fn query_all(&self, query: Query) -> Result<Vec<Item>, StoreError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query_page(&query, start).await?;
            all.extend(items);
            match next {
                Some(next) => start = Some(next),
                None => return Ok(all),
            }
        }
    }
}

/// DynamoDB refuses an empty `ExpressionAttributeValues`.
fn non_empty(values: Item) -> Option<Item> {
    (!values.is_empty()).then_some(values)
}
