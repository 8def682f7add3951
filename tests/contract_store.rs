//! The `Store` contract, written once and run against every store: the in-memory one and the
//! durable one (in a data directory of its own per case) always, the DynamoDB one when
//! `WR_TEST_AWS_ENDPOINT` points at moto (see `infra/moto.sh`). Each DynamoDB case gets its own
//! freshly created table, so cases run in parallel. After each durable case the directory is
//! opened again and its replay must hold exactly what the store held.
//!
//! ```text
//! cargo test -p waiting-room-tests --test contract_store                  # memory only
//! infra/moto.sh start
//! WR_TEST_AWS_ENDPOINT=http://127.0.0.1:4566 cargo test -p waiting-room-tests --test contract_store
//! ```

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};

use waiting_room_core::adapters::aws::{TEST_ENDPOINT_VAR, test_endpoint};
use waiting_room_core::adapters::{AwsConfig, DurableStore, DynamoStore, MemoryStore};
use waiting_room_core::domain::exits::{BUCKET_MS, SETTLE_MS};
use waiting_room_core::domain::{
    Admission, BypassCode, Draw, EnqueueRequest, EventConfig, EventCounters, EventId, RequestId,
    ServingIncrement, SessionEnd, SessionStatus, Strategy, TokenRecord,
};
use waiting_room_core::ports::{
    AssignOutcome, AuditEntry, ClaimOutcome, EndOutcome, RedeemOutcome, Store, StoreError,
};
use waiting_room_tests::unique_suffix;

/// 2026-01-01T00:00:00Z: where the cases' clocks start.
const T0_MS: i64 = 1_767_225_600_000;

/// A store under test, with what the cases may check beyond the trait.
struct Backend {
    store: Arc<dyn Store>,
    dynamo: Option<DynamoStore>,
    /// The durable store and its data directory.
    durable: Option<(DurableStore, std::path::PathBuf)>,
    /// Visitors in the bulk cases: moto does ~170 writes/s, memory millions.
    scale: usize,
}

impl Backend {
    fn memory() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
            dynamo: None,
            durable: None,
            scale: 10_000,
        }
    }

    /// A durable store in a new data directory.
    async fn durable(case: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wr-contract-{case}-{}", unique_suffix()));
        let (store, recovered) = DurableStore::open(&dir).await.expect("open the data dir");
        assert_eq!(recovered.records, 0, "a new directory holds nothing");
        Self {
            store: Arc::new(store.clone()),
            dynamo: None,
            durable: Some((store, dir)),
            scale: 10_000,
        }
    }

    /// A DynamoDB store on a new table, or `None` (after saying so) when no endpoint is set
    /// outside CI. An endpoint that is set but does not answer fails the case: a typo must not
    /// turn the whole AWS suite into silent passes.
    async fn dynamodb(case: &str) -> Option<Self> {
        let endpoint = test_endpoint(&format!("contract_store::dynamodb::{case}"))?;
        let table = format!("wr-contract-{case}-{}", unique_suffix());
        let store = DynamoStore::new(&AwsConfig::local(&endpoint), table);
        if let Err(error) = store.create_table().await {
            panic!(
                "{TEST_ENDPOINT_VAR}={endpoint} is set but the table could not be created: {error}"
            );
        }
        Some(Self {
            store: Arc::new(store.clone()),
            dynamo: Some(store),
            durable: None,
            scale: 300,
        })
    }

    async fn finish(self) {
        if let Some(store) = self.dynamo {
            let _ = store.delete_table().await;
        }
        if let Some((store, dir)) = self.durable {
            store.close();
            let (replayed, _) = DurableStore::open(&dir).await.expect("reopen the data dir");
            let same = replayed
                .working_set()
                .same_state_as(store.working_set())
                .expect("compare");
            replayed.close();
            let _ = std::fs::remove_dir_all(&dir);
            assert!(same, "the journal replays to the state it was written from");
        }
    }

    /// Queue counter moves seen on the wire, where the store can tell.
    fn counter_moves(&self) -> Option<u64> {
        self.dynamo
            .as_ref()
            .map(|store| store.calls().queue_counter_moves)
    }
}

/// Declares each case once per backend.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let backend = super::Backend::memory();
                    super::$case(&backend).await;
                    backend.finish().await;
                }
            )*
        }
        mod durable {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let backend = super::Backend::durable(stringify!($case)).await;
                    super::$case(&backend).await;
                    backend.finish().await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(backend) = super::Backend::dynamodb(stringify!($case)).await else {
                        return;
                    };
                    super::$case(&backend).await;
                    backend.finish().await;
                }
            )*
        }
    };
}

contract!(
    events_are_created_once_and_listed,
    sequential_assignment_gives_one_to_n,
    redelivery_keeps_the_first_position,
    concurrent_duplicate_delivery_gives_each_request_one_position,
    one_queue_counter_move_per_batch,
    positions_follow_entry_time_within_a_batch,
    advance_serving_never_passes_the_queue_counter,
    serving_moves_are_read_from_any_point,
    serving_history_is_oldest_first_since,
    claim_token_counts_once_under_concurrency,
    claims_of_unknown_requests_are_refused_and_not_counted,
    end_session_counts_once,
    tokens_expire_once_their_bucket_settles,
    positions_expire_once_their_window_settles_unless_claimed,
    settled_exits_are_what_counters_show,
    expired_tokens_come_in_pages,
    reset_forgets_requests_and_keeps_the_audit,
    audit_log_is_newest_first,
    the_draw_is_recorded_once_and_survives_config_updates,
    a_single_use_code_lets_exactly_one_request_in,
);

