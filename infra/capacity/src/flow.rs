//! Store calls per admitted visitor, counted by [`InstrumentedStore`] while visitors go through
//! the real room: enqueue → position (the batch consumer) → polls of `/status` at the pace it
//! asks → token, with the strategy runner letting them in. Time is a manual clock, so the run
//! is exact and repeatable; on the memory store it takes well under a second. On a
//! [`DynamoStore`] the DynamoDB calls are counted too, on the wire.

use std::collections::BTreeMap;
use std::sync::Arc;

use waiting_room_core::WaitingRoom;
use waiting_room_core::adapters::{
    DynamoStore, InstrumentedStore, ManualClock, MemoryBuffer, MemoryStore,
};
use waiting_room_core::domain::{EventConfig, EventId, RequestId, Strategy};
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
    "expire_positions",
    "expire_tokens",
    "put_codes",
    "record_draw",
    "redeem_code",
    "reset_event",
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

/// The store the counted room runs on.
pub enum Backend {
    Memory,
    /// A DynamoDB table (created beforehand), whose calls are also counted on the wire.
    DynamoDb(DynamoStore),
}

/// What the visitors did, in the order of the journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// `POST /assign_queue_num`.
    Enqueue,
    /// The consumer assigning one batch of positions.
    Batch,
    /// One `GET /status`.
    Poll,
    /// One pass of the strategy runner.
    RunnerPass,
    /// One `POST /generate_token` that issued a token.
    Token,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::Enqueue,
        Step::Batch,
        Step::Poll,
        Step::RunnerPass,
        Step::Token,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Step::Enqueue => "enqueue (per visitor)",
            Step::Batch => "consumer batch (per batch)",
            Step::Poll => "poll /status (per poll)",
            Step::RunnerPass => "strategy pass (per pass)",
            Step::Token => "generate_token (per token)",
        }
    }
}

/// The settings of a counting run.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    pub visitors: u64,
    /// Visitors arriving per second (the consumer takes one batch per second, as SQS's
    /// batching window does).
    pub arrivals_per_sec: u64,
    pub strategy: Strategy,
    pub runner_every_ms: i64,
}

