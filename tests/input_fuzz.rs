//! Random requests at every route (methods, query strings, headers, bodies of any shape and
//! size): input alone never causes a 5xx or a panic, and every 4xx carries a JSON error body.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;
use waiting_room_tests::*;

const ROUTES: &[&str] = &[
    "/assign_queue_num",
    "/redeem_code",
    "/queue_num",
    "/serving_num",
    "/waiting_num",
    "/queue_pos_expiry",
    "/generate_token",
    "/status",
    "/event_info",
    "/event_state",
    "/public_key",
    "/.well-known/jwks.json",
    "/authorize",
    "/increment_serving_counter",
    "/num_active_tokens",
    "/expired_tokens",
    "/update_session",
    "/reset_initial_state",
    "/admin/events",
    "/admin/events/demo",
    "/admin/events/demo/pause",
    "/admin/events/demo/metrics",
    "/admin/events/demo/audit",
    "/admin/events/demo/codes",
    "/admin/events/%2e%2e/metrics",
    "/nowhere",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("demo".to_owned()),
        Just("01a2095f-2397-7335-8e76-4087c5d1a099".to_owned()),
        Just(String::new()),
        "[a-z0-9_-]{0,70}",
        "\\PC{0,40}",
        Just("%00%ff%zz".to_owned()),
        (0usize..20_000).prop_map(|n| "x".repeat(n)),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("event_id"),
                Just("request_id"),
                Just("after"),
                Just("limit"),
                Just("x")
            ],
            text(),
        ),
        0..4,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={}", v.replace(['&', '#', ' '], "%20")))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..300),
        (text(), text(), any::<i64>()).prop_map(|(e, r, n)| {
            serde_json::json!({"event_id": e, "request_id": r, "increment_by": n, "status": n, "code": e})
                .to_string()
                .into_bytes()
        }),
        Just(b"{\"event_id\":\"demo\"}".to_vec()),
        Just(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec()),
        (0usize..40_000).prop_map(|n| vec![b'{'; n]),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Bearer test-admin-key".to_owned()),
        Just("Bearer ".to_owned()),
        "[ -~]{0,60}",
        Just("application/json".to_owned()),
        Just("text/plain".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn input_alone_never_causes_a_server_error(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
        route in prop::sample::select(ROUTES.to_vec()),
        query in query(),
        body in body(),
        content_type in header_value(),
        authorization in prop::option::of(header_value()),
        if_none_match in prop::option::of(header_value()),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let (local, _) = room().await;
            let app = local.router();
            let uri = if query.is_empty() { route.to_owned() } else { format!("{route}?{query}") };
            let mut request = Request::builder().method(method).uri(&uri).header("content-type", content_type);
            if let Some(auth) = &authorization {
                request = request.header("authorization", auth.as_str());
            }
            if let Some(tag) = &if_none_match {
                request = request.header("if-none-match", tag.as_str());
            }
            // Some generated URIs are not URIs at all: the HTTP layer refuses those before us.
            let Ok(request) = request.body(Body::from(body)) else { return Ok(()) };
            let response = app.oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            prop_assert!(!status.is_server_error(), "{method} {uri} -> {status}: {}", String::from_utf8_lossy(&bytes));
            if status.is_client_error() && method != "HEAD" {
                let json: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|_| TestCaseError::fail(format!("{method} {uri} -> {status}: non-JSON error body")))?;
                prop_assert!(json["code"].is_string() && json["error"].is_string(), "{method} {uri}: {json}");
            }
            Ok(())
        })?;
    }
}
