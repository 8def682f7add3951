//! What the room reports about itself: Prometheus text at `/metrics` on the local server, the
//! same counters as CloudWatch EMF on Lambda. (One test in this binary: the counters are
//! process-wide, so the figures below are exact.)

use axum::http::Method;
use waiting_room_core::metrics;
use waiting_room_tests::*;

#[tokio::test]
async fn the_room_counts_what_it_does_for_prometheus_and_cloudwatch() {
    let (local, _) = room().await;
    let app = local.router();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(enqueue(&app, "demo").await);
    }
    // Every message delivered twice.
    let batch = buffer(&local).next_batch(10).await;
    let doubled: Vec<_> = batch.iter().chain(batch.iter()).cloned().collect();
    local.room.assign_batch(&doubled).await;
    increment(&app, "demo", 3).await;
    let token = generate_token(&app, "demo", &ids[0]).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &app,
        Method::GET,
        "/authorize?event_id=demo",
        None,
        &[("authorization", &token)],
    )
    .await;
    call(
        &app,
        Method::GET,
        "/authorize?event_id=demo",
        None,
        &[("authorization", "x.y.z")],
    )
    .await;
    call(&app, Method::GET, "/serving_num?event_id=nope", None, &[]).await;

    let text = scrape_metrics(&app).await;
    for line in [
        "waiting_room_enqueued_total 3",
        "waiting_room_positions_assigned_total 3",
        "waiting_room_redeliveries_total 3",
        "waiting_room_tokens_issued_total 1",
        "waiting_room_tokens_validated_total 1",
        "waiting_room_tokens_rejected_total{reason=\"token_malformed\"} 1",
        "waiting_room_errors_total{code=\"unknown_event\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains("# TYPE waiting_room_enqueued_total counter"));

    let emf = metrics::emf_flush("WaitingRoom", "test", 0).expect("changes to report");
    assert_eq!(emf["enqueued_total"], 3);
    assert_eq!(emf["tokens_rejected_total_reason_token_malformed"], 1);
    assert_eq!(emf["function"], "test");
}
