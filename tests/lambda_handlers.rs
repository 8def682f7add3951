//! The SQS consumer and the scheduled strategy runner, fed the payloads AWS sends.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use axum::http::{Method, StatusCode};
use serde_json::json;
use waiting_room_core::adapters::Fault;
use waiting_room_core::domain::{EnqueueRequest, RequestId, Strategy};
use waiting_room_core::http::{AdminAuth, router};
use waiting_room_core::lambda::{handle_schedule, handle_sqs_batch};
use waiting_room_tests::*;

const SQS_FIXTURE: &str = include_str!("fixtures/sqs-enqueue-batch.json");
const SCHEDULE_FIXTURE: &str = include_str!("fixtures/eventbridge-scheduled.json");

fn sqs_event(bodies: [&str; 3]) -> SqsEvent {
    let mut fixture = SQS_FIXTURE.to_owned();
    for (i, body) in bodies.iter().enumerate() {
        let escaped = serde_json::to_string(body).unwrap();
        fixture = fixture.replace(&format!("\"{{{{BODY_{}}}}}\"", i + 1), &escaped);
    }
    serde_json::from_str(&fixture).expect("SQS fixture")
}

fn message(event_id: &str) -> String {
    serde_json::to_string(&EnqueueRequest {
        event_id: event(event_id),
        request_id: RequestId::new(0, 0),
        entry_time_ms: 1_795_449_600_000,
    })
    .unwrap()
}

#[tokio::test]
async fn a_redelivered_message_keeps_its_position_and_a_poison_message_fails_alone() {
    let (local, _) = room().await;
    let visitor = message("demo");
    let batch = sqs_event([&visitor, &visitor, "not json"]);
    let response = handle_sqs_batch(&local.room, batch).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        vec!["c80e8021-a70a-42c7-a470-796e1186f753"],
        "only the poison message"
    );
    let counters = local.room.counters(&event("demo")).await.unwrap();
    assert_eq!(
        counters.queue_counter, 1,
        "the duplicate took no second position"
    );

    // The whole batch again (SQS redelivery): nothing new assigned.
    handle_sqs_batch(&local.room, sqs_event([&visitor, &visitor, "not json"])).await;
    assert_eq!(
        local
            .room
            .counters(&event("demo"))
            .await
            .unwrap()
            .queue_counter,
        1
    );
}

/// An SQS event carrying `messages` (id, body), as the event source mapping delivers them.
fn sqs_batch(messages: &[(String, String)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|(id, body)| {
            let mut message = SqsMessage::default();
            message.message_id = Some(id.clone());
            message.body = Some(body.clone());
            message
        })
        .collect();
    event
}

/// DynamoDB throttles during bursts. With one store call in three refused, the consumer fails
/// only the messages whose write was refused; SQS delivers those again (and, at least once,
/// some it had already delivered) until every visitor is placed. The positions are then exactly
/// 1..=N and the queue counter N: nothing lost, nothing twice, no drift.
#[tokio::test]
async fn intermittent_throttling_retries_messages_until_each_visitor_is_placed_once() {
    const VISITORS: usize = 1_200;
    let (room, store, _) = instrumented_room(Duration::ZERO, no_cache()).await;
    let requests: Vec<EnqueueRequest> = (0..VISITORS)
        .map(|i| EnqueueRequest {
            event_id: event("demo"),
            request_id: RequestId::new(0, 0),
            entry_time_ms: 1_795_449_600_000 + i as i64,
        })
        .collect();
    let messages: Vec<(String, String)> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("m{i}"), serde_json::to_string(r).unwrap()))
        .collect();

    store.set_fault(Some(Fault::Throttled { one_in: 3 }));
    let mut pending = messages.clone();
    let (mut rounds, mut retried) = (0, 0);
    while !pending.is_empty() {
        rounds += 1;
        assert!(rounds <= 100, "messages still failing after 100 rounds");
        // At-least-once delivery: every round also brings back 20 already delivered messages.
        let again = messages[(rounds * 37) % VISITORS..]
            .iter()
            .take(20)
            .cloned();
        let delivered: Vec<(String, String)> = pending.drain(..).chain(again).collect();
        for batch in delivered.chunks(100) {
            let response = handle_sqs_batch(&room, sqs_batch(batch)).await;
            for failure in response.batch_item_failures {
                let message = batch
                    .iter()
                    .find(|(id, _)| *id == failure.item_identifier)
                    .expect("a failure names a message of the batch");
                if !pending.contains(message) {
                    pending.push(message.clone());
                }
            }
        }
        retried += pending.len();
    }
    assert!(retried > 0, "the fault refused some writes");
    store.set_fault(None);

    let counters = room.counters(&event("demo")).await.unwrap();
    assert_eq!(counters.queue_counter, VISITORS as u64, "no drift");
    let mut positions = std::collections::BTreeSet::new();
    for request in &requests {
        let status = room
            .status(&event("demo"), &request.request_id)
            .await
            .unwrap();
        assert!(positions.insert(status.queue_number.expect("placed")));
    }
    assert_eq!(positions, (1..=VISITORS as u64).collect());
}

