//! Store calls per admitted visitor, counted by [`InstrumentedStore`] while visitors go through
//! the real room: join → position look-ups at the page's own pace (doubling pauses from 500 ms while the
//! request has no position, then at the `next_poll_ms` `/status` gives) → admission by the
//! strategy runner → token claim → session end by `update_session` (or, for some, token
//! expiry; and some served visitors never claim, so their places expire). Time is a manual
//! clock, so the run is exact and repeatable. On a [`DynamoStore`] every DynamoDB call is also
//! recorded on the wire, with the items it touched and the capacity it took, per step.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use waiting_room_core::WaitingRoom;
use waiting_room_core::adapters::dynamodb::CallRecord;
use waiting_room_core::adapters::{
    DynamoStore, InstrumentedStore, ManualClock, MemoryBuffer, MemoryStore,
};
use waiting_room_core::domain::exits;
use waiting_room_core::domain::{EventConfig, EventId, RequestId, SessionEnd, Strategy};
use waiting_room_core::error::Error;
use waiting_room_core::ports::{Clock, Store};
use waiting_room_core::service::CacheSettings;
use waiting_room_core::token::{KeyAlgorithm, KeyRing, SigningKey, TokenIssuer};

/// Store operations that change state (a write on DynamoDB); every other one only reads.
pub const WRITES: &[&str] = &[
    "append_audit",
    "advance_serving",
    "assign_positions",
    "claim_token",
    "create_event",
    "end_session",
    "put_codes",
    "record_draw",
    "redeem_code",
    "reset_event",
    "settle_exits",
    "update_event",
];

/// DynamoDB operations that write.
pub const DYNAMODB_WRITES: &[&str] = &[
    "BatchWriteItem",
    "DeleteItem",
    "PutItem",
    "TransactWriteItems",
    "UpdateItem",
];

pub fn is_write(operation: &str) -> bool {
    WRITES.contains(&operation) || DYNAMODB_WRITES.contains(&operation)
}

/// The page's pause before look-up `attempt` (0 after joining) of a request that has no
/// position yet: quick at first, doubling up to 8 s (`unplacedDelayMs` in
/// `shared/web/assets/queue.js`, which the page's jitter spreads by ±15%; a test runs the
/// page's function to check they agree).
pub fn unplaced_delay_ms(attempt: u32) -> i64 {
    (500_i64 << attempt.min(4)).min(8_000)
}

/// The store the counted room runs on.
pub enum Backend {
    Memory,
    /// A DynamoDB table (created beforehand), whose calls are also recorded on the wire.
    DynamoDb(DynamoStore),
}

/// What the visitors (and the room's own tasks) did, in the order of the journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// `POST /assign_queue_num`.
    Enqueue,
    /// The consumer assigning one batch of positions.
    Batch,
    /// One `GET /status` before the request has a position.
    UnplacedPoll,
    /// One `GET /status` with a position, not yet let in.
    Poll,
    /// The `GET /status` that finds the visitor let in (it also reads the serving move).
    ServedPoll,
    /// One reload of a process's cached event view (config, counters, admission rate), which
    /// a busy instance does about once a second and after it changed the event.
    ViewLoad,
    /// One pass of the strategy runner during the event (expiry, admission).
    RunnerPass,
    /// One `POST /generate_token` that issued a token.
    Token,
    /// One `POST /update_session` that ended a session.
    SessionEnd,
    /// One pass of the strategy runner with nobody waiting and nothing to expire.
    IdlePass,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Step::Enqueue,
        Step::Batch,
        Step::UnplacedPoll,
        Step::Poll,
        Step::ServedPoll,
        Step::ViewLoad,
        Step::RunnerPass,
        Step::Token,
        Step::SessionEnd,
        Step::IdlePass,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Step::Enqueue => "enqueue (per visitor)",
            Step::Batch => "consumer batch (per batch)",
            Step::UnplacedPoll => "poll, no position yet",
            Step::Poll => "poll /status, waiting",
            Step::ServedPoll => "poll /status, let in",
            Step::ViewLoad => "event view reload",
            Step::RunnerPass => "strategy pass (per pass)",
            Step::Token => "generate_token (per token)",
            Step::SessionEnd => "update_session (per end)",
            Step::IdlePass => "idle strategy pass",
        }
    }

    /// A visitor's request that reads the event through its process's cache: the event reads
    /// seen during it are reloads of that cache, which scale with instances, not requests.
    pub fn reads_cached_event(self) -> bool {
        matches!(
            self,
            Step::Enqueue | Step::UnplacedPoll | Step::Poll | Step::ServedPoll | Step::Token
        )
    }

    /// The visitors one occurrence acts on: the visitor itself, a batch's visitors, the
    /// tokens a pass expired, or none.
    pub fn acts_on_visitors(self) -> bool {
        !matches!(self, Step::ViewLoad | Step::IdlePass)
    }
}

