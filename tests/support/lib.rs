//! Helpers shared by the end-to-end tests: a room on the memory adapters, driven through its
//! real axum Router in process or over TCP.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use waiting_room_core::WaitingRoom;
use waiting_room_core::adapters::{
    InstrumentedStore, ManualClock, MemoryBuffer, MemoryStore, SystemClock,
};
use waiting_room_core::domain::{EventConfig, EventId, RequestId, Strategy};
use waiting_room_core::ports::Clock;
use waiting_room_core::server::{LocalRoom, LocalSettings};
use waiting_room_core::service::CacheSettings;
use waiting_room_core::token::{KeyAlgorithm, KeyRing, SigningKey, TokenIssuer};

pub const ADMIN_KEY: &str = "test-admin-key";

/// A local room for tests: manual clock starting at the real time (request ids carry the real
/// time of their creation), no caching (every read sees the last write), one
/// event `demo`. Its consumer and runner are not started: tests drive them.
pub async fn room_with(algorithm: KeyAlgorithm) -> (LocalRoom, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let mut settings = LocalSettings::new(
        ADMIN_KEY.into(),
        SigningKey::generate(algorithm).expect("key generation"),
    );
    settings.events = vec![EventId::parse("demo").expect("event id")];
    settings.cache = no_cache();
    settings.clock = clock.clone();
    (LocalRoom::build(settings).await.expect("room"), clock)
}

/// Caches that keep nothing: every read sees the last write.
pub fn no_cache() -> CacheSettings {
    CacheSettings {
        config_ttl: Duration::ZERO,
        counters_ttl: Duration::ZERO,
    }
}

pub async fn room() -> (LocalRoom, Arc<ManualClock>) {
    room_with(KeyAlgorithm::EdDSA).await
}

/// Eight random hex digits, to keep the tables and queues of concurrent runs apart.
pub fn unique_suffix() -> String {
    RequestId::new(0, 0).to_string()[56..].to_owned()
}

pub fn event(id: &str) -> EventId {
    EventId::parse(id).expect("event id")
}

/// Creates an event with a strategy through the room's own operation.
pub async fn create_event(local: &LocalRoom, id: &str, strategy: Strategy) {
    let mut config = EventConfig::new(event(id));
    config.strategy = strategy;
    local
        .room
        .create_event(config, "test")
        .await
        .expect("create event");
}

/// An answer: status, headers and the JSON body (`Value::Null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Sends one request through the router, as API Gateway or axum::serve would.
pub async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = read_body(response).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "non-JSON body {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Answer {
        status,
        headers,
        body,
    }
}

pub fn admin() -> [(&'static str, &'static str); 1] {
    [("authorization", "Bearer test-admin-key")]
}

/// Enqueues one visitor through the API and returns its request id.
pub async fn enqueue(router: &Router, event_id: &str) -> RequestId {
    let answer = call(
        router,
        Method::POST,
        "/assign_queue_num",
        Some(serde_json::json!({ "event_id": event_id })),
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    RequestId::parse(
        answer.body["api_request_id"]
            .as_str()
            .expect("api_request_id"),
    )
    .expect("request id")
}

/// The in-memory buffer enqueued visitors wait in, for tests that play the consumer.
pub fn buffer(local: &LocalRoom) -> Arc<MemoryBuffer> {
    local.memory_buffer().expect("a room on the memory store")
}

/// Runs the batch consumer over everything buffered, as the SQS consumer would.
pub async fn drain(local: &LocalRoom) {
    let buffer = buffer(local);
    while !buffer.is_empty() {
        let batch = buffer.next_batch(1_000).await;
        let report = local.room.assign_batch(&batch).await;
        assert!(report.failed.is_empty(), "batch failed: {report:?}");
    }
}

/// The operator lets `by` more visitors in, through the admin API.
pub async fn increment(router: &Router, event_id: &str, by: u64) -> Answer {
    call(
        router,
        Method::POST,
        "/increment_serving_counter",
        Some(serde_json::json!({ "event_id": event_id, "increment_by": by })),
        &admin(),
    )
    .await
}

/// The main application ends a visitor's session (`update_session` with -1), as the admin.
pub async fn end_session(router: &Router, event_id: &str, request_id: &str) -> Answer {
    call(
        router,
        Method::POST,
        "/update_session",
        Some(serde_json::json!({ "event_id": event_id, "request_id": request_id, "status": -1 })),
        &admin(),
    )
    .await
}

/// A visitor asks for its token set.
pub async fn generate_token(router: &Router, event_id: &str, request_id: &RequestId) -> Answer {
    call(
        router,
        Method::POST,
        "/generate_token",
        Some(serde_json::json!({ "event_id": event_id, "request_id": request_id })),
        &[],
    )
    .await
}

/// A room on an [`InstrumentedStore`] (to count calls or inject faults) with one event `demo`,
/// on a manual clock.
pub async fn instrumented_room(
    latency: Duration,
    cache: CacheSettings,
) -> (
    Arc<WaitingRoom>,
    Arc<InstrumentedStore<MemoryStore>>,
    Arc<ManualClock>,
) {
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let store = Arc::new(InstrumentedStore::new(MemoryStore::new()).with_latency(latency));
    let keys = KeyRing::new(
        SigningKey::generate(KeyAlgorithm::EdDSA).expect("key generation"),
        vec![],
    );
    let room = Arc::new(
        WaitingRoom::new(store.clone(), clock.clone(), cache)
            .with_buffer(Arc::new(MemoryBuffer::new(100)))
            .with_tokens(TokenIssuer::new(Arc::new(keys), "test")),
    );
    room.ensure_event(EventConfig::new(event("demo")))
        .await
        .expect("event");
    (room, store, clock)
}

/// Sends an API Gateway payload through `lambda_http`'s own conversion into a router, as the
/// Lambda runtime does; returns the status and the JSON body.
pub async fn through_lambda_http(router: &Router, payload: &str) -> (StatusCode, Value) {
    let request = lambda_http::request::from_str(payload).expect("an API Gateway payload");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = read_body(response).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The process's Prometheus text, as an operator scrapes it (with the admin key).
pub async fn scrape_metrics(router: &Router) -> String {
    let request = Request::get("/metrics")
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    String::from_utf8(read_body(response).await.to_vec()).expect("UTF-8")
}

/// A router's whole answer body.
async fn read_body(response: axum::response::Response) -> axum::body::Bytes {
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}
