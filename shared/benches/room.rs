//! The room's hot paths on the memory store: the authorizer's decision on a valid token, one
//! strategy step, and the consumer assigning positions to a batch of 1,000 visitors.
//!
//! `cargo bench -p waiting-room-core --bench room`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use waiting_room_core::WaitingRoom;
use waiting_room_core::adapters::{MemoryBuffer, MemoryStore, SystemClock};
use waiting_room_core::domain::{
    EnqueueRequest, EventConfig, EventCounters, EventId, RequestId, Strategy,
};
use waiting_room_core::ports::Clock;
use waiting_room_core::service::CacheSettings;
use waiting_room_core::token::{KeyAlgorithm, KeyRing, SigningKey, TokenIssuer};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn demo() -> EventId {
    EventId::parse("demo").expect("event id")
}

/// A room on the memory store with the default caches and one open event `demo`.
async fn room(algorithm: KeyAlgorithm) -> WaitingRoom {
    let key = SigningKey::generate(algorithm).expect("key generation");
    let room = WaitingRoom::new(
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
        CacheSettings::default(),
    )
    .with_buffer(Arc::new(MemoryBuffer::new(10)))
    .with_tokens(TokenIssuer::new(
        Arc::new(KeyRing::new(key, vec![])),
        "bench",
    ));
    room.ensure_event(EventConfig::new(demo()))
        .await
        .expect("event");
    room
}

fn visitors(n: usize) -> Vec<EnqueueRequest> {
    let now = SystemClock.now_ms();
    (0..n)
        .map(|_| EnqueueRequest {
            event_id: demo(),
            request_id: RequestId::new(0, 0),
            entry_time_ms: now,
        })
        .collect()
}

/// `room.authorize` on a valid access token: signature, claims, cached event config and the
/// revocation lookup in the store (behind the breaker).
fn authorizer(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("authorize/valid_token");
    for algorithm in [KeyAlgorithm::EdDSA, KeyAlgorithm::RS256] {
        let (room, authorization) = rt.block_on(async {
            let room = room(algorithm).await;
            let visitor = visitors(1);
            let report = room.assign_batch(&visitor).await;
            assert_eq!(report.assigned, 1);
            room.increment_serving(&demo(), 1, "bench")
                .await
                .expect("admit");
            let outcome = room
                .generate_token(&demo(), &visitor[0].request_id)
                .await
                .expect("token");
            (room, format!("Bearer {}", outcome.token.access_token))
        });
        let event = demo();
        rt.block_on(room.authorize(Some(&authorization), Some(&event)))
            .expect("a valid token is accepted");
        group.bench_function(format!("{algorithm:?}"), |b| {
            b.iter(|| rt.block_on(room.authorize(black_box(Some(&authorization)), Some(&event))))
        });
    }
    group.finish();
}

/// One decision of the strategy runner, from a counters snapshot.
fn strategy(c: &mut Criterion) {
    let counters = EventCounters {
        queue_counter: 100_000,
        serving_counter: 40_000,
        tokens_issued: 39_000,
        tokens_completed: 30_000,
        tokens_abandoned: 1_000,
        positions_expired: 500,
        serving_changed_at_ms: 1_000,
        ..EventCounters::default()
    };
    let mut group = c.benchmark_group("strategy");
    let max_size = Strategy::MaxSize { max_active: 10_000 };
    group.bench_function("MaxSize::admissions", |b| {
        b.iter(|| black_box(&max_size).admissions(black_box(&counters), 60_000))
    });
    let periodic = Strategy::Periodic {
        increment_by: 500,
        interval_secs: 10,
    };
    group.bench_function("Periodic::admissions", |b| {
        b.iter(|| black_box(&periodic).admissions(black_box(&counters), 60_000))
    });
    let mut config = EventConfig::new(demo());
    config.strategy = max_size;
    config.rate_limit_per_min = Some(6_000);
    group.bench_function("EventConfig::admissions (MaxSize + rate limit)", |b| {
        b.iter(|| black_box(&config).admissions(black_box(&counters), 60_000, 2_500))
    });
    group.finish();
}

/// What the consumer does with one SQS batch: 1,000 new visitors, one queue-counter move. A
/// fresh room per batch, so every iteration assigns 1,000 new positions.
fn batch_assignment(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("assign_batch");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("1000_new_visitors", |b| {
        b.iter_batched(
            || (rt.block_on(room(KeyAlgorithm::EdDSA)), visitors(1_000)),
            |(room, batch)| {
                let report = rt.block_on(room.assign_batch(&batch));
                assert_eq!(report.assigned, 1_000);
                // Returned, so the room is dropped outside the measurement.
                (room, batch)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, authorizer, strategy, batch_assignment);
criterion_main!(benches);
