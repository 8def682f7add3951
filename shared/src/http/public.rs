//! The public API: what browsers (through the CDN) and the main application call.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::client_address::ClientAddress;
use super::error::ApiError;
use super::extract::{self, Body, Params};
use super::{cacheable, no_script};
use crate::domain::{EventId, RequestId};
use crate::service::event_state::{Rendered, SharedAnswers};
use crate::service::{Proof, WaitingRoom};

type Room = State<Arc<WaitingRoom>>;

#[derive(Deserialize)]
struct EventParam {
    event_id: EventId,
}

/// `/public_key`'s optional event: parsed only so that a malformed one is refused, since every
/// event shares the key.
#[derive(Deserialize)]
struct OptionalEventParam {
    #[expect(
        dead_code,
        reason = "read by the extractor only, to refuse malformed ids"
    )]
    event_id: Option<EventId>,
}

#[derive(Deserialize)]
struct RequestParams {
    event_id: EventId,
    request_id: RequestId,
}

/// Every public route (the local server).
pub fn routes() -> Router<Arc<WaitingRoom>> {
    enqueue_routes().merge(read_routes()).merge(token_routes())
}

/// Joining the line (the only route that writes to the buffer), or skipping it with a code.
pub fn enqueue_routes() -> Router<Arc<WaitingRoom>> {
    Router::new()
        .route("/assign_queue_num", post(assign_queue_num))
        .route("/redeem_code", post(redeem_code))
        // The page without JavaScript joins by a form: on its own address, and on the script
        // page's, whose <noscript> form posts back to it.
        .route(no_script::PATH, post(no_script::join))
        .route("/waiting-room.html", post(no_script::join))
}

/// The polled reads: store reads only, most of them cacheable.
pub fn read_routes() -> Router<Arc<WaitingRoom>> {
    lookup_routes().merge(shared_read_routes())
}

/// Reads of one visitor's own request (limited per client on the local server).
pub fn lookup_routes() -> Router<Arc<WaitingRoom>> {
    Router::new()
        .route("/queue_num", get(queue_num))
        .route("/queue_pos_expiry", get(queue_pos_expiry))
        .route("/status", get(status))
}

/// Reads that are the same for every visitor of an event (cacheable).
pub fn shared_read_routes() -> Router<Arc<WaitingRoom>> {
    Router::new()
        .route("/serving_num", get(serving_num))
        .route("/waiting_num", get(waiting_num))
        .route("/event_state", get(event_state))
        .route("/event_info", get(event_info))
}

/// Tokens: issue, publish the keys, and the HTTP authorizer; the only routes using the key.
pub fn token_routes() -> Router<Arc<WaitingRoom>> {
    claim_routes().merge(key_routes())
}

/// Claiming a served request's token set (limited per client on the local server), and the
/// page without JavaScript, which claims it at the visitor's turn.
pub fn claim_routes() -> Router<Arc<WaitingRoom>> {
    Router::new()
        .route("/generate_token", post(generate_token))
        .route(no_script::PATH, get(no_script::page))
}

/// The verification keys and the HTTP authorizer.
pub fn key_routes() -> Router<Arc<WaitingRoom>> {
    Router::new()
        .route("/public_key", get(public_key))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/authorize", get(authorize))
        // Envoy's ext_authz appends the original request path to the check URL.
        .route("/authorize/{*path}", get(authorize))
}

/// A join: the event, and a solved challenge when the event asks for one.
#[derive(Deserialize)]
struct JoinBody {
    event_id: EventId,
    #[serde(default)]
    challenge: Option<String>,
    /// The nonce that solves `challenge`.
    #[serde(default)]
    solution: Option<String>,
}

async fn assign_queue_num(
    State(room): Room,
    client: Option<Extension<ClientAddress>>,
    Body(body): Body<JoinBody>,
) -> Result<Response, ApiError> {
    let proof = match (body.challenge, body.solution) {
        (Some(challenge), Some(solution)) => Some(Proof {
            challenge,
            solution,
        }),
        (None, None) => None,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "send challenge and solution together",
            ));
        }
    };
    let client = client.map(|Extension(ClientAddress(address))| address);
    let request_id = room.join(&body.event_id, client, proof.as_ref()).await?;
    Ok(cacheable::private((
        StatusCode::ACCEPTED,
        Json(json!({ "api_request_id": request_id })),
    )))
}

#[derive(Deserialize)]
struct CodeBody {
    event_id: EventId,
    code: String,
}

async fn redeem_code(State(room): Room, Body(body): Body<CodeBody>) -> Result<Response, ApiError> {
    let request_id = room.redeem_code(&body.event_id, &body.code).await?;
    Ok(cacheable::private(Json(
        json!({ "api_request_id": request_id }),
    )))
}

