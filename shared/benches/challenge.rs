//! The join challenge's costs: the room issuing one, the room verifying a solution (what
//! every join with the challenge on pays), and a script solving one at the default difficulty
//! (what every place costs it, on one core, in native code).
//!
//! `cargo bench -p waiting-room-core --bench challenge`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use waiting_room_core::challenge;
use waiting_room_core::clients::ClientKey;
use waiting_room_core::domain::EventId;
use waiting_room_core::domain::challenge::DEFAULT_DIFFICULTY;
use waiting_room_core::token::{KeyAlgorithm, KeyRing, SigningKey};

const NOW_MS: i64 = 1_767_225_600_000;

fn challenges(c: &mut Criterion) {
    let key = SigningKey::generate(KeyAlgorithm::EdDSA).expect("key generation");
    let ring = KeyRing::new(key, vec![]);
    let event = EventId::parse("demo").expect("event id");
    let client = Some(ClientKey::of("192.0.2.1".parse().expect("address")));
    let mut group = c.benchmark_group("challenge");

    group.bench_function("issue", |b| {
        b.iter(|| {
            challenge::issue(
                ring.challenge_key(),
                black_box(&event),
                client,
                DEFAULT_DIFFICULTY,
                NOW_MS,
            )
        })
    });

    let issued = challenge::issue(
        ring.challenge_key(),
        &event,
        client,
        DEFAULT_DIFFICULTY,
        NOW_MS,
    );
    let nonce = challenge::solve(&issued.challenge, DEFAULT_DIFFICULTY);
    group.bench_function("verify", |b| {
        b.iter(|| {
            challenge::verify(
                ring.challenge_keys(),
                black_box(&event),
                client,
                black_box(&issued.challenge),
                black_box(&nonce),
                NOW_MS,
            )
        })
    });
    group.bench_function("verify_forged", |b| {
        let forged = issued.challenge.replacen('0', "1", 1);
        b.iter(|| {
            challenge::verify(
                ring.challenge_keys(),
                black_box(&event),
                client,
                black_box(&forged),
                black_box(&nonce),
                NOW_MS,
            )
        })
    });

    // Solving: a fresh challenge each time (the tries needed vary, geometric around 2^18).
    group.sample_size(20);
    group.bench_function("solve_default_difficulty", |b| {
        b.iter(|| {
            let fresh = challenge::issue(
                ring.challenge_key(),
                &event,
                client,
                DEFAULT_DIFFICULTY,
                NOW_MS,
            );
            challenge::solve(&fresh.challenge, DEFAULT_DIFFICULTY)
        })
    });
    group.finish();
}

criterion_group!(benches, challenges);
criterion_main!(benches);
