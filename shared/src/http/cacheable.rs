//! Validators and `304`s for the reads browsers poll through the CDN. Validators come from the
//! counters' own change time, never from when we read them, so every cache and every instance
//! agrees on them.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::UNIX_EPOCH;

use crate::service::event_state::Rendered;

/// Short enough that a visitor sees the counter move within about a second.
const HOT_READ_CACHE: &str = "public, max-age=1, stale-while-revalidate=2";

/// A rendered answer that caches may keep briefly and revalidate cheaply. Copies nothing: the
/// body and validators are shared with the snapshot they were rendered into.
pub fn respond(request: &HeaderMap, answer: &Rendered, now_ms: i64) -> Response {
    let changed_secs = answer.changed_at_ms.div_euclid(1000);
    // Last-Modified has one-second resolution: it is only sent once its second is over, so a
    // second change within the same second can never hide behind a 304.
    let send_last_modified = now_ms.div_euclid(1000) > changed_secs;
    let not_modified = match request.get(header::IF_NONE_MATCH) {
        Some(tags) => tags.to_str().is_ok_and(|tags| {
            tags.split(',')
                .any(|t| t.trim().trim_start_matches("W/").as_bytes() == answer.etag.as_bytes())
        }),
        None => {
            send_last_modified
                && request
                    .get(header::IF_MODIFIED_SINCE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| httpdate::parse_http_date(v).ok())
                    .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
                    .is_some_and(|since| since.as_secs() as i64 >= changed_secs)
        }
    };
    // Room for these headers and the CORS layer's, so none of them grows the map.
    let mut headers = HeaderMap::with_capacity(8);
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Response::new(Body::from(answer.body.clone()))
    };
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(HOT_READ_CACHE),
    );
    headers.insert(header::ETAG, answer.etag.clone());
    if send_last_modified {
        headers.insert(header::LAST_MODIFIED, answer.last_modified.clone());
    }
    *response.headers_mut() = headers;
    response
}

/// Answers that must never be stored by a shared cache (per-visitor data, tokens).
pub fn private(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn answer(etag: &str, changed_at_ms: i64) -> Rendered {
        Rendered::new(b"{}".to_vec(), etag.into(), changed_at_ms)
    }

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn matching_etag_gets_304_and_other_etags_200() {
        let r = respond(
            &headers(header::IF_NONE_MATCH, "\"a\""),
            &answer("a", 0),
            5_000,
        );
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = respond(
            &headers(header::IF_NONE_MATCH, "W/\"b\", \"c\""),
            &answer("a", 0),
            5_000,
        );
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn last_modified_is_withheld_during_the_change_second() {
        let r = respond(&HeaderMap::new(), &answer("a", 10_300), 10_900);
        assert!(r.headers().get(header::LAST_MODIFIED).is_none());
        let r = respond(&HeaderMap::new(), &answer("a", 10_300), 11_000);
        assert_eq!(
            r.headers()[header::LAST_MODIFIED],
            httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(10))
        );
    }

    #[test]
    fn if_modified_since_gets_304_only_when_nothing_changed_after() {
        let since = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(10));
        let request = headers(header::IF_MODIFIED_SINCE, &since);
        let r = respond(&request, &answer("a", 10_300), 20_000);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = respond(&request, &answer("a", 11_000), 20_000);
        assert_eq!(r.status(), StatusCode::OK);
    }
}
