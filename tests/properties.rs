//! Property tests: under any interleaving of arrivals, duplicate deliveries, increments, token
//! claims, completions, expiry and strategy passes, no place is given twice or lost, the serving
//! counter never passes the queue counter, and MaxSize never lets more visitors in than its cap,
//! even when the exit counts it admits on lag a whole runner pass.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use waiting_room_core::domain::{EnqueueRequest, RequestId, Strategy as RoomStrategy};
use waiting_room_tests::*;

#[derive(Debug, Clone)]
enum Step {
    /// `n` visitors arrive (their messages wait in the buffer).
    Arrive(u8),
    /// The consumer takes up to `n` buffered messages, delivering each `copies` times.
    Deliver { n: u8, copies: u8 },
    /// An already-delivered message is delivered again, later.
    Redeliver(u8),
    /// The operator moves the counter by hand (only in the ordering property).
    Increment(u8),
    /// The `i`-th known visitor asks for a token.
    Claim(u8),
    /// The `i`-th known visitor's session ends (completed or abandoned).
    End(u8, bool),
    /// Time passes.
    Wait(u32),
    /// The strategy runner makes a pass.
    Pass,
}

fn step(manual: bool) -> impl Strategy<Value = Step> {
    let increment = if manual { 1u8..20 } else { 0u8..1 };
    prop_oneof![
        3 => (1u8..30).prop_map(Step::Arrive),
        3 => (1u8..40, 1u8..4).prop_map(|(n, copies)| Step::Deliver { n, copies }),
        1 => any::<u8>().prop_map(Step::Redeliver),
        2 => increment.prop_map(Step::Increment),
        3 => any::<u8>().prop_map(Step::Claim),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(i, done)| Step::End(i, done)),
        1 => (1u32..2_000_000).prop_map(Step::Wait),
        2 => Just(Step::Pass),
    ]
}

/// Runs the steps on a fresh room and checks the invariants after every one.
fn run(steps: Vec<Step>, cap: Option<u64>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (local, clock) = room().await;
        let strategy = cap.map_or(RoomStrategy::Manual, |max_active| RoomStrategy::MaxSize {
            max_active,
        });
        create_event(&local, "prop", strategy).await;
        let app = local.router();
        let event_id = event("prop");
        let mut delivered: Vec<EnqueueRequest> = Vec::new();
        let mut known: Vec<RequestId> = Vec::new();
        for step in steps {
            match step {
                Step::Arrive(n) => {
                    for _ in 0..n {
                        enqueue(&app, "prop").await;
                    }
                }
                Step::Deliver { n, copies } => {
                    let taken = if buffer(&local).is_empty() {
                        vec![]
                    } else {
                        buffer(&local).next_batch(n as usize).await
                    };
                    let mut batch = Vec::new();
                    for request in &taken {
                        for _ in 0..copies {
                            batch.push(request.clone());
                        }
                    }
                    let report = local.room.assign_batch(&batch).await;
                    prop_assert!(report.failed.is_empty());
                    for request in taken {
                        known.push(request.request_id);
                        delivered.push(request);
                    }
                }
                Step::Redeliver(i) => {
                    if !delivered.is_empty() {
                        let again = delivered[i as usize % delivered.len()].clone();
                        let report = local.room.assign_batch(&[again]).await;
                        prop_assert_eq!(report.assigned, 0, "a redelivery assigned a new place");
                    }
                }
                Step::Increment(by) => {
                    if by > 0 {
                        increment(&app, "prop", by as u64).await;
                    }
                }
                Step::Claim(i) => {
                    if !known.is_empty() {
                        generate_token(&app, "prop", &known[i as usize % known.len()]).await;
                    }
                }
                Step::End(i, done) => {
                    if !known.is_empty() {
                        let end = if done {
                            waiting_room_core::domain::SessionEnd::Completed
                        } else {
                            waiting_room_core::domain::SessionEnd::Abandoned
                        };
                        let _ = local
                            .room
                            .update_session(
                                &event_id,
                                &known[i as usize % known.len()],
                                end,
                                "prop",
                            )
                            .await;
                    }
                }
                Step::Wait(ms) => clock.advance_ms(ms as i64),
                Step::Pass => {
                    let config = local.room.event(&event_id).await.unwrap();
                    local.room.apply_strategy(&config).await.unwrap();
                }
            }

            // Invariants.
            let counters = local.room.counters(&event_id).await.unwrap();
            prop_assert!(
                counters.serving_counter <= counters.queue_counter,
                "{counters:?}"
            );
            prop_assert_eq!(
                counters.queue_counter,
                known.len() as u64,
                "counter drifted from delivered visitors"
            );
            if let Some(cap) = cap {
                prop_assert!(
                    counters.active_tokens() <= cap,
                    "active over cap: {counters:?}"
                );
                prop_assert!(
                    counters.in_flight() <= cap,
                    "in flight over cap: {counters:?}"
                );
            }
        }
        // Every delivered visitor has exactly one place, and the places are 1..=n.
        let mut places: HashMap<u64, RequestId> = HashMap::new();
        for id in known.iter().collect::<HashSet<_>>() {
            let (record, _) = local.room.locate(&event_id, id).await.unwrap();
            prop_assert!(
                places.insert(record.position, *id).is_none(),
                "place {} twice",
                record.position
            );
        }
        let mut sorted: Vec<u64> = places.keys().copied().collect();
        sorted.sort_unstable();
        prop_assert_eq!(sorted, (1..=known.len() as u64).collect::<Vec<_>>());
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn places_are_unique_and_none_is_lost(steps in prop::collection::vec(step(true), 1..60)) {
        run(steps, None)?;
    }

    #[test]
    fn max_size_never_lets_more_in_than_its_cap(cap in 1u64..12, steps in prop::collection::vec(step(false), 1..80)) {
        run(steps, Some(cap))?;
    }
}