impl Default for FlowSettings {
    fn default() -> Self {
        Self {
            visitors: 10_000,
            arrivals_per_sec: 1_000,
            strategy: Strategy::Periodic {
                increment_by: 500,
                interval_secs: 2,
            },
            runner_every_ms: 2_000,
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
    /// Store calls per operation, made during each step.
    pub calls: BTreeMap<Step, BTreeMap<&'static str, u64>>,
    /// On DynamoDB: the calls per DynamoDB operation made during each step.
    pub wire: BTreeMap<Step, BTreeMap<String, u64>>,
    /// On DynamoDB: the `UpdateItem` calls that moved the queue counter, per step.
    pub queue_counter_moves: BTreeMap<Step, u64>,
}

impl FlowCounts {
    pub fn times(&self, step: Step) -> u64 {
        self.steps.get(&step).copied().unwrap_or(0)
    }

    /// Store calls of one operation made per occurrence of `step`.
    pub fn per(&self, step: Step, operation: &str) -> f64 {
        ratio(calls_in(&self.calls, step, operation), self.times(step))
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

    /// DynamoDB calls of one operation per occurrence of `step`.
    pub fn wire_per(&self, step: Step, operation: &str) -> f64 {
        ratio(calls_in(&self.wire, step, operation), self.times(step))
    }

    /// DynamoDB write calls per admitted visitor.
    pub fn wire_writes_per_admitted(&self) -> f64 {
        let writes: u64 = self
            .wire
            .values()
            .flat_map(|calls| calls.iter())
            .filter(|(operation, _)| is_write(operation))
            .map(|(_, n)| n)
            .sum();
        ratio(writes, self.admitted)
    }

    /// DynamoDB calls of any kind per admitted visitor.
    pub fn wire_calls_per_admitted(&self) -> f64 {
        let calls: u64 = self.wire.values().flat_map(|calls| calls.values()).sum();
        ratio(calls, self.admitted)
    }

    /// Every DynamoDB operation seen, in name order.
    pub fn wire_operations(&self) -> Vec<String> {
        let mut all: Vec<String> = self.wire.values().flat_map(|c| c.keys().cloned()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    pub fn reads_per_admitted(&self) -> f64 {
        ratio(self.total(|op| !is_write(op)), self.admitted)
    }

    /// Store reads per `/status` poll (the request, the cached counters when they expired,
    /// and the serving move for visitors at the front).
    pub fn reads_per_poll(&self) -> f64 {
        let reads: u64 = self
            .calls
            .get(&Step::Poll)
            .map(|c| {
                c.iter()
                    .filter(|(op, _)| !is_write(op))
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0);
        ratio(reads, self.times(Step::Poll))
    }

    pub fn polls_per_admitted(&self) -> f64 {
        ratio(self.times(Step::Poll), self.admitted)
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
}

/// Calls of `operation` made during `step`.
fn calls_in<K: std::borrow::Borrow<str> + Ord>(
    calls: &BTreeMap<Step, BTreeMap<K, u64>>,
    step: Step,
    operation: &str,
) -> u64 {
    calls
        .get(&step)
        .and_then(|c| c.get(operation))
        .copied()
        .unwrap_or(0)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

struct Visitor {
    request_id: RequestId,
    next_poll_ms: i64,
    done: bool,
}

/// Counts the store calls of `settings.visitors` visitors going through the whole journey.
pub async fn count_store_calls(settings: &FlowSettings, backend: Backend) -> FlowCounts {
    match backend {
        Backend::Memory => run(settings, MemoryStore::new(), None).await,
        Backend::DynamoDb(store) => run(settings, store.clone(), Some(store)).await,
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
    let key = SigningKey::generate(KeyAlgorithm::EdDSA).expect("key generation");
    let room = WaitingRoom::new(store.clone(), clock.clone(), CacheSettings::default())
        .with_buffer(buffer.clone())
        .with_tokens(TokenIssuer::new(
            Arc::new(KeyRing::new(key, vec![])),
            "capacity",
        ));
    let event = EventId::parse("demo").expect("event id");
    let mut config = EventConfig::new(event.clone());
    config.strategy = settings.strategy.clone();
    room.ensure_event(config).await.expect("event");

    let mut counts = FlowCounts {
        visitors: settings.visitors,
        ..FlowCounts::default()
    };
    // Attributes the store calls (and DynamoDB calls) made by one step to it.
    let mut last = store.calls();
    let mut last_wire = wire.as_ref().map(DynamoStore::calls).unwrap_or_default();
    let mut record = |step: Step, counts: &mut FlowCounts| {
        let now = store.calls();
        let into = counts.calls.entry(step).or_default();
        for (operation, n) in &now {
            let before = last.get(operation).copied().unwrap_or(0);
            if *n > before {
                *into.entry(operation).or_default() += n - before;
            }
        }
        *counts.steps.entry(step).or_default() += 1;
        last = now;
        if let Some(wire) = &wire {
            let now = wire.calls();
            let delta = now.since(&last_wire);
            let into = counts.wire.entry(step).or_default();
            for (operation, n) in delta.by_operation {
                *into.entry(operation).or_default() += n;
            }
            *counts.queue_counter_moves.entry(step).or_default() += delta.queue_counter_moves;
            last_wire = now;
        }
    };

    // Arrivals, with one consumer batch per second of arrivals.
    let gap_ms = (1_000 / settings.arrivals_per_sec.max(1)).max(1) as i64;
    let mut visitors = Vec::with_capacity(settings.visitors as usize);
    for n in 1..=settings.visitors {
        let request_id = room.enqueue(&event).await.expect("enqueue");
        record(Step::Enqueue, &mut counts);
        visitors.push(Visitor {
            request_id,
            next_poll_ms: clock.now_ms() + 1_000,
            done: false,
        });
        clock.advance_ms(gap_ms);
        if n.is_multiple_of(settings.arrivals_per_sec.max(1)) || n == settings.visitors {
            drain(&room, &buffer, &mut counts, &mut record).await;
        }
    }

    // Polls at the pace /status asks, the runner every few seconds, tokens once let in.
    let tick_ms = 100;
    let mut next_pass_ms = clock.now_ms();
    let deadline_ms = clock.now_ms() + 24 * 3600 * 1000;
    while counts.admitted < settings.visitors && clock.now_ms() < deadline_ms {
        let now = clock.now_ms();
        if now >= next_pass_ms {
            room.apply_strategies().await.expect("strategy pass");
            record(Step::RunnerPass, &mut counts);
            next_pass_ms = now + settings.runner_every_ms;
        }
        for visitor in visitors.iter_mut().filter(|v| !v.done) {
            if visitor.next_poll_ms > now {
                continue;
            }
            let status = room
                .status(&event, &visitor.request_id)
                .await
                .expect("status");
            record(Step::Poll, &mut counts);
            if status.served {
                room.generate_token(&event, &visitor.request_id)
                    .await
                    .expect("token");
                record(Step::Token, &mut counts);
                visitor.done = true;
                counts.admitted += 1;
            } else {
                visitor.next_poll_ms = now + status.next_poll_ms as i64;
            }
        }
        clock.advance_ms(tick_ms);
    }
    counts.simulated_secs = (clock.now_ms() - start_ms) as f64 / 1000.0;
    counts
}

async fn drain(
    room: &WaitingRoom,
    buffer: &MemoryBuffer,
    counts: &mut FlowCounts,
    record: &mut impl FnMut(Step, &mut FlowCounts),
) {
    while !buffer.is_empty() {
        let batch = buffer
            // The consumer's batch size (the event source mapping's BatchSize).
            .next_batch(1_000)
            .await;
        let report = room.assign_batch(&batch).await;
        assert!(report.failed.is_empty(), "batch failed: {report:?}");
        record(Step::Batch, counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_visitor_is_admitted_with_a_few_writes_each() {
        let counts = count_store_calls(
            &FlowSettings {
                visitors: 300,
                arrivals_per_sec: 100,
                ..FlowSettings::default()
            },
            Backend::Memory,
        )
        .await;
        assert_eq!(counts.admitted, 300);
        assert_eq!(counts.times(Step::Token), 300);
        assert_eq!(
            counts.times(Step::Batch),
            3,
            "one batch per second of arrivals"
        );
        // Enqueue never writes to the store; each token is one claim.
        assert_eq!(counts.per(Step::Enqueue, "assign_positions"), 0.0);
        assert_eq!(counts.per(Step::Token, "claim_token"), 1.0);
        assert!(counts.writes_per_admitted() < 3.0);
        assert!(counts.reads_per_poll() >= 1.0);
    }
}
