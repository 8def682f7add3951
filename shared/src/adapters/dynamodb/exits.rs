//! The exit counts on DynamoDB: [`STRIPES`] stripe items per event and generation, each with
//! its own partition key, holding what [`crate::domain::exits`] describes. A claim or a
//! session end is one `ADD` on one stripe (a time bucket is an attribute, named at run time);
//! no visitor writes an item every visitor shares. The runner reads the event item and every
//! stripe in one batched read per pass, plus the serving moves whose claim window has not
//! settled yet, and records the sums on the event item for the hot reads.
//!
//! A stripe keeps one attribute per live bucket; once a stripe holds [`FOLD_AT`] settled
//! buckets the runner folds them into its base counts (a write conditional on the values it
//! read), so stripes stay small however long the sale runs. A stripe not written for
//! [`RETENTION_SECS`] is removed by TTL: by then every token in it has expired and every claim
//! window has closed, so its counts no longer change anything in flight.

use super::DynamoStore;
use super::codec::EventState;
use super::retry::{Try, retry};
use super::schema::{
    Item, PK, RETENTION_SECS, attr, claims_attr, event_key, expiring_attr, item, num, stripe_key,
    ttl_after,
};
use super::table::{Read, Update, Written};
use crate::domain::exits::{
    STRIPES, Stripe, StripeSums, bucket_of, expiry_bucket, settled, settled_through,
};
use crate::domain::{Admission, EventCounters, EventId, SessionEnd, TokenRecord};
use crate::ports::{ExitsSettled, StoreError};

/// Settled buckets a stripe gathers before the runner folds them.
const FOLD_AT: usize = 32;
/// Most buckets folded in one write (keeps the expression small).
const FOLD_MOST: usize = 64;

/// `sign` × one claim: +1 counts it, −1 takes it back.
pub(super) fn count_claim(
    event_id: &EventId,
    generation: u64,
    stripe: u64,
    admission: &Admission,
    token: &TokenRecord,
    sign: i64,
) -> Update {
    // Through the line: the bucket its move's claim window closes in; by a code: `bypassed`.
    let admitted = match *admission {
        Admission::Line { claim_by_ms, .. } => claims_attr(bucket_of(claim_by_ms)),
        Admission::Bypass => attr::BYPASSED.to_owned(),
    };
    let mut update = Update::new(
        stripe_key(event_id, generation, stripe),
        "ADD #admitted :n, #expiring :n SET expires_at = :keep",
        item([
            (":n", num(sign)),
            (":keep", ttl_after(token.issued_at * 1000, RETENTION_SECS)),
        ]),
    );
    update.names.insert("#admitted".into(), admitted);
    update.names.insert(
        "#expiring".into(),
        expiring_attr(expiry_bucket(token.expires_at)),
    );
    update
}

/// A session ended before its token expired: out of its expiry bucket, counted as ended.
fn count_end(
    event_id: &EventId,
    generation: u64,
    stripe: u64,
    end: SessionEnd,
    expires_at_s: i64,
    now_ms: i64,
) -> Update {
    let ended = match end {
        SessionEnd::Completed => attr::COMPLETED,
        SessionEnd::Abandoned => attr::ABANDONED,
    };
    let mut update = Update::new(
        stripe_key(event_id, generation, stripe),
        "ADD #ended :one, #expiring :minus_one SET expires_at = :keep",
        item([
            (":one", num(1)),
            (":minus_one", num(-1)),
            (":keep", ttl_after(now_ms, RETENTION_SECS)),
        ]),
    );
    update.names.insert("#ended".into(), ended.to_owned());
    update.names.insert(
        "#expiring".into(),
        expiring_attr(expiry_bucket(expires_at_s)),
    );
    update
}

/// Folds a stripe's settled buckets into its base counts, if it has gathered enough; the
/// write only lands if those buckets still hold what was read.
fn fold(
    event_id: &EventId,
    generation: u64,
    stripe: u64,
    counts: &Stripe,
    now_ms: i64,
) -> Option<Update> {
    let buckets: Vec<(String, i64, bool)> = counts
        .expiring
        .iter()
        .map(|(b, n)| (expiring_attr(*b), *n, true, *b))
        .chain(
            counts
                .claims
                .iter()
                .map(|(b, n)| (claims_attr(*b), *n, false, *b)),
        )
        .filter(|(_, _, _, b)| settled(*b, now_ms))
        .take(FOLD_MOST)
        .map(|(name, n, expiring, _)| (name, n, expiring))
        .collect();
    if buckets.len() < FOLD_AT {
        return None;
    }
    let mut update = Update::new(
        stripe_key(event_id, generation, stripe),
        String::new(),
        item([(":zero", num(0))]),
    );
    let (mut expired, mut claims) = (0i64, 0i64);
    let mut removed = Vec::new();
    let mut unchanged = Vec::new();
    for (i, (name, n, expiring)) in buckets.into_iter().enumerate() {
        if expiring {
            expired += n;
        } else {
            claims += n;
        }
        update.names.insert(format!("#b{i}"), name);
        update.values.insert(format!(":v{i}"), num(n));
        removed.push(format!("#b{i}"));
        unchanged.push(format!("#b{i} = :v{i}"));
    }
    update.values.insert(":expired".into(), num(expired));
    update.values.insert(":claims".into(), num(claims));
    update.expression = format!(
        "SET expired = if_not_exists(expired, :zero) + :expired, \
         settled_claims = if_not_exists(settled_claims, :zero) + :claims REMOVE {}",
        removed.join(", ")
    );
    Some(update.when(unchanged.join(" AND ")))
}