/// One step of a sale where the runner's sums of the stripes lag a whole pass.
#[derive(Debug, Clone)]
enum LagStep {
    Arrive(u8),
    Deliver,
    Claim(u8),
    End(u8, bool),
    Wait(u32),
    Pass,
}

fn lag_step() -> impl Strategy<Value = LagStep> {
    prop_oneof![
        3 => (1u8..20).prop_map(LagStep::Arrive),
        2 => Just(LagStep::Deliver),
        4 => any::<u8>().prop_map(LagStep::Claim),
        3 => (any::<u8>(), any::<bool>()).prop_map(|(i, done)| LagStep::End(i, done)),
        2 => (1u32..400_000).prop_map(LagStep::Wait),
        3 => Just(LagStep::Pass),
    ]
}

/// MaxSize admits on exit counts a pass old (the runner and, with the safety net, the
/// consumer), while the counts summed afresh must never show more in flight than the cap.
fn run_lagging(steps: Vec<LagStep>, cap: u64, safety_net: bool) -> Result<(), TestCaseError> {
    use std::sync::Arc;
    use waiting_room_core::WaitingRoom;
    use waiting_room_core::adapters::{
        InstrumentedStore, ManualClock, MemoryBuffer, MemoryStore, SystemClock,
    };
    use waiting_room_core::domain::{EventConfig, SessionEnd};
    use waiting_room_core::ports::{Clock, Store};
    use waiting_room_core::token::{KeyAlgorithm, KeyRing, SigningKey, TokenIssuer};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let truth = MemoryStore::new();
        let lagging = Arc::new(InstrumentedStore::new(truth.clone()).with_lagging_exits());
        let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
        let buffer = Arc::new(MemoryBuffer::new(10_000));
        let key = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
        let room = WaitingRoom::new(lagging, clock.clone(), no_cache())
            .with_buffer(buffer.clone())
            .with_tokens(TokenIssuer::new(
                Arc::new(KeyRing::new(key, vec![])),
                "prop",
            ));
        let event_id = event("lag");
        let mut config = EventConfig::new(event_id.clone());
        config.strategy = RoomStrategy::MaxSize { max_active: cap };
        config.safety_net = safety_net;
        // Short windows, so claims, expiries and settlements all happen within the steps.
        config.token_ttl_secs = 60;
        config.position_expiry_secs = 30;
        room.create_event(config, "prop").await.unwrap();
        let mut known: Vec<RequestId> = Vec::new();
        for step in steps {
            match step {
                LagStep::Arrive(n) => {
                    for _ in 0..n {
                        known.push(room.enqueue(&event_id).await.unwrap());
                    }
                }
                LagStep::Deliver => {
                    if !buffer.is_empty() {
                        let batch = buffer.next_batch(50).await;
                        prop_assert!(room.assign_batch(&batch).await.failed.is_empty());
                    }
                }
                LagStep::Claim(i) => {
                    if !known.is_empty() {
                        let _ = room
                            .generate_token(&event_id, &known[i as usize % known.len()])
                            .await;
                    }
                }
                LagStep::End(i, done) => {
                    if !known.is_empty() {
                        let end = if done {
                            SessionEnd::Completed
                        } else {
                            SessionEnd::Abandoned
                        };
                        let id = known[i as usize % known.len()];
                        let _ = room.update_session(&event_id, &id, end, "prop").await;
                    }
                }
                LagStep::Wait(ms) => clock.advance_ms(ms as i64),
                LagStep::Pass => {
                    let config = room.event(&event_id).await.unwrap();
                    room.apply_strategy(&config).await.unwrap();
                }
            }
            let fresh = truth
                .count_exits(&event_id, clock.now_ms())
                .await
                .unwrap()
                .unwrap();
            prop_assert!(
                fresh.in_flight() <= cap,
                "in flight over cap {cap}: {fresh:?}"
            );
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn max_size_holds_its_cap_with_exit_counts_a_pass_late(
        cap in 1u64..10,
        safety_net in any::<bool>(),
        steps in prop::collection::vec(lag_step(), 1..100),
    ) {
        run_lagging(steps, cap, safety_net)?;
    }
}
