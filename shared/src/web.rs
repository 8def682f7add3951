//! The visitor page and the control panel, embedded in the binary so the local server needs no
//! files beside it. The same files deploy to S3 behind the CDN.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// (path, content type, body) of every page and asset.
const FILES: &[(&str, &str, &str)] = &[
    (
        "/waiting-room.html",
        "text/html; charset=utf-8",
        include_str!("../web/waiting-room.html"),
    ),
    (
        "/control-panel.html",
        "text/html; charset=utf-8",
        include_str!("../web/control-panel.html"),
    ),
    (
        "/assets/room.css",
        "text/css; charset=utf-8",
        include_str!("../web/assets/room.css"),
    ),
    (
        "/assets/panel.css",
        "text/css; charset=utf-8",
        include_str!("../web/assets/panel.css"),
    ),
    (
        "/assets/strings.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/assets/strings.js"),
    ),
    (
        "/assets/queue.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/assets/queue.js"),
    ),
    (
        "/assets/room.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/assets/room.js"),
    ),
    (
        "/assets/panel.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/assets/panel.js"),
    ),
];

pub fn routes() -> Router {
    let mut router = Router::new()
        .route(
            "/",
            get(|| async { Redirect::temporary("/waiting-room.html?event_id=demo") }),
        )
        .route(
            "/control-panel",
            get(|| async { Redirect::temporary("/control-panel.html") }),
        );
    for &(path, content_type, body) in FILES {
        router = router.route(path, get(move || async move { file(content_type, body) }));
    }
    router
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}
