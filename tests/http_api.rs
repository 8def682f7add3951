//! The public and admin APIs through the real Router: in process (as Lambda runs it) and over
//! TCP (as the local server runs it).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use waiting_room_core::adapters::SystemClock;
use waiting_room_core::domain::RequestId;
use waiting_room_core::domain::exits::{BUCKET_MS, SETTLE_MS};
use waiting_room_core::http::{AdminAuth, router};
use waiting_room_core::listener::{Listener, ListenerSettings};
use waiting_room_core::ports::Clock;
use waiting_room_core::server::{LocalRoom, LocalSettings};
use waiting_room_core::service::{CacheSettings, WaitingRoom};
use waiting_room_core::token::{KeyAlgorithm, SigningKey};
use waiting_room_tests::*;

#[tokio::test]
async fn walkthrough_over_tcp_admits_a_visitor_with_a_token_that_verifies_everywhere() {
    let mut settings = LocalSettings::new(
        ADMIN_KEY.into(),
        SigningKey::generate(KeyAlgorithm::RS256).unwrap(),
    );
    settings.events = vec![event("demo")];
    let local = LocalRoom::build(settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = Listener::from_tcp(listener, ListenerSettings::default()).unwrap();
    let server = tokio::spawn(local.serve(listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();

    let enqueued = http
        .post(format!("{base}/assign_queue_num"))
        .json(&json!({"event_id": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(enqueued.status(), 202);
    let body: Value = enqueued.json().await.unwrap();
    let request_id = body["api_request_id"].as_str().unwrap().to_owned();

    // The consumer assigns the position moments later; until then the answer is 202.
    let mut position = None;
    for _ in 0..100 {
        let answer = http
            .get(format!(
                "{base}/queue_num?event_id=demo&request_id={request_id}"
            ))
            .send()
            .await
            .unwrap();
        if answer.status() == 200 {
            position = Some(answer.json::<Value>().await.unwrap());
            break;
        }
        assert_eq!(answer.status(), 202);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let position = position.expect("position assigned");
    assert_eq!(position["queue_number"], 1);
    assert_eq!(position["event_id"], "demo");
    assert_eq!(position["status"], 0);

    let token_request = json!({"event_id": "demo", "request_id": request_id});
    let early = http
        .post(format!("{base}/generate_token"))
        .json(&token_request)
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 202, "not served yet");

    let serving: Value = http
        .post(format!("{base}/increment_serving_counter"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"event_id": "demo", "increment_by": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(serving["serving_num"], 1);

    let tokens: Value = http
        .post(format!("{base}/generate_token"))
        .json(&token_request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let again: Value = http
        .post(format!("{base}/generate_token"))
        .json(&token_request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["access_token"], tokens["access_token"], "idempotent");

    // Any JWT library holding the published JWKS accepts the token.
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["demo"]);
    let claims = jsonwebtoken::decode::<Value>(
        &access,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("standard verification")
    .claims;
    assert_eq!(claims["sub"], request_id.as_str());
    assert_eq!(claims["queue_position"], 1);
    assert_eq!(claims["token_use"], "access");

    // /public_key is the same key, as one JWK.
    let public_key: Value = http
        .get(format!("{base}/public_key?event_id=demo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(public_key["kid"], header.kid.unwrap().as_str());

    let authorized = http
        .get(format!("{base}/authorize?event_id=demo"))
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(authorized.status(), 200);

    // Completing the session revokes the token at once.
    let ended = http
        .post(format!("{base}/update_session"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"event_id": "demo", "request_id": request_id, "status": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    let revoked = http
        .get(format!("{base}/authorize?event_id=demo"))
        .header("authorization", access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 403);
    let after = http
        .post(format!("{base}/generate_token"))
        .json(&token_request)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 410);

    stop.send(()).unwrap();
    assert_eq!(server.await.unwrap().unplaced, 0);
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx_and_assigns_nothing() {
    let (local, _) = room().await;
    let app = local.router();
    let raw = |body: &'static str, content_type: &'static str| {
        axum::http::Request::builder()
            .method(Method::POST)
            .uri("/assign_queue_num")
            .header("content-type", content_type)
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let cases: Vec<(axum::http::Request<axum::body::Body>, StatusCode, &str)> = vec![
        (
            raw("{\"event_id\":", "application/json"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            raw("{}", "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            raw("{\"event_id\": 7}", "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            raw("{\"event_id\":\"../x\"}", "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            raw("{\"event_id\":\"nope\"}", "application/json"),
            StatusCode::NOT_FOUND,
            "unknown_event",
        ),
        (
            raw("{\"event_id\":\"demo\"}", "text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            raw(
                Box::leak(format!("{{\"event_id\":\"{}\"}}", "a".repeat(20_000)).into_boxed_str()),
                "application/json",
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (request, status, code) in cases {
        use tower::ServiceExt;
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status);
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).expect("JSON error body");
        assert_eq!(body["code"], code);
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }

    let gets = [
        (
            "/queue_num?event_id=demo&request_id=42",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/queue_num?event_id=demo",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        ("/serving_num", StatusCode::BAD_REQUEST, "invalid_request"),
        (
            "/serving_num?event_id=nope",
            StatusCode::NOT_FOUND,
            "unknown_event",
        ),
        (
            "/status?event_id=nope&request_id=0000019b771e6800000000000000000009b2f2a05a4e4d0c9b592a4f5a0d8c11",
            StatusCode::NOT_FOUND,
            "unknown_event",
        ),
        (
            "/status?event_id=demo&request_id=9b2f2a0e-5a4e-4d0c-9b59-2a4f5a0d8c11",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/authorize?event_id=demo",
            StatusCode::UNAUTHORIZED,
            "token_missing",
        ),
        ("/no/such/route", StatusCode::NOT_FOUND, "not_found"),
    ];
    for (uri, status, code) in gets {
        let answer = call(&app, Method::GET, uri, None, &[]).await;
        assert_eq!(answer.status, status, "{uri}");
        assert_eq!(answer.body["code"], code, "{uri}");
    }

    let admin_cases = [
        (
            json!({"event_id": "demo", "increment_by": 1}),
            &[("authorization", "Bearer wrong")][..],
            StatusCode::UNAUTHORIZED,
            "admin_unauthorized",
        ),
        (
            json!({"event_id": "demo", "increment_by": 1}),
            &[][..],
            StatusCode::UNAUTHORIZED,
            "admin_unauthorized",
        ),
        (
            json!({"event_id": "demo", "increment_by": -3}),
            &admin()[..],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"event_id": "nope", "increment_by": 1}),
            &admin()[..],
            StatusCode::NOT_FOUND,
            "unknown_event",
        ),
    ];
    for (body, headers, status, code) in admin_cases {
        let answer = call(
            &app,
            Method::POST,
            "/increment_serving_counter",
            Some(body),
            headers,
        )
        .await;
        assert_eq!(answer.status, status);
        assert_eq!(answer.body["code"], code);
    }

    drain(&local).await;
    let counters = local.room.counters(&event("demo")).await.unwrap();
    assert_eq!(counters.queue_counter, 0, "no bad request took a position");
    assert_eq!(
        counters.serving_counter, 0,
        "no bad request moved the counter"
    );
}

#[tokio::test]
async fn serving_num_is_cacheable_and_revalidates_with_304() {
    let (local, clock) = room().await;
    let app = local.router();
    enqueue(&app, "demo").await;
    drain(&local).await;
    clock.advance_ms(5_000);

    let first = call(&app, Method::GET, "/serving_num?event_id=demo", None, &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, json!({"serving_counter": 0}));
    assert!(
        first.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=1")
    );
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let last_modified = first.headers["last-modified"].to_str().unwrap().to_owned();

    let revalidated = call(
        &app,
        Method::GET,
        "/serving_num?event_id=demo",
        None,
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    let by_date = call(
        &app,
        Method::GET,
        "/serving_num?event_id=demo",
        None,
        &[("if-modified-since", &last_modified)],
    )
    .await;
    assert_eq!(by_date.status, StatusCode::NOT_MODIFIED);

    increment(&app, "demo", 1).await;
    let changed = call(
        &app,
        Method::GET,
        "/serving_num?event_id=demo",
        None,
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.body, json!({"serving_counter": 1}));
    assert_ne!(changed.headers["etag"].to_str().unwrap(), etag);

    let waiting = call(&app, Method::GET, "/waiting_num?event_id=demo", None, &[]).await;
    assert_eq!(waiting.body, json!({"waiting_num": 0}));
    assert!(waiting.headers.contains_key("etag"));
    // Per-visitor answers are never stored by a shared cache.
    let status = call(
        &app,
        Method::GET,
        &format!(
            "/status?event_id=demo&request_id={}",
            waiting_room_core::domain::RequestId::new(0, 0)
        ),
        None,
        &[],
    )
    .await;
    assert_eq!(status.headers["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_polls_collapse_into_one_store_read() {
    let cache = CacheSettings {
        config_ttl: Duration::from_secs(60),
        counters_ttl: Duration::from_secs(60),
    };
    let (room, store, _) = instrumented_room(Duration::from_millis(20), cache).await;
    let app = router(room, AdminAuth::Key("k".into()));
    let polls: Vec<_> = (0..200)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                call(&app, Method::GET, "/serving_num?event_id=demo", None, &[])
                    .await
                    .status
            })
        })
        .collect();
    for poll in polls {
        assert_eq!(poll.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        store.count("counters"),
        1,
        "one store read for 200 concurrent polls"
    );
}

#[tokio::test]
async fn a_served_visitor_who_never_claims_loses_the_place_after_the_expiry() {
    let (local, clock) = room().await;
    let app = local.router();
    let request_id = enqueue(&app, "demo").await;
    let uri = format!("/queue_pos_expiry?event_id=demo&request_id={request_id}");
    let before_assign = call(&app, Method::GET, &uri, None, &[]).await;
    assert_eq!(before_assign.status, StatusCode::ACCEPTED);
    drain(&local).await;
    let waiting = call(&app, Method::GET, &uri, None, &[]).await;
    assert_eq!(waiting.status, StatusCode::ACCEPTED);
    assert_eq!(waiting.body["code"], "not_served");

    increment(&app, "demo", 5).await;
    let served = call(&app, Method::GET, &uri, None, &[]).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body["expires_in"], 900);
    clock.advance_ms(600_000);
    assert_eq!(
        call(&app, Method::GET, &uri, None, &[]).await.body["expires_in"],
        300
    );

    clock.advance_ms(300_001);
    assert_eq!(
        call(&app, Method::GET, &uri, None, &[]).await.status,
        StatusCode::GONE
    );
    let token = generate_token(&app, "demo", &request_id).await;
    assert_eq!(token.status, StatusCode::GONE);
    assert_eq!(token.body["code"], "position_expired");

    // Once the window's time bucket settles, the strategy runner counts the expired place, so
    // it no longer holds a MaxSize slot.
    clock.advance_ms(BUCKET_MS + SETTLE_MS);
    let config = local.room.event(&event("demo")).await.unwrap();
    let report = local.room.apply_strategy(&config).await.unwrap();
    assert_eq!(report.positions_expired, 1);
    let queue = call(
        &app,
        Method::GET,
        &format!("/queue_num?event_id=demo&request_id={request_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(queue.body["status"], -2);
}

#[tokio::test]
async fn generate_token_answers_each_state_with_its_status() {
    let (local, _) = room().await;
    let app = local.router();
    let unknown =
        json!({"event_id": "demo", "request_id": waiting_room_core::domain::RequestId::new(0, 0)});
    let answer = call(&app, Method::POST, "/generate_token", Some(unknown), &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.body["code"], "unknown_request");
    let answer = call(
        &app,
        Method::POST,
        "/generate_token",
        Some(json!({"event_id": "demo"})),
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    let request_id = enqueue(&app, "demo").await;
    drain(&local).await;
    let body = json!({"event_id": "demo", "request_id": request_id});
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/generate_token",
            Some(body.clone()),
            &[]
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    increment(&app, "demo", 1).await;
    let issued = call(
        &app,
        Method::POST,
        "/generate_token",
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!(issued.status, StatusCode::OK);
    assert_eq!(issued.body["expires_in"], 3600);
    let active = call(
        &app,
        Method::GET,
        "/num_active_tokens?event_id=demo",
        None,
        &admin(),
    )
    .await;
    assert_eq!(active.body, json!({"active_tokens": 1}));

    // Ten concurrent retries: one token, counted once.
    let retries: Vec<_> = (0..10)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move {
                call(&app, Method::POST, "/generate_token", Some(body), &[])
                    .await
                    .body
            })
        })
        .collect();
    for retry in retries {
        assert_eq!(
            retry.await.unwrap()["access_token"],
            issued.body["access_token"]
        );
    }
    let counters = local.room.counters(&event("demo")).await.unwrap();
    assert_eq!(counters.tokens_issued, 1);
}

/// `/queue_num` and `/status` both answer `404 unknown_request` for `request_id` of `demo`.
async fn assert_unknown_to_the_look_ups(app: &axum::Router, request_id: &RequestId) {
    for route in ["queue_num", "status"] {
        let uri = format!("/{route}?event_id=demo&request_id={request_id}");
        let answer = call(app, Method::GET, &uri, None, &[]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{route}");
        assert_eq!(answer.body["code"], "unknown_request", "{route}");
    }
}

#[tokio::test]
async fn reset_forgets_positions_and_changes_the_validator() {
    let (local, _) = room().await;
    let app = local.router();
    let request_id = enqueue(&app, "demo").await;
    drain(&local).await;
    increment(&app, "demo", 1).await;
    let before = call(&app, Method::GET, "/serving_num?event_id=demo", None, &[]).await;
    // A visitor who joined just before the reset and is still in the buffer: same millisecond.
    let buffered_before = enqueue(&app, "demo").await;

    let reset = call(
        &app,
        Method::POST,
        "/reset_initial_state",
        Some(json!({"event_id": "demo"})),
        &admin(),
    )
    .await;
    assert_eq!(reset.status, StatusCode::OK);
    let after = call(
        &app,
        Method::GET,
        "/serving_num?event_id=demo",
        None,
        &[("if-none-match", before.headers["etag"].to_str().unwrap())],
    )
    .await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body, json!({"serving_counter": 0}));
    let old = call(
        &app,
        Method::GET,
        &format!("/queue_num?event_id=demo&request_id={request_id}"),
        None,
        &[],
    )
    .await;
    // The old position is gone, and the AWS solution's clients learn it from a 404: they join
    // again (a 202 would keep them polling forever).
    assert_eq!(old.status, StatusCode::NOT_FOUND, "{}", old.body);
    assert_eq!(old.body["code"], "unknown_request");

    // The page learns that its old place is gone, and joins again.
    let forgotten = call(
        &app,
        Method::GET,
        &format!("/status?event_id=demo&request_id={request_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(forgotten.status, StatusCode::NOT_FOUND);
    assert_eq!(forgotten.body["code"], "unknown_request");

    // Joined before the reset, in the same millisecond, not yet placed: its line is gone too,
    // and its message takes no place in the new one.
    assert_unknown_to_the_look_ups(&app, &buffered_before).await;

    // Joined after the reset, still in the same millisecond: kept.
    let fresh = enqueue(&app, "demo").await;
    let buffered = call(
        &app,
        Method::GET,
        &format!("/status?event_id=demo&request_id={fresh}"),
        None,
        &[],
    )
    .await;
    assert_eq!(
        buffered.status,
        StatusCode::OK,
        "still in the buffer: not unknown"
    );
    assert_eq!(buffered.body["assigned"], false);
    drain(&local).await;
    let position = call(
        &app,
        Method::GET,
        &format!("/queue_num?event_id=demo&request_id={fresh}"),
        None,
        &[],
    )
    .await;
    assert_eq!(position.body["queue_number"], 1, "numbering starts over");
    assert_unknown_to_the_look_ups(&app, &buffered_before).await;
    let counters = local.room.counters(&event("demo")).await.unwrap();
    assert_eq!(counters.queue_counter, 1, "the wiped join took no place");
}

#[tokio::test]
async fn a_request_never_assigned_is_eventually_reported_unknown() {
    let (local, clock) = room().await;
    let app = local.router();
    let lost = waiting_room_core::domain::RequestId::new(clock.now_ms(), 0);
    let uri = format!("/status?event_id=demo&request_id={lost}");
    assert_eq!(
        call(&app, Method::GET, &uri, None, &[]).await.status,
        StatusCode::OK
    );
    clock.advance_ms(16 * 60 * 1000);
    let answer = call(&app, Method::GET, &uri, None, &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.body["code"], "unknown_request");
}

#[tokio::test]
async fn operators_manage_events_pause_and_read_the_audit_trail() {
    let (local, _) = room().await;
    let app = local.router();
    let created = call(
        &app,
        Method::POST,
        "/admin/events",
        Some(json!({"event_id": "launch", "name": "Launch day", "strategy": {"type": "MaxSize", "max_active": 50}})),
        &admin(),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        created.body["strategy"],
        json!({"type": "MaxSize", "max_active": 50})
    );
    let again = call(
        &app,
        Method::POST,
        "/admin/events",
        Some(json!({"event_id": "launch"})),
        &admin(),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let invalid = call(
        &app,
        Method::POST,
        "/admin/events",
        Some(json!({"event_id": "x", "strategy": {"type": "MaxSize", "max_active": 0}})),
        &admin(),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);

    let list = call(&app, Method::GET, "/admin/events", None, &admin()).await;
    let ids: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["demo", "launch"]);

    let mut config = created.body.clone();
    config["strategy"] = json!({"type": "Periodic", "increment_by": 10, "interval_secs": 30});
    let updated = call(
        &app,
        Method::PUT,
        "/admin/events/launch",
        Some(config),
        &admin(),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK);
    let read = call(&app, Method::GET, "/admin/events/launch", None, &admin()).await;
    assert_eq!(read.body["strategy"]["type"], "Periodic");

    let paused = call(
        &app,
        Method::POST,
        "/admin/events/launch/pause",
        None,
        &admin(),
    )
    .await;
    assert_eq!(paused.body["paused"], true);
    let request_id = enqueue(&app, "launch").await;
    drain(&local).await;
    let frozen = increment(&app, "launch", 1).await;
    assert_eq!(frozen.status, StatusCode::CONFLICT);
    assert_eq!(frozen.body["code"], "event_paused");
    let status = call(
        &app,
        Method::GET,
        &format!("/status?event_id=launch&request_id={request_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(status.body["state"], "paused");
    assert_eq!(status.body["queue_number"], 1);
    call(
        &app,
        Method::POST,
        "/admin/events/launch/resume",
        None,
        &admin(),
    )
    .await;
    let moved = increment(&app, "launch", 1).await;
    assert_eq!(moved.body, json!({"serving_num": 1}));

    let metrics = call(
        &app,
        Method::GET,
        "/admin/events/launch/metrics",
        None,
        &admin(),
    )
    .await;
    assert_eq!(metrics.body["counters"]["queue_counter"], 1);
    assert_eq!(metrics.body["pending_claims"], 1);

    let audit = call(
        &app,
        Method::GET,
        "/admin/events/launch/audit",
        None,
        &admin(),
    )
    .await;
    let actions: Vec<&str> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "increment_serving_counter",
            "resume",
            "pause",
            "update_event",
            "create_event"
        ]
    );
    assert!(
        audit
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "admin-key")
    );
}

#[tokio::test]
async fn expired_tokens_are_listed_page_by_page() {
    let (local, clock) = room().await;
    let app = local.router();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(enqueue(&app, "demo").await);
    }
    drain(&local).await;
    increment(&app, "demo", 5).await;
    for id in &ids {
        let answer = generate_token(&app, "demo", id).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    // An hour later, once the expiry bucket has settled.
    clock.advance_ms(3_601_000 + BUCKET_MS + SETTLE_MS);
    let config = local.room.event(&event("demo")).await.unwrap();
    assert_eq!(
        local
            .room
            .apply_strategy(&config)
            .await
            .unwrap()
            .tokens_expired,
        5
    );

    let first = call(
        &app,
        Method::GET,
        "/expired_tokens?event_id=demo&limit=3",
        None,
        &admin(),
    )
    .await;
    let cursor = first.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let second = call(
        &app,
        Method::GET,
        &format!("/expired_tokens?event_id=demo&limit=3&after={cursor}"),
        None,
        &admin(),
    )
    .await;
    assert!(!second.headers.contains_key("x-next-cursor"));
    let mut listed: Vec<String> = first
        .body
        .as_array()
        .unwrap()
        .iter()
        .chain(second.body.as_array().unwrap())
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    let mut expected: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    let active = call(
        &app,
        Method::GET,
        "/num_active_tokens?event_id=demo",
        None,
        &admin(),
    )
    .await;
    assert_eq!(active.body, json!({"active_tokens": 0}));
}

#[tokio::test]
async fn behind_api_gateway_the_admin_api_trusts_the_verified_caller_only() {
    use waiting_room_core::http::admin::Actor;
    let (local, _) = room().await;
    let gateway =
        waiting_room_core::http::admin_router(local.room.clone(), AdminAuth::Gateway { key: None });
    let body = json!({"event_id": "demo", "increment_by": 1});
    // No identity from the edge and no key: refused, even with a made-up bearer.
    let anonymous = call(
        &gateway,
        Method::POST,
        "/increment_serving_counter",
        Some(body.clone()),
        &admin(),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let arn = "arn:aws:iam::123456789012:user/operator";
    let signed_in = gateway.layer(axum::Extension(Actor(arn.into())));
    let answer = call(
        &signed_in,
        Method::POST,
        "/increment_serving_counter",
        Some(body),
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let audit = local.room.audit_log(&event("demo"), 1).await.unwrap();
    assert_eq!(audit[0].actor, arn, "the audit trail names the IAM caller");
}

#[tokio::test]
async fn each_lambda_router_serves_only_its_own_routes() {
    use waiting_room_core::http::{enqueue_router, reads_router, tokens_router};
    let (local, _) = room().await;
    // The reads function holds no signing key and no queue: it needs neither.
    let reads_only = Arc::new(WaitingRoom::new(
        local.room.store().clone(),
        Arc::new(SystemClock),
        CacheSettings::default(),
    ));
    let reads = reads_router(reads_only);
    assert_eq!(
        call(&reads, Method::GET, "/serving_num?event_id=demo", None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let not_here = call(
        &reads,
        Method::POST,
        "/generate_token",
        Some(json!({"event_id": "demo", "request_id": RequestId::new(0, 0)})),
        &[],
    )
    .await;
    assert_eq!(not_here.status, StatusCode::NOT_FOUND);

    let enqueue_only = enqueue_router(local.room.clone());
    assert_eq!(
        call(
            &enqueue_only,
            Method::GET,
            "/serving_num?event_id=demo",
            None,
            &[]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let tokens = tokens_router(local.room.clone());
    assert_eq!(
        call(&tokens, Method::GET, "/.well-known/jwks.json", None, &[])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn over_tcp_a_client_joining_looking_up_or_claiming_in_a_loop_is_slowed_with_429() {
    use waiting_room_core::http::{ClientLimit, ClientLimits};
    let mut settings = LocalSettings::new(
        ADMIN_KEY.into(),
        SigningKey::generate(KeyAlgorithm::EdDSA).unwrap(),
    );
    settings.events = vec![event("demo")];
    let slow = ClientLimit {
        burst: 3.0,
        per_second: 0.1,
    };
    settings.client_limits = ClientLimits {
        joins: Some(slow),
        lookups: Some(slow),
    };
    let local = LocalRoom::build(settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = Listener::from_tcp(listener, ListenerSettings::default()).unwrap();
    let server = tokio::spawn(local.serve(listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let join = || {
        http.post(format!("{base}/assign_queue_num"))
            .json(&json!({"event_id": "demo"}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(join().await.unwrap().status(), 202);
    }
    let limited = join().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "10");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Guessing at request ids, by looking them up or claiming their tokens, meets a limit of
    // its own (each kind its own bucket: a spent join budget leaves the look-ups alone).
    let guess = RequestId::new(SystemClock.now_ms(), 0);
    for (route, send) in [
        (
            "queue_num",
            http.get(format!("{base}/queue_num?event_id=demo&request_id={guess}")),
        ),
        (
            "generate_token",
            http.post(format!("{base}/generate_token"))
                .json(&json!({"event_id": "demo", "request_id": guess})),
        ),
    ] {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let answer = send.try_clone().unwrap().send().await.unwrap();
            statuses.push(answer.status().as_u16());
        }
        assert_eq!(statuses[3], 429, "{route}: {statuses:?}");
        assert!(
            statuses[..3].iter().all(|s| *s != 429),
            "{route}: {statuses:?}"
        );
    }
    // Polling is not limited: a visitor in line may poll as the page asks.
    for _ in 0..30 {
        let poll = http
            .get(format!("{base}/serving_num?event_id=demo"))
            .send()
            .await
            .unwrap();
        assert_eq!(poll.status(), 200);
    }
    stop.send(()).unwrap();
    assert_eq!(server.await.unwrap().unplaced, 0);
}

#[tokio::test]
async fn event_state_is_one_shared_document_that_revalidates_with_304() {
    let (local, clock) = room().await;
    let app = local.router();
    for _ in 0..3 {
        enqueue(&app, "demo").await;
    }
    drain(&local).await;
    clock.advance_ms(5_000);

    let first = call(&app, Method::GET, "/event_state?event_id=demo", None, &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    let cache_control = first.headers["cache-control"].to_str().unwrap();
    assert!(
        cache_control.starts_with("public, max-age=1, stale-while-revalidate="),
        "{cache_control}"
    );
    let doc = &first.body;
    assert_eq!(doc["state"], "open");
    assert_eq!(doc["queue_counter"], 3);
    assert_eq!(doc["serving_counter"], 0);
    assert_eq!(doc["waiting_num"], 3);
    assert_eq!(doc["serving_moves"], json!([]));
    assert_eq!(doc["draw"], Value::Null);
    assert_eq!(doc["poll"]["min_ms"], 1_000);
    assert_eq!(doc["poll"]["unplaced_grace_ms"], 15 * 60 * 1000);
    assert_eq!(doc["position_expiry_secs"], 900);
    assert_eq!(doc["message"], "");
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let last_modified = first.headers["last-modified"].to_str().unwrap().to_owned();

    for validator in [
        ("if-none-match", etag.as_str()),
        ("if-modified-since", last_modified.as_str()),
    ] {
        let again = call(
            &app,
            Method::GET,
            "/event_state?event_id=demo",
            None,
            &[validator],
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{validator:?}");
    }

    // A serving move changes the document and its validator; the page reads the move's time
    // and its claim deadline (the default 15-minute window).
    let moved_at = clock.now_ms();
    increment(&app, "demo", 2).await;
    let moved = call(
        &app,
        Method::GET,
        "/event_state?event_id=demo",
        None,
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK);
    assert_eq!(moved.body["serving_counter"], 2);
    assert_eq!(
        moved.body["serving_moves"],
        json!([{"from": 0, "to": 2, "at_ms": moved_at, "claim_by_ms": moved_at + 900_000}])
    );
    assert_ne!(moved.headers["etag"].to_str().unwrap(), etag);

    // So does an operator's message.
    let mut config = local.room.event(&event("demo")).await.unwrap();
    config.message = "Doors open at nine.".into();
    let saved = call(
        &app,
        Method::PUT,
        "/admin/events/demo",
        Some(serde_json::to_value(&config).unwrap()),
        &admin(),
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK);
    let noted = call(&app, Method::GET, "/event_state?event_id=demo", None, &[]).await;
    assert_eq!(noted.body["message"], "Doors open at nine.");
    assert_ne!(noted.headers["etag"], moved.headers["etag"]);

    let unknown = call(&app, Method::GET, "/event_state?event_id=nope", None, &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["code"], "unknown_event");
}

#[tokio::test]
async fn queue_num_gives_the_arrival_number_a_page_places_itself_with() {
    let (local, clock) = room().await;
    let now = clock.now_ms();
    let mut config = waiting_room_core::domain::EventConfig::new(event("drop"));
    config.schedule = waiting_room_core::domain::Schedule {
        prequeue_at_ms: Some(now - 1_000),
        start_at_ms: Some(now + 10_000),
        end_at_ms: None,
    };
    local.room.create_event(config, "test").await.unwrap();
    let app = local.router();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(enqueue(&app, "drop").await);
    }
    drain(&local).await;
    let ask = |id: RequestId| {
        let app = app.clone();
        async move {
            call(
                &app,
                Method::GET,
                &format!("/queue_num?event_id=drop&request_id={id}"),
                None,
                &[],
            )
            .await
        }
    };
    // In the pre-queue: "not yet", as the AWS solution's clients expect, with the arrival.
    let waiting = ask(ids[2]).await;
    assert_eq!(waiting.status, StatusCode::ACCEPTED);
    assert_eq!(waiting.body["code"], "awaiting_draw");
    assert_eq!(waiting.body["arrival"], 3);

    clock.advance_ms(10_000);
    local.room.apply_strategies().await.unwrap();
    let doc = call(&app, Method::GET, "/event_state?event_id=drop", None, &[]).await;
    let draw = &doc.body["draw"];
    assert_eq!(draw["size"], 5);
    let seed: u64 = draw["seed"].as_str().unwrap().parse().unwrap();
    for (i, id) in ids.iter().enumerate() {
        let placed = ask(*id).await;
        assert_eq!(placed.status, StatusCode::OK);
        assert_eq!(placed.body["arrival"], i as u64 + 1);
        assert_eq!(
            placed.body["queue_number"],
            1 + waiting_room_core::domain::shuffle::permute(i as u64, 5, seed),
            "the place is the arrival drawn with the published seed"
        );
    }

    // A request the room never assigned, from long ago: forgotten (404), not "not yet".
    let lost = RequestId::new(clock.now_ms(), 0);
    assert_eq!(ask(lost).await.status, StatusCode::ACCEPTED);
    clock.advance_ms(16 * 60 * 1000);
    let forgotten = ask(lost).await;
    assert_eq!(forgotten.status, StatusCode::NOT_FOUND);
    assert_eq!(forgotten.body["code"], "unknown_request");
}

/// A page answer: status, headers and the body as text.
async fn page(
    app: &axum::Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn without_javascript_a_visitor_joins_waits_on_a_page_that_refreshes_and_goes_on_with_a_token()
 {
    let (local, _clock) = room().await;
    let app = local.router();
    let mut config = call(&app, Method::GET, "/admin/events/demo", None, &admin())
        .await
        .body;
    config["target_url"] = json!("https://shop.example/in?from=wr");
    config["message"] = json!("<img src=x onerror=alert(1)>Doors at 10");
    config["appearance"] = json!({"title": "<b>Shop</b>", "logo_url": "", "accent_color": ""});
    let saved = call(
        &app,
        Method::PUT,
        "/admin/events/demo",
        Some(config),
        &admin(),
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    enqueue(&app, "demo").await;
    enqueue(&app, "demo").await;

    // The script page's <noscript> form posts to the page's own address, event and all.
    let (status, headers, _) = page(
        &app,
        Method::POST,
        "/waiting-room.html?event_id=demo&return=%2Fshop",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/wait?event_id=demo&request_id="),
        "{location}"
    );
    assert!(location.ends_with("&return=%2Fshop"), "{location}");
    let japanese = [("accept-language", "ja-JP,ja;q=0.9,en;q=0.8")];
    let (_, headers, html) = page(&app, Method::GET, &location, &japanese).await;
    assert!(
        html.contains(">順番を確認しています…<"),
        "not placed yet:\n{html}"
    );
    assert_eq!(headers["refresh"], "2");

    drain(&local).await;
    let (status, headers, html) = page(&app, Method::GET, &location, &japanese).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers.contains_key("content-security-policy"));
    let refresh: u64 = headers["refresh"].to_str().unwrap().parse().unwrap();
    assert!((5..=30).contains(&refresh), "refresh every {refresh} s");
    // No <meta> refresh (a screen reader cannot stop one); a link stops the reloads instead.
    assert!(!html.contains("http-equiv"));
    let stop = format!("{location}&auto=off").replace('&', "&amp;");
    assert!(
        html.contains(&format!(
            "<a href=\"{stop}\" id=\"auto\">自動更新を止める</a>"
        )),
        "{html}"
    );
    let (_, headers, manual) = page(
        &app,
        Method::GET,
        &format!("{location}&auto=off"),
        &japanese,
    )
    .await;
    assert!(!headers.contains_key("refresh"), "no reloads once stopped");
    assert!(manual.contains(">自動更新を再開する</a>"));
    assert!(html.contains("<html lang=\"ja\">"));
    assert!(html.contains(">順番待ちの列に並んでいます<"), "{html}");
    assert!(html.contains("id=\"position\">3<") && html.contains("id=\"ahead\">2<"));
    // The operator's words are text.
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;Doors at 10"));
    assert!(html.contains("&lt;b&gt;Shop&lt;/b&gt;") && !html.contains("<b>Shop"));

    // The link's lang wins over the browser's.
    let (_, _, english) = page(&app, Method::GET, &format!("{location}&lang=en"), &japanese).await;
    assert!(english.contains("<html lang=\"en\">") && english.contains(">You&#39;re in line<"));

    increment(&app, "demo", 3).await;
    let (status, headers, _) = page(&app, Method::GET, &location, &japanese).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let target = headers["location"].to_str().unwrap();
    let token = target
        .strip_prefix("https://shop.example/in?from=wr&wr_token=")
        .unwrap_or_else(|| panic!("sent to {target}"));
    let claims = call(
        &app,
        Method::GET,
        "/authorize?event_id=demo",
        None,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(claims.status, StatusCode::OK, "{}", claims.body);

    let (status, _, html) = page(&app, Method::GET, "/wait?event_id=no-such", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        html.contains(">We can&#39;t find this waiting room<"),
        "{html}"
    );
    let (status, _, html) = page(&app, Method::GET, "/wait?event_id=demo", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<form class=\"actions\" method=\"post\" action=\"/wait?event_id=demo\">")
    );
}
