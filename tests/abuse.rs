//! Bots against the room: addresses told apart behind proxies and never taken from a header a
//! visitor sets; the join challenge that makes every place cost a proof of work, good once.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use waiting_room_core::adapters::SystemClock;
use waiting_room_core::challenge;
use waiting_room_core::domain::{ChallengeMode, ChallengeSettings, EventId};
use waiting_room_core::http::TrustedProxies;
use waiting_room_core::listener::{Listener, ListenerSettings};
use waiting_room_core::ports::Clock;
use waiting_room_core::server::{LocalRoom, LocalSettings};
use waiting_room_core::token::{KeyAlgorithm, SigningKey};
use waiting_room_core::{Error, WaitingRoom};
use waiting_room_tests::*;

/// A room with default settings but for `proxies`, served on 127.0.0.1; stop it by dropping
/// the sender.
async fn served(proxies: &[&str]) -> (String, LocalRoom, tokio::sync::oneshot::Sender<()>) {
    let mut settings = LocalSettings::new(
        ADMIN_KEY.into(),
        SigningKey::generate(KeyAlgorithm::EdDSA).unwrap(),
    );
    settings.events = vec![event("demo")];
    settings.trusted_proxies = TrustedProxies::parse(proxies).unwrap();
    let local = LocalRoom::build(settings).await.unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", tcp.local_addr().unwrap());
    let listener = Listener::from_tcp(tcp, ListenerSettings::default()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(local.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    (base, local, stop)
}

/// Statuses of 50 joins sent at once, the n-th carrying `forwarded(n)` as X-Forwarded-For
/// (none when empty).
async fn fifty_joins(base: &str, forwarded: impl Fn(usize) -> String) -> Vec<u16> {
    let http = reqwest::Client::new();
    let joins: Vec<_> = (0..50)
        .map(|n| {
            let mut join = http
                .post(format!("{base}/assign_queue_num"))
                .json(&json!({"event_id": "demo"}));
            let header = forwarded(n);
            if !header.is_empty() {
                join = join.header("x-forwarded-for", header);
            }
            tokio::spawn(join.send())
        })
        .collect();
    let mut statuses = Vec::new();
    for join in joins {
        let answer = join.await.expect("task").expect("an answer");
        statuses.push(answer.status().as_u16());
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_join_budget() {
    let (base, _local, _stop) = served(&["127.0.0.1/32"]).await;
    let distinct = fifty_joins(&base, |n| format!("1.2.3.4, 203.0.113.{n}")).await;
    assert_eq!(count(&distinct, 202), 50, "{distinct:?}");
    let one = fifty_joins(&base, |_| "198.51.100.7".into()).await;
    assert!(
        count(&one, 429) > 0,
        "one forwarded address is limited: {one:?}"
    );
    assert!(count(&one, 202) < 50, "{one:?}");
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_header_changes_nothing() {
    let (base, _local, _stop) = served(&[]).await;
    let forged = fifty_joins(&base, |n| format!("203.0.113.{n}")).await;
    let accepted = count(&forged, 202);
    assert!(count(&forged, 429) > 0, "the peer's budget: {forged:?}");
    // The same peer without any header is as limited: the header bought nothing.
    let (base, _local, _stop) = served(&[]).await;
    let plain = fifty_joins(&base, |_| String::new()).await;
    assert!(
        count(&plain, 202).abs_diff(accepted) <= 2,
        "with forged headers {accepted} accepted, without {}",
        count(&plain, 202)
    );
}

/// The AWS solution's load client, as it behaves: 200 users on one address, each joining,
/// asking for its place, watching the serving counter and claiming its token, one request a
/// second, each step tried again a second later when refused. Against a room with default
/// settings, every user gets its token.
#[tokio::test]
async fn two_hundred_users_on_one_address_all_get_their_tokens_with_default_limits() {
    const USERS: usize = 200;
    let (base, _local, _stop) = served(&[]).await;
    let http = reqwest::Client::new();
    let pause = Duration::from_secs(1);
    let user = |http: reqwest::Client, base: String| async move {
        let mut refused = 0u32;
        let request_id = loop {
            let r = http
                .post(format!("{base}/assign_queue_num"))
                .json(&json!({"event_id": "demo"}))
                .send()
                .await
                .expect("answer");
            if r.status() == 202 {
                let body: Value = r.json().await.expect("json");
                break body["api_request_id"].as_str().expect("id").to_owned();
            }
            refused += 1;
            tokio::time::sleep(pause).await;
        };
        let place = loop {
            tokio::time::sleep(pause).await;
            let r = http
                .get(format!(
                    "{base}/queue_num?event_id=demo&request_id={request_id}"
                ))
                .send()
                .await
                .expect("answer");
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            match body["queue_number"].as_u64() {
                Some(place) if status == 200 => break place,
                _ => refused += u32::from(status == 429),
            }
        };
        loop {
            tokio::time::sleep(pause).await;
            let r = http
                .get(format!("{base}/serving_num?event_id=demo"))
                .send()
                .await
                .expect("answer");
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if body["serving_counter"].as_u64().is_some_and(|s| s >= place) {
                break;
            }
        }
        loop {
            let r = http
                .post(format!("{base}/generate_token"))
                .json(&json!({"event_id": "demo", "request_id": request_id}))
                .send()
                .await
                .expect("answer");
            if r.status() == 200 {
                let body: Value = r.json().await.expect("json");
                assert!(body["access_token"].is_string());
                return refused;
            }
            refused += 1;
            tokio::time::sleep(pause).await;
        }
    };
    let users: Vec<_> = (0..USERS)
        .map(|_| tokio::spawn(user(http.clone(), base.clone())))
        .collect();
    // The operator lets everyone in once they have joined.
    let admin = http.clone();
    let operator_base = base.clone();
    let operator = tokio::spawn(async move {
        for _ in 0..120 {
            let metrics: Value = admin
                .get(format!("{operator_base}/admin/events/demo/metrics"))
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .expect("answer")
                .json()
                .await
                .expect("json");
            if metrics["counters"]["queue_counter"].as_u64() == Some(USERS as u64) {
                let r = admin
                    .post(format!("{operator_base}/increment_serving_counter"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"event_id": "demo", "increment_by": USERS}))
                    .send()
                    .await
                    .expect("answer");
                assert_eq!(r.status(), 200);
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("not everyone joined within a minute");
    });
    let finished = tokio::time::timeout(Duration::from_secs(120), async {
        let mut refused = 0;
        for user in users {
            refused += user.await.expect("user");
        }
        refused
    })
    .await
    .expect("every user has its token within two minutes");
    operator.await.expect("operator");
    // (How many requests met the limit on the way, for the curious: `--nocapture`.)
    println!("{USERS} users, {finished} requests refused on the way");
}

// ---- the join challenge ------------------------------------------------------------------

/// `demo` with the challenge on at `difficulty` bits.
async fn challenged(local: &LocalRoom, difficulty: u8) {
    set_challenge(
        local,
        ChallengeSettings {
            mode: ChallengeMode::On,
            difficulty,
            ..Default::default()
        },
    )
    .await;
}

/// `demo`'s challenge set through the admin API, as the control panel sets it.
async fn set_challenge(local: &LocalRoom, settings: ChallengeSettings) {
    let router = local.router();
    let mut config = call(&router, Method::GET, "/admin/events/demo", None, &admin())
        .await
        .body;
    config["challenge"] = serde_json::to_value(settings).unwrap();
    let put = call(
        &router,
        Method::PUT,
        "/admin/events/demo",
        Some(config),
        &admin(),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
}

async fn join_with(router: &axum::Router, body: Value) -> Answer {
    call(router, Method::POST, "/assign_queue_num", Some(body), &[]).await
}

async fn metrics(router: &axum::Router) -> Value {
    call(
        router,
        Method::GET,
        "/admin/events/demo/metrics",
        None,
        &admin(),
    )
    .await
    .body
}

#[tokio::test]
async fn with_the_challenge_on_a_join_without_a_solution_gets_no_place() {
    let (local, _) = room().await;
    challenged(&local, 8).await;
    let router = local.router();
    let refused = join_with(&router, json!({"event_id": "demo"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["code"], "challenge_required");
    let offered = &refused.body["challenge"];
    assert_eq!(offered["difficulty"], 8);
    assert_eq!(offered["algorithm"], "sha256-leading-zero-bits");
    assert!(offered["expires_at_ms"].as_i64().unwrap() > SystemClock.now_ms());
    // Half a proof, or a made-up one, buys nothing either.
    let half = join_with(
        &router,
        json!({"event_id": "demo", "challenge": offered["challenge"]}),
    )
    .await;
    assert_eq!(half.status, StatusCode::BAD_REQUEST);
    let made_up = join_with(
        &router,
        json!({"event_id": "demo", "challenge": "1.1.00.00", "solution": "1"}),
    )
    .await;
    assert_eq!(made_up.status, StatusCode::FORBIDDEN);
    assert_eq!(made_up.body["code"], "challenge_failed");
    assert!(
        made_up.body["challenge"]["challenge"].is_string(),
        "a fresh one to solve"
    );
    drain(&local).await;
    let m = metrics(&router).await;
    assert_eq!(m["counters"]["queue_counter"], 0, "no place given");
    assert_eq!(m["challenges"]["issued"], 2);
    assert_eq!(m["challenges"]["refused"], 1);
    assert_eq!(m["challenges"]["solved"], 0);
}

#[tokio::test]
async fn one_solution_replayed_a_hundred_times_gives_one_place() {
    let (local, _) = room().await;
    challenged(&local, 10).await;
    let router = local.router();
    let offered = join_with(&router, json!({"event_id": "demo"})).await.body["challenge"].clone();
    let text = offered["challenge"].as_str().unwrap();
    let solution = challenge::solve(text, 10);
    let proof = json!({"event_id": "demo", "challenge": text, "solution": solution});
    let first = join_with(&router, proof.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let id = first.body["api_request_id"].clone();
    // Replays while the first is still in the buffer, then after it was placed.
    for n in 0..100 {
        if n == 50 {
            drain(&local).await;
        }
        let again = join_with(&router, proof.clone()).await;
        assert_eq!(again.status, StatusCode::ACCEPTED);
        assert_eq!(again.body["api_request_id"], id, "replay {n}");
    }
    drain(&local).await;
    let m = metrics(&router).await;
    assert_eq!(m["counters"]["queue_counter"], 1, "one place");
    let place = call(
        &router,
        Method::GET,
        &format!(
            "/queue_num?event_id=demo&request_id={}",
            id.as_str().unwrap()
        ),
        None,
        &[],
    )
    .await;
    assert_eq!(place.body["queue_number"], 1);
}

#[tokio::test]
async fn an_expired_or_altered_challenge_is_refused_with_a_fresh_one() {
    let (local, clock) = room().await;
    challenged(&local, 6).await;
    let router = local.router();
    let offered = join_with(&router, json!({"event_id": "demo"})).await.body["challenge"].clone();
    let text = offered["challenge"].as_str().unwrap().to_owned();
    let solution = challenge::solve(&text, 6);
    // Asking for less work than was issued: the room's signature no longer matches.
    let easier = text.replacen(".6.", ".1.", 1);
    let altered = join_with(
        &router,
        json!({"event_id": "demo", "challenge": easier, "solution": challenge::solve(&easier, 1)}),
    )
    .await;
    assert_eq!(altered.body["code"], "challenge_failed");
    clock.advance_ms(challenge::CHALLENGE_TTL_MS);
    let late = join_with(
        &router,
        json!({"event_id": "demo", "challenge": text, "solution": solution}),
    )
    .await;
    assert_eq!(late.status, StatusCode::FORBIDDEN);
    assert_eq!(late.body["code"], "challenge_expired");
    let fresh = late.body["challenge"]["challenge"].as_str().unwrap();
    let accepted = join_with(
        &router,
        json!({"event_id": "demo", "challenge": fresh, "solution": challenge::solve(fresh, 6)}),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
}

/// The difficulty the room asks of `client`'s next join.
async fn asked(room: &WaitingRoom, client: &str) -> u8 {
    let address: IpAddr = client.parse().unwrap();
    match room
        .join(&EventId::parse("demo").unwrap(), Some(address), None)
        .await
    {
        Err(Error::Challenge(demand)) => demand.challenge.difficulty,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[tokio::test]
async fn difficulty_rises_with_joins_from_one_address_and_with_join_pressure() {
    let (local, clock) = room().await;
    challenged(&local, 8).await;
    let room = local.room.clone();
    assert_eq!(asked(&room, "192.0.2.1").await, 8);
    for _ in 0..40 {
        asked(&room, "192.0.2.1").await;
    }
    let busy = asked(&room, "192.0.2.1").await;
    assert!(busy >= 11, "one address joining 40 times: {busy} bits");
    assert!(
        asked(&room, "192.0.2.2").await < busy,
        "another address is not charged for it"
    );
    // The address's count fades: a few minutes later it is back to the base.
    clock.advance_ms(600_000);
    assert_eq!(asked(&room, "192.0.2.1").await, 8);
    // Joins from many addresses at once: the pressure raises everyone's.
    for n in 0..2_000u32 {
        asked(
            &room,
            &IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n)).to_string(),
        )
        .await;
    }
    assert!(asked(&room, "192.0.2.9").await > 8, "under pressure");
}

#[tokio::test]
async fn adaptive_mode_asks_only_past_its_threshold_or_of_a_busy_address() {
    let (local, _) = room().await;
    set_challenge(
        &local,
        ChallengeSettings {
            mode: ChallengeMode::Adaptive,
            difficulty: 8,
            pressure_joins_per_sec: 1_000,
        },
    )
    .await;
    let room = local.room.clone();
    let demo = EventId::parse("demo").unwrap();
    let one: IpAddr = "192.0.2.1".parse().unwrap();
    let mut free = 0;
    while room.join(&demo, Some(one), None).await.is_ok() {
        free += 1;
        assert!(free < 100, "never asked");
    }
    assert_eq!(free, 10, "an address joins freely up to its share");
    let other: IpAddr = "192.0.2.2".parse().unwrap();
    assert!(
        room.join(&demo, Some(other), None).await.is_ok(),
        "others still join freely"
    );
}