/// Throttled token claims answer 503 with `Retry-After: 1` and count nothing; the visitor's
/// retry then gets the token, counted once.
#[tokio::test]
async fn throttled_token_claims_answer_503_and_count_once_when_retried() {
    let (room, store, _) = instrumented_room(Duration::ZERO, no_cache()).await;
    let app = router(room.clone(), AdminAuth::Key(ADMIN_KEY.into()));
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(room.enqueue(&event("demo")).await.unwrap());
    }
    let requests: Vec<(String, String)> = ids
        .iter()
        .map(|id| {
            let request = EnqueueRequest {
                event_id: event("demo"),
                request_id: *id,
                entry_time_ms: id.created_at_ms(),
            };
            (id.to_string(), serde_json::to_string(&request).unwrap())
        })
        .collect();
    let response = handle_sqs_batch(&room, sqs_batch(&requests)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(increment(&app, "demo", 30).await.status, StatusCode::OK);

    store.set_fault(Some(Fault::Throttled { one_in: 1 }));
    let refused = generate_token(&app, "demo", &ids[0]).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.body["code"], "store_unavailable");
    assert_eq!(refused.headers["retry-after"], "1");

    store.set_fault(Some(Fault::Throttled { one_in: 4 }));
    let mut throttled = 0;
    for id in &ids {
        for attempt in 1.. {
            assert!(attempt <= 50, "still throttled after 50 attempts");
            let answer = generate_token(&app, "demo", id).await;
            match answer.status {
                StatusCode::OK => break,
                StatusCode::SERVICE_UNAVAILABLE => throttled += 1,
                other => panic!("unexpected {other}: {}", answer.body),
            }
        }
    }
    assert!(throttled > 0, "the fault refused some claims");
    store.set_fault(None);
    let counters = room.counters(&event("demo")).await.unwrap();
    assert_eq!(counters.tokens_issued, 30, "each token counted once");
}

#[tokio::test]
async fn store_faults_fail_the_messages_for_retry_and_lose_nothing() {
    let (room, store, _) = instrumented_room(Duration::ZERO, no_cache()).await;
    let (a, b, c) = (message("demo"), message("demo"), message("demo"));
    store.set_fault(Some(Fault::Unavailable));
    let response = handle_sqs_batch(&room, sqs_event([&a, &b, &c])).await;
    assert_eq!(response.batch_item_failures.len(), 3, "all retried");

    // While the store is down the API answers 503 with a JSON body and Retry-After.
    let app = router(room.clone(), AdminAuth::Key("k".into()));
    let answer = call(&app, Method::GET, "/serving_num?event_id=demo", None, &[]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["code"], "store_unavailable");
    assert!(answer.headers.contains_key("retry-after"));

    store.set_fault(None);
    let response = handle_sqs_batch(&room, sqs_event([&a, &b, &c])).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        room.counters(&event("demo")).await.unwrap().queue_counter,
        3,
        "no drift"
    );
}

