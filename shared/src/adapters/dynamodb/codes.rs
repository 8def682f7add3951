//! Bypass and invite codes: one item per code under the event's code partition, with the uses
//! it has left. Redeeming uses the code and records the visitor in one transaction, so a
//! single-use code redeemed twice at the same moment lets exactly one visitor in.

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::DynamoStore;
use super::retry::{Try, retry};
use super::schema::{
    Item, RETENTION_SECS, TTL, attr, boolean, code_key, item, num, request_key, string, ttl_after,
};
use super::table::{Put, Read, Tx, Update};
use crate::domain::{BypassCode, EnqueueRequest, EventId};
use crate::ports::{RedeemOutcome, StoreError};

/// Codes written at once.
const PARALLEL_WRITES: usize = 32;

/// Adds (or replaces) a code.
fn put_code(event_id: &EventId, code: &BypassCode) -> Put {
    let mut code_item = code_key(event_id, &code.code);
    code_item.extend(item([
        (attr::USES_LEFT, num(code.uses_left)),
        (attr::CREATED_AT_MS, num(code.created_at_ms)),
    ]));
    Put {
        item: code_item,
        condition: None,
        values: Item::new(),
    }
}

/// Uses a code once: refused when it does not exist or has no use left.
fn use_code(event_id: &EventId, code: &str) -> Update {
    Update::new(
        code_key(event_id, code),
        "SET uses_left = uses_left - :one",
        item([(":one", num(1))]),
    )
    .when("uses_left >= :one")
}

/// A request let in by a code: served at once, with no place in line (position 0).
fn bypass_request(request: &EnqueueRequest, generation: u64) -> Put {
    let mut request_item = request_key(&request.event_id, &request.request_id);
    request_item.extend(item([
        (attr::REQUEST_ID, string(request.request_id.to_string())),
        (attr::EVENT_ID, string(request.event_id.as_str())),
        (attr::GENERATION, num(generation)),
        (attr::ENTRY_TIME_MS, num(request.entry_time_ms)),
        (attr::QUEUE_POSITION, num(0)),
        (attr::BYPASS, boolean(true)),
        (TTL, ttl_after(request.entry_time_ms, RETENTION_SECS)),
    ]));
    Put {
        item: request_item,
        condition: Some("attribute_not_exists(pk)"),
        values: Item::new(),
    }
}

impl DynamoStore {
    pub(super) async fn add_codes(
        &self,
        event_id: &EventId,
        codes: &[BypassCode],
    ) -> Result<bool, StoreError> {
        if self.event_state(event_id, Read::Strong).await?.is_none() {
            return Ok(false);
        }
        let writes: Vec<_> = codes
            .iter()
            .map(|code| self.table.put(put_code(event_id, code)))
            .collect();
        stream::iter(writes)
            .buffer_unordered(PARALLEL_WRITES)
            .try_for_each(|_| async { Ok(()) })
            .await?;
        Ok(true)
    }

    pub(super) async fn redeem(
        &self,
        event_id: &EventId,
        code: &str,
        request: &EnqueueRequest,
    ) -> Result<RedeemOutcome, StoreError> {
        let Some(state) = self.event_state(event_id, Read::Strong).await? else {
            return Ok(RedeemOutcome::Refused);
        };
        let generation = state.counters.generation;
        retry(|| async move {
            let ops = vec![
                Tx::Update(use_code(event_id, code)),
                Tx::Put(bypass_request(request, generation)),
            ];
            Ok(match self.table.transact(ops).await? {
                Ok(()) => Try::Done(RedeemOutcome::Redeemed),
                Err(cancelled) if cancelled.conflict => Try::Again,
                // The code is unknown or used up (the request id is fresh, so never taken).
                Err(_) => Try::Done(RedeemOutcome::Refused),
            })
        })
        .await
    }
}
