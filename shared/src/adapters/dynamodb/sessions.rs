//! A visitor's own item after it has a position: the position look-up, the token claim and the
//! session end. Each is one read or one conditional write on that item; a claim or an end also
//! adds to one of the event's stripes (`exits.rs`), never to an item every visitor shares.
//!
//! A claim counts itself in its stripe *before* writing the item, and takes the count back if
//! the write is refused: a count that outlives a failure only makes the room admit late. A
//! session end writes the item first and counts after: an end not counted is counted later as
//! the token's expiry.

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::DynamoStore;
use super::codec::{ItemExt, StoredRequest};
use super::schema::{
    Item, RETENTION_SECS, TOKEN_RETENTION_SECS, TOKENS_INDEX, attr, item, num, request_key, string,
    token_partition,
};
use super::table::{Query, Read, Returns, Update, Written};
use crate::domain::exits::{STRIPES, stripe_of};
use crate::domain::{
    Admission, EventId, RequestId, RequestRecord, SessionEnd, SessionStatus, TokenRecord,
};
use crate::ports::{ClaimOutcome, EndOutcome, Page, StoreError};

/// Index stripes read at once when paging expired tokens.
const PARALLEL_READS: usize = 8;

/// The request takes the token, once, and enters the tokens index.
pub(super) fn claim_token(
    event_id: &EventId,
    request_id: &RequestId,
    generation: u64,
    stripe: u64,
    token: &TokenRecord,
    keep_until_s: i64,
) -> Update {
    Update::new(
        request_key(event_id, request_id),
        "SET token_issued_at = :issued_at, token_expires_at = :expires_at, \
         access_token = :access_token, refresh_token = :refresh_token, id_token = :id_token, \
         session_status = :status, token_pk = :token_pk, expires_at = :keep_until",
        item([
            (":issued_at", num(token.issued_at)),
            (":expires_at", num(token.expires_at)),
            (":access_token", string(&token.access_token)),
            (":refresh_token", string(&token.refresh_token)),
            (":id_token", string(&token.id_token)),
            (":status", token.status.into()),
            (
                ":token_pk",
                string(token_partition(event_id, generation, stripe)),
            ),
            (":keep_until", num(keep_until_s)),
            (":generation", num(generation)),
        ]),
    )
    .when(
        "generation = :generation AND attribute_exists(queue_position) \
         AND attribute_not_exists(session_status)",
    )
}

/// How long a request item must outlive its token (it was written to be kept
/// [`RETENTION_SECS`] after entry, before the token was issued).
fn keep_claimed_until_s(token: &TokenRecord) -> i64 {
    (token.issued_at + RETENTION_SECS).max(token.expires_at + TOKEN_RETENTION_SECS)
}

/// Ends a session still active at `now_s`: out of the tokens index, the item as it was back.
fn end_session(
    event_id: &EventId,
    request_id: &RequestId,
    generation: u64,
    end: SessionEnd,
    now_s: i64,
) -> Update {
    Update::new(
        request_key(event_id, request_id),
        "SET session_status = :ended REMOVE token_pk",
        item([
            (":ended", end.status().into()),
            (":active", SessionStatus::Active.into()),
            (":generation", num(generation)),
            (":now", num(now_s)),
        ]),
    )
    .when("generation = :generation AND session_status = :active AND token_expires_at > :now")
    .returning(Returns::AllOld)
}

/// Tokens of one index stripe whose session never ended and that expired by `now_s`, in
/// request id order after `after`.
fn expired_in_stripe(
    event_id: &EventId,
    generation: u64,
    stripe: u64,
    after: Option<&RequestId>,
    now_s: i64,
) -> Query {
    let partition = (":pk", string(token_partition(event_id, generation, stripe)));
    let now = (":now", num(now_s));
    let (key_condition, values) = match after {
        Some(after) => (
            "token_pk = :pk AND request_id > :after",
            item([partition, now, (":after", string(after.to_string()))]),
        ),
        None => ("token_pk = :pk", item([partition, now])),
    };
    Query {
        index: Some(TOKENS_INDEX),
        filter: Some("token_expires_at <= :now"),
        ..Query::new(key_condition, values)
    }
}