#[tokio::test]
async fn a_message_for_an_unknown_event_is_acknowledged_not_retried() {
    let (local, _) = room().await;
    let response = handle_sqs_batch(
        &local.room,
        sqs_event([&message("gone"), &message("demo"), &message("demo")]),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        local
            .room
            .counters(&event("demo"))
            .await
            .unwrap()
            .queue_counter,
        2
    );
}

#[tokio::test(start_paused = true)]
async fn one_scheduled_invocation_runs_a_pass_every_few_seconds_within_its_budget() {
    let (local, _) = room().await;
    create_event(&local, "capped", Strategy::MaxSize { max_active: 4 }).await;
    let app = local.router();
    for _ in 0..10 {
        enqueue(&app, "capped").await;
    }
    drain(&local).await;
    let event: EventBridgeEvent = serde_json::from_str(SCHEDULE_FIXTURE).unwrap();
    let report = handle_schedule(
        &local.room,
        event,
        Duration::from_secs(5),
        Duration::from_secs(55),
    )
    .await;
    assert_eq!(report.passes, 11, "t = 0, 5, ..., 50 s");
    assert_eq!(
        report.admitted, 4,
        "MaxSize filled its cap once and then held"
    );
    assert_eq!(report.failures, 0);
    let serving = call(&app, Method::GET, "/serving_num?event_id=capped", None, &[]).await;
    assert_eq!(serving.body, json!({"serving_counter": 4}));
}

/// Sends an API Gateway payload through `lambda_http`'s own conversion into a router, as the
/// Lambda runtime does.
async fn through_lambda_http(
    router: &axum::Router,
    payload: &str,
) -> (StatusCode, serde_json::Value) {
    use tower::ServiceExt;
    let request = lambda_http::request::from_str(payload).expect("an API Gateway payload");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn http_api_v2_payloads_reach_the_lambda_routers() {
    use waiting_room_core::http::enqueue_router;
    let (local, _) = room().await;
    let (status, body) = through_lambda_http(
        &enqueue_router(local.room.clone()),
        include_str!("fixtures/apigw-http-v2-assign-queue-num.json"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(RequestId::parse(body["api_request_id"].as_str().unwrap()).is_ok());
    drain(&local).await;
    assert_eq!(
        local
            .room
            .counters(&event("demo"))
            .await
            .unwrap()
            .queue_counter,
        1
    );
}

#[tokio::test]
async fn the_admin_lambda_trusts_the_iam_caller_api_gateway_verified() {
    use waiting_room_core::http::{AdminAuth, admin_router};
    let (local, _) = room().await;
    let app = admin_router(local.room.clone(), AdminAuth::Gateway { key: None }).layer(
        axum::middleware::from_fn(waiting_room_core::lambda::gateway_identity),
    );
    enqueue(&local.router(), "demo").await;
    drain(&local).await;
    let (status, body) =
        through_lambda_http(&app, include_str!("fixtures/apigw-http-v2-admin-iam.json")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"serving_num": 1}));
    let audit = local.room.audit_log(&event("demo"), 1).await.unwrap();
    assert_eq!(audit[0].actor, "arn:aws:iam::123456789012:user/operator");

    // The same call without an IAM identity (no authorizer block): refused.
    let anonymous = include_str!("fixtures/apigw-http-v2-admin-iam.json")
        .replace("\"authorizer\"", "\"notAuthorizer\"");
    let (status, body) = through_lambda_http(&app, &anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "admin_unauthorized");
}

#[test]
fn a_function_missing_its_configuration_fails_at_start_with_a_clear_message() {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/public-reads");
    if !bin.exists() {
        panic!(
            "build the functions first (cargo build --workspace): {}",
            bin.display()
        );
    }
    let output = std::process::Command::new(bin)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run the function binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WR_TABLE must be set"), "{stderr}");
}
