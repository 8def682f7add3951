//! 10,000 visitors arrive at once and every SQS message is delivered twice: each still gets
//! exactly one position, and positions run 1..=10,000 with no gap, per event. A stop with
//! 10,000 of them buffered places them all.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::Method;
use waiting_room_core::domain::{EnqueueRequest, RequestId, Strategy};
use waiting_room_core::listener::{Listener, ListenerSettings};
use waiting_room_core::ports::Clock;
use waiting_room_core::server::LocalRoom;
use waiting_room_tests::*;

const VISITORS: usize = 10_000;

/// Enqueues `n` visitors of `event_id` through the Router, all at once.
async fn arrive(local: &LocalRoom, event_id: &'static str, n: usize) -> Vec<RequestId> {
    let app = local.router();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { enqueue(&app, event_id).await })
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    for task in tasks {
        ids.push(task.await.expect("enqueue task"));
    }
    ids
}

/// Takes everything buffered and delivers each message twice, in shuffled batches of 500
/// processed concurrently by 8 consumers, as SQS at-least-once delivery may.
async fn deliver_twice(local: &LocalRoom) {
    let mut messages: Vec<EnqueueRequest> = Vec::new();
    while !buffer(local).is_empty() {
        messages.extend(buffer(local).next_batch(100_000).await);
    }
    let mut doubled: Vec<EnqueueRequest> =
        messages.iter().chain(messages.iter()).cloned().collect();
    // A fixed-seed shuffle (xorshift) so a failure replays identically.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..doubled.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        doubled.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    let batches: Vec<Vec<EnqueueRequest>> = doubled.chunks(500).map(<[_]>::to_vec).collect();
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let consumers: Vec<_> = (0..8)
        .map(|_| {
            let (room, queue) = (local.room.clone(), queue.clone());
            tokio::spawn(async move {
                let mut duplicates = 0;
                loop {
                    let Some(batch) = queue.lock().unwrap().pop() else {
                        return duplicates;
                    };
                    let report = room.assign_batch(&batch).await;
                    assert!(report.failed.is_empty());
                    duplicates += report.duplicates;
                }
            })
        })
        .collect();
    let mut duplicates = 0;
    for consumer in consumers {
        duplicates += consumer.await.expect("consumer");
    }
    assert_eq!(
        duplicates as usize,
        messages.len(),
        "every redelivery recognised"
    );
}

/// Reads every visitor's position through the API and checks they are exactly 1..=n.
async fn assert_positions_are_a_permutation(local: &LocalRoom, event_id: &str, ids: &[RequestId]) {
    let app = local.router();
    let mut seen: HashMap<u64, RequestId> = HashMap::new();
    for id in ids {
        let answer = call(
            &app,
            Method::GET,
            &format!("/queue_num?event_id={event_id}&request_id={id}"),
            None,
            &[],
        )
        .await;
        assert_eq!(answer.status, 200, "{id} has a position");
        let position = answer.body["queue_number"].as_u64().unwrap();
        assert!(
            seen.insert(position, *id).is_none(),
            "position {position} given twice"
        );
    }
    let mut positions: Vec<u64> = seen.into_keys().collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=ids.len() as u64).collect::<Vec<_>>());
    let counters = local.room.counters(&event(event_id)).await.unwrap();
    assert_eq!(
        counters.queue_counter,
        ids.len() as u64,
        "the counter did not drift"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_enqueues_delivered_twice_get_positions_once() {
    let (local, _) = room().await;
    let ids = arrive(&local, "demo", VISITORS).await;
    deliver_twice(&local).await;
    assert_positions_are_a_permutation(&local, "demo", &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_events_at_once_are_numbered_independently() {
    let (local, _) = room().await;
    create_event(&local, "second", Strategy::Manual).await;
    let (a, b) = tokio::join!(
        arrive(&local, "demo", VISITORS),
        arrive(&local, "second", VISITORS)
    );
    deliver_twice(&local).await;
    assert_positions_are_a_permutation(&local, "demo", &a).await;
    assert_positions_are_a_permutation(&local, "second", &b).await;
}

/// The server is told to stop while 10,000 joins answered `202` still wait in the buffer:
/// `serve` returns only once every one of them has its position.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_places_every_join_still_buffered() {
    let (local, _) = room().await;
    let ids = arrive(&local, "demo", VISITORS).await;
    assert_eq!(buffer(&local).len(), VISITORS);
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let listener = Listener::from_tcp(tcp, ListenerSettings::default()).expect("listener");
    // The stop comes at once: the consumer starts with the whole buffer ahead of it.
    let report = local.clone().serve(listener, async {}).await;
    assert_eq!(report.unplaced, 0);
    assert!(
        report.placed_while_stopping > 0,
        "the buffer was placed by the drain: {report:?}"
    );
    assert!(buffer(&local).is_empty());
    assert_positions_are_a_permutation(&local, "demo", &ids).await;
}

#[tokio::test]
async fn a_message_for_an_unknown_event_takes_no_position_and_is_not_retried() {
    let (local, clock) = room().await;
    let stray = EnqueueRequest {
        event_id: event("deleted"),
        request_id: RequestId::new(0, 0),
        entry_time_ms: clock.now_ms(),
    };
    let good = EnqueueRequest {
        event_id: event("demo"),
        request_id: RequestId::new(0, 0),
        entry_time_ms: clock.now_ms(),
    };
    let report = local.room.assign_batch(&[stray, good.clone()]).await;
    assert_eq!(report.dropped, 1);
    assert_eq!(report.assigned, 1);
    assert!(report.failed.is_empty());
    let (record, _) = local
        .room
        .locate(&event("demo"), &good.request_id)
        .await
        .unwrap();
    assert_eq!(record.position, 1, "the stray message consumed no position");
}
