//! A REST API (v1) payload through `lambda_http` into the reads router. REST APIs have named
//! stages, which `lambda_http` would put in front of the path unless
//! `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set, as `template.yaml` sets it for every function.

use axum::http::StatusCode;
use serde_json::json;
use waiting_room_core::http::reads_router;
use waiting_room_tests::*;

#[test]
fn a_rest_api_payload_reaches_the_reads_router() {
    // SAFETY: set before any other thread of this test binary exists (one test, no runtime yet).
    unsafe { std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true") };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (local, _) = room().await;
        let (status, body) = through_lambda_http(
            &reads_router(local.room.clone()),
            include_str!("fixtures/apigw-rest-v1-serving-num.json"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"serving_counter": 0}));
    });
}
