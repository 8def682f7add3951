//! The visitor page and the control panel, embedded in the binary so the local server needs no
//! files beside it. The same files deploy to S3 behind the CDN.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
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
        "/assets/lang.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/assets/lang.js"),
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
        "/assets/i18n/panel-en.json",
        "application/json",
        include_str!("../web/assets/i18n/panel-en.json"),
    ),
    (
        "/assets/i18n/panel-ja.json",
        "application/json",
        include_str!("../web/assets/i18n/panel-ja.json"),
    ),
    (
        "/assets/solve.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/assets/solve.js"),
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
    // The page's words, one file per language (the room renders its own page from them too).
    for &(tag, body) in crate::i18n::LANGUAGES {
        router = router.route(
            &format!("/assets/i18n/{tag}.json"),
            get(move || async move { file("application/json", body) }),
        );
    }
    router
}

/// What the pages may load and who may frame them: their own scripts, styles and API, the
/// inline SVG icon, an operator's logo from any https address, no plug-ins, no framing (clickjacking of the panel's buttons), no referrer
/// (a visitor's URL carries their event). CloudFront sends the same headers with the pages
/// (`PageHeadersPolicy` in `template.yaml`; a test below keeps the two equal).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: https:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
pub const FRAME_OPTIONS: &str = "DENY";
pub const REFERRER_POLICY: &str = "no-referrer";

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    page_headers(headers);
    response
}

/// The pages' security headers (the files here, and the page the room renders without
/// JavaScript).
pub fn page_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static(FRAME_OPTIONS),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(REFERRER_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The template's policy for the pages, as CloudFront applies it: the lines of the
    /// `PageHeadersPolicy` resource, up to the next resource.
    fn page_headers_policy() -> String {
        let template = include_str!("../../template.yaml");
        let start = template
            .find("\n  PageHeadersPolicy:\n")
            .expect("template.yaml defines PageHeadersPolicy");
        template[start + 1..]
            .lines()
            .enumerate()
            .take_while(|(i, line)| *i == 0 || line.is_empty() || line.starts_with("   "))
            .map(|(_, line)| format!("{}\n", line.trim()))
            .collect()
    }

    #[test]
    fn pages_carry_the_headers_cloudfront_sets() {
        let policy = page_headers_policy();
        assert!(
            policy.contains(&format!(
                "ContentSecurityPolicy: \"{CONTENT_SECURITY_POLICY}\""
            )),
            "template CSP differs from the local server's:\n{policy}"
        );
        assert!(policy.contains(&format!("FrameOption: {FRAME_OPTIONS}")));
        assert!(policy.contains(&format!("ReferrerPolicy: {REFERRER_POLICY}")));
        assert!(policy.contains("ContentTypeOptions:"));
        let template = include_str!("../../template.yaml");
        assert!(
            template.contains("ResponseHeadersPolicyId: !Ref PageHeadersPolicy"),
            "the pages' behaviour uses the policy"
        );
    }

    #[tokio::test]
    async fn every_page_and_asset_is_served_with_them() {
        use tower::ServiceExt;
        for &(path, _, _) in FILES {
            let response = routes()
                .oneshot(
                    axum::http::Request::get(path)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let headers = response.headers();
            assert_eq!(
                headers[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY,
                "{path}"
            );
            assert_eq!(headers[header::X_FRAME_OPTIONS], FRAME_OPTIONS, "{path}");
            assert_eq!(headers[header::REFERRER_POLICY], REFERRER_POLICY, "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        }
    }
}
