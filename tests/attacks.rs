//! What an attacker tries against the room, each refused: operator fields at their extremes,
//! request ids guessed from their neighbours, the process metrics read without the admin key.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use waiting_room_core::domain::RequestId;
use waiting_room_tests::*;

/// Audit entries of `demo`, newest first.
async fn audit(app: &axum::Router) -> Vec<Value> {
    let answer = call(
        app,
        Method::GET,
        "/admin/events/demo/audit?limit=1000",
        None,
        &admin(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.body.as_array().expect("a list").clone()
}

async fn config(app: &axum::Router, id: &str) -> Value {
    call(
        app,
        Method::GET,
        &format!("/admin/events/{id}"),
        None,
        &admin(),
    )
    .await
    .body
}

/// `demo`'s config with `field` (a JSON pointer) set to `value`, as a PUT body.
fn changed(base: &Value, pointer: &str, value: Value) -> Value {
    let mut body = base.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let slot = if parent.is_empty() {
        &mut body
    } else {
        body.pointer_mut(parent).expect("parent field")
    };
    slot[key] = value;
    body
}

#[tokio::test]
async fn every_admin_field_at_its_extremes_is_refused_or_applied_with_its_audit_entry() {
    let (local, _) = room().await;
    let app = local.router();
    let base = config(&app, "demo").await;
    let far = [
        json!(i64::MIN),
        json!(-1),
        json!(0),
        json!(253_402_300_800_000_i64), // year 10000
        json!(576_999_999_999_000_i64),
        json!(i64::MAX),
        json!(u64::MAX),
    ];
    let huge = [json!(0), json!(u64::MAX), json!(i64::MAX), json!(-1)];

    // (method, path, body) of every change, each meant to be refused.
    let mut refused: Vec<(Method, String, Value)> = Vec::new();
    for at in &far {
        for field in ["prequeue_at_ms", "start_at_ms", "end_at_ms"] {
            let mut schedule =
                json!({"prequeue_at_ms": null, "start_at_ms": null, "end_at_ms": null});
            schedule[field] = at.clone();
            if field == "prequeue_at_ms" {
                schedule["start_at_ms"] = at.clone();
            }
            refused.push((
                Method::POST,
                "/admin/events".into(),
                json!({"event_id": "far", "schedule": schedule}),
            ));
            refused.push((
                Method::PUT,
                "/admin/events/demo".into(),
                changed(&base, "/schedule", schedule),
            ));
        }
    }
    for n in &huge {
        for strategy in [
            json!({"type": "MaxSize", "max_active": n}),
            json!({"type": "Periodic", "increment_by": n, "interval_secs": 5}),
            json!({"type": "Periodic", "increment_by": 5, "interval_secs": n}),
        ] {
            refused.push((
                Method::PUT,
                "/admin/events/demo".into(),
                changed(&base, "/strategy", strategy),
            ));
        }
        for field in [
            "token_ttl_secs",
            "position_expiry_secs",
            "rate_limit_per_min",
        ] {
            refused.push((
                Method::PUT,
                "/admin/events/demo".into(),
                changed(&base, &format!("/{field}"), n.clone()),
            ));
        }
        refused.push((
            Method::POST,
            "/admin/events/demo/codes".into(),
            json!({"count": 1, "uses": n}),
        ));
    }
    refused.extend([
        (
            Method::PUT,
            "/admin/events/demo".into(),
            changed(&base, "/name", json!("x".repeat(10_000))),
        ),
        (
            Method::PUT,
            "/admin/events/demo".into(),
            changed(
                &base,
                "/target_url",
                json!(format!("https://{}", "a".repeat(3_000))),
            ),
        ),
        (
            Method::POST,
            "/increment_serving_counter".into(),
            json!({"event_id": "demo", "increment_by": u64::MAX}),
        ),
        (
            Method::POST,
            "/increment_serving_counter".into(),
            json!({"event_id": "demo", "increment_by": -1}),
        ),
        (
            Method::POST,
            "/update_session".into(),
            json!({"event_id": "demo", "request_id": RequestId::new(0, 0), "status": i64::MAX}),
        ),
        // Billions of codes asked at once: refused before one is made.
        (
            Method::POST,
            "/admin/events/demo/codes".into(),
            json!({"count": u32::MAX}),
        ),
        (
            Method::POST,
            "/admin/events/demo/codes".into(),
            json!({"count": 1_001}),
        ),
    ]);

    let trail = audit(&app).await.len();
    for (method, path, body) in refused {
        let answer = call(&app, method.clone(), &path, Some(body.clone()), &admin()).await;
        assert!(
            answer.status.is_client_error(),
            "{method} {path} {body}: {} {}",
            answer.status,
            answer.body
        );
        assert!(
            answer.body["code"].is_string(),
            "a JSON error: {}",
            answer.body
        );
    }
    assert_eq!(
        config(&app, "demo").await,
        base,
        "nothing refused was applied"
    );
    assert_eq!(audit(&app).await.len(), trail, "and nothing was recorded");
    assert_eq!(
        call(&app, Method::GET, "/admin/events/far", None, &admin())
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // The largest values the room takes: applied, each with its entry in the trail.
    let last_ms = 7_258_118_399_999_i64;
    // (The counter first: the schedule below closes the event to it.)
    let accepted = [
        (
            Method::POST,
            "/increment_serving_counter".to_owned(),
            json!({"event_id": "demo", "increment_by": 1_000_000_000}),
        ),
        (
            Method::PUT,
            "/admin/events/demo".to_owned(),
            changed(
                &base,
                "/schedule",
                json!({"prequeue_at_ms": 946_684_800_000_i64, "start_at_ms": last_ms, "end_at_ms": last_ms}),
            ),
        ),
        (
            Method::PUT,
            "/admin/events/demo".to_owned(),
            changed(
                &base,
                "/strategy",
                json!({"type": "Periodic", "increment_by": 1_000_000_000, "interval_secs": 86_400}),
            ),
        ),
        (
            Method::PUT,
            "/admin/events/demo".to_owned(),
            changed(&base, "/rate_limit_per_min", json!(1_000_000_000)),
        ),
        (
            Method::PUT,
            "/admin/events/demo".to_owned(),
            changed(
                &base,
                "/strategy",
                json!({"type": "MaxSize", "max_active": 1_000_000_000}),
            ),
        ),
        (
            Method::POST,
            "/admin/events/demo/codes".to_owned(),
            json!({"count": 1_000, "uses": 1_000_000_000}),
        ),
    ];
    for (i, (method, path, body)) in accepted.into_iter().enumerate() {
        let answer = call(&app, method.clone(), &path, Some(body.clone()), &admin()).await;
        assert!(
            answer.status.is_success(),
            "{method} {path} {body}: {} {}",
            answer.status,
            answer.body
        );
        assert_eq!(
            audit(&app).await.len(),
            trail + i + 1,
            "{method} {path}: audited"
        );
    }
    // Reads with limits beyond any page are clamped, not refused.
    for path in [
        format!("/expired_tokens?event_id=demo&limit={}", u64::MAX),
        format!("/admin/events/demo/audit?limit={}", u64::MAX),
    ] {
        let answer = call(&app, Method::GET, &path, None, &admin()).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn a_name_with_line_breaks_and_terminal_escapes_stays_on_one_audit_line() {
    let (local, _) = room().await;
    let app = local.router();
    let name = "Sale\r\n2026-01-01T00:00:00Z INFO admin change actor=root\u{1b}[2J";
    let created = call(
        &app,
        Method::POST,
        "/admin/events",
        Some(json!({"event_id": "crlf", "name": name})),
        &admin(),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let trail = call(
        &app,
        Method::GET,
        "/admin/events/crlf/audit",
        None,
        &admin(),
    )
    .await;
    let detail = trail.body[0]["detail"].as_str().expect("detail");
    assert!(
        !detail.chars().any(char::is_control),
        "control characters in the trail: {detail:?}"
    );
    assert!(
        detail.contains(r"Sale\r\n2026-01-01T00:00:00Z INFO"),
        "{detail}"
    );
    assert!(detail.contains(r"\u{1b}[2J"), "{detail}");
    // The event keeps the name it was given; only the trail and the log escape it.
    assert_eq!(config(&app, "crlf").await["name"], name);
}

#[tokio::test]
async fn request_ids_of_one_millisecond_are_far_apart() {
    // The room's clock stands still: all 400 joins share one millisecond.
    let (local, _) = room().await;
    let app = local.router();
    let joins: Vec<_> = (0..400)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { enqueue(&app, "demo").await })
        })
        .collect();
    let mut by_ms: BTreeMap<i64, Vec<u128>> = BTreeMap::new();
    for join in joins {
        let id = join.await.expect("join");
        let text = id.to_string();
        // The low 80 bits: the last 20 hex digits.
        let low = u128::from_str_radix(&text[text.len() - 20..], 16).expect("hex");
        by_ms.entry(id.created_at_ms()).or_default().push(low);
    }
    assert!(
        by_ms.values().any(|ids| ids.len() > 1),
        "the test needs ids of one millisecond"
    );
    for (ms, mut ids) in by_ms {
        ids.sort_unstable();
        for pair in ids.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= 1 << 40,
                "ids of {ms} ms differ by {gap} (< 2^40) in their low 80 bits"
            );
        }
    }
}

#[tokio::test]
async fn the_process_metrics_take_the_admin_key() {
    let (local, _) = room().await;
    let app = local.router();
    let anonymous = call(&app, Method::GET, "/metrics", None, &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["code"], "admin_unauthorized");
    let wrong = call(
        &app,
        Method::GET,
        "/metrics",
        None,
        &[("authorization", "Bearer not-the-key")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let operator = scrape_metrics(&app).await;
    assert!(operator.contains("# TYPE"), "{operator}");
}
