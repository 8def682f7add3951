//! How the room counts who has left, without a shared item on any visitor's path.
//!
//! MaxSize caps the visitors in flight: places served plus tokens claimed through a code, minus
//! everyone who has left (sessions completed or abandoned, tokens expired, places whose claim
//! window closed unclaimed). Every one of those exit counts only grows, so a sum read late only
//! makes the room admit a little late, never too many.
//!
//! The counts live in [`STRIPES`] stripes (on DynamoDB, items with their own partition keys, so
//! no item takes more than a share of the claims). Nothing is written when a token expires or a
//! claim window closes: a claim records, in its stripe, the time bucket in which its token
//! expires and the bucket in which its serving move's claim window closes; a session ended
//! early takes its token out of its expiry bucket and counts it as completed or abandoned.
//! Once a bucket has *settled* (ended, plus [`SETTLE_MS`], longer than any claim or session
//! end takes to land), its tokens count as expired, and the places of the moves whose window
//! closed in it count as expired unless claimed. The runner sums the stripes once a pass.

use std::collections::BTreeMap;

use super::counters::EventCounters;
use super::request::{Admission, RequestId, ServingIncrement, SessionEnd};

/// Stripes the exit counts are spread over: claims and session ends of consecutive places go
/// to different stripes, so each takes 1/96 of them. At 20,000 admissions a second (a claim
/// and a session end each) that is ~420 writes a second per stripe, under half of the 1,000 an
/// item takes; and the runner reads every stripe and the event item in one batched read (at
/// most 100 keys).
pub const STRIPES: u64 = 96;
/// Width of a time bucket.
pub const BUCKET_MS: i64 = 10_000;
/// How long after its end a bucket settles: longer than a claim or a session end can take to
/// land (a Lambda function gives up after 10 s), so no count moves out of a settled bucket.
pub const SETTLE_MS: i64 = 30_000;

/// The bucket holding the instant `at_ms`.
pub fn bucket_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(BUCKET_MS)
}

/// The bucket in which a token expiring at `expires_at_s` (a JWT `exp`) expires.
pub fn expiry_bucket(expires_at_s: i64) -> i64 {
    bucket_of(expires_at_s.saturating_mul(1000))
}

/// Whether `bucket` has settled by `now_ms`.
pub fn settled(bucket: i64, now_ms: i64) -> bool {
    (bucket + 1) * BUCKET_MS + SETTLE_MS <= now_ms
}

/// The stripe a visitor's claim and session end are counted in: by place in line, so
/// consecutive places spread evenly; by request id for a visitor let in by a code (no place).
pub fn stripe_of(position: u64, request_id: &RequestId) -> u64 {
    if position > 0 {
        return position % STRIPES;
    }
    // FNV-1a: fixed, so every process picks the same stripe for the same request.
    let hash = request_id
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    hash % STRIPES
}

/// One stripe's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stripe {
    pub completed: u64,
    pub abandoned: u64,
    /// Tokens claimed through a bypass code.
    pub bypassed: u64,
    /// Tokens of settled expiry buckets, folded out of `expiring`.
    pub expired: u64,
    /// Claims through the line of settled claim buckets, folded out of `claims`.
    pub settled_claims: u64,
    /// Tokens by the bucket they expire in, less those whose session ended early.
    pub expiring: BTreeMap<i64, i64>,
    /// Claims through the line by the bucket in which their serving move's window closes.
    pub claims: BTreeMap<i64, i64>,
}

impl Stripe {
    /// Counts a claim (what the DynamoDB adapter's claim expression adds).
    pub fn claim(&mut self, admission: &Admission, expires_at_s: i64) {
        match *admission {
            Admission::Line { claim_by_ms, .. } => {
                *self.claims.entry(bucket_of(claim_by_ms)).or_default() += 1;
            }
            Admission::Bypass => self.bypassed += 1,
        }
        *self
            .expiring
            .entry(expiry_bucket(expires_at_s))
            .or_default() += 1;
    }

    /// Counts a session ended before its token expired.
    pub fn end(&mut self, end: SessionEnd, expires_at_s: i64) {
        match end {
            SessionEnd::Completed => self.completed += 1,
            SessionEnd::Abandoned => self.abandoned += 1,
        }
        *self
            .expiring
            .entry(expiry_bucket(expires_at_s))
            .or_default() -= 1;
    }

