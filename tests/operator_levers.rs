//! The operator's levers on a live room: scheduled pre-queue with a fair draw, safety net,
//! close, and a rate limit on top of MaxSize.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use serde_json::json;
use waiting_room_core::domain::shuffle::permute;
use waiting_room_core::domain::{EventConfig, RequestId, Schedule, Strategy};
use waiting_room_core::ports::Clock;
use waiting_room_core::server::LocalRoom;
use waiting_room_tests::*;

async fn pass(local: &LocalRoom, event_id: &str) -> waiting_room_core::service::StrategyReport {
    let config = local.room.event(&event(event_id)).await.unwrap();
    local.room.apply_strategy(&config).await.unwrap()
}

async fn place_of(app: &axum::Router, event_id: &str, id: &RequestId) -> u64 {
    let answer = call(
        app,
        Method::GET,
        &format!("/queue_num?event_id={event_id}&request_id={id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["queue_number"].as_u64().unwrap()
}

#[tokio::test]
async fn the_pre_queue_is_drawn_fairly_at_the_start_and_later_arrivals_queue_behind() {
    let (local, clock) = room().await;
    let now = clock.now_ms();
    let mut config = EventConfig::new(event("drop"));
    config.strategy = Strategy::Manual;
    config.schedule = Schedule {
        prequeue_at_ms: Some(now + 10_000),
        start_at_ms: Some(now + 70_000),
        end_at_ms: None,
    };
    local.room.create_event(config, "test").await.unwrap();
    let app = local.router();

    // Before the pre-queue opens nobody may join.
    let early = call(
        &app,
        Method::POST,
        "/assign_queue_num",
        Some(json!({"event_id": "drop"})),
        &[],
    )
    .await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.body["code"], "event_not_open");

    clock.advance_ms(10_000);
    let mut prequeue = Vec::new();
    for _ in 0..300 {
        prequeue.push(enqueue(&app, "drop").await);
        clock.advance_ms(100); // arrivals spread over the pre-queue
    }
    drain(&local).await;
    let status = call(
        &app,
        Method::GET,
        &format!("/status?event_id=drop&request_id={}", prequeue[0]),
        None,
        &[],
    )
    .await;
    assert_eq!(status.body["state"], "pre_queue");
    assert_eq!(
        status.body["queue_number"],
        json!(null),
        "no place before the draw"
    );
    assert_eq!(status.body["starts_at_ms"], now + 70_000);
    let not_yet = call(
        &app,
        Method::GET,
        &format!("/queue_num?event_id=drop&request_id={}", prequeue[0]),
        None,
        &[],
    )
    .await;
    assert_eq!(not_yet.status, StatusCode::ACCEPTED);
    assert_eq!(
        increment(&app, "drop", 1).await.body["code"],
        "event_not_open"
    );
    assert!(
        pass(&local, "drop").await.drawn.is_none(),
        "no draw before the start"
    );

    clock.set_ms(now + 70_000);
    let draw = pass(&local, "drop")
        .await
        .drawn
        .expect("drawn at the start");
    assert_eq!(draw.size, 300);

    // The places are a permutation of 1..=300, and anyone can replay it from the seed.
    let mut places = HashMap::new();
    for (arrival, id) in prequeue.iter().enumerate() {
        let place = place_of(&app, "drop", id).await;
        assert_eq!(
            place,
            1 + permute(arrival as u64, 300, draw.seed),
            "replayable"
        );
        assert!(places.insert(place, *id).is_none(), "place {place} twice");
    }
    assert_eq!(places.len(), 300);
    assert_ne!(
        place_of(&app, "drop", &prequeue[0]).await + place_of(&app, "drop", &prequeue[1]).await,
        3,
        "not first come, first served"
    );
    let audit = local.room.audit_log(&event("drop"), 10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "draw" && e.detail.contains(&draw.seed.to_string()))
    );

    // Later arrivals queue behind the whole pre-queue, in arrival order.
    let late: Vec<RequestId> = {
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(enqueue(&app, "drop").await);
        }
        drain(&local).await;
        ids
    };
    for (i, id) in late.iter().enumerate() {
        assert_eq!(place_of(&app, "drop", id).await, 301 + i as u64);
    }

    // Admission follows the drawn order: exactly the visitors drawn 1..=10 may claim.
    assert_eq!(increment(&app, "drop", 10).await.body["serving_num"], 10);
    for (place, id) in &places {
        let answer = generate_token(&app, "drop", id).await;
        let expected = if *place <= 10 {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        assert_eq!(answer.status, expected, "place {place}");
    }
}