impl DynamoStore {
    /// The request item as it is now.
    async fn stored_item(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<Option<Item>, StoreError> {
        self.table
            .get(request_key(event_id, request_id), Read::Strong)
            .await
    }

    pub(super) async fn request(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
    ) -> Result<Option<RequestRecord>, StoreError> {
        let Some(generation) = self.generation(event_id).await? else {
            return Ok(None);
        };
        let Some(stored) = self
            .stored_item(event_id, request_id)
            .await?
            .map(|item| StoredRequest::try_from(&item))
            .transpose()?
        else {
            return Ok(None);
        };
        if stored.generation > generation {
            // Written in a line this process has not seen yet: the cached generation is old.
            self.forget_generation(event_id);
            let current = self.generation(event_id).await?;
            return Ok((current == Some(stored.generation)).then_some(stored.record));
        }
        Ok((stored.generation == generation).then_some(stored.record))
    }

    pub(super) async fn claim(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        admission: Admission,
        token: &TokenRecord,
    ) -> Result<ClaimOutcome, StoreError> {
        let Some(generation) = self.generation(event_id).await? else {
            return Ok(ClaimOutcome::UnknownRequest);
        };
        let position = match admission {
            Admission::Line { position, .. } => position,
            Admission::Bypass => 0,
        };
        let stripe = stripe_of(position, request_id);
        self.count_claim(event_id, generation, stripe, &admission, token)
            .await?;
        let keep_until = keep_claimed_until_s(token);
        let write = claim_token(event_id, request_id, generation, stripe, token, keep_until);
        // An error leaves the count in place: the write may have landed.
        let old = match self.table.update(write).await? {
            Written::Done(_) => return Ok(ClaimOutcome::Claimed(token.clone())),
            Written::ConditionFailed(Some(old)) => Some(old),
            Written::ConditionFailed(None) => self.stored_item(event_id, request_id).await?,
        };
        let old = old
            .map(|item| StoredRequest::try_from(&item))
            .transpose()?
            .filter(|stored| stored.generation == generation);
        let existing = old.and_then(|stored| stored.record.token);
        if existing.as_ref() == Some(token) {
            // Our own write, landed but answered with an error and sent again by the SDK.
            return Ok(ClaimOutcome::Claimed(token.clone()));
        }
        self.uncount_claim(event_id, generation, stripe, &admission, token)
            .await;
        Ok(match existing {
            Some(existing) => ClaimOutcome::Existing(existing),
            None => ClaimOutcome::UnknownRequest,
        })
    }

    pub(super) async fn end(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        end: SessionEnd,
        now_ms: i64,
    ) -> Result<EndOutcome, StoreError> {
        let Some(generation) = self.generation(event_id).await? else {
            return Ok(EndOutcome::UnknownRequest);
        };
        let write = end_session(
            event_id,
            request_id,
            generation,
            end,
            now_ms.div_euclid(1000),
        );
        let old = match self.table.update(write).await? {
            Written::Done(old) => {
                let stored = StoredRequest::try_from(&old)?;
                let expires_at = stored.record.token.map_or(0, |t| t.expires_at);
                let stripe = stripe_of(stored.record.position, request_id);
                self.count_end(event_id, generation, stripe, end, expires_at, now_ms)
                    .await;
                return Ok(EndOutcome::Ended);
            }
            Written::ConditionFailed(Some(old)) => Some(old),
            Written::ConditionFailed(None) => self.stored_item(event_id, request_id).await?,
        };
        let Some(stored) = old
            .map(|item| StoredRequest::try_from(&item))
            .transpose()?
            .filter(|stored| stored.generation == generation)
        else {
            return Ok(EndOutcome::UnknownRequest);
        };
        Ok(match stored.record.token {
            None => EndOutcome::NoToken,
            Some(_) => EndOutcome::AlreadyEnded,
        })
    }

    pub(super) async fn expired(
        &self,
        event_id: &EventId,
        after: Option<RequestId>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page, StoreError> {
        let Some(generation) = self.generation(event_id).await? else {
            return Ok(Page::default());
        };
        // One more than asked, to know whether there is a next page.
        let wanted = limit.saturating_add(1);
        let now_s = now_ms.div_euclid(1000);
        let reads: Vec<_> = (0..STRIPES)
            .map(|stripe| {
                let query = expired_in_stripe(event_id, generation, stripe, after.as_ref(), now_s);
                async move {
                    let mut found = 0;
                    self.table
                        .query_while(&query, |_| {
                            found += 1;
                            found <= wanted
                        })
                        .await
                }
            })
            .collect();
        let stripes: Vec<Vec<Item>> = stream::iter(reads)
            .buffer_unordered(PARALLEL_READS)
            .try_collect()
            .await?;
        let mut items = stripes
            .iter()
            .flatten()
            .map(|item| {
                RequestId::parse(item.string(attr::REQUEST_ID)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_unstable();
        items.truncate(wanted);
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().copied()
        } else {
            None
        };
        Ok(Page { items, next })
    }
}
