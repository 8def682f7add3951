//! The pass for the gate on CloudFront, as the room issues it on claim: signed with a key the
//! pass-keys function publishes, for the claim's event and request, no longer than its
//! lifetime or the token's, fresh on every claim, and refused to an ended session.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use waiting_room_core::adapters::{ManualClock, SystemClock};
use waiting_room_core::domain::RequestId;
use waiting_room_core::gate::edge::{DayKey, EdgePasses, STORE_KEY_PREFIX, published};
use waiting_room_core::ports::Clock;
use waiting_room_core::server::{LocalRoom, LocalSettings};
use waiting_room_core::token::{KeyAlgorithm, KeyRing, SigningKey};
use waiting_room_tests::*;

const PASS_SECS: u64 = 300;

/// A room issuing edge passes, with the signing key's PEM (what the pass-keys function reads).
async fn room_with_passes() -> (LocalRoom, Arc<ManualClock>, String) {
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let key = SigningKey::generate(KeyAlgorithm::EdDSA).expect("key generation");
    let pem = key.private_pem().to_owned();
    let mut settings = LocalSettings::new(ADMIN_KEY.into(), key);
    settings.events = vec![event("demo")];
    settings.cache = no_cache();
    settings.clock = clock.clone();
    settings.edge_passes = Some(EdgePasses::new(Duration::from_secs(PASS_SECS)).unwrap());
    (LocalRoom::build(settings).await.expect("room"), clock, pem)
}

/// Checks `pass` as the CloudFront function does, with the keys the store would hold at
/// `now_secs`: the request id and expiry of a valid pass.
fn edge_check(pass: &str, pem: &str, event_id: &str, now_secs: i64) -> Option<(String, i64)> {
    let parts: Vec<&str> = pass.split('.').collect();
    let [version, kid, event, request, exp, _] = parts[..] else {
        return None;
    };
    let store = published(&KeyRing::from_secret(pem).unwrap(), now_secs);
    let key = store.get(&format!("{STORE_KEY_PREFIX}{kid}"))?;
    let exp: i64 = exp.parse().ok()?;
    let day_key = DayKey {
        kid: kid.to_owned(),
        key: key.clone(),
    };
    let valid = version == "v1"
        && day_key.sign(event, request, exp) == pass
        && event == event_id
        && exp > now_secs;
    valid.then(|| (request.to_owned(), exp))
}

async fn admitted(local: &LocalRoom) -> RequestId {
    let api = local.router();
    let request_id = enqueue(&api, "demo").await;
    drain(local).await;
    assert_eq!(increment(&api, "demo", 1).await.status, StatusCode::OK);
    request_id
}

#[tokio::test]
async fn a_claim_carries_a_short_pass_the_edge_accepts_and_each_claim_renews_it() {
    let (local, clock, pem) = room_with_passes().await;
    let api = local.router();
    let request_id = admitted(&local).await;
    let now = clock.now_ms() / 1000;

    let claim = generate_token(&api, "demo", &request_id).await;
    assert_eq!(claim.status, StatusCode::OK, "{}", claim.body);
    assert_eq!(claim.body["pass_expires_in"], PASS_SECS);
    let pass = claim.body["pass"].as_str().expect("a pass").to_owned();
    assert!(
        claim.headers.get("set-cookie").is_none(),
        "the room's domain is not the application's"
    );
    assert_eq!(
        edge_check(&pass, &pem, "demo", now),
        Some((request_id.to_string(), now + PASS_SECS as i64))
    );
    // Not another event's gate, not past its expiry.
    assert_eq!(edge_check(&pass, &pem, "other", now), None);
    assert_eq!(
        edge_check(&pass, &pem, "demo", now + PASS_SECS as i64),
        None
    );
    // Another room's signing key publishes other keys.
    let stranger = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
    assert_eq!(edge_check(&pass, stranger.private_pem(), "demo", now), None);

    // A claim later (the page, when the edge sent the visitor back) gets a fresh pass.
    clock.advance_ms(200_000);
    let again = generate_token(&api, "demo", &request_id).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["access_token"], claim.body["access_token"]);
    let renewed = again.body["pass"].as_str().unwrap();
    assert_eq!(
        edge_check(renewed, &pem, "demo", now + 200).map(|(_, exp)| exp),
        Some(now + 200 + PASS_SECS as i64)
    );
}

#[tokio::test]
async fn an_ended_session_gets_no_new_pass() {
    let (local, _clock, _pem) = room_with_passes().await;
    let api = local.router();
    let request_id = admitted(&local).await;
    assert_eq!(
        generate_token(&api, "demo", &request_id).await.status,
        StatusCode::OK
    );
    let ended = end_session(&api, "demo", &request_id.to_string()).await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    let claim = generate_token(&api, "demo", &request_id).await;
    assert_eq!(claim.status, StatusCode::GONE, "{}", claim.body);
    assert_eq!(claim.body["code"], "session_ended");
    assert!(claim.body.get("pass").is_none());
}

#[tokio::test]
async fn a_room_without_edge_passes_answers_claims_as_before() {
    let (local, _clock) = room().await;
    let api = local.router();
    let request_id = admitted(&local).await;
    let claim = generate_token(&api, "demo", &request_id).await;
    assert_eq!(claim.status, StatusCode::OK);
    assert!(claim.body.get("pass").is_none());
}