async fn the_draw_is_recorded_once_and_survives_config_updates(b: &Backend) {
    let store = b.store.as_ref();
    let (event_id, _) = line(store, "draw", 3).await;
    let first = Draw {
        size: 3,
        seed: u64::MAX - 7,
        drawn_at_ms: T0_MS,
    };
    let second = Draw {
        size: 3,
        seed: 1,
        drawn_at_ms: T0_MS + 1,
    };
    let (a, b2) = tokio::join!(
        store.record_draw(&event_id, &first),
        store.record_draw(&event_id, &second)
    );
    assert!(a.unwrap() ^ b2.unwrap(), "exactly one draw is recorded");
    let recorded = store
        .get_event(&event_id)
        .await
        .unwrap()
        .unwrap()
        .draw
        .expect("a draw");
    assert!(recorded == first || recorded == second);
    assert_eq!(
        recorded.seed == u64::MAX - 7,
        recorded == first,
        "the full 64-bit seed survives"
    );
    // An operator's update neither erases nor replaces it.
    let mut config = store.get_event(&event_id).await.unwrap().unwrap();
    config.draw = None;
    config.name = "renamed".into();
    config.rate_limit_per_min = Some(60);
    config.schedule.start_at_ms = Some(T0_MS);
    assert!(store.update_event(&config).await.unwrap());
    let stored = store.get_event(&event_id).await.unwrap().unwrap();
    assert_eq!(stored.draw, Some(recorded));
    assert_eq!(
        (
            stored.name.as_str(),
            stored.rate_limit_per_min,
            stored.schedule.start_at_ms
        ),
        ("renamed", Some(60), Some(T0_MS))
    );
    assert!(!store.record_draw(&event("nope"), &first).await.unwrap());
}