    /// Buckets of `expiring` and `claims` that have settled by `now_ms`.
    pub fn settled_buckets(&self, now_ms: i64) -> impl Iterator<Item = i64> + '_ {
        let mut buckets: Vec<i64> = self
            .expiring
            .keys()
            .chain(self.claims.keys())
            .copied()
            .filter(|b| settled(*b, now_ms))
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        buckets.into_iter()
    }

    /// Moves the settled buckets into the base counts, which keeps the stripe small; the sums
    /// are the same before and after.
    pub fn fold(&mut self, now_ms: i64) {
        let (expired, claims) = self.settled_totals(now_ms);
        self.expiring.retain(|b, _| !settled(*b, now_ms));
        self.claims.retain(|b, _| !settled(*b, now_ms));
        self.expired = add(self.expired, expired);
        self.settled_claims = add(self.settled_claims, claims);
    }

    /// Tokens expired and claims counted in the buckets settled by `now_ms` (not yet folded).
    fn settled_totals(&self, now_ms: i64) -> (i64, i64) {
        let sum = |buckets: &BTreeMap<i64, i64>| {
            buckets
                .iter()
                .filter(|(b, _)| settled(**b, now_ms))
                .map(|(_, n)| n)
                .sum::<i64>()
        };
        (sum(&self.expiring), sum(&self.claims))
    }
}

fn add(base: u64, delta: i64) -> u64 {
    base.saturating_add_signed(delta)
}

/// The exit counts of an event summed over its stripes as of one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StripeSums {
    pub completed: u64,
    pub abandoned: u64,
    pub bypassed: u64,
    pub tokens_expired: u64,
    /// Every token ever claimed: each sits in its expiry bucket, or was counted as ended.
    pub tokens_issued: u64,
    /// Claims through the line from moves whose claim window has settled.
    pub settled_claims: u64,
}

impl StripeSums {
    pub fn of<'a>(stripes: impl IntoIterator<Item = &'a Stripe>, now_ms: i64) -> Self {
        let mut sums = StripeSums::default();
        for stripe in stripes {
            let (expired, claims) = stripe.settled_totals(now_ms);
            let open: i64 = stripe.expiring.values().sum();
            sums.completed += stripe.completed;
            sums.abandoned += stripe.abandoned;
            sums.bypassed += stripe.bypassed;
            sums.tokens_expired += add(stripe.expired, expired);
            sums.tokens_issued += add(stripe.completed + stripe.abandoned + stripe.expired, open);
            sums.settled_claims += add(stripe.settled_claims, claims);
        }
        sums
    }
}

/// The last place let in by a move whose claim window has settled by `now_ms`, given the
/// moves after `from` (the last such place known), oldest first. Claim deadlines never go
/// down from one move to the next, so the settled moves are a prefix of the line.
pub fn settled_through(from: u64, moves: &[ServingIncrement], now_ms: i64) -> u64 {
    moves
        .iter()
        .take_while(|m| settled(bucket_of(m.claim_by_ms), now_ms))
        .last()
        .map_or(from, |m| m.serving_counter.max(from))
}

