//! The SQS consumer and the scheduled strategy runner, fed the payloads AWS sends.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use axum::http::{Method, StatusCode};
use serde_json::json;
use waiting_room_core::domain::{EnqueueRequest, RequestId, Strategy};
use waiting_room_core::http::{AdminAuth, router};
use waiting_room_core::lambda::{handle_schedule, handle_sqs_batch};
use waiting_room_core::service::CacheSettings;
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
        request_id: RequestId::new(),
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

#[tokio::test]
async fn store_faults_fail_the_messages_for_retry_and_lose_nothing() {
    let cache = CacheSettings {
        config_ttl: Duration::ZERO,
        counters_ttl: Duration::ZERO,
    };
    let (room, store, _) = instrumented_room(Duration::ZERO, cache).await;
    let (a, b, c) = (message("demo"), message("demo"), message("demo"));
    store.set_failing(true);
    let response = handle_sqs_batch(&room, sqs_event([&a, &b, &c])).await;
    assert_eq!(response.batch_item_failures.len(), 3, "all retried");

    // While the store is down the API answers 503 with a JSON body and Retry-After.
    let app = router(room.clone(), AdminAuth::Key("k".into()));
    let answer = call(&app, Method::GET, "/serving_num?event_id=demo", None, &[]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["code"], "store_unavailable");
    assert!(answer.headers.contains_key("retry-after"));

    store.set_failing(false);
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
