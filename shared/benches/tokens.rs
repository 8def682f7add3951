//! Token costs, per algorithm: signing one JWT, issuing the set of three that `generate_token`
//! returns, and verifying an access token as the authorizer does.
//!
//! `cargo bench -p waiting-room-core --bench tokens`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{EncodingKey, Header};
use waiting_room_core::domain::{EventId, RequestId};
use waiting_room_core::token::{Claims, KeyAlgorithm, KeyRing, SigningKey, TokenIssuer};

const NOW_MS: i64 = 1_767_225_600_000;

fn issuer(algorithm: KeyAlgorithm) -> TokenIssuer {
    let key = SigningKey::generate(algorithm).expect("key generation");
    TokenIssuer::new(Arc::new(KeyRing::new(key, vec![])), "bench")
}

/// One signature with the room's key and claims, straight through jsonwebtoken.
fn single_signer(algorithm: KeyAlgorithm) -> (Header, EncodingKey, Claims) {
    let key = SigningKey::generate(algorithm).expect("key generation");
    let pem = key.private_pem().as_bytes();
    let encoding = match algorithm {
        KeyAlgorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        KeyAlgorithm::EdDSA => EncodingKey::from_ed_pem(pem),
    }
    .expect("PEM the room wrote");
    let mut header = Header::new(algorithm.jwt());
    header.kid = Some(key.kid.clone());
    let claims = Claims {
        aud: "demo".into(),
        sub: RequestId::new(0, 0).to_string(),
        queue_position: 12_345,
        token_use: "access".into(),
        iss: "bench".into(),
        iat: NOW_MS / 1000,
        nbf: NOW_MS / 1000,
        exp: NOW_MS / 1000 + 3600,
    };
    (header, encoding, claims)
}

fn tokens(c: &mut Criterion) {
    let event = EventId::parse("demo").expect("event id");
    // Issue and verify are async (they may reload rotated keys); with fixed keys they never
    // wait, so a current-thread runtime adds only its own small overhead.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for algorithm in [KeyAlgorithm::EdDSA, KeyAlgorithm::RS256] {
        let mut group = c.benchmark_group(format!("token/{algorithm:?}"));

        let (header, encoding, claims) = single_signer(algorithm);
        group.bench_function("sign", |b| {
            b.iter(|| jsonwebtoken::encode(black_box(&header), black_box(&claims), &encoding))
        });

        let tokens = issuer(algorithm);
        let request = RequestId::new(0, 0);
        group.bench_function("issue_set_of_3", |b| {
            b.iter(|| {
                runtime.block_on(tokens.issue(&event, black_box(&request), 12_345, NOW_MS, 3600))
            })
        });

        let set = runtime
            .block_on(tokens.issue(&event, &request, 12_345, NOW_MS, 3600))
            .expect("issue");
        group.bench_function("verify", |b| {
            b.iter(|| runtime.block_on(tokens.verify(black_box(&set.access_token), NOW_MS)))
        });
        group.finish();
    }
}

criterion_group!(benches, tokens);
criterion_main!(benches);