/// The stripe number of a stripe item (the end of its partition key).
fn stripe_number(found: &Item) -> Option<u64> {
    match found.get(PK) {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) => pk
            .strip_prefix("STRIPE#")
            .and_then(|rest| rest.rsplit('#').next())
            .and_then(|n| n.parse().ok()),
        _ => None,
    }
}

/// Records the exit counts summed at `now_ms`, unless a later settlement already did.
fn record_exits(
    event_id: &EventId,
    generation: u64,
    counters: &EventCounters,
    settled_through: u64,
    now_ms: i64,
) -> Update {
    Update::new(
        event_key(event_id),
        "SET tokens_issued = :issued, tokens_bypassed = :bypassed, \
         tokens_completed = :completed, tokens_abandoned = :abandoned, \
         tokens_expired = :tokens_expired, positions_expired = :positions_expired, \
         settled_through = :through, settled_at_ms = :now",
        item([
            (":issued", num(counters.tokens_issued)),
            (":bypassed", num(counters.tokens_bypassed)),
            (":completed", num(counters.tokens_completed)),
            (":abandoned", num(counters.tokens_abandoned)),
            (":tokens_expired", num(counters.tokens_expired)),
            (":positions_expired", num(counters.positions_expired)),
            (":through", num(settled_through)),
            (":now", num(now_ms)),
            (":generation", num(generation)),
        ]),
    )
    .when("generation = :generation AND settled_at_ms < :now")
}

/// The exit counts of an event summed at one instant.
pub(super) struct Summed {
    state: EventState,
    pub current: EventCounters,
    settled_through: u64,
    stripes: Vec<(u64, Stripe)>,
}

impl DynamoStore {
    /// One `ADD` on a stripe, tried again while throttled.
    async fn add_to_stripe(&self, build: impl Fn() -> Update) -> Result<(), StoreError> {
        retry(|| {
            let add = build();
            async move { self.table.update(add).await.map(|_| Try::Done(())) }
        })
        .await
    }

    /// Counts a claim in its stripe (before the claim is written).
    pub(super) async fn count_claim(
        &self,
        event_id: &EventId,
        generation: u64,
        stripe: u64,
        admission: &Admission,
        token: &TokenRecord,
    ) -> Result<(), StoreError> {
        self.add_to_stripe(|| count_claim(event_id, generation, stripe, admission, token, 1))
            .await
    }

    /// Takes back the count of a claim refused after it was counted. If this fails, the count
    /// stays: the room then admits a little late until the token's expiry bucket settles.
    pub(super) async fn uncount_claim(
        &self,
        event_id: &EventId,
        generation: u64,
        stripe: u64,
        admission: &Admission,
        token: &TokenRecord,
    ) {
        let undo = || count_claim(event_id, generation, stripe, admission, token, -1);
        if let Err(error) = self.add_to_stripe(undo).await {
            tracing::warn!(%error, event_id = %event_id, "refused claim left counted");
        }
    }

    /// Counts a session end (after the session was ended). If this fails, the token is
    /// counted as expired once its bucket settles instead.
    pub(super) async fn count_end(
        &self,
        event_id: &EventId,
        generation: u64,
        stripe: u64,
        end: SessionEnd,
        expires_at_s: i64,
        now_ms: i64,
    ) {
        let add = || count_end(event_id, generation, stripe, end, expires_at_s, now_ms);
        if let Err(error) = self.add_to_stripe(add).await {
            tracing::warn!(%error, event_id = %event_id, "session end not counted; it counts as expired later");
        }
    }