impl EventCounters {
    /// These counters with their exit counts replaced by those summed from the stripes, given
    /// every place up to `settled_through` has had its claim window settle.
    pub fn with_exits(mut self, sums: &StripeSums, settled_through: u64) -> Self {
        self.tokens_issued = sums.tokens_issued;
        self.tokens_bypassed = sums.bypassed;
        self.tokens_completed = sums.completed;
        self.tokens_abandoned = sums.abandoned;
        self.tokens_expired = sums.tokens_expired;
        self.positions_expired = settled_through.saturating_sub(sums.settled_claims);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000;

    fn line(claim_by_ms: i64) -> Admission {
        Admission::Line {
            position: 1,
            claim_by_ms,
        }
    }

    fn moved(previous: u64, serving_counter: u64, claim_by_ms: i64) -> ServingIncrement {
        ServingIncrement {
            previous,
            serving_counter,
            at_ms: claim_by_ms - 60_000,
            claim_by_ms,
        }
    }

    #[test]
    fn a_bucket_settles_after_its_end_and_the_margin() {
        let b = bucket_of(T0 + 5_000);
        assert_eq!(b, bucket_of(T0));
        assert!(!settled(b, T0 + BUCKET_MS + SETTLE_MS - 1));
        assert!(settled(b, T0 + BUCKET_MS + SETTLE_MS));
    }

    #[test]
    fn places_spread_over_every_stripe() {
        let id = RequestId::new(0, 0);
        let mut seen = vec![0; STRIPES as usize];
        for position in 1..=STRIPES * 10 {
            seen[stripe_of(position, &id) as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n == 10));
        assert_eq!(
            stripe_of(0, &id),
            stripe_of(0, &id),
            "a code's visitor: fixed"
        );
    }

    #[test]
    fn tokens_expire_once_their_bucket_settles_unless_ended_first() {
        let mut stripe = Stripe::default();
        let exp_s = (T0 + 100_000) / 1000;
        stripe.claim(&line(T0 + 60_000), exp_s);
        stripe.claim(&line(T0 + 60_000), exp_s);
        stripe.claim(&Admission::Bypass, exp_s);
        stripe.end(SessionEnd::Completed, exp_s);
        let before = StripeSums::of([&stripe], T0 + 100_000);
        assert_eq!(
            (
                before.tokens_issued,
                before.tokens_expired,
                before.completed
            ),
            (3, 0, 1)
        );
        let after = StripeSums::of([&stripe], T0 + 100_000 + BUCKET_MS + SETTLE_MS);
        assert_eq!((after.tokens_issued, after.tokens_expired), (3, 2));
        assert_eq!(after.bypassed, 1);
        assert_eq!(after.settled_claims, 2, "their window settled too");
    }

    #[test]
    fn folding_keeps_every_sum() {
        let mut stripe = Stripe::default();
        for i in 0..20 {
            let at = T0 + i * 7_000;
            stripe.claim(&line(at), at / 1000 + 30);
            if i % 3 == 0 {
                stripe.end(SessionEnd::Abandoned, at / 1000 + 30);
            }
        }
        for now in [T0, T0 + 80_000, T0 + 200_000, T0 + 500_000] {
            let before = StripeSums::of([&stripe], now);
            let mut folded = stripe.clone();
            folded.fold(now);
            assert_eq!(StripeSums::of([&folded], now), before, "at {now}");
            assert_eq!(folded.settled_buckets(now).count(), 0);
        }
    }

    #[test]
    fn exit_counts_never_go_down_as_time_passes_and_sessions_end() {
        // A claim, then its early end: at every instant after, no sum is lower than before.
        let mut stripe = Stripe::default();
        let exp_s = (T0 + 50_000) / 1000;
        stripe.claim(&line(T0 + 20_000), exp_s);
        let exits = |s: &Stripe, now| {
            let sums = StripeSums::of([s], now);
            sums.completed + sums.abandoned + sums.tokens_expired
        };
        let mut ended = stripe.clone();
        ended.end(SessionEnd::Completed, exp_s);
        for now in (T0..T0 + 200_000).step_by(5_000) {
            assert!(exits(&ended, now) >= exits(&stripe, now), "at {now}");
            assert!(exits(&stripe, now + 5_000) >= exits(&stripe, now));
        }
    }

    #[test]
    fn positions_expire_when_their_move_settles_unless_claimed() {
        let moves = [
            moved(0, 4, T0 + 10_000),
            moved(4, 7, T0 + 20_000),
            moved(7, 9, T0 + 90_000),
        ];
        let settle = |at: i64| at + BUCKET_MS + SETTLE_MS;
        assert_eq!(settled_through(0, &moves, T0), 0);
        assert_eq!(settled_through(0, &moves, settle(T0 + 10_000)), 4);
        assert_eq!(settled_through(0, &moves, settle(T0 + 20_000)), 7);
        assert_eq!(settled_through(7, &moves[2..], settle(T0 + 20_000)), 7);
        let mut stripe = Stripe::default();
        stripe.claim(&line(T0 + 10_000), T0 / 1000 + 3_600);
        let now = settle(T0 + 20_000);
        let counters = EventCounters {
            queue_counter: 10,
            serving_counter: 9,
            ..EventCounters::default()
        }
        .with_exits(
            &StripeSums::of([&stripe], now),
            settled_through(0, &moves, now),
        );
        assert_eq!(counters.positions_expired, 6, "7 settled places, 1 claimed");
        assert_eq!(
            counters.pending_claims(),
            2,
            "places 8 and 9 may still claim"
        );
        assert_eq!(counters.in_flight(), 3);
    }
}
