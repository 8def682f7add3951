//! axum Routers for the public and admin APIs. The same Router runs under `axum::serve`
//! locally and under `lambda_http::run` on Lambda.

pub mod admin;
pub mod cacheable;
pub mod client_address;
pub mod client_limit;
pub mod cors;
pub mod error;
pub mod extract;
pub mod no_script;
pub mod public;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use admin::{AdminAuth, AdminKey};
pub use client_address::{ClientAddress, TrustedProxies};
pub use client_limit::{ClientLimit, ClientLimiter, ClientLimits};
use error::ApiError;

use crate::service::WaitingRoom;

/// Largest request body accepted: every real body is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The enqueue route alone (the assign-position Lambda).
pub fn enqueue_router(room: Arc<WaitingRoom>) -> Router {
    finish(public::enqueue_routes(), room)
}

/// The polled reads alone (the public-reads Lambda).
pub fn reads_router(room: Arc<WaitingRoom>) -> Router {
    finish(public::read_routes(), room)
}

/// Token issue, keys and the HTTP authorizer alone (the token Lambda).
pub fn tokens_router(room: Arc<WaitingRoom>) -> Router {
    finish(public::token_routes(), room)
}

/// The admin routes alone.
pub fn admin_router(room: Arc<WaitingRoom>, auth: AdminAuth) -> Router {
    finish(admin::routes(auth), room)
}

/// Public and admin routes together.
pub fn router(room: Arc<WaitingRoom>, auth: AdminAuth) -> Router {
    finish(public::routes().merge(admin::routes(auth)), room)
}

/// Public and admin routes with per-client limits on joining the line, looking requests up
/// and claiming tokens (the local server, which has no API Gateway in front of it).
pub fn limited_router(room: Arc<WaitingRoom>, auth: AdminAuth, limits: ClientLimits) -> Router {
    let routes = limit(public::enqueue_routes(), limits.joins, "joins")
        .merge(limit(public::lookup_routes(), limits.lookups, "look-ups"))
        .merge(public::shared_read_routes())
        .merge(limit(public::claim_routes(), limits.joins, "token claims"))
        .merge(public::key_routes())
        .merge(admin::routes(auth));
    finish(routes, room)
}

/// `routes`, each limited per client by a bucket table of its own when `limit` is set.
fn limit(
    routes: Router<Arc<WaitingRoom>>,
    limit: Option<ClientLimit>,
    guards: &'static str,
) -> Router<Arc<WaitingRoom>> {
    match limit {
        Some(limit) => {
            let limiter = ClientLimiter::new(limit, guards);
            routes.route_layer(axum::middleware::from_fn(move |request, next| {
                limiter.clone().check(request, next)
            }))
        }
        None => routes,
    }
}

fn finish(routes: Router<Arc<WaitingRoom>>, room: Arc<WaitingRoom>) -> Router {
    routes
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        // One layer, not two: axum wraps and clones every route once per layer call.
        .layer((cors::Cors, DefaultBodyLimit::max(MAX_BODY_BYTES)))
        .with_state(room)
}
