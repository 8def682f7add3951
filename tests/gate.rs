//! The gate in front of a real application over TCP: nothing reaches the application without
//! a valid pass for the gate's event; with one, requests reach it unchanged.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use serde_json::Value;
use waiting_room_core::adapters::ManualClock;
use waiting_room_core::domain::Strategy;
use waiting_room_core::gate::{self, Gate, GateSettings, PASS_CACHE_TTL, REQUEST_ID_HEADER};
use waiting_room_core::server::LocalRoom;
use waiting_room_tests::*;

const ROOM_PAGE: &str = "http://room.test/waiting-room.html";

/// What the application received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path_and_query: String,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

/// A small application on 127.0.0.1 that records every request and answers `201` with
/// a header and a body of its own.
async fn application() -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().fallback(move |request: Request| {
        let record = record.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.expect("request body").to_bytes();
            let size = body.len();
            record.lock().unwrap().push(Seen {
                method: parts.method.clone(),
                path_and_query: parts.uri.path_and_query().unwrap().to_string(),
                headers: parts.headers,
                body,
            });
            (
                StatusCode::CREATED,
                [("x-app", "shop")],
                format!("{} {} {size}", parts.method, parts.uri),
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// A room with events `demo` (the gate's) and `other`, the application, and the gate in front
/// of it on 127.0.0.1.
struct Site {
    local: LocalRoom,
    clock: Arc<ManualClock>,
    api: Router,
    gate: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    http: reqwest::Client,
}

async fn site_with(upstream: Option<String>) -> Site {
    let (local, clock) = room().await;
    create_event(&local, "other", Strategy::Manual).await;
    let (app, seen) = application().await;
    let upstream = upstream.unwrap_or_else(|| format!("http://{app}"));
    let mut settings = GateSettings::new(event("demo"), upstream, ROOM_PAGE);
    settings.skip = vec!["/static/".into(), "/healthz".into()];
    let gate = Gate::new(local.room.clone(), settings).expect("gate");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gate_addr = listener.local_addr().unwrap();
    let app = gate::router(Arc::new(gate)).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Site {
        api: local.router(),
        local,
        clock,
        gate: format!("http://{gate_addr}"),
        seen,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

async fn site() -> Site {
    site_with(None).await
}

impl Site {
    /// A visitor of `event_id` let in by the operator: its request id and access token.
    async fn admitted(&self, event_id: &str) -> (String, String) {
        let request_id = enqueue(&self.api, event_id).await;
        drain(&self.local).await;
        assert_eq!(
            increment(&self.api, event_id, 1).await.status,
            StatusCode::OK
        );
        let tokens = generate_token(&self.api, event_id, &request_id).await;
        assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
        let token = tokens.body["access_token"].as_str().unwrap().to_owned();
        (request_id.to_string(), token)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gate)
    }

    fn page(&self, path: &str, pass: Option<&str>) -> reqwest::RequestBuilder {
        let request = self
            .http
            .get(self.url(path))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
        match pass {
            Some(pass) => request.header("cookie", format!("wr_pass={pass}")),
            None => request,
        }
    }

    fn requests_seen(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn last_seen(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request")
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// The visitor page of `demo`, told to send the visitor back to `back`.
fn room_for(back: &str) -> String {
    let back: String = url_encode(back);
    format!("{ROOM_PAGE}?event_id=demo&return={back}")
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn without_a_pass_pages_go_to_the_room_and_calls_get_503() {
    let site = site().await;
    let page = site.page("/shop/item?x=1", None).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&page, "location"), room_for("/shop/item?x=1"));
    assert_eq!(header(&page, "cache-control"), "no-store");

    for request in [
        site.http
            .get(site.url("/api/cart?y=2"))
            .header("accept", "application/json"),
        site.http.post(site.url("/api/cart")).body("{}"),
        // A page asked for with another method is not a navigation to redirect.
        site.http
            .delete(site.url("/shop/item"))
            .header("accept", "text/html"),
    ] {
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&answer, "retry-after"), "30");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "pass_required");
        assert_eq!(body["reason"], "token_missing");
        assert!(
            body["waiting_room"]
                .as_str()
                .unwrap()
                .starts_with(ROOM_PAGE)
        );
    }
    assert_eq!(site.requests_seen(), 0, "the application saw a request");
}

#[tokio::test]
async fn the_hand_over_sets_the_pass_and_returns_to_the_address_asked_for() {
    let site = site().await;
    let (request_id, token) = site.admitted("demo").await;
    let handoff = site
        .page(
            &format!(
                "/__wr/pass?wr_token={token}&return={}",
                url_encode("/shop/item?x=1")
            ),
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(handoff.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&handoff, "location"), "/shop/item?x=1");
    assert_eq!(header(&handoff, "referrer-policy"), "no-referrer");
    let cookie = header(&handoff, "set-cookie");
    assert!(cookie.starts_with(&format!("wr_pass={token};")), "{cookie}");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(part), "{part} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http gate: {cookie}");
    // The cookie lives as long as the token (the room's default lifetime is an hour).
    let max_age: u64 = cookie
        .split("Max-Age=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&max_age), "Max-Age={max_age}");
    assert_eq!(
        site.requests_seen(),
        0,
        "the hand-over reached the application"
    );

    let page = site
        .page("/shop/item?x=1", None)
        .header("cookie", format!("theme=dark; wr_pass={token}"))
        .header(REQUEST_ID_HEADER, "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::CREATED);
    let seen = site.last_seen();
    assert_eq!(seen.path_and_query, "/shop/item?x=1");
    assert_eq!(seen.headers[REQUEST_ID_HEADER], request_id.as_str());
    assert_eq!(
        seen.headers["cookie"], "theme=dark",
        "the pass was passed on"
    );
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(
        seen.headers["x-forwarded-host"],
        site.gate.trim_start_matches("http://")
    );

    // Behind a TLS proxy the pass cookie is Secure.
    let behind_tls = site
        .page(&format!("/__wr/pass?wr_token={token}&return=/"), None)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(header(&behind_tls, "set-cookie").contains("Secure"));
}

#[tokio::test]
async fn methods_queries_and_bodies_pass_unchanged_both_ways() {
    let site = site().await;
    let (_, token) = site.admitted("demo").await;
    // A body larger than any the room's own API accepts: it is streamed, not buffered.
    let upload = vec![b'z'; 3 * 1024 * 1024];
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let answer = site
            .http
            .request(method.clone(), site.url("/api/cart?y=2&z=a%20b"))
            .header("cookie", format!("wr_pass={token}"))
            .header("content-type", "application/octet-stream")
            .header("x-custom", "kept")
            .body(upload.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED, "{method}");
        assert_eq!(header(&answer, "x-app"), "shop");
        assert_eq!(
            answer.text().await.unwrap(),
            format!("{method} /api/cart?y=2&z=a%20b {}", upload.len())
        );
        let seen = site.last_seen();
        assert_eq!(seen.method, method);
        assert_eq!(seen.path_and_query, "/api/cart?y=2&z=a%20b");
        assert_eq!(seen.body.len(), upload.len());
        assert!(seen.body.iter().all(|b| *b == b'z'));
        assert_eq!(seen.headers["x-custom"], "kept");
        assert_eq!(seen.headers["content-type"], "application/octet-stream");
    }
}

#[tokio::test]
async fn tampered_foreign_and_expired_passes_are_turned_back() {
    let site = site().await;
    let (_, token) = site.admitted("demo").await;
    let (_, other_event) = site.admitted("other").await;
    // The same claims, one character of the signature changed.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    for (pass, reason) in [
        (tampered.as_str(), "token_bad_signature"),
        (other_event.as_str(), "token_wrong_event"),
        ("not-a-token", "token_malformed"),
    ] {
        let page = site
            .page("/shop/item?x=1", Some(pass))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::SEE_OTHER, "{reason}");
        assert_eq!(header(&page, "location"), room_for("/shop/item?x=1"));
        assert!(
            header(&page, "set-cookie").contains("Max-Age=0"),
            "the refused pass is not cleared"
        );
        let call = site
            .http
            .get(site.url("/api/cart"))
            .header("cookie", format!("wr_pass={pass}"))
            .send()
            .await
            .unwrap();
        assert_eq!(call.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = call.json().await.unwrap();
        assert_eq!(body["reason"], reason);
        // Nor does the hand-over take them.
        let handoff = site
            .page(&format!("/__wr/pass?wr_token={pass}&return=/shop"), None)
            .send()
            .await
            .unwrap();
        assert_eq!(handoff.status(), StatusCode::SEE_OTHER);
        assert_eq!(header(&handoff, "location"), room_for("/shop"));
        assert!(handoff.headers().get("set-cookie").is_none());
    }
    assert_eq!(site.requests_seen(), 0, "the application saw a request");

    // A pass that worked stops working when its time is up, cached or not.
    let page = site.page("/", Some(&token)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::CREATED);
    site.clock.advance_ms(3_700_000);
    let page = site.page("/", Some(&token)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(site.requests_seen(), 1);
}

#[tokio::test]
async fn a_pass_whose_session_the_application_ended_is_turned_back_within_seconds() {
    let site = site().await;
    let (request_id, token) = site.admitted("demo").await;
    let page = site.page("/shop", Some(&token)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::CREATED);

    let ended = end_session(&site.api, "demo", &request_id).await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    // Within the cache's time the checked pass still opens; once it is over, the session is
    // looked up again and the visitor turned back.
    site.clock
        .advance_ms(PASS_CACHE_TTL.as_millis() as i64 - 500);
    let page = site.page("/shop", Some(&token)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::CREATED);
    site.clock.advance_ms(500);
    let page = site.page("/shop", Some(&token)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&page, "location"), room_for("/shop"));
    let call = site
        .http
        .get(site.url("/api/cart"))
        .header("cookie", format!("wr_pass={token}"))
        .send()
        .await
        .unwrap();
    let body: Value = call.json().await.unwrap();
    assert_eq!(body["reason"], "token_revoked");
    assert_eq!(
        site.requests_seen(),
        2,
        "requests that reached the application"
    );
}

#[tokio::test]
async fn skipped_paths_reach_the_application_without_a_pass() {
    let site = site().await;
    for path in ["/static/app.css", "/healthz"] {
        let answer = site
            .http
            .get(site.url(path))
            .header(REQUEST_ID_HEADER, "forged")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED, "{path}");
        let seen = site.last_seen();
        assert_eq!(seen.path_and_query, path);
        assert!(
            seen.headers.get(REQUEST_ID_HEADER).is_none(),
            "a client's own request id reached the application"
        );
    }
    let gated = site.page("/statics", None).send().await.unwrap();
    assert_eq!(gated.status(), StatusCode::SEE_OTHER);
    assert_eq!(site.requests_seen(), 2);
}

#[tokio::test]
async fn the_hand_over_sends_visitors_nowhere_but_the_gate() {
    let site = site().await;
    let (_, token) = site.admitted("demo").await;
    for evil in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "/__wr/pass?wr_token=x",
    ] {
        let handoff = site
            .page(
                &format!("/__wr/pass?wr_token={token}&return={}", url_encode(evil)),
                None,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(handoff.status(), StatusCode::SEE_OTHER, "{evil:?}");
        assert_eq!(header(&handoff, "location"), "/", "{evil:?}");
    }
    assert_eq!(site.requests_seen(), 0);
}

#[tokio::test]
async fn an_unreachable_application_is_a_502() {
    // A port nothing listens on any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let site = site_with(Some(upstream)).await;
    let (_, token) = site.admitted("demo").await;
    let answer = site.page("/shop", Some(&token)).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["code"], "upstream_unreachable");
}

#[tokio::test]
async fn the_guarded_event_sends_admitted_visitors_to_the_gate() {
    let site = site().await;
    gate::point_event_at(&site.local.room, &event("demo"), "http://gate.test/")
        .await
        .unwrap();
    let state = call(
        &site.api,
        Method::GET,
        "/event_state?event_id=demo",
        None,
        &[],
    )
    .await;
    assert_eq!(state.body["target_url"], "http://gate.test/__wr/pass");
}