async fn queue_num(
    State(room): Room,
    Params(q): Params<RequestParams>,
) -> Result<Response, ApiError> {
    let (record, standing) = room.locate(&q.event_id, &q.request_id).await?;
    // `arrival` is the request's number in order of arrival: its place unless a pre-queue draw
    // shuffles it, which the page computes itself from the draw in `/event_state`.
    let Some(place) = standing.place() else {
        // In a pre-queue the place is only known once drawn: "not yet", as before assignment
        // (the AWS solution's clients keep asking), with the arrival number for our page.
        return Ok(cacheable::private((
            StatusCode::ACCEPTED,
            Json(json!({
                "error": "the pre-queue is drawn at the start",
                "code": "awaiting_draw",
                "arrival": record.position,
                "entry_time_ms": record.entry_time_ms,
            })),
        )));
    };
    Ok(cacheable::private(Json(json!({
        "queue_number": place,
        "arrival": record.position,
        "entry_time": record.entry_time_ms / 1000,
        "entry_time_ms": record.entry_time_ms,
        "event_id": q.event_id,
        "status": standing.status_code(),
    }))))
}

/// One of the event's shared answers, from the in-process snapshot, with its validators.
/// The shared reads take the request whole: its headers are only looked at, never copied.
async fn shared(
    room: &WaitingRoom,
    request: Request,
    answer: fn(&SharedAnswers) -> &Rendered,
) -> Result<Response, ApiError> {
    let (request, _body) = request.into_parts();
    let event_id = extract::event_id(&request.uri)?;
    let view = room.view(&event_id).await?;
    Ok(cacheable::respond(
        &request.headers,
        answer(&view.answers),
        room.now_ms(),
    ))
}

async fn serving_num(State(room): Room, request: Request) -> Result<Response, ApiError> {
    shared(&room, request, |a| &a.serving_num).await
}

async fn waiting_num(State(room): Room, request: Request) -> Result<Response, ApiError> {
    shared(&room, request, |a| &a.waiting_num).await
}

/// The one document every waiting page polls (through the CDN, keyed on the event id alone):
/// state, schedule, counters, recent moves, draw, poll policy, message.
async fn event_state(State(room): Room, request: Request) -> Result<Response, ApiError> {
    shared(&room, request, |a| &a.event_state).await
}

async fn queue_pos_expiry(
    State(room): Room,
    Params(q): Params<RequestParams>,
) -> Result<Response, ApiError> {
    let left = room.position_expiry(&q.event_id, &q.request_id).await?;
    Ok(cacheable::private(Json(json!({ "expires_in": left }))))
}

async fn generate_token(
    State(room): Room,
    Body(body): Body<RequestParams>,
) -> Result<Response, ApiError> {
    let outcome = room
        .generate_token(&body.event_id, &body.request_id)
        .await?;
    let mut body = json!({
        "access_token": outcome.token.access_token,
        "refresh_token": outcome.token.refresh_token,
        "id_token": outcome.token.id_token,
        "token_type": "Bearer",
        "expires_in": outcome.expires_in,
    });
    // The pass for the gate on CloudFront: the visitor page hands it to the application's
    // /__wr/pass, where the gate sets it as a cookie on the application's own domain.
    if let Some(pass) = outcome.edge_pass {
        body["pass"] = json!(pass.value);
        body["pass_expires_in"] = json!(pass.expires_in);
    }
    Ok(cacheable::private(Json(body)))
}

async fn status(State(room): Room, Params(q): Params<RequestParams>) -> Result<Response, ApiError> {
    let status = room.status(&q.event_id, &q.request_id).await?;
    Ok(cacheable::private(Json(status)))
}

/// What a page needs before it has a place: the event's name, state and schedule, and the
/// server's clock for countdowns. Changes with time (the schedule), so cached only briefly.
async fn event_info(
    State(room): Room,
    Params(q): Params<EventParam>,
) -> Result<Response, ApiError> {
    let view = room.view(&q.event_id).await?;
    let now = room.now_ms();
    let schedule = view.config.schedule;
    let mut response = Json(json!({
        "event_id": q.event_id,
        "name": view.config.name,
        "state": view.config.state(now),
        "opens_at_ms": schedule.prequeue_at_ms,
        "starts_at_ms": schedule.start_at_ms,
        "ends_at_ms": schedule.end_at_ms,
        "waiting_num": view.counters.waiting(),
        "now_ms": now,
    }))
    .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=1"),
    );
    Ok(response)
}

/// Keys change only on rotation; five minutes of caching keeps verifiers off the room.
fn public_cache(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

async fn public_key(
    State(room): Room,
    Params(_q): Params<OptionalEventParam>,
) -> Result<Response, ApiError> {
    Ok(public_cache(
        room.tokens()?.keys().await.current().public_jwk().clone(),
    ))
}

async fn jwks(State(room): Room) -> Result<Response, ApiError> {
    Ok(public_cache(room.tokens()?.keys().await.jwks()))
}

/// The authorizer over plain HTTP: 200 with the claims, 401 without or with a bad token,
/// 403 revoked or for another event. The event is required: a main app checks passes to its
/// own event, never "a pass to any event of this room" (`400` without one).
async fn authorize(
    State(room): Room,
    headers: HeaderMap,
    Params(q): Params<EventParam>,
) -> Result<Response, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = room.authorize(authorization, Some(&q.event_id)).await?;
    Ok(cacheable::private(Json(claims)))
}
