//! A corpus of hostile tokens against the authorizer: none may pass, and each is refused with
//! the status a main application can act on (401 bad token, 403 valid but not allowed).

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use waiting_room_core::domain::RequestId;
use waiting_room_core::ports::Clock;
use waiting_room_core::server::{LocalRoom, LocalSettings};
use waiting_room_core::service::CacheSettings;
use waiting_room_core::token::{KeyAlgorithm, SigningKey};
use waiting_room_tests::*;

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn no_hostile_token_is_accepted() {
    // A room whose private key the test holds, so it can forge validly signed variants.
    let key = SigningKey::generate(KeyAlgorithm::RS256).unwrap();
    let pem = key.private_pem().to_owned();
    let kid = key.kid.clone();
    let jwk = key.public_jwk().clone();
    let mut settings = LocalSettings::new(ADMIN_KEY.into(), key);
    settings.events = vec![event("demo"), event("other")];
    settings.cache = CacheSettings {
        config_ttl: std::time::Duration::ZERO,
        counters_ttl: std::time::Duration::ZERO,
    };
    let clock = std::sync::Arc::new(waiting_room_core::adapters::ManualClock::new(
        waiting_room_core::adapters::SystemClock.now_ms(),
    ));
    settings.clock = clock.clone();
    let local = LocalRoom::build(settings).await.unwrap();
    let app = local.router();

    let request_id = enqueue(&app, "demo").await;
    drain(&local).await;
    increment(&app, "demo", 1).await;
    let issued = generate_token(&app, "demo", &request_id).await.body;
    let good = issued["access_token"].as_str().unwrap().to_owned();
    let now = clock.now_ms() / 1000;
    let claims = json!({
        "aud": "demo", "sub": request_id.to_string(), "queue_position": 1, "token_use": "access",
        "iss": "waiting-room-local", "iat": now, "nbf": now, "exp": now + 3600,
    });
    let ours = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let sign = |claims: &Value| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, &ours).unwrap()
    };
    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        sign(&c)
    };
    let parts: Vec<&str> = good.split('.').collect();

    // Sanity: the forging key is the room's key, so forged variants differ only where meant.
    let control = sign(&claims);
    let answer = call(
        &app,
        Method::GET,
        "/authorize?event_id=demo",
        None,
        &[("authorization", &control)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "control token must pass");

    let other_key = SigningKey::generate(KeyAlgorithm::RS256).unwrap();
    let other_encoding = EncodingKey::from_rsa_pem(other_key.private_pem().as_bytes()).unwrap();
    let corpus: Vec<(&str, String, StatusCode)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
                b64(&claims)
            ),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "alg none, no kid",
            format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "HS256 keyed with the public JWK",
            {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some(kid.clone());
                jsonwebtoken::encode(
                    &header,
                    &claims,
                    &EncodingKey::from_secret(jwk.to_string().as_bytes()),
                )
                .unwrap()
            },
            StatusCode::UNAUTHORIZED,
        ),
        (
            "HS256 keyed with the modulus",
            {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some(kid.clone());
                jsonwebtoken::encode(
                    &header,
                    &claims,
                    &EncodingKey::from_secret(jwk["n"].as_str().unwrap().as_bytes()),
                )
                .unwrap()
            },
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unknown kid",
            {
                let mut header = Header::new(Algorithm::RS256);
                header.kid = Some("not-a-key".into());
                jsonwebtoken::encode(&header, &claims, &ours).unwrap()
            },
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no kid",
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &ours).unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "another key claiming our kid",
            {
                let mut header = Header::new(Algorithm::RS256);
                header.kid = Some(kid.clone());
                jsonwebtoken::encode(&header, &claims, &other_encoding).unwrap()
            },
            StatusCode::UNAUTHORIZED,
        ),
        (
            "PS256 under our RSA kid",
            {
                let mut header = Header::new(Algorithm::PS256);
                header.kid = Some(kid.clone());
                jsonwebtoken::encode(&header, &claims, &ours).unwrap()
            },
            StatusCode::UNAUTHORIZED,
        ),
        (
            "expired",
            with("exp", json!(now - 60)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "not yet valid",
            with("nbf", json!(now + 600)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "other issuer",
            with("iss", json!("https://evil.example")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "refresh token as access",
            issued["refresh_token"].as_str().unwrap().to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "id token as access",
            issued["id_token"].as_str().unwrap().to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "missing exp",
            {
                let mut c = claims.clone();
                c.as_object_mut().unwrap().remove("exp");
                sign(&c)
            },
            StatusCode::UNAUTHORIZED,
        ),
        (
            "exp as a string",
            with("exp", json!("never")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "sub not a request id",
            with("sub", json!("admin")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "aud of another event",
            with("aud", json!("other")),
            StatusCode::FORBIDDEN,
        ),
        (
            "aud of no event",
            with("aud", json!("ghost")),
            StatusCode::FORBIDDEN,
        ),
        (
            "a request that never existed",
            with("sub", json!(RequestId::new(0, 0).to_string())),
            StatusCode::FORBIDDEN,
        ),
        (
            "tampered payload, original signature",
            {
                let mut c = claims.clone();
                c["queue_position"] = json!(0);
                format!("{}.{}.{}", parts[0], b64(&c), parts[2])
            },
            StatusCode::UNAUTHORIZED,
        ),
        (
            "tampered signature",
            {
                // Flip one character in the middle (the last one may only carry padding bits).
                let mut signature: Vec<u8> = parts[2].bytes().collect();
                let middle = signature.len() / 2;
                signature[middle] = if signature[middle] == b'A' {
                    b'B'
                } else {
                    b'A'
                };
                format!(
                    "{}.{}.{}",
                    parts[0],
                    parts[1],
                    String::from_utf8(signature).unwrap()
                )
            },
            StatusCode::UNAUTHORIZED,
        ),
        (
            "signature removed",
            format!("{}.{}.", parts[0], parts[1]),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "header swapped to HS256",
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "HS256", "kid": kid})),
                parts[1],
                parts[2]
            ),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "oversized",
            format!("{}.{}.{}", parts[0], "A".repeat(10_000), parts[2]),
            StatusCode::UNAUTHORIZED,
        ),
        ("empty", String::new(), StatusCode::UNAUTHORIZED),
        ("garbage", "not a token".into(), StatusCode::UNAUTHORIZED),
        ("two parts", "abc.def".into(), StatusCode::UNAUTHORIZED),
        (
            "four parts",
            format!("{good}.extra"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "non-JSON header",
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode("{{{"),
                parts[1],
                parts[2]
            ),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "binary noise",
            URL_SAFE_NO_PAD.encode([0u8, 159, 146, 150, 255, 0, 1]),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "revoked",
            {
                let id = enqueue(&app, "demo").await;
                drain(&local).await;
                increment(&app, "demo", 1).await;
                let token = generate_token(&app, "demo", &id).await.body["access_token"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let revoke = json!({"event_id": "demo", "request_id": id, "status": -1});
                call(
                    &app,
                    Method::POST,
                    "/update_session",
                    Some(revoke),
                    &admin(),
                )
                .await;
                token
            },
            StatusCode::FORBIDDEN,
        ),
    ];
    let mut accepted = Vec::new();
    for (name, token, expected) in &corpus {
        let bearer = format!("Bearer {token}");
        let answer = call(
            &app,
            Method::GET,
            "/authorize?event_id=demo",
            None,
            &[("authorization", &bearer)],
        )
        .await;
        if answer.status == StatusCode::OK {
            accepted.push(*name);
        }
        assert_eq!(answer.status, *expected, "{name}: {}", answer.body);
        assert!(
            answer.body["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("token_")),
            "{name}"
        );
    }
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
    println!("hostile corpus: {} tokens, 0 accepted", corpus.len());

    // And the genuine token is still good: the corpus proved refusals, not a broken verifier.
    let still = call(
        &app,
        Method::GET,
        "/authorize?event_id=demo",
        None,
        &[("authorization", &good)],
    )
    .await;
    assert_eq!(still.status, StatusCode::OK);
}
