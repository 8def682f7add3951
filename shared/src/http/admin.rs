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

/// The admin key, kept only as its SHA-256 digest: a presented key is hashed and compared in
/// constant time, so neither timing nor the process (nor, on AWS, the function's settings)
/// reveals the key. A random key of 128 bits or more cannot be recovered from its digest.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey([u8; 32]);

impl AdminKey {
    /// The key whose SHA-256 digest is `hex` (64 hex digits, as `sha256sum` prints it).
    pub fn from_sha256_hex(hex: &str) -> Result<Self, String> {
        let hex = hex.trim();
        let bytes = hex.as_bytes();
        if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
            return Err("the admin key's SHA-256 digest must be 64 hex digits".into());
        }
        let mut digest = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            digest[i] = u8::from_str_radix(text, 16).map_err(|e| e.to_string())?;
        }
        Ok(Self(digest))
    }

    /// Whether `presented` is the key, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        sha256(presented).ct_eq(&self.0).into()
    }
}

fn sha256(text: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl From<&str> for AdminKey {
    fn from(key: &str) -> Self {
        Self(sha256(key))
    }
}

impl From<String> for AdminKey {
    fn from(key: String) -> Self {
        Self::from(key.as_str())
    }
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminKey(..)")
    }
}

/// How admin callers prove who they are.
#[derive(Clone)]
pub enum AdminAuth {
    /// A shared secret sent as a bearer token (the local server, the control panel).
    Key(AdminKey),
    /// The edge already authenticated the caller (API Gateway with IAM authorization) and put
    /// an [`Actor`] in the request's extensions; a request without one is refused. A bearer
    /// key, when set, is accepted too, for the control panel.
    Gateway { key: Option<AdminKey> },
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
            (Some(key), Some(given)) if key.matches(given));
        if !key_matches {
            return ApiError::unauthorized_admin().into_response();
        }
        req.extensions_mut().insert(Actor("admin-key".to_owned()));
    }
    private(next.run(req).await)
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
        let key = AdminKey::from("s3cret-key");
        assert!(key.matches("s3cret-key"));
        assert!(!key.matches("s3cret-kez"));
        assert!(!key.matches("s3cret-key "));
        assert!(!key.matches("s3cret"));
        assert!(!key.matches(""));
    }

    #[test]
    fn a_key_given_by_its_digest_matches_the_key() {
        // printf %s s3cret-key | sha256sum
        let digest = "817b823905cc7853f381992575a9041fcdb17fc70e776707abfb4d7c59ecbf3f";
        let key = AdminKey::from_sha256_hex(digest).unwrap();
        assert!(key.matches("s3cret-key"));
        assert!(!key.matches("s3cret-kez"));
        assert_eq!(key, AdminKey::from("s3cret-key"));
        assert!(AdminKey::from_sha256_hex(&digest.to_uppercase()).is_ok());
        for bad in ["", "abc", &digest[..63], &format!("{}g", &digest[..63])] {
            assert!(AdminKey::from_sha256_hex(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_keys_are_long_and_distinct() {
        let (a, b) = (generate_admin_key(), generate_admin_key());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