/// The settings of a counting run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowSettings {
    pub visitors: u64,
    /// Visitors arriving per second (the consumer takes one batch per second, as SQS's
    /// batching window does).
    pub arrivals_per_sec: u64,
    pub strategy: Strategy,
    pub runner_every_ms: i64,
    /// Every this many-th served visitor never claims its token (its place expires).
    pub abandon_every: u64,
    /// Every this many-th session is left to expire with its token instead of being ended.
    pub expire_every: u64,
    /// How long a session lasts before the main app ends it.
    pub session_secs: i64,
    /// Token lifetime and claim window of the run's event (short, so expiry happens in it).
    pub token_ttl_secs: u64,
    pub position_expiry_secs: u64,
}

impl Default for FlowSettings {
    fn default() -> Self {
        Self {
            visitors: 10_000,
            arrivals_per_sec: 1_000,
            // Slower than the arrivals, so visitors wait and poll before they are let in.
            strategy: Strategy::Periodic {
                increment_by: 50,
                interval_secs: 2,
            },
            runner_every_ms: 2_000,
            abandon_every: 20,
            expire_every: 10,
            session_secs: 30,
            token_ttl_secs: 120,
            position_expiry_secs: 60,
        }
    }
}

/// Calls counted in one run.
#[derive(Debug, Clone, Default)]
pub struct FlowCounts {
    pub visitors: u64,
    pub admitted: u64,
    pub simulated_secs: f64,
    /// How many times each step happened.
    pub steps: BTreeMap<Step, u64>,
    /// Visitors the occurrences of each step acted on (see [`Step::acts_on_visitors`]).
    pub step_visitors: BTreeMap<Step, u64>,
    /// Store calls per operation, made during each step.
    pub calls: BTreeMap<Step, BTreeMap<&'static str, u64>>,
    /// On DynamoDB: every call made during each step, with what it touched.
    pub wire: BTreeMap<Step, Vec<CallRecord>>,
}

impl FlowCounts {
    pub fn times(&self, step: Step) -> u64 {
        self.steps.get(&step).copied().unwrap_or(0)
    }

    pub fn visitors_of(&self, step: Step) -> u64 {
        self.step_visitors.get(&step).copied().unwrap_or(0)
    }

    /// Store calls of one operation made per occurrence of `step`.
    pub fn per(&self, step: Step, operation: &str) -> f64 {
        let calls = self
            .calls
            .get(&step)
            .and_then(|c| c.get(operation))
            .copied()
            .unwrap_or(0);
        ratio(calls, self.times(step))
    }