#[tokio::test]
async fn two_runners_at_the_start_record_one_draw() {
    let (local, clock) = room().await;
    let now = clock.now_ms();
    let mut config = EventConfig::new(event("race"));
    config.schedule = Schedule {
        prequeue_at_ms: Some(now),
        start_at_ms: Some(now + 1_000),
        end_at_ms: None,
    };
    local.room.create_event(config, "test").await.unwrap();
    let app = local.router();
    for _ in 0..20 {
        enqueue(&app, "race").await;
    }
    drain(&local).await;
    clock.advance_ms(1_000);
    let config = local.room.event(&event("race")).await.unwrap();
    let (a, b) = tokio::join!(
        local.room.apply_strategy(&config),
        local.room.apply_strategy(&config)
    );
    let drawn: Vec<_> = [a.unwrap().drawn, b.unwrap().drawn]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(drawn.len(), 1, "exactly one draw");
    assert_eq!(
        local.room.event(&event("race")).await.unwrap().draw,
        Some(drawn[0])
    );
    // An operator's later config change keeps the draw.
    let mut changed = local.room.event(&event("race")).await.unwrap();
    changed.draw = None;
    changed.name = "Renamed".into();
    local.room.update_event(changed, "test").await.unwrap();
    assert_eq!(
        local.room.event(&event("race")).await.unwrap().draw,
        Some(drawn[0])
    );
}

#[tokio::test]
async fn the_safety_net_passes_visitors_through_under_the_limits_and_queues_above_them() {
    let (local, _) = room().await;
    let mut config = EventConfig::new(event("net"));
    config.strategy = Strategy::MaxSize { max_active: 20 };
    config.safety_net = true;
    local.room.create_event(config, "test").await.unwrap();
    let app = local.router();
    let served = |ids: &[RequestId]| {
        let (app, ids) = (app.clone(), ids.to_vec());
        async move {
            let mut n = 0;
            for id in &ids {
                if generate_token(&app, "net", id).await.status == StatusCode::OK {
                    n += 1;
                }
            }
            n
        }
    };

    // Quiet traffic: in at once, no runner pass needed.
    let quiet: Vec<RequestId> = {
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(enqueue(&app, "net").await);
        }
        ids
    };
    drain(&local).await;
    assert_eq!(served(&quiet).await, 5, "passed straight through");

    // A burst: the room fills to its cap and queues the rest by itself.
    let burst: Vec<RequestId> = {
        let mut ids = Vec::new();
        for _ in 0..100 {
            ids.push(enqueue(&app, "net").await);
        }
        ids
    };
    drain(&local).await;
    let counters = local.room.counters(&event("net")).await.unwrap();
    assert_eq!(counters.in_flight(), 20);
    assert_eq!(counters.waiting(), 85, "the room queues above its limit");

    // Sessions end; the queue drains first, in order...
    for id in quiet.iter().chain(&burst) {
        call(
            &app,
            Method::POST,
            "/update_session",
            Some(json!({"event_id": "net", "request_id": id, "status": 1})),
            &admin(),
        )
        .await;
        pass(&local, "net").await;
        served(&burst).await;
    }
    let counters = local.room.counters(&event("net")).await.unwrap();
    assert_eq!(counters.waiting(), 0, "queue drained: {counters:?}");

    // ...then visitors pass straight through again.
    let after = enqueue(&app, "net").await;
    drain(&local).await;
    assert_eq!(served(&[after]).await, 1);
}

#[tokio::test]
async fn a_closed_event_takes_nobody_and_issues_no_token() {
    let (local, clock) = room().await;
    let app = local.router();
    let waiting = enqueue(&app, "demo").await;
    drain(&local).await;
    increment(&app, "demo", 1).await;
    let closed = call(
        &app,
        Method::POST,
        "/admin/events/demo/close",
        None,
        &admin(),
    )
    .await;
    assert_eq!(closed.body["closed"], true);
    let join = call(
        &app,
        Method::POST,
        "/assign_queue_num",
        Some(json!({"event_id": "demo"})),
        &[],
    )
    .await;
    assert_eq!(join.status, StatusCode::GONE);
    assert_eq!(join.body["code"], "event_closed");
    assert_eq!(
        generate_token(&app, "demo", &waiting).await.body["code"],
        "event_closed"
    );
    let status = call(
        &app,
        Method::GET,
        &format!("/status?event_id=demo&request_id={waiting}"),
        None,
        &[],
    )
    .await;
    assert_eq!(status.body["state"], "closed");

    call(
        &app,
        Method::POST,
        "/admin/events/demo/reopen",
        None,
        &admin(),
    )
    .await;
    assert_eq!(
        generate_token(&app, "demo", &waiting).await.status,
        StatusCode::OK
    );

    // An end time closes it by itself.
    let mut config = local.room.event(&event("demo")).await.unwrap();
    config.schedule.end_at_ms = Some(clock.now_ms() + 1_000);
    local.room.update_event(config, "test").await.unwrap();
    clock.advance_ms(1_000);
    let join = call(
        &app,
        Method::POST,
        "/assign_queue_num",
        Some(json!({"event_id": "demo"})),
        &[],
    )
    .await;
    assert_eq!(join.status, StatusCode::GONE);
}

