//! The Lambdas' wiring on the AWS wire protocol (moto): rooms built by `room_from_env` from the
//! same environment variables the template sets, talking to DynamoDB, SQS and Secrets Manager.
//! A visitor goes from enqueue (SQS) through the batch consumer, a strategy pass, token issue
//! and the authorizer; then the signing key is rotated. Runs when `WR_TEST_AWS_ENDPOINT` is set.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use axum::http::{Method, StatusCode};
use serde_json::json;
use waiting_room_core::adapters::aws::test_endpoint;
use waiting_room_core::adapters::{AwsConfig, DynamoStore, SecretKeys, SqsBuffer};
use waiting_room_core::authorizer::handle_authorizer_event;
use waiting_room_core::http::{enqueue_router, tokens_router};
use waiting_room_core::lambda::{Needs, handle_schedule, handle_sqs_batch, room_from_env};
use waiting_room_core::token::{KeyAlgorithm, SigningKey};
use waiting_room_tests::*;

#[test]
fn a_visitor_goes_through_the_lambda_wiring_on_the_aws_wire_protocol() {
    let Some(endpoint) = test_endpoint("lambda_on_moto") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let suffix = unique_suffix();
    let aws = AwsConfig::local(&endpoint);
    let (table, queue, secret) = runtime.block_on(async {
        let table = format!("lambda-{suffix}");
        DynamoStore::new(&aws, &table)
            .create_table()
            .await
            .expect("table");
        let queue = SqsBuffer::create_queue(&aws, &format!("lambda-{suffix}"))
            .await
            .expect("queue");
        let secret = format!("signing-{suffix}");
        let old = SigningKey::generate(KeyAlgorithm::RS256).unwrap();
        SecretKeys::new(&aws, &secret)
            .put(old.private_pem())
            .await
            .expect("secret");
        (table, queue, secret)
    });
    // SAFETY: set before the room's runtime threads read the environment; this binary has one test.
    unsafe {
        for (name, value) in [
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("WR_TABLE", table.as_str()),
            ("WR_QUEUE_URL", queue.queue_url()),
            ("WR_SIGNING_KEY_SECRET", secret.as_str()),
            ("WR_ISSUER", "https://room.example"),
            ("WR_DEFAULT_EVENT_ID", "launch"),
            ("WR_DEFAULT_EVENT_STRATEGY", "MaxSize"),
            ("WR_DEFAULT_EVENT_MAX_ACTIVE", "2"),
        ] {
            std::env::set_var(name, value);
        }
    }
    runtime.block_on(async {
        // Each function builds only what it needs.
        let enqueue_room = room_from_env(Needs { buffer: true, ..Needs::default() }).await.expect("assign-position");
        let token_room = room_from_env(Needs { tokens: true, ..Needs::default() }).await.expect("token-issue");
        let plain_room = room_from_env(Needs::default()).await.expect("queue-consumer");

        // Three visitors join through the enqueue function: messages land on SQS.
        let enqueue = enqueue_router(enqueue_room);
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(enqueue_with(&enqueue).await);
        }
        let mut received = Vec::new();
        for _ in 0..10 {
            received.extend(queue.receive(10, 1).await.expect("receive"));
            if received.len() >= 3 {
                break;
            }
        }
        assert_eq!(received.len(), 3, "three messages on the queue");

        // The consumer gets them as an SQS event (each twice: at-least-once delivery).
        let records: Vec<_> = received
            .iter()
            .chain(received.iter())
            .enumerate()
            .map(|(i, r)| json!({"messageId": format!("m{i}"), "body": serde_json::to_string(&r.request).unwrap(), "eventSource": "aws:sqs"}))
            .collect();
        let batch: SqsEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
        let response = handle_sqs_batch(&plain_room, batch).await;
        assert!(response.batch_item_failures.is_empty());
        queue.acknowledge(&received).await.expect("ack");
        let counters = plain_room.counters(&event("launch")).await.unwrap();
        assert_eq!(counters.queue_counter, 3, "three places, none doubled");

        // One scheduled pass: MaxSize 2 lets two in.
        let schedule: EventBridgeEvent = serde_json::from_str(include_str!("fixtures/eventbridge-scheduled.json")).unwrap();
        let report = handle_schedule(&plain_room, schedule, Duration::from_secs(1), Duration::from_millis(10)).await;
        assert_eq!(report.admitted, 2);

        // The token function issues the first visitor's token; the authorizer accepts it.
        let tokens = tokens_router(token_room.clone());
        let issued = call(&tokens, Method::POST, "/generate_token", Some(json!({"event_id": "launch", "request_id": ids[0]})), &[]).await;
        assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
        let old_token = issued.body["access_token"].as_str().unwrap().to_owned();
        let third = call(&tokens, Method::POST, "/generate_token", Some(json!({"event_id": "launch", "request_id": ids[2]})), &[]).await;
        assert_eq!(third.status, StatusCode::ACCEPTED, "the third is not let in yet");
        let payload = include_str!("fixtures/apigw-http-v2-authorizer.json")
            .replace("{{TOKEN}}", &old_token)
            .replace("{{EVENT}}", "launch");
        let decision = handle_authorizer_event(&token_room, serde_json::from_str(&payload).unwrap(), None).await.unwrap();
        assert_eq!(decision["isAuthorized"], true);

        // The operator rotates the key: a newly started function signs with the new key, and
        // the old token still verifies during the overlap.
        let new = SigningKey::generate(KeyAlgorithm::RS256).unwrap();
        let old_pem = SecretKeys::new(&aws, &secret).read().await.unwrap();
        let rotated = json!({"current": new.private_pem(), "previous": [old_pem]}).to_string();
        SecretKeys::new(&aws, &secret).put(&rotated).await.unwrap();
        let fresh = room_from_env(Needs { tokens: true, ..Needs::default() }).await.expect("rotated");
        let second = call(&tokens_router(fresh.clone()), Method::POST, "/generate_token", Some(json!({"event_id": "launch", "request_id": ids[1]})), &[]).await;
        let new_token = second.body["access_token"].as_str().unwrap();
        assert_eq!(jsonwebtoken::decode_header(new_token).unwrap().kid.as_deref(), Some(new.kid.as_str()));
        assert!(fresh.authorize(Some(&old_token), None).await.is_ok(), "old key still verifies");
        let jwks = call(&tokens_router(fresh), Method::GET, "/.well-known/jwks.json", None, &[]).await;
        assert_eq!(jwks.body["keys"].as_array().unwrap().len(), 2, "both keys published");

        let _ = queue.delete_queue().await;
        let _ = DynamoStore::new(&aws, &table).delete_table().await;
    });
}

async fn enqueue_with(app: &axum::Router) -> waiting_room_core::domain::RequestId {
    let answer = call(
        app,
        Method::POST,
        "/assign_queue_num",
        Some(json!({"event_id": "launch"})),
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    waiting_room_core::domain::RequestId::parse(answer.body["api_request_id"].as_str().unwrap())
        .unwrap()
}
