//! The gate's routes: the hand-over of the token after admission, and every other request,
//! passed on with a valid pass or turned back to the room without one.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::pass::{Passes, clear_pass, pass_from, set_pass};
use super::proxy::{Forwarded, Proxy};
use super::{GateError, GateSettings, HANDOFF_PATH};
use crate::service::WaitingRoom;

/// Longest address a visitor is sent back to; a longer one lands on the application's root.
const MAX_RETURN_LEN: usize = 2048;

/// Seconds a refused API call is told to wait before trying again.
const RETRY_WITHOUT_PASS_SECS: u64 = 30;

/// Seconds to wait when passes cannot be checked (the store is down and the event fails
/// closed).
const RETRY_UNAVAILABLE_SECS: u64 = 5;

/// A gate, ready to serve.
pub struct Gate {
    settings: GateSettings,
    passes: Passes,
    proxy: Proxy,
}

impl Gate {
    pub fn new(room: Arc<WaitingRoom>, settings: GateSettings) -> Result<Self, GateError> {
        if let Some(bad) = settings.skip.iter().find(|p| !p.starts_with('/')) {
            return Err(GateError::Config(format!(
                "skipped path {bad:?} must start with /"
            )));
        }
        let page = &settings.room_page;
        if !(page.starts_with("http://") || page.starts_with("https://")) || page.contains('#') {
            return Err(GateError::Config(format!(
                "room page {page:?} must be an http(s) address without a fragment"
            )));
        }
        Ok(Self {
            passes: Passes::new(room, &settings),
            proxy: Proxy::new(&settings.upstream)?,
            settings,
        })
    }

    fn skips(&self, path: &str) -> bool {
        self.settings
            .skip
            .iter()
            .any(|prefix| path.starts_with(prefix))
    }

    /// The visitor page of the gate's event, told where to send the visitor back to.
    fn room_page(&self, back: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("event_id", self.settings.event_id.as_str())
            .append_pair("return", back)
            .finish();
        let page = &self.settings.room_page;
        let sep = if page.contains('?') { '&' } else { '?' };
        format!("{page}{sep}{query}")
    }

    fn forwarded(&self, request: &Request) -> Forwarded {
        let https = self.settings.https
            || request
                .headers()
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        Forwarded {
            client: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            proto: if https { "https" } else { "http" },
        }
    }
}

/// The gate's routes over `gate`.
pub fn router(gate: Arc<Gate>) -> Router {
    Router::new()
        .route(HANDOFF_PATH, get(handoff))
        .fallback(pass_or_turn_back)
        .with_state(gate)
}

/// Every request but the hand-over.
async fn pass_or_turn_back(State(gate): State<Arc<Gate>>, request: Request) -> Response {
    let forwarded = gate.forwarded(&request);
    if gate.skips(request.uri().path()) {
        return forward(&gate, request, &forwarded, None).await;
    }
    let token = pass_from(request.headers());
    match gate.passes.check(token.as_deref().unwrap_or("")).await {
        Ok((claims, _)) => forward(&gate, request, &forwarded, Some(&claims.sub)).await,
        Err(error) => {
            let back = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .and_then(safe_return)
                .unwrap_or("/");
            let refused = Refused {
                navigation: is_navigation(request.method(), request.headers()),
                back,
                had_pass: token.is_some(),
                secure: forwarded.proto == "https",
            };
            refuse(&gate, error, &refused)
        }
    }
}

async fn forward(
    gate: &Gate,
    request: Request,
    forwarded: &Forwarded,
    request_id: Option<&str>,
) -> Response {
    match gate.proxy.forward(request, forwarded, request_id).await {
        Ok(response) => response,
        Err(error) => {
            let refused = Refused {
                navigation: false,
                back: "/",
                had_pass: false,
                secure: false,
            };
            refuse(gate, error, &refused)
        }
    }
}

/// `GET /__wr/pass?wr_token=...&return=/path?query`: the visitor page's hand-over after
/// admission. A valid token becomes the pass cookie and the visitor goes on to `return` (a
/// path on this gate, nothing else); an invalid one sends the visitor back to the room.
async fn handoff(State(gate): State<Arc<Gate>>, request: Request) -> Response {
    let mut token = String::new();
    let mut back = None;
    for (name, value) in form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "wr_token" => token = value.into_owned(),
            "return" => back = Some(value.into_owned()),
            _ => {}
        }
    }
    let back = match back.as_deref().map(|b| (b, safe_return(b))) {
        Some((_, Some(safe))) => safe,
        Some((refused, None)) => {
            tracing::warn!(return_to = %refused, "refused a return address off this gate");
            "/"
        }
        None => "/",
    };
    let secure = gate.forwarded(&request).proto == "https";
    match gate.passes.check(&token).await {
        Ok((_, seconds_left)) => {
            let mut response = see_other(back);
            if let Some(cookie) = set_pass(&token, seconds_left, secure) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => {
            let refused = Refused {
                navigation: true,
                back,
                had_pass: false,
                secure,
            };
            refuse(&gate, error, &refused)
        }
    }
}