#[tokio::test]
async fn a_rate_limit_sits_on_top_of_max_size() {
    let (local, clock) = room().await;
    let mut config = EventConfig::new(event("paced"));
    config.strategy = Strategy::MaxSize { max_active: 1_000 };
    config.rate_limit_per_min = Some(30);
    local.room.create_event(config, "test").await.unwrap();
    let app = local.router();
    for _ in 0..200 {
        enqueue(&app, "paced").await;
    }
    drain(&local).await;
    assert_eq!(pass(&local, "paced").await.admitted, 30);
    clock.advance_ms(10_000);
    assert_eq!(
        pass(&local, "paced").await.admitted,
        0,
        "the minute's budget is spent"
    );
    clock.advance_ms(51_000);
    assert_eq!(pass(&local, "paced").await.admitted, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_use_code_lets_exactly_one_visitor_skip_the_line_even_concurrently() {
    let (local, _) = room().await;
    let app = local.router();
    // A line that is not moving: nobody is served.
    for _ in 0..5 {
        enqueue(&app, "demo").await;
    }
    drain(&local).await;
    let created = call(
        &app,
        Method::POST,
        "/admin/events/demo/codes",
        Some(json!({"codes": ["STAFF-ONLY"], "uses": 1})),
        &admin(),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);

    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                call(
                    &app,
                    Method::POST,
                    "/redeem_code",
                    Some(json!({"event_id": "demo", "code": "STAFF-ONLY"})),
                    &[],
                )
                .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for attempt in attempts {
        let answer = attempt.await.unwrap();
        match answer.status {
            StatusCode::OK => winners
                .push(RequestId::parse(answer.body["api_request_id"].as_str().unwrap()).unwrap()),
            StatusCode::FORBIDDEN => assert_eq!(answer.body["code"], "code_refused"),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "one redemption of a single-use code");
    let token = generate_token(&app, "demo", &winners[0]).await;
    assert_eq!(
        token.status,
        StatusCode::OK,
        "in without waiting: {}",
        token.body
    );
    let authorized = call(
        &app,
        Method::GET,
        "/authorize?event_id=demo",
        None,
        &[(
            "authorization",
            token.body["access_token"].as_str().unwrap(),
        )],
    )
    .await;
    assert_eq!(authorized.status, StatusCode::OK);
    let again = call(
        &app,
        Method::POST,
        "/redeem_code",
        Some(json!({"event_id": "demo", "code": "STAFF-ONLY"})),
        &[],
    )
    .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "replay refused");

    let counters = local.room.counters(&event("demo")).await.unwrap();
    assert_eq!(
        (
            counters.serving_counter,
            counters.tokens_bypassed,
            counters.active_tokens()
        ),
        (0, 1, 1)
    );
    assert_eq!(counters.pending_claims(), 0, "the line is untouched");
}

#[tokio::test]
async fn multi_use_and_generated_codes() {
    let (local, _) = room().await;
    let app = local.router();
    let made = call(
        &app,
        Method::POST,
        "/admin/events/demo/codes",
        Some(json!({"count": 5, "uses": 3})),
        &admin(),
    )
    .await;
    let codes: Vec<String> = made
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 5);
    assert_eq!(
        codes.iter().collect::<std::collections::HashSet<_>>().len(),
        5,
        "distinct"
    );
    let redeem = |code: String| {
        let app = app.clone();
        async move {
            call(
                &app,
                Method::POST,
                "/redeem_code",
                Some(json!({"event_id": "demo", "code": code})),
                &[],
            )
            .await
            .status
        }
    };
    for _ in 0..3 {
        assert_eq!(redeem(codes[0].clone()).await, StatusCode::OK);
    }
    assert_eq!(
        redeem(codes[0].clone()).await,
        StatusCode::FORBIDDEN,
        "three uses only"
    );
    assert_eq!(
        redeem(codes[1].clone()).await,
        StatusCode::OK,
        "other codes unaffected"
    );
    assert_eq!(redeem("NOPE-NOPE".into()).await, StatusCode::FORBIDDEN);
    let bad = call(
        &app,
        Method::POST,
        "/redeem_code",
        Some(json!({"event_id": "demo", "code": "<x>"})),
        &[],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let audit = local.room.audit_log(&event("demo"), 5).await.unwrap();
    assert!(
        audit
            .iter()
            .all(|e| !codes.iter().any(|c| e.detail.contains(c.as_str()))),
        "codes never logged"
    );
}

#[tokio::test]
async fn event_info_tells_a_page_when_the_room_opens() {
    let (local, clock) = room().await;
    let now = clock.now_ms();
    let mut config = EventConfig::new(event("soon"));
    config.name = "Spring drop".into();
    config.schedule = Schedule {
        prequeue_at_ms: Some(now + 60_000),
        start_at_ms: Some(now + 120_000),
        end_at_ms: None,
    };
    local.room.create_event(config, "test").await.unwrap();
    let app = local.router();
    let info = call(&app, Method::GET, "/event_info?event_id=soon", None, &[]).await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(info.body["state"], "not_open");
    assert_eq!(info.body["name"], "Spring drop");
    assert_eq!(info.body["opens_at_ms"], now + 60_000);
    assert_eq!(info.body["now_ms"], now);
    clock.advance_ms(60_000);
    assert_eq!(
        call(&app, Method::GET, "/event_info?event_id=soon", None, &[])
            .await
            .body["state"],
        "pre_queue"
    );
    assert_eq!(
        call(&app, Method::GET, "/event_info?event_id=nope", None, &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
