//! The gate: the room in front of an application that knows nothing about it. A request
//! without a valid pass never reaches the application: a browser navigation is sent to the
//! visitor page with the address it asked for, anything else gets a 503 JSON answer. After
//! admission the visitor page hands the token to [`HANDOFF_PATH`] on the gate, which sets it
//! as the pass cookie and sends the visitor on to that address, with no token left in any URL.
//! Requests with a valid pass go to the application unchanged, with the pass's request id in
//! [`REQUEST_ID_HEADER`].
//!
//! The routes are one axum [`Router`](axum::Router) ([`router`]), so any listener can serve
//! them; the local binary serves them on `--gate-listen`.

pub mod edge;
mod pass;
mod proxy;
mod routes;

use std::time::Duration;

pub use pass::PASS_COOKIE;
pub use routes::{Gate, router};

use crate::domain::EventId;
use crate::error::Error;
use crate::service::WaitingRoom;
use crate::token::TokenError;

/// Where the visitor page hands over the token after admission.
pub const HANDOFF_PATH: &str = "/__wr/pass";

/// The header that tells the application which admitted visitor a request comes from (any
/// value a client sends in it is dropped first).
pub const REQUEST_ID_HEADER: &str = "x-waiting-room-request-id";

/// How long a checked pass is trusted before its session is looked up again: a session the
/// main application ends is turned back within this.
pub const PASS_CACHE_TTL: Duration = Duration::from_secs(2);

/// What a gate needs to know, parsed once at start.
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// The event whose passes open the gate.
    pub event_id: EventId,
    /// The application behind the gate: `http://host:port`, optionally with a base path.
    pub upstream: String,
    /// The visitor page, as browsers reach it (e.g. `http://127.0.0.1:8080/waiting-room.html`).
    pub room_page: String,
    /// Path prefixes that go to the application without a pass (static assets, health checks).
    pub skip: Vec<String>,
    /// The gate is served over TLS (the pass cookie is then `Secure`).
    pub https: bool,
    /// See [`PASS_CACHE_TTL`].
    pub pass_cache: Duration,
}

impl GateSettings {
    pub fn new(
        event_id: EventId,
        upstream: impl Into<String>,
        room_page: impl Into<String>,
    ) -> Self {
        Self {
            event_id,
            upstream: upstream.into(),
            room_page: room_page.into(),
            skip: vec![],
            https: false,
            pass_cache: PASS_CACHE_TTL,
        }
    }
}

/// Why the gate did not pass a request on.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("no valid pass: {0}")]
    NoPass(TokenError),
    #[error("passes cannot be checked right now: {0}")]
    Unavailable(Error),
    #[error("the application cannot be reached: {0}")]
    Upstream(#[from] hyper_util::client::legacy::Error),
    #[error("bad gate configuration: {0}")]
    Config(String),
}

impl From<Error> for GateError {
    fn from(error: Error) -> Self {
        match error {
            Error::Token(reason) => GateError::NoPass(reason),
            other => GateError::Unavailable(other),
        }
    }
}

/// Points the event's visitor page at the gate's hand-over path, unless the operator already
/// gave it somewhere else to send admitted visitors (then the gate still guards, and the log
/// says where visitors go instead).
pub async fn point_event_at(
    room: &WaitingRoom,
    event_id: &EventId,
    gate_url: &str,
) -> Result<(), Error> {
    let handoff = format!("{}{HANDOFF_PATH}", gate_url.trim_end_matches('/'));
    let mut config = room.cached_config(event_id).await?;
    if config.target_url == handoff {
        return Ok(());
    }
    if !config.target_url.is_empty() {
        tracing::warn!(
            event_id = %event_id,
            target_url = %config.target_url,
            gate = %handoff,
            "the event sends admitted visitors to its own target, not through the gate"
        );
        return Ok(());
    }
    config.target_url = handoff;
    room.update_event(config, "gate").await
}