/// What a refusal needs to know about the request it answers.
struct Refused<'a> {
    /// A browser loading a page (sent to the room) rather than a script or an API client
    /// (told in JSON).
    navigation: bool,
    /// Where the visitor goes once admitted.
    back: &'a str,
    /// The request carried a pass, now refused: the browser is told to forget it.
    had_pass: bool,
    secure: bool,
}

/// The one place where the gate's errors become HTTP answers.
fn refuse(gate: &Gate, error: GateError, refused: &Refused) -> Response {
    let room = gate.room_page(refused.back);
    let mut response = match &error {
        GateError::NoPass(reason) if refused.navigation => {
            tracing::debug!(reason = reason.code(), "turned back to the room");
            crate::metrics::add_labelled("gate_refusals_total", "code", "sent_to_room");
            see_other(&room)
        }
        GateError::NoPass(reason) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "pass_required",
            json!({
                "error": format!("a pass from the waiting room is needed ({reason})"),
                "reason": reason.code(),
                "waiting_room": room,
            }),
            Some(RETRY_WITHOUT_PASS_SECS),
        ),
        GateError::Unavailable(cause) => {
            tracing::warn!(error = %cause, "passes cannot be checked; the gate stays closed");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "room_unavailable",
                json!({ "error": error.to_string() }),
                Some(RETRY_UNAVAILABLE_SECS),
            )
        }
        GateError::Upstream(cause) => {
            tracing::warn!(error = %cause, "the application behind the gate is unreachable");
            json_error(
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                json!({ "error": error.to_string() }),
                None,
            )
        }
        GateError::Config(cause) => {
            tracing::error!(error = %cause, "request the gate cannot pass on");
            json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                json!({ "error": error.to_string() }),
                None,
            )
        }
    };
    if refused.had_pass {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, clear_pass(refused.secure));
    }
    response
}

/// `{"error": ..., "code": ...}` and whatever else `body` holds, as the room's API answers.
fn json_error(
    status: StatusCode,
    code: &'static str,
    mut body: serde_json::Value,
    retry_after: Option<u64>,
) -> Response {
    crate::metrics::add_labelled("gate_refusals_total", "code", code);
    body["code"] = json!(code);
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// 303 to `location`, never cached, and telling no one where the visitor came from (the
/// hand-over's own address carries the token).
fn see_other(location: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A browser loading a page: GET or HEAD asking for HTML.
fn is_navigation(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|accept| accept.contains("text/html"))
}

/// `back` if it is a path on this gate and nothing else: absolute path, no scheme or host
/// (`//host`, `/\host`, which browsers read as another origin), no whitespace or control
/// characters (browsers drop tabs and newlines, turning `/\t/host` into `//host`), and not
/// the hand-over itself.
fn safe_return(back: &str) -> Option<&str> {
    let ok = back.len() <= MAX_RETURN_LEN
        && back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains('\\')
        && back.bytes().all(|b| b.is_ascii_graphic())
        && !back.starts_with(HANDOFF_PATH);
    ok.then_some(back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_the_gate_are_return_addresses() {
        for good in ["/", "/shop/item?x=1", "/a/b?c=%2F%2Fevil&d=e"] {
            assert_eq!(safe_return(good), Some(good));
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "/\t/evil.example",
            "/ok\n",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/__wr/pass?wr_token=x",
        ] {
            assert_eq!(safe_return(bad), None, "{bad:?} accepted");
        }
        assert_eq!(
            safe_return(&format!("/{}", "a".repeat(MAX_RETURN_LEN))),
            None
        );
    }

    #[test]
    fn navigations_are_page_loads_asking_for_html() {
        let mut html = HeaderMap::new();
        html.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(is_navigation(&Method::GET, &html));
        assert!(!is_navigation(&Method::POST, &html));
        assert!(!is_navigation(&Method::GET, &HeaderMap::new()));
    }
}
