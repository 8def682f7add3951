//! Cross-origin access to every route: pages on another origin (the CDN's, an operator's site)
//! may call the API and read the validators and clocks it answers with.
//!
//! Any origin is allowed, so the headers of an ordinary answer never depend on the request:
//! they are built once and added to every answer, which keeps the polled reads as cheap as a
//! bare server (tower-http's layer builds its `Vary` and a header map on every request).
//! Preflights (`OPTIONS`) are answered by tower-http's layer, from the same lists.

use std::convert::Infallible;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use futures_util::FutureExt;
use futures_util::future::{Either, Map};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{Any, CorsLayer};

/// Methods a preflight allows.
const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PUT, Method::OPTIONS];

/// Request headers a preflight allows: the admin key, JSON bodies, and revalidation.
const REQUEST_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
];

/// Answer headers a page may read. Date and Age: the visitor page sets its countdowns by the
/// room's clock.
const EXPOSED: [HeaderName; 5] = [
    header::ETAG,
    header::LAST_MODIFIED,
    header::RETRY_AFTER,
    header::DATE,
    header::AGE,
];

/// What a preflight's answer depends on (the allowed origin does not: it is `*`), for caches.
const VARY: [HeaderName; 3] = [
    header::ORIGIN,
    header::ACCESS_CONTROL_REQUEST_METHOD,
    header::ACCESS_CONTROL_REQUEST_HEADERS,
];

/// The headers of every answer that is not a preflight, built once.
struct AnswerHeaders {
    vary: HeaderValue,
    allow_origin: HeaderValue,
    expose: HeaderValue,
}

static ANSWER: LazyLock<AnswerHeaders> = LazyLock::new(|| AnswerHeaders {
    vary: joined(&VARY, ", "),
    allow_origin: HeaderValue::from_static("*"),
    expose: joined(&EXPOSED, ","),
});

fn joined(names: &[HeaderName], separator: &str) -> HeaderValue {
    let text = names
        .iter()
        .map(HeaderName::as_str)
        .collect::<Vec<_>>()
        .join(separator);
    // Header names joined by ", " are always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn preflight_layer() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(METHODS)
        .allow_headers(REQUEST_HEADERS)
        .expose_headers(EXPOSED)
        .vary(VARY)
}

/// Built once: axum clones a route's services for every request, and this layer holds lists.
static PREFLIGHT: LazyLock<CorsLayer> = LazyLock::new(preflight_layer);

/// The layer: [`CorsService`] around each route.
#[derive(Clone, Copy, Default)]
pub struct Cors;

impl<S> Layer<S> for Cors {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> CorsService<S> {
        CorsService { inner }
    }
}

/// Answers preflights through tower-http, and adds the fixed headers to every other answer.
#[derive(Clone)]
pub struct CorsService<S> {
    inner: S,
}

fn add_headers(answer: Result<Response, Infallible>) -> Result<Response, Infallible> {
    answer.map(|mut response| {
        let headers = response.headers_mut();
        let fixed = &*ANSWER;
        // A Vary the route set itself stays: this one is added to it.
        headers.append(header::VARY, fixed.vary.clone());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            fixed.allow_origin.clone(),
        );
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, fixed.expose.clone());
        response
    })
}

type Answered = fn(Result<Response, Infallible>) -> Result<Response, Infallible>;

impl<S> Service<Request> for CorsService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Map<S::Future, Answered>, Oneshot<tower_http::cors::Cors<S>, Request>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() == Method::OPTIONS {
            Either::Right(PREFLIGHT.layer(self.inner.clone()).oneshot(request))
        } else {
            Either::Left(self.inner.call(request).map(add_headers as Answered))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    fn routes() -> Router {
        Router::new().route(
            "/read",
            get(|| async { ([(header::VARY, "accept-encoding")], "read") }),
        )
    }

    async fn headers_of(router: Router, request: Request) -> Vec<(String, String)> {
        let response = router.oneshot(request).await.unwrap();
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        headers
    }

    fn request(method: Method) -> Request {
        Request::builder()
            .method(method)
            .uri("/read")
            .header(header::ORIGIN, "https://shop.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "if-none-match")
            .body(axum::body::Body::empty())
            .unwrap()
    }

    /// The fixed headers are exactly what tower-http's layer, set up from the same lists, adds
    /// to answers and preflights.
    #[tokio::test]
    async fn answers_and_preflights_carry_what_tower_http_would_send() {
        for method in [Method::GET, Method::OPTIONS, Method::POST] {
            let ours = headers_of(routes().layer(Cors), request(method.clone())).await;
            let reference =
                headers_of(routes().layer(preflight_layer()), request(method.clone())).await;
            assert_eq!(ours, reference, "{method}");
        }
        let get = headers_of(routes().layer(Cors), request(Method::GET)).await;
        assert!(get.contains(&("access-control-allow-origin".into(), "*".into())));
        assert!(get.contains(&(
            "access-control-expose-headers".into(),
            "etag,last-modified,retry-after,date,age".into()
        )));
        assert!(get.contains(&("vary".into(), "accept-encoding".into())));
        let preflight = headers_of(routes().layer(Cors), request(Method::OPTIONS)).await;
        assert!(preflight.contains(&(
            "access-control-allow-headers".into(),
            "authorization,content-type,if-none-match,if-modified-since".into()
        )));
    }
}