    fn total(&self, keep: impl Fn(&str) -> bool) -> u64 {
        self.calls
            .values()
            .flat_map(|calls| calls.iter())
            .filter(|(operation, _)| keep(operation))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn writes_per_admitted(&self) -> f64 {
        ratio(self.total(is_write), self.admitted)
    }

    pub fn reads_per_admitted(&self) -> f64 {
        ratio(self.total(|op| !is_write(op)), self.admitted)
    }

    /// Look-ups (`/status` polls, placed or not) per admitted visitor.
    pub fn polls_per_admitted(&self) -> f64 {
        ratio(
            self.times(Step::Poll) + self.times(Step::ServedPoll) + self.times(Step::UnplacedPoll),
            self.admitted,
        )
    }

    /// Every operation seen, in name order.
    pub fn operations(&self) -> Vec<&'static str> {
        let mut all: Vec<&'static str> = self
            .calls
            .values()
            .flat_map(|c| c.keys().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// DynamoDB calls of one operation per occurrence of `step`.
    pub fn wire_per(&self, step: Step, operation: &str) -> f64 {
        let calls = self.wire.get(&step).map_or(0, |records| {
            records.iter().filter(|r| r.operation == operation).count() as u64
        });
        ratio(calls, self.times(step))
    }

    /// Every DynamoDB operation seen, in name order.
    pub fn wire_operations(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .wire
            .values()
            .flat_map(|records| records.iter().map(|r| r.operation.clone()))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

pub(crate) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Joined; asks at the page's back-off until it has a position.
    Unplaced,
    Waiting,
    /// Served but never claims: done (its place expires in a runner pass).
    Abandoned,
    /// Holds a token; its session ends at `ends_at_ms` (or never, when left to expire).
    Active {
        ends_at_ms: Option<i64>,
    },
    Done,
}

struct Visitor {
    request_id: RequestId,
    next_poll_ms: i64,
    /// Look-ups that found no position yet.
    unplaced_asks: u32,
    stage: Stage,
}

/// Counts the store calls of `settings.visitors` visitors going through the whole journey.
pub async fn count_store_calls(settings: &FlowSettings, backend: Backend) -> FlowCounts {
    match backend {
        Backend::Memory => run(settings, MemoryStore::new(), None).await,
        Backend::DynamoDb(store) => {
            store.record_items();
            run(settings, store.clone(), Some(store)).await
        }
    }
}

/// Attributes the calls made since the last record to a step.
struct Recorder<S> {
    store: Arc<InstrumentedStore<S>>,
    wire: Option<DynamoStore>,
    last: BTreeMap<&'static str, u64>,
    counts: FlowCounts,
}

impl<S: Store> Recorder<S> {
    /// Records one occurrence of `step`, acting on `visitors`, and returns how many calls it made.
    fn record(&mut self, step: Step, visitors: u64) -> u64 {
        let now = self.store.calls();
        let into = self.counts.calls.entry(step).or_default();
        let mut made = 0;
        for (operation, n) in &now {
            let before = self.last.get(operation).copied().unwrap_or(0);
            if *n > before {
                *into.entry(operation).or_default() += n - before;
                made += n - before;
            }
        }
        self.last = now;
        *self.counts.steps.entry(step).or_default() += 1;
        *self.counts.step_visitors.entry(step).or_default() += visitors;
        if let Some(wire) = &self.wire {
            let records = wire.take_records();
            made += records.len() as u64;
            self.counts.wire.entry(step).or_default().extend(records);
        }
        made
    }

    /// Records `step` only if it made a call (a cache hit is no view reload).
    fn record_if_called(&mut self, step: Step) {
        let before_steps = self.counts.steps.clone();
        let before_visitors = self.counts.step_visitors.clone();
        if self.record(step, 0) == 0 {
            self.counts.steps = before_steps;
            self.counts.step_visitors = before_visitors;
        }
    }
}

async fn run<S: Store + 'static>(
    settings: &FlowSettings,
    inner: S,
    wire: Option<DynamoStore>,
) -> FlowCounts {
    let start_ms = waiting_room_core::adapters::SystemClock.now_ms();
    let clock = Arc::new(ManualClock::new(start_ms));
    let store = Arc::new(InstrumentedStore::new(inner));
    let buffer = Arc::new(MemoryBuffer::new(settings.visitors as usize + 1));
    let key = SigningKey::generate(KeyAlgorithm::RS256).expect("key generation");
    let room = WaitingRoom::new(store.clone(), clock.clone(), CacheSettings::default())
        .with_buffer(buffer.clone())
        .with_tokens(TokenIssuer::new(
            Arc::new(KeyRing::new(key, vec![])),
            "capacity",
        ));
    let event = EventId::parse("demo").expect("event id");
    let mut config = EventConfig::new(event.clone());
    config.strategy = settings.strategy.clone();
    config.token_ttl_secs = settings.token_ttl_secs;
    config.position_expiry_secs = settings.position_expiry_secs;
    room.ensure_event(config).await.expect("event");

    let mut rec = Recorder {
        last: store.calls(),
        store,
        wire,
        counts: FlowCounts {
            visitors: settings.visitors,
            ..FlowCounts::default()
        },
    };
    if let Some(wire) = &rec.wire {
        wire.take_records(); // the event's creation is no step of the journey
    }

    let gap_ms = (1_000 / settings.arrivals_per_sec.max(1)).max(1) as i64;
    let per_batch = settings.arrivals_per_sec.max(1);
    let mut visitors: Vec<Visitor> = Vec::with_capacity(settings.visitors as usize);
    let mut served = 0u64;
    let mut claimed = 0u64;
    let tick_ms = 100;
    let mut next_pass_ms = clock.now_ms();
    let mut next_batch_ms = clock.now_ms() + 1_000;
    let deadline_ms = clock.now_ms() + 24 * 3600 * 1000;
    let mut next_arrival_ms = clock.now_ms();
    let mut arrived = 0u64;
    // Until everyone arrived, and every visitor is done and nothing is left to expire (an
    // expiry counts once its time bucket has settled).
    let expiry_ms = (settings.token_ttl_secs.max(settings.position_expiry_secs) as i64 + 10) * 1000
        + exits::BUCKET_MS
        + exits::SETTLE_MS;
    let mut quiet_since: Option<i64> = None;
    while clock.now_ms() < deadline_ms {
        let now = clock.now_ms();
        // The consumer: one batch per second of arrivals (the batching window).
        if now >= next_batch_ms {
            while !buffer.is_empty() {
                let batch = buffer.next_batch(per_batch as usize).await;
                let report = room.assign_batch(&batch).await;
                assert!(report.failed.is_empty(), "batch failed: {report:?}");
                rec.record(Step::Batch, batch.len() as u64);
            }
            next_batch_ms = now + 1_000;
        }
        // Arrivals within this tick.
        while arrived < settings.visitors && next_arrival_ms <= now {
            let request_id = room.enqueue(&event).await.expect("enqueue");
            rec.record(Step::Enqueue, 1);
            visitors.push(Visitor {
                request_id,
                next_poll_ms: now + unplaced_delay_ms(0),
                unplaced_asks: 0,
                stage: Stage::Unplaced,
            });
            arrived += 1;
            next_arrival_ms += gap_ms;
        }
        if now >= next_pass_ms {
            let everyone_done =
                arrived == settings.visitors && visitors.iter().all(|v| v.stage == Stage::Done);
            let reports = room.apply_strategies().await.expect("strategy pass");
            let expired: u64 = reports
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok())
                .map(|r| r.tokens_expired)
                .sum();
            let idle = everyone_done && quiet_since.is_some_and(|at| now - at >= expiry_ms);
            rec.record(
                if idle {
                    Step::IdlePass
                } else {
                    Step::RunnerPass
                },
                expired,
            );
            next_pass_ms = now + settings.runner_every_ms;
            if idle && rec.counts.times(Step::IdlePass) >= 3 {
                break;
            }
        }
        // A reader instance's view, reloaded when it expired or was dropped.
        room.view(&event).await.expect("view");
        rec.record_if_called(Step::ViewLoad);

        for visitor in visitors.iter_mut() {
            match visitor.stage {
                Stage::Unplaced | Stage::Waiting if visitor.next_poll_ms <= now => {}
                Stage::Active {
                    ends_at_ms: Some(at),
                } if at <= now => {
                    room.update_session(
                        &event,
                        &visitor.request_id,
                        SessionEnd::Completed,
                        "main-app",
                    )
                    .await
                    .expect("session end");
                    rec.record(Step::SessionEnd, 1);
                    visitor.stage = Stage::Done;
                    continue;
                }
                _ => continue,
            }
            let status = match room.status(&event, &visitor.request_id).await {
                Ok(status) => status,
                Err(Error::NotAssigned) => {
                    rec.record(Step::UnplacedPoll, 1);
                    visitor.unplaced_asks += 1;
                    visitor.next_poll_ms = now + unplaced_delay_ms(visitor.unplaced_asks);
                    continue;
                }
                Err(error) => panic!("status: {error}"),
            };
            rec.record(
                if !status.assigned {
                    Step::UnplacedPoll
                } else if status.served {
                    Step::ServedPoll
                } else {
                    Step::Poll
                },
                1,
            );
            if !status.assigned {
                visitor.unplaced_asks += 1;
                visitor.next_poll_ms = now + unplaced_delay_ms(visitor.unplaced_asks);
                continue;
            }
            visitor.stage = Stage::Waiting;
            if !status.served {
                visitor.next_poll_ms = now + status.next_poll_ms as i64;
                continue;
            }
            served += 1;
            if served.is_multiple_of(settings.abandon_every.max(1)) {
                visitor.stage = Stage::Abandoned;
                continue;
            }
            room.generate_token(&event, &visitor.request_id)
                .await
                .expect("token");
            rec.record(Step::Token, 1);
            rec.counts.admitted += 1;
            claimed += 1;
            visitor.stage = Stage::Active {
                ends_at_ms: (!claimed.is_multiple_of(settings.expire_every.max(1)))
                    .then_some(now + settings.session_secs * 1000),
            };
        }
        for visitor in visitors.iter_mut() {
            if matches!(
                visitor.stage,
                Stage::Abandoned | Stage::Active { ends_at_ms: None }
            ) {
                visitor.stage = Stage::Done;
            }
        }
        if quiet_since.is_none()
            && arrived == settings.visitors
            && visitors.iter().all(|v| v.stage == Stage::Done)
        {
            quiet_since = Some(now);
        }
        clock.advance_ms(tick_ms);
    }
    let mut counts = rec.counts;
    counts.simulated_secs = (clock.now_ms() - start_ms) as f64 / 1000.0;
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model's back-off is the page's: `unplacedDelayMs` of `queue.js`, run by node.
    #[test]
    fn the_unplaced_back_off_is_the_pages() {
        let queue_js = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/web/assets/queue.js"
        );
        let script = format!(
            "const Q = require({queue_js:?}); console.log([0,1,2,3,4,5,6,12].map(Q.unplacedDelayMs).join(','))"
        );
        let out = std::process::Command::new("node")
            .args(["-e", &script])
            .output()
            .expect("node runs the page's own code (infra/test.sh needs it too)");
        assert!(out.status.success(), "{out:?}");
        let page = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let model: Vec<String> = [0, 1, 2, 3, 4, 5, 6, 12]
            .map(|attempt| unplaced_delay_ms(attempt).to_string())
            .to_vec();
        assert_eq!(page, model.join(","));
    }