async fn a_single_use_code_lets_exactly_one_request_in(b: &Backend) {
    let store = b.store.clone();
    let (event_id, _) = line(store.as_ref(), "codes", 2).await;
    let codes = [
        BypassCode {
            code: "ONCE-ONLY".into(),
            uses_left: 1,
            created_at_ms: T0_MS,
        },
        BypassCode {
            code: "THREE-TIMES".into(),
            uses_left: 3,
            created_at_ms: T0_MS,
        },
    ];
    assert!(store.put_codes(&event_id, &codes).await.unwrap());
    assert!(!store.put_codes(&event("nope"), &codes).await.unwrap());
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let (store, event_id) = (store.clone(), event_id.clone());
            tokio::spawn(async move {
                let request = EnqueueRequest {
                    event_id: event_id.clone(),
                    request_id: RequestId::new(0, 0),
                    entry_time_ms: T0_MS,
                };
                (
                    store
                        .redeem_code(&event_id, "ONCE-ONLY", &request)
                        .await
                        .unwrap(),
                    request,
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for attempt in attempts {
        let (outcome, request) = attempt.await.unwrap();
        if outcome == RedeemOutcome::Redeemed {
            winners.push(request);
        }
    }
    assert_eq!(winners.len(), 1, "one redemption of a single-use code");
    let record = store
        .get_request(&event_id, &winners[0].request_id)
        .await
        .unwrap()
        .expect("recorded");
    assert!(record.bypass);
    assert_eq!(record.position, 0, "no place in line");
    for expected in [
        RedeemOutcome::Redeemed,
        RedeemOutcome::Redeemed,
        RedeemOutcome::Redeemed,
        RedeemOutcome::Refused,
    ] {
        let request = EnqueueRequest {
            event_id: event_id.clone(),
            request_id: RequestId::new(0, 0),
            entry_time_ms: T0_MS,
        };
        assert_eq!(
            store
                .redeem_code(&event_id, "THREE-TIMES", &request)
                .await
                .unwrap(),
            expected
        );
    }
    let request = EnqueueRequest {
        event_id: event_id.clone(),
        request_id: RequestId::new(0, 0),
        entry_time_ms: T0_MS,
    };
    assert_eq!(
        store
            .redeem_code(&event_id, "NO-SUCH-CODE", &request)
            .await
            .unwrap(),
        RedeemOutcome::Refused
    );

    // The bypassed visitor's token counts as issued and bypassed, outside the line's counts.
    let claimed = store
        .claim_token(
            &event_id,
            &winners[0].request_id,
            Admission::Bypass,
            &token("vip", T0_MS / 1000 + 60),
        )
        .await
        .unwrap();
    assert!(matches!(claimed, ClaimOutcome::Claimed(_)));
    let c = counters(store.as_ref(), &event_id).await;
    assert_eq!(
        (
            c.tokens_issued,
            c.tokens_bypassed,
            c.serving_counter,
            c.queue_counter
        ),
        (1, 1, 0, 2)
    );
    assert_eq!(c.active_tokens(), 1);
    assert_eq!(c.pending_claims(), 0);
}

// ---- helpers -------------------------------------------------------------------------------

fn event(id: &str) -> EventId {
    EventId::parse(id).expect("event id")
}

async fn new_event(store: &dyn Store, id: &str) -> EventId {
    let event_id = event(id);
    assert!(
        store
            .create_event(&EventConfig::new(event_id.clone()), T0_MS)
            .await
            .expect("create event")
    );
    event_id
}

fn requests(event_id: &EventId, n: usize) -> Vec<EnqueueRequest> {
    (0..n)
        .map(|i| EnqueueRequest {
            event_id: event_id.clone(),
            request_id: RequestId::new(0, 0),
            entry_time_ms: T0_MS + i as i64,
        })
        .collect()
}

async fn assign(store: &dyn Store, event_id: &EventId, batch: &[EnqueueRequest]) -> AssignOutcome {
    store
        .assign_positions(event_id, batch, T0_MS)
        .await
        .expect("assign positions")
}

async fn position(store: &dyn Store, event_id: &EventId, request: &EnqueueRequest) -> u64 {
    store
        .get_request(event_id, &request.request_id)
        .await
        .expect("get request")
        .unwrap_or_else(|| panic!("request {} has no position", request.request_id))
        .position
}

/// The counters with the exit counts summed at `at_ms`.
async fn counted_at(store: &dyn Store, event_id: &EventId, at_ms: i64) -> EventCounters {
    store
        .count_exits(event_id, at_ms)
        .await
        .expect("count exits")
        .expect("event exists")
}

/// The counters with the exit counts summed at the start (before any time-bucket settles).
async fn counters(store: &dyn Store, event_id: &EventId) -> EventCounters {
    counted_at(store, event_id, T0_MS).await
}

/// The first instant at which everything that happened by `at_ms` counts.
fn settled_after(at_ms: i64) -> i64 {
    at_ms + BUCKET_MS + SETTLE_MS
}

async fn advance(store: &dyn Store, event_id: &EventId, by: u64, at_ms: i64) -> ServingIncrement {
    store
        .advance_serving(event_id, None, by, at_ms)
        .await
        .expect("advance serving")
        .expect("someone to admit")
}

/// A token as the issuer would make it: `expires_at` is a JWT `exp`, in seconds.
fn token(label: &str, expires_at_s: i64) -> TokenRecord {
    TokenRecord {
        issued_at: T0_MS / 1000,
        expires_at: expires_at_s,
        access_token: format!("access-{label}"),
        refresh_token: format!("refresh-{label}"),
        id_token: format!("id-{label}"),
        status: SessionStatus::Active,
    }
}

async fn claim(
    store: &dyn Store,
    event_id: &EventId,
    request: &EnqueueRequest,
    token: &TokenRecord,
) -> ClaimOutcome {
    // What the room decides before claiming: how the visitor was let in. The place in line
    // is the position here (these events hold no pre-queue draw).
    let record = store
        .get_request(event_id, &request.request_id)
        .await
        .expect("read request");
    let admission = match record {
        Some(record) if record.bypass => Admission::Bypass,
        Some(record) => {
            let moves = store
                .serving_moves(event_id, 0)
                .await
                .expect("serving moves")
                .expect("event exists")
                .moves;
            let made = moves
                .iter()
                .find(|m| m.contains(record.position))
                .expect("claims are made by served visitors");
            Admission::Line {
                position: record.position,
                claim_by_ms: made.claim_by_ms,
            }
        }
        None => Admission::Line {
            position: 1,
            claim_by_ms: T0_MS,
        },
    };
    store
        .claim_token(event_id, &request.request_id, admission, token)
        .await
        .expect("claim token")
}

/// An event with `n` visitors in line, in order.
async fn line(store: &dyn Store, id: &str, n: usize) -> (EventId, Vec<EnqueueRequest>) {
    let event_id = new_event(store, id).await;
    let visitors = requests(&event_id, n);
    assert_eq!(assign(store, &event_id, &visitors).await.assigned, n as u64);
    (event_id, visitors)
}

// ---- cases ---------------------------------------------------------------------------------

async fn events_are_created_once_and_listed(b: &Backend) {
    let store = b.store.as_ref();
    let mut config = EventConfig::new(event("sale-b"));
    config.strategy = Strategy::MaxSize { max_active: 50 };
    config.target_url = "https://shop.example/".into();
    assert!(store.create_event(&config, T0_MS).await.unwrap());
    assert!(!store.create_event(&config, T0_MS).await.unwrap());
    new_event(store, "sale-a").await;
    assert_eq!(
        store.get_event(&event("sale-b")).await.unwrap(),
        Some(config.clone())
    );
    assert_eq!(store.get_event(&event("nope")).await.unwrap(), None);

    config.paused = true;
    config.strategy = Strategy::Periodic {
        increment_by: 5,
        interval_secs: 10,
    };
    assert!(store.update_event(&config).await.unwrap());
    assert!(
        !store
            .update_event(&EventConfig::new(event("nope")))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_event(&event("sale-b")).await.unwrap(),
        Some(config)
    );

    let ids: Vec<String> = store
        .list_events()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.event_id.to_string())
        .collect();
    assert_eq!(ids, ["sale-a", "sale-b"]);
    let fresh = counters(store, &event("sale-a")).await;
    assert_eq!(
        (fresh.queue_counter, fresh.serving_counter, fresh.generation),
        (0, 0, 0)
    );
    assert_eq!(fresh.serving_changed_at_ms, T0_MS);
    assert_eq!(store.counters(&event("nope")).await.unwrap(), None);
}

async fn sequential_assignment_gives_one_to_n(b: &Backend) {
    let store = b.store.as_ref();
    let event_id = new_event(store, "seq").await;
    let visitors = requests(&event_id, 60);
    for batch in visitors.chunks(20) {
        let outcome = assign(store, &event_id, batch).await;
        assert_eq!(
            outcome,
            AssignOutcome {
                assigned: 20,
                duplicates: 0,
                wiped: 0
            }
        );
    }
    for (i, visitor) in visitors.iter().enumerate() {
        assert_eq!(position(store, &event_id, visitor).await, i as u64 + 1);
    }
    let record = store
        .get_request(&event_id, &visitors[7].request_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.entry_time_ms, visitors[7].entry_time_ms);
    assert!(!record.bypass && record.token.is_none());
    assert_eq!(counters(store, &event_id).await.queue_counter, 60);
    // Unknown requests and events have no position; a batch for an unknown event assigns none.
    assert_eq!(
        store
            .get_request(&event_id, &RequestId::new(0, 0))
            .await
            .unwrap(),
        None
    );
    let stray = requests(&event("nope"), 3);
    assert_eq!(
        assign(store, &event("nope"), &stray).await,
        AssignOutcome::default()
    );
}

async fn redelivery_keeps_the_first_position(b: &Backend) {
    let store = b.store.as_ref();
    let (event_id, first) = line(store, "redeliver", 10).await;
    // The same batch again, then a mixed one with a repeat inside it.
    assert_eq!(
        assign(store, &event_id, &first).await,
        AssignOutcome {
            assigned: 0,
            duplicates: 10,
            wiped: 0
        }
    );
    let fresh = requests(&event_id, 3);
    let mixed = vec![
        first[4].clone(),
        fresh[0].clone(),
        fresh[1].clone(),
        fresh[0].clone(),
        fresh[2].clone(),
    ];
    assert_eq!(
        assign(store, &event_id, &mixed).await,
        AssignOutcome {
            assigned: 3,
            duplicates: 2,
            wiped: 0
        }
    );
    assert_eq!(position(store, &event_id, &first[4]).await, 5);
    for (i, visitor) in fresh.iter().enumerate() {
        assert_eq!(position(store, &event_id, visitor).await, 11 + i as u64);
    }
    assert_eq!(counters(store, &event_id).await.queue_counter, 13);
}

/// Every request delivered twice, the copies in different batches, batches handled by several
/// consumers at once; a batch that fails is delivered again, as SQS does. Each request gets
/// exactly one position and no position is given twice; a copy assigned at the same moment by
/// two consumers may leave a position unused (a gap), which the queue counter covers.
async fn concurrent_duplicate_delivery_gives_each_request_one_position(b: &Backend) {
    let n = b.scale;
    let store = b.store.clone();
    let event_id = new_event(store.as_ref(), "dup").await;
    let visitors = requests(&event_id, n);
    let batch_size = (n / 12).max(1);
    // First copies in order, second copies in reverse: a request's two copies sit in batches
    // far apart, and the consumers take batches from both ends of the line at once.
    let mut deliveries: Vec<EnqueueRequest> = visitors.clone();
    deliveries.extend(visitors.iter().rev().cloned());
    let mut batches: VecDeque<Vec<EnqueueRequest>> = VecDeque::new();
    let chunks: Vec<Vec<EnqueueRequest>> =
        deliveries.chunks(batch_size).map(<[_]>::to_vec).collect();
    let (front, back) = chunks.split_at(chunks.len() / 2);
    for (a, b) in front.iter().zip(back.iter().rev()) {
        batches.push_back(a.clone());
        batches.push_back(b.clone());
    }
    if front.len() < back.len() {
        batches.push_back(back[0].clone());
    }
    let batch_count = batches.len();
    let started = std::time::Instant::now();
    let queue = Arc::new(Mutex::new(batches));
    let assigned = Arc::new(Mutex::new(0u64));
    let mut consumers = Vec::new();
    for _ in 0..6 {
        let (queue, assigned, store, event_id) = (
            queue.clone(),
            assigned.clone(),
            store.clone(),
            event_id.clone(),
        );
        consumers.push(tokio::spawn(async move {
            let mut redeliveries = 0;
            loop {
                let Some(batch) = queue.lock().unwrap().pop_front() else {
                    return redeliveries;
                };
                match store.assign_positions(&event_id, &batch, T0_MS).await {
                    Ok(outcome) => *assigned.lock().unwrap() += outcome.assigned,
                    Err(StoreError::Unavailable(_) | StoreError::Throttled) => {
                        redeliveries += 1;
                        assert!(redeliveries < 50, "batches keep failing");
                        queue.lock().unwrap().push_back(batch);
                    }
                    Err(other) => panic!("{other}"),
                }
            }
        }));
    }
    let mut redelivered = 0;
    for consumer in consumers {
        redelivered += consumer.await.expect("consumer");
    }
    let _ = writeln!(
        std::io::stderr(),
        "{n} requests delivered twice in {batch_count} batches by 6 consumers: {redelivered} \
         batches redelivered, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut positions = Vec::with_capacity(n);
    for visitor in &visitors {
        positions.push(position(store.as_ref(), &event_id, visitor).await);
    }
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), n, "a position given twice");
    assert_eq!(
        *assigned.lock().unwrap(),
        n as u64,
        "each request assigned once"
    );
    let queue_counter = counters(store.as_ref(), &event_id).await.queue_counter;
    assert!(
        positions[0] >= 1 && positions[n - 1] <= queue_counter,
        "positions within 1..={queue_counter}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "{} positions left unused by copies assigned at the same moment",
        queue_counter - n as u64
    );
}

async fn positions_follow_entry_time_within_a_batch(b: &Backend) {
    let store = b.store.as_ref();
    let event_id = new_event(store, "order").await;
    let visitors = requests(&event_id, 8);
    // Delivered out of order: the batch is numbered by entry time all the same.
    let mut shuffled = visitors.clone();
    shuffled.reverse();
    shuffled.swap(1, 5);
    assert_eq!(assign(store, &event_id, &shuffled).await.assigned, 8);
    for (i, visitor) in visitors.iter().enumerate() {
        assert_eq!(position(store, &event_id, visitor).await, i as u64 + 1);
    }
}

async fn one_queue_counter_move_per_batch(b: &Backend) {
    let store = b.store.as_ref();
    let event_id = new_event(store, "one-move").await;
    let visitors = requests(&event_id, 100);
    let moves_before = b.counter_moves();
    let mut counter = 0;
    for batch in visitors.chunks(25) {
        let outcome = assign(store, &event_id, batch).await;
        let now = counters(store, &event_id).await.queue_counter;
        // The counter moved by exactly what the batch assigned.
        assert_eq!(now - counter, outcome.assigned);
        counter = now;
    }
    // A batch of duplicates moves nothing.
    assign(store, &event_id, &visitors[..25]).await;
    assert_eq!(counters(store, &event_id).await.queue_counter, 100);
    if let (Some(before), Some(after)) = (moves_before, b.counter_moves()) {
        assert_eq!(
            after - before,
            4,
            "one queue counter ADD per batch that assigned"
        );
    }
}

async fn advance_serving_never_passes_the_queue_counter(b: &Backend) {
    let store = b.store.clone();
    let (event_id, _) = line(store.as_ref(), "advance", 10).await;
    let first = advance(store.as_ref(), &event_id, 4, T0_MS + 1).await;
    // The claim window is fixed when the move is made: 15 minutes by default.
    assert_eq!(
        (
            first.previous,
            first.serving_counter,
            first.at_ms,
            first.claim_by_ms
        ),
        (0, 4, T0_MS + 1, T0_MS + 1 + 900_000)
    );
    // A move sized from a counter that has moved since is not made.
    assert_eq!(
        store
            .advance_serving(&event_id, Some(0), 2, T0_MS + 2)
            .await
            .unwrap(),
        None
    );
    // An operator shortens the window: a later move never closes before an earlier one.
    let mut config = store.get_event(&event_id).await.unwrap().unwrap();
    config.position_expiry_secs = 60;
    assert!(store.update_event(&config).await.unwrap());
    let second = store
        .advance_serving(&event_id, Some(4), 100, T0_MS + 2)
        .await
        .unwrap()
        .expect("moved from 4");
    assert_eq!((second.previous, second.serving_counter), (4, 10));
    assert_eq!(second.claim_by_ms, first.claim_by_ms);
    assert_eq!(
        store
            .advance_serving(&event_id, None, 1, T0_MS + 3)
            .await
            .unwrap(),
        None
    );
    let c = counters(store.as_ref(), &event_id).await;
    assert_eq!(
        (c.serving_counter, c.serving_changed_at_ms),
        (10, T0_MS + 2)
    );

    // Eight operators at once, 3 each, with 20 more waiting: the counter stops at the queue.
    assign(store.as_ref(), &event_id, &requests(&event_id, 20)).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, event_id) = (store.clone(), event_id.clone());
        tasks.push(tokio::spawn(async move {
            store
                .advance_serving(&event_id, None, 3, T0_MS + 10 + i)
                .await
                .expect("advance")
        }));
    }
    let mut moves: Vec<ServingIncrement> = Vec::new();
    for task in tasks {
        moves.extend(task.await.expect("task"));
    }
    moves.sort_by_key(|m| m.serving_counter);
    let c = counters(store.as_ref(), &event_id).await;
    assert_eq!(c.serving_counter, 30);
    assert_eq!(moves.iter().map(ServingIncrement::size).sum::<u64>(), 20);
    let mut at = 10;
    for m in &moves {
        assert_eq!(m.previous, at, "moves are contiguous");
        at = m.serving_counter;
    }
}

