//! The admin API: the AWS solution's private routes plus event management. Locally it takes
//! `Authorization: Bearer <admin key>`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::cacheable::private;
use super::error::ApiError;
use super::extract::{Body, Params};
use crate::authorizer::bearer;
use crate::domain::{EventConfig, EventId, RequestId, SessionEnd};
use crate::service::{NewCodes, NewEvent, WaitingRoom};

type Room = State<Arc<WaitingRoom>>;

/// Who made an admin change, for the audit trail.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

/// How admin callers prove who they are.
#[derive(Clone)]
pub enum AdminAuth {
    /// A shared secret sent as a bearer token (the local server, the control panel).
    Key(Arc<str>),
    /// The edge already authenticated the caller (API Gateway with IAM authorization) and put
    /// an [`Actor`] in the request's extensions; a request without one is refused. A bearer
    /// key, when set, is accepted too, for the control panel.
    Gateway { key: Option<Arc<str>> },
}

#[derive(Deserialize)]
struct EventParam {
    event_id: EventId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Increment {
    event_id: EventId,
    increment_by: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionUpdate {
    event_id: EventId,
    request_id: RequestId,
    status: i64,
}

#[derive(Deserialize)]
struct ExpiredParams {
    event_id: EventId,
    after: Option<RequestId>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct AuditParams {
    limit: Option<usize>,
}

pub fn routes(auth: AdminAuth) -> Router<Arc<WaitingRoom>> {
    let routes = Router::new()
        .route(
            "/increment_serving_counter",
            post(increment_serving_counter),
        )
        .route("/num_active_tokens", get(num_active_tokens))
        .route("/expired_tokens", get(expired_tokens))
        .route("/update_session", post(update_session))
        .route("/reset_initial_state", post(reset_initial_state))
        .route("/admin/events", get(list_events).post(create_event))
        .route("/admin/events/{event_id}", get(get_event).put(put_event))
        .route("/admin/events/{event_id}/pause", post(pause))
        .route("/admin/events/{event_id}/resume", post(resume))
        .route("/admin/events/{event_id}/close", post(close))
        .route("/admin/events/{event_id}/codes", post(create_codes))
        .route("/admin/events/{event_id}/reopen", post(reopen))
        .route("/admin/events/{event_id}/metrics", get(metrics))
        .route("/admin/events/{event_id}/audit", get(audit));
    require_admin(routes, auth)
}

/// `routes` answer only callers the admin API accepts (`401` otherwise), never cached.
pub fn require_admin<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    auth: AdminAuth,
) -> Router<S> {
    routes.layer(middleware::from_fn(move |req, next| {
        check(auth.clone(), req, next)
    }))
}

async fn check(auth: AdminAuth, mut req: Request, next: Next) -> Response {
    let (key, gateway) = match &auth {
        AdminAuth::Key(key) => (Some(key), false),
        AdminAuth::Gateway { key } => (key.as_ref(), true),
    };
    // Only code at the edge can put an Actor in the extensions; clients cannot.
    let verified_by_gateway = gateway && req.extensions().get::<Actor>().is_some();
    if !verified_by_gateway {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(bearer);
        let key_matches = matches!((key, presented),
            (Some(key), Some(given)) if same_key(key, given));
        if !key_matches {
            return ApiError::unauthorized_admin().into_response();
        }
        req.extensions_mut().insert(Actor("admin-key".to_owned()));
    }
    private(next.run(req).await)
}

/// Compares the admin key with a presented one without leaking, through timing, where they
/// differ or how long the key is: both are hashed to 32 bytes first (the presented key's own
/// length is the caller's to know), then compared in constant time.
fn same_key(key: &str, presented: &str) -> bool {
    use aws_lc_rs::digest::{SHA256, digest};
    use subtle::ConstantTimeEq;
    let (key, presented) = (
        digest(&SHA256, key.as_bytes()),
        digest(&SHA256, presented.as_bytes()),
    );
    key.as_ref().ct_eq(presented.as_ref()).into()
}

/// A random admin key for a server started without one: 32 hex digits from the OS generator
/// (a v4 UUID: 122 random bits).
pub fn generate_admin_key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn event_path(raw: &str) -> Result<EventId, ApiError> {
    Ok(EventId::parse(raw)?)
}

async fn increment_serving_counter(
    State(room): Room,
    Extension(actor): Extension<Actor>,
    Body(body): Body<Increment>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let serving = room
        .increment_serving(&body.event_id, body.increment_by, &actor.0)
        .await?;
    Ok(Json(json!({ "serving_num": serving })))
}

async fn num_active_tokens(
    State(room): Room,
    Params(q): Params<EventParam>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let counters = room.counters(&q.event_id).await?;
    Ok(Json(json!({ "active_tokens": counters.active_tokens() })))
}

/// The AWS answer is a bare array; the cursor for the next page travels in a header.
async fn expired_tokens(
    State(room): Room,
    Params(q): Params<ExpiredParams>,
) -> Result<Response, ApiError> {
    let page = room
        .expired_tokens(&q.event_id, q.after, q.limit.unwrap_or(100))
        .await?;
    let mut response = Json(&page.items).into_response();
    if let Some(next) = page
        .next
        .and_then(|n| HeaderValue::from_str(&n.to_string()).ok())
    {
        response.headers_mut().insert("x-next-cursor", next);
    }
    Ok(response)
}

async fn update_session(
    State(room): Room,
    Extension(actor): Extension<Actor>,
    Body(body): Body<SessionUpdate>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let end = SessionEnd::from_code(body.status)?;
    let outcome = room
        .update_session(&body.event_id, &body.request_id, end, &actor.0)
        .await?;
    Ok(Json(json!({
        "event_id": body.event_id,
        "request_id": body.request_id,
        "status": end.status().code(),
        "changed": outcome == crate::ports::EndOutcome::Ended,
    })))
}

async fn reset_initial_state(
    State(room): Room,
    Extension(actor): Extension<Actor>,
    Body(body): Body<EventParam>,
) -> Result<Json<serde_json::Value>, ApiError> {
    room.reset(&body.event_id, &actor.0).await?;
    Ok(Json(json!({ "event_id": body.event_id, "reset": true })))
}

async fn list_events(State(room): Room) -> Result<Json<Vec<EventConfig>>, ApiError> {
    Ok(Json(room.events().await?))
}

async fn create_event(
    State(room): Room,
    Extension(actor): Extension<Actor>,
    Body(body): Body<NewEvent>,
) -> Result<Response, ApiError> {
    let config = body.into_config();
    room.create_event(config.clone(), &actor.0).await?;
    Ok((axum::http::StatusCode::CREATED, Json(config)).into_response())
}

async fn get_event(
    State(room): Room,
    Path(id): Path<String>,
) -> Result<Json<EventConfig>, ApiError> {
    Ok(Json(room.event(&event_path(&id)?).await?))
}

async fn put_event(
    State(room): Room,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    Body(config): Body<EventConfig>,
) -> Result<Json<EventConfig>, ApiError> {
    if config.event_id != event_path(&id)? {
        return Err(crate::error::Error::Invalid("event_id in body and path differ".into()).into());
    }
    room.update_event(config.clone(), &actor.0).await?;
    Ok(Json(config))
}

async fn pause(
    State(room): Room,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<EventConfig>, ApiError> {
    let event_id = event_path(&id)?;
    room.set_paused(&event_id, true, &actor.0).await?;
    Ok(Json(room.event(&event_id).await?))
}

async fn resume(
    State(room): Room,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<EventConfig>, ApiError> {
    let event_id = event_path(&id)?;
    room.set_paused(&event_id, false, &actor.0).await?;
    Ok(Json(room.event(&event_id).await?))
}

async fn close(
    State(room): Room,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<EventConfig>, ApiError> {
    let event_id = event_path(&id)?;
    room.set_closed(&event_id, true, &actor.0).await?;
    Ok(Json(room.event(&event_id).await?))
}

async fn reopen(
    State(room): Room,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<EventConfig>, ApiError> {
    let event_id = event_path(&id)?;
    room.set_closed(&event_id, false, &actor.0).await?;
    Ok(Json(room.event(&event_id).await?))
}

async fn create_codes(
    State(room): Room,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    Body(body): Body<NewCodes>,
) -> Result<Response, ApiError> {
    let codes = room.create_codes(&event_path(&id)?, body, &actor.0).await?;
    Ok((axum::http::StatusCode::CREATED, Json(codes)).into_response())
}

async fn metrics(State(room): Room, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(room.metrics(&event_path(&id)?).await?).into_response())
}

async fn audit(
    State(room): Room,
    Path(id): Path<String>,
    Params(q): Params<AuditParams>,
) -> Result<Response, ApiError> {
    Ok(Json(
        room.audit_log(&event_path(&id)?, q.limit.unwrap_or(50))
            .await?,
    )
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_key_matches() {
        assert!(same_key("s3cret-key", "s3cret-key"));
        assert!(!same_key("s3cret-key", "s3cret-kez"));
        assert!(!same_key("s3cret-key", "s3cret-key "));
        assert!(!same_key("s3cret-key", "s3cret"));
        assert!(!same_key("s3cret-key", ""));
    }

    #[test]
    fn generated_keys_are_long_and_distinct() {
        let (a, b) = (generate_admin_key(), generate_admin_key());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