    #[tokio::test]
    async fn every_visitor_goes_through_the_whole_journey() {
        let settings = FlowSettings {
            visitors: 300,
            arrivals_per_sec: 100,
            ..FlowSettings::default()
        };
        let counts = count_store_calls(&settings, Backend::Memory).await;
        // One in 20 served visitors never claims.
        assert_eq!(counts.admitted, 285);
        assert_eq!(counts.times(Step::Token), 285);
        // One in 10 sessions is left to expire, the others are ended.
        assert_eq!(counts.times(Step::SessionEnd), 285 - 28);
        assert_eq!(
            counts.visitors_of(Step::RunnerPass),
            28,
            "tokens expired by passes"
        );
        let batches = counts.times(Step::Batch);
        // A batch per second of arrivals (the first and last seconds may split one).
        assert!((3..=4).contains(&batches), "{batches} batches");
        assert_eq!(counts.times(Step::IdlePass), 3);
        // Joining waits for the batch: some look-ups find no position yet.
        assert!(counts.times(Step::UnplacedPoll) > 0);
        // Enqueue never writes to the store; each token is one claim.
        assert_eq!(counts.per(Step::Enqueue, "assign_positions"), 0.0);
        assert_eq!(counts.per(Step::Token, "claim_token"), 1.0);
        assert_eq!(counts.per(Step::SessionEnd, "end_session"), 1.0);
        // A poll reads its request; the event view is reloaded apart from polls; the poll that
        // finds its visitor let in finds the serving move in the process's log of moves, read
        // again only when a new move is missing from it.
        assert!(counts.times(Step::Poll) > 0);
        assert!(counts.per(Step::Poll, "get_request") >= 1.0);
        assert_eq!(counts.per(Step::Poll, "serving_moves"), 0.0);
        let moves_reads = counts.per(Step::ServedPoll, "serving_moves");
        assert!(moves_reads > 0.0 && moves_reads < 0.5, "{moves_reads}");
        assert_eq!(counts.per(Step::Poll, "get_event"), 0.0);
        assert!(counts.times(Step::ViewLoad) > 0);
    }
}