async fn serving_moves_are_read_from_any_point(b: &Backend) {
    let store = b.store.as_ref();
    let (event_id, _) = line(store, "moves", 10).await;
    let first = advance(store, &event_id, 4, T0_MS + 100).await;
    let second = advance(store, &event_id, 3, T0_MS + 200).await;
    let event_id = &event_id;
    let read = |after| async move {
        store
            .serving_moves(event_id, after)
            .await
            .unwrap()
            .expect("event exists")
    };
    let all = read(0).await;
    assert_eq!((all.generation, all.moves), (0, vec![first, second]));
    // "After 3": the moves that reached past place 3.
    assert_eq!(read(3).await.moves, vec![first, second]);
    for after in [4, 6] {
        assert_eq!(read(after).await.moves, vec![second], "after {after}");
    }
    assert!(read(7).await.moves.is_empty());
    assert_eq!(store.serving_moves(&event("nope"), 0).await.unwrap(), None);
}

async fn serving_history_is_oldest_first_since(b: &Backend) {
    let store = b.store.as_ref();
    let (event_id, _) = line(store, "history", 100).await;
    let mut moves = Vec::new();
    for i in 0..60 {
        moves.push(advance(store, &event_id, 1, T0_MS + i * 1000).await);
    }
    assert_eq!(
        store.serving_history(&event_id, T0_MS).await.unwrap(),
        moves
    );
    assert_eq!(
        store
            .serving_history(&event_id, T0_MS + 55_000)
            .await
            .unwrap(),
        moves[55..].to_vec()
    );
    assert!(
        store
            .serving_history(&event_id, T0_MS + 61_000)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn claim_token_counts_once_under_concurrency(b: &Backend) {
    let store = b.store.clone();
    let (event_id, visitors) = line(store.as_ref(), "claim", 3).await;
    advance(store.as_ref(), &event_id, 2, T0_MS).await;
    let visitor = visitors[0].clone();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (store, event_id, visitor) = (store.clone(), event_id.clone(), visitor.clone());
        tasks.push(tokio::spawn(async move {
            let mine = token(&format!("t{i}"), T0_MS / 1000 + 600);
            claim(store.as_ref(), &event_id, &visitor, &mine).await
        }));
    }
    let mut claimed = Vec::new();
    let mut existing = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            ClaimOutcome::Claimed(t) => claimed.push(t),
            ClaimOutcome::Existing(t) => existing.push(t),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(claimed.len(), 1, "exactly one claim wins");
    assert!(
        existing.iter().all(|t| *t == claimed[0]),
        "the others get the winner's token"
    );
    // Asking again returns the same token.
    let again = claim(store.as_ref(), &event_id, &visitor, &token("late", 1)).await;
    assert_eq!(again, ClaimOutcome::Existing(claimed[0].clone()));
    let record = store
        .get_request(&event_id, &visitor.request_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.token.as_ref(), Some(&claimed[0]));
    let c = counters(store.as_ref(), &event_id).await;
    assert_eq!(
        c.tokens_issued, 1,
        "one claim counted, the refused ones taken back"
    );
    assert_eq!((c.active_tokens(), c.pending_claims()), (1, 1));
}

async fn claims_of_unknown_requests_are_refused_and_not_counted(b: &Backend) {
    let store = b.store.as_ref();
    let (event_id, visitors) = line(store, "refuse", 4).await;
    advance(store, &event_id, 2, T0_MS).await;
    let t = token("x", T0_MS / 1000 + 600);
    let unknown = requests(&event_id, 1).remove(0);
    assert_eq!(
        claim(store, &event_id, &unknown, &t).await,
        ClaimOutcome::UnknownRequest
    );
    assert_eq!(
        claim(store, &event("nope"), &visitors[0], &t).await,
        ClaimOutcome::UnknownRequest
    );
    // A visitor of the line before a reset, claiming with what it knew then.
    let before_reset = Admission::Line {
        position: 1,
        claim_by_ms: T0_MS + 900_000,
    };
    assert!(store.reset_event(&event_id, T0_MS + 1).await.unwrap());
    assert_eq!(
        store
            .claim_token(&event_id, &visitors[0].request_id, before_reset, &t)
            .await
            .unwrap(),
        ClaimOutcome::UnknownRequest
    );
    let c = counted_at(store, &event_id, settled_after(T0_MS + 900_000)).await;
    assert_eq!((c.tokens_issued, c.positions_expired), (0, 0));
}

async fn end_session_counts_once(b: &Backend) {
    let store = b.store.clone();
    let (event_id, visitors) = line(store.as_ref(), "end", 4).await;
    advance(store.as_ref(), &event_id, 4, T0_MS).await;
    for (i, visitor) in visitors[..3].iter().enumerate() {
        let t = token(&i.to_string(), T0_MS / 1000 + 600);
        assert!(matches!(
            claim(store.as_ref(), &event_id, visitor, &t).await,
            ClaimOutcome::Claimed(_)
        ));
    }
    // The same completion sent twice at once counts once.
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (store, event_id, id) = (store.clone(), event_id.clone(), visitors[0].request_id);
        tasks.push(tokio::spawn(async move {
            store
                .end_session(&event_id, &id, SessionEnd::Completed, T0_MS)
                .await
                .expect("end session")
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task"));
    }
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [EndOutcome::AlreadyEnded, EndOutcome::Ended]);
    let end = |i: usize, how| {
        let (store, event_id, id) = (store.clone(), event_id.clone(), visitors[i].request_id);
        async move {
            store
                .end_session(&event_id, &id, how, T0_MS)
                .await
                .expect("end session")
        }
    };
    assert_eq!(
        end(0, SessionEnd::Abandoned).await,
        EndOutcome::AlreadyEnded
    );
    assert_eq!(end(1, SessionEnd::Abandoned).await, EndOutcome::Ended);
    assert_eq!(end(3, SessionEnd::Completed).await, EndOutcome::NoToken);
    let unknown = RequestId::new(0, 0);
    assert_eq!(
        store
            .end_session(&event_id, &unknown, SessionEnd::Completed, T0_MS)
            .await
            .unwrap(),
        EndOutcome::UnknownRequest
    );
    let c = counters(store.as_ref(), &event_id).await;
    assert_eq!(
        (c.tokens_issued, c.tokens_completed, c.tokens_abandoned),
        (3, 1, 1)
    );
    assert_eq!(c.active_tokens(), 1);
    let record = store
        .get_request(&event_id, &visitors[1].request_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.token.as_ref().map(|t| t.status),
        Some(SessionStatus::Abandoned)
    );
    // Once its bucket settles, the token never ended counts as expired, the ended ones not.
    let later = counted_at(store.as_ref(), &event_id, settled_after(T0_MS + 600_000)).await;
    assert_eq!(
        (
            later.tokens_expired,
            later.tokens_completed,
            later.active_tokens()
        ),
        (1, 1, 0)
    );
}

async fn tokens_expire_once_their_bucket_settles(b: &Backend) {
    let store = b.store.as_ref();
    let (event_id, visitors) = line(store, "tok-exp", 4).await;
    advance(store, &event_id, 4, T0_MS).await;
    let base_s = T0_MS / 1000;
    for (i, visitor) in visitors.iter().enumerate() {
        // Expiries 100, 110, 120 and 130 s after T0.
        let t = token(&i.to_string(), base_s + 100 + 10 * i as i64);
        assert!(matches!(
            claim(store, &event_id, visitor, &t).await,
            ClaimOutcome::Claimed(_)
        ));
    }
    // Visitor 0's session is completed before its token expires: never counted as expired.
    assert_eq!(
        store
            .end_session(
                &event_id,
                &visitors[0].request_id,
                SessionEnd::Completed,
                (base_s + 99) * 1000
            )
            .await
            .unwrap(),
        EndOutcome::Ended
    );
    let this = &event_id;
    let expired_at =
        |at_s: i64| async move { counted_at(store, this, at_s * 1000).await.tokens_expired };
    // Visitor 1's token expires at 110 s and counts once its bucket has settled.
    let settles = settled_after((base_s + 110) * 1000) / 1000;
    assert_eq!(expired_at(settles - 1).await, 0);
    assert_eq!(expired_at(settles).await, 1);
    assert_eq!(expired_at(settles + 10).await, 2);
    assert_eq!(
        expired_at(settles + 10).await,
        2,
        "counting changes nothing"
    );
    let c = counted_at(store, &event_id, (settles + 10) * 1000).await;
    assert_eq!(
        (c.tokens_issued, c.tokens_completed, c.tokens_expired),
        (4, 1, 2)
    );
    assert_eq!(c.active_tokens(), 1);
    // Nothing was written at expiry: the session reads as expired from its token's time.
    let record = store
        .get_request(&event_id, &visitors[2].request_id)
        .await
        .unwrap()
        .unwrap();
    let status = record.token.map(|t| t.status_at((base_s + 120) * 1000));
    assert_eq!(status, Some(SessionStatus::Expired));
    // An expired session cannot be ended any more.
    assert_eq!(
        store
            .end_session(
                &event_id,
                &visitors[1].request_id,
                SessionEnd::Abandoned,
                (base_s + 110) * 1000
            )
            .await
            .unwrap(),
        EndOutcome::AlreadyEnded
    );
    // Listed as expired from the second its token expires.
    let mut expected = vec![visitors[1].request_id, visitors[2].request_id];
    expected.sort();
    let page = store
        .expired_tokens(&event_id, None, 10, (base_s + 125) * 1000)
        .await
        .unwrap();
    assert_eq!((page.items, page.next), (expected, None));
}

async fn positions_expire_once_their_window_settles_unless_claimed(b: &Backend) {
    let store = b.store.as_ref();
    let (event_id, visitors) = line(store, "pos-exp", 10).await;
    let first = advance(store, &event_id, 4, T0_MS).await; // positions 1-4
    let second = advance(store, &event_id, 3, T0_MS + 60_000).await; // positions 5-7
    let t = token("x", T0_MS / 1000 + 3_600);
    for visitor in [&visitors[0], &visitors[1], &visitors[4]] {
        assert!(matches!(
            claim(store, &event_id, visitor, &t).await,
            ClaimOutcome::Claimed(_)
        ));
    }
    let this = &event_id;
    let positions_expired =
        |at: i64| async move { counted_at(store, this, at).await.positions_expired };
    // The first window closes: 3 and 4 expire once it settles; 1 and 2 were claimed.
    assert_eq!(positions_expired(first.claim_by_ms).await, 0);
    assert_eq!(positions_expired(settled_after(first.claim_by_ms)).await, 2);
    assert_eq!(positions_expired(second.claim_by_ms).await, 2);
    // The second: 6 and 7 expire; 5 was claimed. 8-10 were never served.
    let end = settled_after(second.claim_by_ms);
    assert_eq!(positions_expired(end).await, 4);
    let c = counted_at(store, &event_id, end).await;
    assert_eq!(
        (c.positions_expired, c.tokens_issued, c.serving_counter),
        (4, 3, 7)
    );
    assert_eq!((c.pending_claims(), c.in_flight()), (0, 3));
}

async fn settled_exits_are_what_counters_show(b: &Backend) {
    let store = b.store.as_ref();
    let (event_id, visitors) = line(store, "settle", 3).await;
    advance(store, &event_id, 3, T0_MS).await;
    for visitor in &visitors[..2] {
        let t = token("s", T0_MS / 1000 + 3_600);
        claim(store, &event_id, visitor, &t).await;
    }
    store
        .end_session(
            &event_id,
            &visitors[0].request_id,
            SessionEnd::Completed,
            T0_MS,
        )
        .await
        .unwrap();
    let this = &event_id;
    let stored = || async move { store.counters(this).await.unwrap().unwrap() };
    // Nothing settled yet: the hot read shows the line, no tokens.
    let before = stored().await;
    assert_eq!(
        (
            before.serving_counter,
            before.tokens_issued,
            before.in_flight()
        ),
        (3, 0, 3)
    );
    let settled = store
        .settle_exits(&event_id, T0_MS + 1_000)
        .await
        .unwrap()
        .expect("event exists");
    assert_eq!(settled.previous, before);
    assert_eq!(
        (
            settled.current.tokens_issued,
            settled.current.tokens_completed
        ),
        (2, 1)
    );
    assert_eq!(stored().await, settled.current);
    assert_eq!(settled.current.in_flight(), 2);
    // The claim windows settle: the place never claimed leaves, and counters show it.
    let later = store
        .settle_exits(&event_id, settled_after(T0_MS + 900_000))
        .await
        .unwrap()
        .expect("event exists");
    assert_eq!(later.previous, settled.current);
    assert_eq!(later.current.positions_expired, 1);
    assert_eq!(stored().await.in_flight(), 1);
    assert_eq!(
        store.settle_exits(&event("nope"), T0_MS).await.unwrap(),
        None
    );
}

async fn expired_tokens_come_in_pages(b: &Backend) {
    let store = b.store.as_ref();
    let (event_id, visitors) = line(store, "pages", 25).await;
    advance(store, &event_id, 25, T0_MS).await;
    for (i, visitor) in visitors.iter().enumerate() {
        let t = token(&i.to_string(), T0_MS / 1000 + 10);
        assert!(matches!(
            claim(store, &event_id, visitor, &t).await,
            ClaimOutcome::Claimed(_)
        ));
    }
    let now = T0_MS + 10_000;
    assert!(
        store
            .expired_tokens(&event_id, None, 10, now - 1)
            .await
            .unwrap()
            .items
            .is_empty(),
        "not expired a millisecond before"
    );
    let mut all = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .expired_tokens(&event_id, after, 10, now)
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 10);
        all.extend(page.items.iter().copied());
        match page.next {
            Some(next) => {
                assert_eq!(Some(&next), page.items.last());
                after = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<RequestId> = visitors.iter().map(|v| v.request_id).collect();
    expected.sort();
    assert_eq!(all, expected, "every expired token once, in id order");
    let exact = store
        .expired_tokens(&event_id, None, 25, now)
        .await
        .unwrap();
    assert_eq!((exact.items.len(), exact.next), (25, None));
    assert!(
        store
            .expired_tokens(&event("nope"), None, 10, now)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// None of `requests` has a record.
async fn assert_unknown(store: &dyn Store, event_id: &EventId, requests: &[EnqueueRequest]) {
    for request in requests {
        assert_eq!(
            store
                .get_request(event_id, &request.request_id)
                .await
                .unwrap(),
            None
        );
    }
}

async fn reset_forgets_requests_and_keeps_the_audit(b: &Backend) {
    let store = b.store.as_ref();
    let (event_id, visitors) = line(store, "reset", 5).await;
    advance(store, &event_id, 3, T0_MS).await;
    let t = token("x", T0_MS / 1000 + 10);
    assert!(matches!(
        claim(store, &event_id, &visitors[0], &t).await,
        ClaimOutcome::Claimed(_)
    ));
    store
        .settle_exits(&event_id, settled_after(T0_MS + 10_000))
        .await
        .unwrap();
    let entry = AuditEntry {
        at_ms: T0_MS,
        actor: "ops".into(),
        action: "increment_serving_counter".into(),
        event_id: event_id.clone(),
        detail: "by 3".into(),
    };
    store.append_audit(&entry).await.unwrap();

    assert!(store.reset_event(&event_id, T0_MS + 50).await.unwrap());
    assert!(!store.reset_event(&event("nope"), T0_MS).await.unwrap());
    let later = settled_after(T0_MS + 900_000);
    let c = counted_at(store, &event_id, later).await;
    assert_eq!(c, store.counters(&event_id).await.unwrap().unwrap());
    assert_eq!(c.generation, 1);
    assert_eq!(
        (
            c.queue_counter,
            c.serving_counter,
            c.tokens_issued,
            c.tokens_expired,
            c.positions_expired
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(
        (c.serving_changed_at_ms, c.queue_changed_at_ms),
        (T0_MS + 50, T0_MS + 50)
    );
    assert_unknown(store, &event_id, &visitors).await;
    let moves = store.serving_moves(&event_id, 0).await.unwrap().unwrap();
    assert_eq!((moves.generation, moves.moves), (1, vec![]));
    assert!(
        store
            .serving_history(&event_id, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .expired_tokens(&event_id, None, 10, later)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        claim(store, &event_id, &visitors[1], &t).await,
        ClaimOutcome::UnknownRequest
    );
    assert_eq!(
        store
            .end_session(
                &event_id,
                &visitors[0].request_id,
                SessionEnd::Completed,
                T0_MS + 60
            )
            .await
            .unwrap(),
        EndOutcome::UnknownRequest
    );
    // The config survives, and so does the audit trail.
    assert!(store.get_event(&event_id).await.unwrap().is_some());
    assert_eq!(store.audit_log(&event_id, 10).await.unwrap(), vec![entry]);
    // The same requests, delivered again after the reset (late messages), were made for the
    // wiped line: they take no place in the new one. Requests made since start it.
    let late: Vec<EnqueueRequest> = visitors.iter().rev().cloned().collect();
    let newcomers: Vec<EnqueueRequest> = (0..2)
        .map(|i| EnqueueRequest {
            event_id: event_id.clone(),
            request_id: RequestId::new(T0_MS + 60 + i, 1),
            entry_time_ms: T0_MS + 60 + i,
        })
        .collect();
    let batch: Vec<EnqueueRequest> = late.iter().chain(&newcomers).cloned().collect();
    assert_eq!(
        assign(store, &event_id, &batch).await,
        AssignOutcome {
            assigned: 2,
            duplicates: 0,
            wiped: 5
        }
    );
    assert_unknown(store, &event_id, &visitors).await;
    assert_eq!(position(store, &event_id, &newcomers[0]).await, 1);
    let again = advance(store, &event_id, 2, T0_MS + 60).await;
    assert_eq!((again.previous, again.serving_counter), (0, 2));
}

async fn audit_log_is_newest_first(b: &Backend) {
    let store = b.store.as_ref();
    let event_id = new_event(store, "audit").await;
    let mut entries = Vec::new();
    for i in 0..5 {
        let entry = AuditEntry {
            at_ms: T0_MS + i * 10,
            actor: format!("admin-{i}"),
            action: "update_event".into(),
            event_id: event_id.clone(),
            detail: format!("change {i}"),
        };
        store.append_audit(&entry).await.unwrap();
        entries.push(entry);
    }
    entries.reverse();
    assert_eq!(
        store.audit_log(&event_id, 3).await.unwrap(),
        entries[..3].to_vec()
    );
    assert_eq!(store.audit_log(&event_id, 100).await.unwrap(), entries);
    assert!(
        store
            .audit_log(&event("nope"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- DynamoDB only -------------------------------------------------------------------------

/// A store whose endpoint does not answer fails with `Unavailable`, never a panic or a hang.
/// Needs no emulator: the port is one just closed.
#[tokio::test]
async fn dynamodb_store_unreachable_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let store = DynamoStore::new(&AwsConfig::local(&format!("http://127.0.0.1:{port}")), "t");
    let event_id = event("e");
    let started = std::time::Instant::now();
    let results: Vec<Result<(), StoreError>> = vec![
        store.get_event(&event_id).await.map(|_| ()),
        store
            .assign_positions(&event_id, &requests(&event_id, 3), T0_MS)
            .await
            .map(|_| ()),
        store
            .get_request(&event_id, &RequestId::new(0, 0))
            .await
            .map(|_| ()),
        store
            .claim_token(
                &event_id,
                &RequestId::new(0, 0),
                Admission::Bypass,
                &token("t", 1),
            )
            .await
            .map(|_| ()),
        store.create_table().await,
    ];
    for result in results {
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// DynamoDB calls a visitor costs, counted on the wire, through the real service code:
/// enqueue, batch assignment, admission, one status poll, token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_calls_per_visitor() {
    use waiting_room_core::WaitingRoom;
    use waiting_room_core::adapters::{ManualClock, MemoryBuffer};
    use waiting_room_core::service::CacheSettings;
    use waiting_room_core::token::{KeyAlgorithm, KeyRing, SigningKey, TokenIssuer};

    let Some(backend) = Backend::dynamodb("calls_per_visitor").await else {
        return;
    };
    let store = backend.dynamo.clone().expect("dynamodb backend");
    let buffer = Arc::new(MemoryBuffer::new(10_000));
    let key = SigningKey::generate(KeyAlgorithm::EdDSA).expect("key");
    let room = WaitingRoom::new(
        Arc::new(store.clone()),
        Arc::new(ManualClock::new(T0_MS)),
        CacheSettings::default(),
    )
    .with_buffer(buffer.clone())
    .with_tokens(TokenIssuer::new(
        Arc::new(KeyRing::new(key, vec![])),
        "test",
    ));
    const VISITORS: u64 = 50;
    let event_id = event("calls");
    room.create_event(EventConfig::new(event_id.clone()), "test")
        .await
        .expect("create");

    let mut phases: Vec<(&str, HashMap<String, u64>, u64)> = Vec::new();
    let mut mark = store.calls();
    let mut phase =
        |name: &'static str, mark: &mut waiting_room_core::adapters::dynamodb::CallCounts| {
            let now = store.calls();
            let delta = now.since(mark);
            phases.push((
                name,
                delta.by_operation.into_iter().collect(),
                delta.queue_counter_moves,
            ));
            *mark = now;
        };

    let mut ids = Vec::new();
    for _ in 0..VISITORS {
        ids.push(room.enqueue(&event_id).await.expect("enqueue"));
    }
    phase("enqueue (x50)", &mut mark);
    let batch = buffer.next_batch(1_000).await;
    let report = room.assign_batch(&batch).await;
    assert_eq!(report.assigned, VISITORS);
    phase("assign one batch of 50", &mut mark);
    room.increment_serving(&event_id, VISITORS, "test")
        .await
        .expect("serve");
    phase("admit 50 (one serving move)", &mut mark);
    for id in &ids {
        room.status(&event_id, id).await.expect("status");
    }
    phase("one status poll each", &mut mark);
    for id in &ids {
        room.generate_token(&event_id, id).await.expect("token");
    }
    phase("generate_token each", &mut mark);

    let mut total = 0;
    let mut report = String::from("\nDynamoDB calls for 50 visitors, enqueue to token:\n");
    for (name, ops, moves) in &phases {
        let sum: u64 = ops.values().sum();
        total += sum;
        let mut ops: Vec<_> = ops.iter().collect();
        ops.sort();
        report.push_str(&format!(
            "  {name:<30} {sum:>4} calls ({:.2}/visitor) {ops:?} queue counter moves: {moves}\n",
            sum as f64 / VISITORS as f64
        ));
    }
    report.push_str(&format!(
        "  total {total} calls, {:.2} per visitor\n",
        total as f64 / VISITORS as f64
    ));
    let _ = std::io::stderr().write_all(report.as_bytes());
    // One queue counter move for the whole batch.
    assert_eq!(phases[1].2, 1);
    backend.finish().await;
}