    /// The event item and every stripe in one batched read, and the serving moves whose claim
    /// window had not settled at the last settlement.
    pub(super) async fn sum_exits(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<Summed>, StoreError> {
        retry(|| async move {
            let Some(generation) = self.generation(event_id).await? else {
                return Ok(Try::Done(None));
            };
            let event = event_key(event_id);
            let mut keys = vec![event.clone()];
            keys.extend((0..STRIPES).map(|s| stripe_key(event_id, generation, s)));
            let mut state = None;
            let mut stripes = Vec::with_capacity(STRIPES as usize);
            // Eventual: a stale stripe shows fewer exits (it only ever gains them), and a stale
            // event item a smaller serving counter, which makes the runner's move conditional
            // on it fail: either way the room admits late, never too many.
            for found in self.table.batch_get(keys, Read::Eventual).await? {
                if found.get(PK) == event.get(PK) {
                    state = Some(EventState::try_from(&found)?);
                } else if let Some(n) = stripe_number(&found) {
                    stripes.push((n, Stripe::try_from(&found)?));
                }
            }
            let Some(state) = state else {
                self.forget_generation(event_id);
                return Ok(Try::Done(None));
            };
            if state.counters.generation != generation {
                // Reset by another process since the generation was cached.
                self.forget_generation(event_id);
                return Ok(Try::Again);
            }
            let moves = self
                .moves_of(event_id, generation, state.settled_through)
                .await?;
            let through = settled_through(state.settled_through, &moves, now_ms);
            let sums = StripeSums::of(stripes.iter().map(|(_, s)| s), now_ms);
            Ok(Try::Done(Some(Summed {
                current: state.counters.with_exits(&sums, through),
                state,
                settled_through: through,
                stripes,
            })))
        })
        .await
    }

    pub(super) async fn settle(
        &self,
        event_id: &EventId,
        now_ms: i64,
    ) -> Result<Option<ExitsSettled>, StoreError> {
        let Some(summed) = self.sum_exits(event_id, now_ms).await? else {
            return Ok(None);
        };
        let previous = summed.state.counters;
        let current = summed.current;
        let generation = current.generation;
        if current != previous || summed.settled_through != summed.state.settled_through {
            let record = record_exits(
                event_id,
                generation,
                &current,
                summed.settled_through,
                now_ms,
            );
            // Refused: a later settlement or a reset got there first; theirs stands.
            self.table.update(record).await?;
        }
        for (n, stripe) in &summed.stripes {
            if let Some(update) = fold(event_id, generation, *n, stripe, now_ms)
                && let Written::ConditionFailed(_) = self.table.update(update).await?
            {
                tracing::debug!(event_id = %event_id, stripe = n, "stripe changed while folding; folded next pass");
            }
        }
        Ok(Some(ExitsSettled { previous, current }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::event_on_moto;
    use super::*;
    use crate::domain::SessionStatus;
    use crate::domain::exits::{BUCKET_MS, SETTLE_MS};

    const T0_MS: i64 = 1_767_225_600_000;

    fn token(expires_at_s: i64) -> TokenRecord {
        TokenRecord {
            issued_at: T0_MS / 1000,
            expires_at: expires_at_s,
            access_token: "a".into(),
            refresh_token: "r".into(),
            id_token: "i".into(),
            status: SessionStatus::Active,
        }
    }

    #[test]
    fn a_claim_and_its_undo_touch_the_same_buckets_with_opposite_signs() {
        let e = EventId::parse("e").unwrap();
        let line = Admission::Line {
            position: 3,
            claim_by_ms: T0_MS,
        };
        let add = count_claim(&e, 0, 3, &line, &token(T0_MS / 1000 + 60), 1);
        let undo = count_claim(&e, 0, 3, &line, &token(T0_MS / 1000 + 60), -1);
        assert_eq!((&add.key, &add.names), (&undo.key, &undo.names));
        assert_eq!(add.values.get(":n"), Some(&num(1)));
        assert_eq!(undo.values.get(":n"), Some(&num(-1)));
        let bypass = count_claim(&e, 0, 3, &Admission::Bypass, &token(0), 1);
        assert_eq!(
            bypass.names.get("#admitted").map(String::as_str),
            Some("bypassed")
        );
    }

    #[tokio::test]
    async fn folding_a_stripe_keeps_its_sums_and_sheds_its_buckets() {
        let Some((store, event_id)) = event_on_moto(T0_MS).await else {
            return;
        };
        // Claims in one stripe spread over 40 buckets, one in four ended early.
        for i in 0..40 {
            let at = T0_MS + i * BUCKET_MS;
            let claim = Admission::Line {
                position: 32,
                claim_by_ms: at,
            };
            let t = token(at / 1000 + 5);
            store
                .count_claim(&event_id, 0, 0, &claim, &t)
                .await
                .unwrap();
            if i % 4 == 0 {
                store
                    .count_end(&event_id, 0, 0, SessionEnd::Completed, t.expires_at, at)
                    .await;
            }
        }
        let later = T0_MS + 60 * BUCKET_MS + SETTLE_MS;
        let before = store.sum_exits(&event_id, later).await.unwrap().unwrap();
        let counts = &before.stripes.iter().find(|(n, _)| *n == 0).unwrap().1;
        assert!(counts.settled_buckets(later).count() >= FOLD_AT);
        store.settle(&event_id, later).await.unwrap();
        let after = store.sum_exits(&event_id, later).await.unwrap().unwrap();
        let folded = &after.stripes.iter().find(|(n, _)| *n == 0).unwrap().1;
        assert!(folded.settled_buckets(later).count() < FOLD_AT);
        assert_eq!(after.current, before.current);
        assert_eq!(
            (after.current.tokens_completed, after.current.tokens_expired),
            (10, 30)
        );
        store.delete_table().await.unwrap();
    }
}
