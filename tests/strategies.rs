//! The strategy runner on a live room: MaxSize never lets more visitors in than its cap,
//! Periodic never passes the queue counter, and visitors who never come back free their slot.

use axum::http::{Method, StatusCode};
use serde_json::json;
use waiting_room_core::domain::exits::{BUCKET_MS, SETTLE_MS};
use waiting_room_core::domain::{RequestId, Strategy};
use waiting_room_core::server::LocalRoom;
use waiting_room_tests::*;

async fn line_up(local: &LocalRoom, event_id: &'static str, n: usize) -> Vec<RequestId> {
    let app = local.router();
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(enqueue(&app, event_id).await);
    }
    drain(local).await;
    ids
}

async fn pass(local: &LocalRoom, event_id: &str) -> waiting_room_core::service::StrategyReport {
    let config = local.room.event(&event(event_id)).await.unwrap();
    local.room.apply_strategy(&config).await.unwrap()
}

#[tokio::test]
async fn max_size_never_exceeds_its_cap_while_visitors_come_and_go() {
    let (local, clock) = room().await;
    create_event(&local, "capped", Strategy::MaxSize { max_active: 25 }).await;
    let app = local.router();
    let ids = line_up(&local, "capped", 200).await;
    let mut admitted = 0;
    let mut active: std::collections::VecDeque<RequestId> = Default::default();
    for round in 0..200 {
        pass(&local, "capped").await;
        let counters = local.room.counters(&event("capped")).await.unwrap();
        assert!(
            counters.active_tokens() <= 25,
            "round {round}: {counters:?}"
        );
        assert!(counters.in_flight() <= 25, "round {round}: {counters:?}");
        // Every served visitor claims a token...
        for id in &ids[admitted..counters.serving_counter as usize] {
            let answer = generate_token(&app, "capped", id).await;
            assert_eq!(answer.status, StatusCode::OK);
            active.push_back(*id);
        }
        admitted = counters.serving_counter as usize;
        let counters = local.room.counters(&event("capped")).await.unwrap();
        assert!(
            counters.active_tokens() <= 25,
            "after claims, round {round}"
        );
        // ...and up to 8 of the longest-active finish each round.
        for id in active.drain(..active.len().min(8)) {
            let answer = call(
                &app,
                Method::POST,
                "/update_session",
                Some(json!({"event_id": "capped", "request_id": id, "status": 1})),
                &admin(),
            )
            .await;
            assert_eq!(answer.status, StatusCode::OK);
        }
        clock.advance_ms(2_000);
        if admitted == ids.len() {
            break;
        }
    }
    assert_eq!(admitted, 200, "everyone got in eventually");
}

#[tokio::test]
async fn max_size_keeps_admitting_when_half_the_served_visitors_never_come_back() {
    let (local, clock) = room().await;
    create_event(&local, "flaky", Strategy::MaxSize { max_active: 10 }).await;
    let app = local.router();
    let ids = line_up(&local, "flaky", 100).await;
    let mut claimed = 0;
    for _ in 0..400 {
        let report = pass(&local, "flaky").await;
        let counters = local.room.counters(&event("flaky")).await.unwrap();
        assert!(counters.in_flight() <= 10);
        // Odd positions claim and finish at once; even positions never come back.
        for (index, id) in ids
            .iter()
            .enumerate()
            .take(counters.serving_counter as usize)
        {
            if index % 2 == 0 {
                let body = json!({"event_id": "flaky", "request_id": id});
                if call(&app, Method::POST, "/generate_token", Some(body), &[])
                    .await
                    .status
                    == StatusCode::OK
                {
                    claimed += 1;
                    call(
                        &app,
                        Method::POST,
                        "/update_session",
                        Some(json!({"event_id": "flaky", "request_id": id, "status": 1})),
                        &admin(),
                    )
                    .await;
                }
            }
        }
        if counters.serving_counter == 100 && report.admitted == 0 {
            break;
        }
        // Time passes: abandoned places expire after the 900 s claim window.
        clock.advance_ms(60_000);
    }
    let counters = local.room.counters(&event("flaky")).await.unwrap();
    assert_eq!(
        counters.serving_counter, 100,
        "the room never stalled: {counters:?}"
    );
    assert_eq!(claimed, 50);
}

#[tokio::test]
async fn periodic_admits_its_batch_each_interval_and_never_passes_the_queue() {
    let (local, clock) = room().await;
    create_event(
        &local,
        "drip",
        Strategy::Periodic {
            increment_by: 7,
            interval_secs: 10,
        },
    )
    .await;
    line_up(&local, "drip", 30).await;
    let mut history = Vec::new();
    for _ in 0..12 {
        pass(&local, "drip").await;
        let counters = local.room.counters(&event("drip")).await.unwrap();
        assert!(counters.serving_counter <= counters.queue_counter);
        history.push(counters.serving_counter);
        clock.advance_ms(5_000);
    }
    // One pass every 5 s, one admission every 10 s from the event's start, capped at 30.
    assert_eq!(history, vec![0, 0, 7, 7, 14, 14, 21, 21, 28, 28, 30, 30]);
}

#[tokio::test]
async fn expired_tokens_free_their_slots() {
    let (local, clock) = room().await;
    create_event(&local, "short", Strategy::MaxSize { max_active: 3 }).await;
    let app = local.router();
    let ids = line_up(&local, "short", 6).await;
    assert_eq!(pass(&local, "short").await.admitted, 3);
    for id in &ids[..3] {
        let answer = generate_token(&app, "short", id).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    assert_eq!(pass(&local, "short").await.admitted, 0, "full");
    // The tokens expire an hour on; their slots are counted free once their expiry's time
    // bucket has settled, never before.
    clock.advance_ms(3_601_000);
    let early = pass(&local, "short").await;
    assert_eq!((early.tokens_expired, early.admitted), (0, 0), "not yet");
    clock.advance_ms(BUCKET_MS + SETTLE_MS);
    let report = pass(&local, "short").await;
    assert_eq!(report.tokens_expired, 3);
    assert_eq!(report.admitted, 3);
}

#[tokio::test]
async fn a_paused_event_admits_nobody_until_resumed() {
    let (local, _) = room().await;
    create_event(&local, "hold", Strategy::MaxSize { max_active: 5 }).await;
    line_up(&local, "hold", 10).await;
    local
        .room
        .set_paused(&event("hold"), true, "test")
        .await
        .unwrap();
    assert_eq!(pass(&local, "hold").await.admitted, 0);
    local
        .room
        .set_paused(&event("hold"), false, "test")
        .await
        .unwrap();
    assert_eq!(pass(&local, "hold").await.admitted, 5);
}
