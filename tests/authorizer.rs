//! The validate-token authorizer answering the payloads API Gateway really sends: REST `TOKEN`,
//! REST `REQUEST` and HTTP API (v2) simple responses.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use waiting_room_core::authorizer::{AuthorizerFailure, handle_authorizer_event};
use waiting_room_core::server::LocalRoom;
use waiting_room_core::token::KeyAlgorithm;
use waiting_room_tests::*;

const TOKEN_FIXTURE: &str = include_str!("fixtures/apigw-rest-token-authorizer.json");
const REQUEST_FIXTURE: &str = include_str!("fixtures/apigw-rest-request-authorizer.json");
const HTTP_V2_FIXTURE: &str = include_str!("fixtures/apigw-http-v2-authorizer.json");

fn payload(fixture: &str, token: &str, event_id: &str) -> Value {
    serde_json::from_str(
        &fixture
            .replace("{{TOKEN}}", token)
            .replace("{{EVENT}}", event_id),
    )
    .expect("fixture is JSON")
}

/// A visitor admitted to `demo`; returns its request id and access token.
async fn admitted(local: &LocalRoom) -> (String, String) {
    let app = local.router();
    let request_id = enqueue(&app, "demo").await;
    drain(local).await;
    increment(&app, "demo", 1).await;
    let tokens = generate_token(&app, "demo", &request_id).await;
    assert_eq!(tokens.status, StatusCode::OK);
    (
        request_id.to_string(),
        tokens.body["access_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn rest_token_authorizer_allows_a_valid_token_for_the_method() {
    for algorithm in [KeyAlgorithm::RS256, KeyAlgorithm::EdDSA] {
        let (local, _) = room_with(algorithm).await;
        let (request_id, token) = admitted(&local).await;
        let answer = handle_authorizer_event(
            &local.room,
            payload(TOKEN_FIXTURE, &token, "demo"),
            Some(&event("demo")),
        )
        .await
        .expect("decision");
        assert_eq!(answer["principalId"], request_id.as_str());
        assert_eq!(answer["policyDocument"]["Statement"][0]["Effect"], "Allow");
        assert_eq!(
            answer["policyDocument"]["Statement"][0]["Resource"][0],
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/orders"
        );
        assert_eq!(answer["context"]["queue_position"], 1);
    }
}

#[tokio::test]
async fn rest_authorizers_answer_401_for_bad_tokens_and_deny_revoked_ones() {
    let (local, _) = room().await;
    let (request_id, token) = admitted(&local).await;
    let mut tampered = token.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    for bad in ["", "garbage", tampered.as_str()] {
        let outcome = handle_authorizer_event(
            &local.room,
            payload(TOKEN_FIXTURE, bad, "demo"),
            Some(&event("demo")),
        )
        .await;
        assert!(
            matches!(outcome, Err(AuthorizerFailure::Unauthorized)),
            "{bad:?}"
        );
        assert_eq!(
            outcome.unwrap_err().to_string(),
            "Unauthorized",
            "API Gateway's 401 message"
        );
    }
    // A valid token for another event: 403.
    let other =
        handle_authorizer_event(&local.room, payload(REQUEST_FIXTURE, &token, "other"), None)
            .await
            .unwrap();
    assert_eq!(other["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(other["context"]["reason"], "token_wrong_event");

    let allowed =
        handle_authorizer_event(&local.room, payload(REQUEST_FIXTURE, &token, "demo"), None)
            .await
            .unwrap();
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Effect"], "Allow");

    local
        .room
        .update_session(
            &event("demo"),
            &waiting_room_core::domain::RequestId::parse(&request_id).unwrap(),
            waiting_room_core::domain::SessionEnd::Abandoned,
            "test",
        )
        .await
        .unwrap();
    let revoked =
        handle_authorizer_event(&local.room, payload(REQUEST_FIXTURE, &token, "demo"), None)
            .await
            .unwrap();
    assert_eq!(revoked["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(revoked["context"]["reason"], "token_revoked");
}

#[tokio::test]
async fn http_api_authorizer_gives_simple_responses() {
    let (local, clock) = room().await;
    let (_, token) = admitted(&local).await;
    let yes = handle_authorizer_event(&local.room, payload(HTTP_V2_FIXTURE, &token, "demo"), None)
        .await
        .unwrap();
    assert_eq!(yes["isAuthorized"], true);
    assert_eq!(yes["context"]["event_id"], "demo");
    let wrong_event =
        handle_authorizer_event(&local.room, payload(HTTP_V2_FIXTURE, &token, "other"), None)
            .await
            .unwrap();
    assert_eq!(wrong_event["isAuthorized"], false);
    let forged = handle_authorizer_event(
        &local.room,
        payload(HTTP_V2_FIXTURE, "eyJhbGciOiJub25lIn0.e30.", "demo"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(forged["isAuthorized"], false);
    clock.advance_ms(3_700_000);
    let expired =
        handle_authorizer_event(&local.room, payload(HTTP_V2_FIXTURE, &token, "demo"), None)
            .await
            .unwrap();
    assert_eq!(expired["isAuthorized"], false);
    assert_eq!(expired["context"]["reason"], "token_expired");
}

#[tokio::test]
async fn an_unrecognised_invocation_is_an_error_not_an_allow() {
    let (local, _) = room().await;
    let outcome = handle_authorizer_event(&local.room, json!({"Records": []}), None).await;
    assert!(matches!(outcome, Err(AuthorizerFailure::UnknownEvent)));
}

#[tokio::test]
async fn the_http_authorize_route_matches_the_lambda_decision() {
    let (local, _) = room().await;
    let (request_id, token) = admitted(&local).await;
    let app = local.router();
    let ok = call(
        &app,
        Method::GET,
        "/authorize?event_id=demo",
        None,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["sub"], request_id.as_str());
    // Envoy's ext_authz appends the original path to the check URL.
    let envoy = call(
        &app,
        Method::GET,
        "/authorize/orders/42?event_id=demo",
        None,
        &[("authorization", &token)],
    )
    .await;
    assert_eq!(envoy.status, StatusCode::OK);
    // Without "Bearer " too, as the DESIGN allows.
    let bare = call(
        &app,
        Method::GET,
        "/authorize?event_id=demo",
        None,
        &[("authorization", &token)],
    )
    .await;
    assert_eq!(bare.status, StatusCode::OK);
    let other = call(
        &app,
        Method::GET,
        "/authorize?event_id=other",
        None,
        &[("authorization", &token)],
    )
    .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    // A check that names no event would pass a token of any event of the room: refused.
    for path in ["/authorize", "/authorize/orders/42"] {
        let unnamed = call(&app, Method::GET, path, None, &[("authorization", &token)]).await;
        assert_eq!(unnamed.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(unnamed.body["code"], "invalid_request");
    }
    let forged = call(
        &app,
        Method::GET,
        "/authorize?event_id=demo",
        None,
        &[("authorization", "Bearer x.y.z")],
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.body["code"], "token_malformed");
}

mod breaker {
    use std::time::Duration;

    use axum::http::{Method, StatusCode};
    use waiting_room_core::adapters::Fault;
    use waiting_room_core::breaker::BreakerState;
    use waiting_room_core::http::{AdminAuth, router};
    use waiting_room_core::ports::Clock;
    use waiting_room_core::service::CacheSettings;
    use waiting_room_tests::*;

    /// A room whose store can fail, with a token issued while it was healthy.
    async fn admitted_on_a_faulty_store(
        fail_open: bool,
    ) -> (
        axum::Router,
        std::sync::Arc<
            waiting_room_core::adapters::InstrumentedStore<
                waiting_room_core::adapters::MemoryStore,
            >,
        >,
        std::sync::Arc<waiting_room_core::adapters::ManualClock>,
        std::sync::Arc<waiting_room_core::WaitingRoom>,
        String,
    ) {
        // Configs are cached (as on a warm Lambda), counters are not.
        let cache = CacheSettings {
            config_ttl: Duration::from_secs(3600),
            counters_ttl: Duration::ZERO,
        };
        let (room, store, clock) = instrumented_room(Duration::ZERO, cache).await;
        let mut config = room.event(&event("demo")).await.unwrap();
        config.authorizer_fail_open = fail_open;
        room.update_event(config, "test").await.unwrap();
        let app = router(room.clone(), AdminAuth::Key(ADMIN_KEY.into()));
        let id = enqueue(&app, "demo").await;
        let batch = vec![waiting_room_core::domain::EnqueueRequest {
            event_id: event("demo"),
            request_id: id,
            entry_time_ms: 0,
        }];
        // The memory buffer of this room is private to it: assign through the consumer directly.
        room.assign_batch(&batch).await;
        increment(&app, "demo", 1).await;
        let token = generate_token(&app, "demo", &id).await.body["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        (app, store, clock, room, token)
    }

    async fn authorize(app: &axum::Router, token: &str) -> Answer {
        call(
            app,
            Method::GET,
            "/authorize?event_id=demo",
            None,
            &[("authorization", token)],
        )
        .await
    }

    #[tokio::test]
    async fn fail_closed_refuses_while_the_store_is_down_and_the_breaker_walks_every_state() {
        let (app, store, clock, room, token) = admitted_on_a_faulty_store(false).await;
        assert_eq!(authorize(&app, &token).await.status, StatusCode::OK);
        let breaker = room.revocation_breaker();
        assert_eq!(breaker.state(clock.now_ms()), BreakerState::Closed);

        store.set_fault(Some(Fault::Unavailable));
        for _ in 0..10 {
            let answer = authorize(&app, &token).await;
            assert_eq!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "fail-closed"
            );
            assert_eq!(answer.body["code"], "store_unavailable");
        }
        assert_eq!(
            breaker.state(clock.now_ms()),
            BreakerState::Open,
            "10 failures in a row"
        );
        let calls = store.count("get_request");
        for _ in 0..5 {
            assert_eq!(
                authorize(&app, &token).await.status,
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
        assert_eq!(
            store.count("get_request"),
            calls,
            "open: the store is left alone"
        );

        clock.advance_ms(5_000);
        assert_eq!(breaker.state(clock.now_ms()), BreakerState::HalfOpen);
        assert_eq!(
            authorize(&app, &token).await.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "the trial fails"
        );
        assert_eq!(
            store.count("get_request"),
            calls + 1,
            "exactly one trial call"
        );
        assert_eq!(breaker.state(clock.now_ms()), BreakerState::Open);

        store.set_fault(None);
        clock.advance_ms(5_000);
        assert_eq!(
            authorize(&app, &token).await.status,
            StatusCode::OK,
            "the trial succeeds"
        );
        assert_eq!(breaker.state(clock.now_ms()), BreakerState::Closed);
    }

    #[tokio::test]
    async fn fail_open_lets_validly_signed_tokens_through_while_revocation_cannot_be_checked() {
        let (app, store, _clock, _room, token) = admitted_on_a_faulty_store(true).await;
        store.set_fault(Some(Fault::Unavailable));
        for _ in 0..15 {
            assert_eq!(authorize(&app, &token).await.status, StatusCode::OK);
        }
        // The signature is still checked: a forged token is refused whatever the store does.
        assert_eq!(
            authorize(&app, "Bearer x.y.z").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}
