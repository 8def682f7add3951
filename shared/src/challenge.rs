//! The join challenge's proof of work: issued stateless and signed by the room, solved by the
//! joining page, verified in microseconds.
//!
//! A challenge is `<expiry ms, hex>.<difficulty>.<salt, 32 hex>.<mac, 32 hex>`; the MAC
//! (HMAC-SHA-256, cut to 128 bits) covers those fields, the event and the client it was issued
//! to, under a key derived from the room's signing key, so every instance of the room checks
//! what any other issued and nothing is stored. A solution is a nonce (1 to 32 letters or
//! digits) such that SHA-256 of `<challenge>:<nonce>` starts with `difficulty` zero bits.
//!
//! A solved challenge names its request id (see [`Solved::request_seed`]): a solution sent
//! again joins as the same request, which the consumer places once, so a solution buys one
//! place however often it is replayed, with no record of used challenges.

use aws_lc_rs::{digest, hmac};
use subtle::ConstantTimeEq;

use crate::clients::ClientKey;
use crate::domain::EventId;

/// How long a challenge may be solved and used: enough for a slow phone at a raised
/// difficulty, short enough that a stock of solved challenges goes stale.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;

/// Longest challenge and nonce read (anything longer is malformed).
const MAX_CHALLENGE_LEN: usize = 96;
const MAX_NONCE_LEN: usize = 32;
/// Hex digits of the salt and of the MAC.
const PART_HEX: usize = 32;

/// A challenge as handed to a page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Challenge {
    pub challenge: String,
    /// Leading zero bits the SHA-256 of `<challenge>:<nonce>` must have.
    pub difficulty: u8,
    pub expires_at_ms: i64,
    /// What to compute, for clients other than the room's page.
    pub algorithm: &'static str,
}

/// Why a solution was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the challenge is malformed")]
    Malformed,
    #[error("the challenge was not issued by this room to this client for this event")]
    Forged,
    #[error("the challenge has expired")]
    Expired,
    #[error("the solution does not solve the challenge")]
    Unsolved,
}

/// A join answered with a challenge to solve: none was sent, or the one sent was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// Why the solution sent was refused; `None` when none was sent.
    pub refused: Option<Refusal>,
    /// A fresh challenge to solve.
    pub challenge: Challenge,
}

impl std::fmt::Display for Demand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.refused {
            Some(why) => write!(f, "{why}: solve the challenge given"),
            None => f.write_str("this join needs a solved challenge: solve the one given"),
        }
    }
}

impl std::error::Error for Demand {}

/// A verified solution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solved {
    /// When its challenge was issued (ms since the epoch).
    pub issued_at_ms: i64,
    /// The random part of the request id this challenge joins as: derived from the
    /// challenge with the room's key, so only the room can tell it from the challenge.
    pub request_seed: u128,
}

/// The MAC of a challenge's fields, bound to its event and client.
fn mac(key: &hmac::Key, event: &EventId, client: Option<ClientKey>, fields: &str) -> [u8; 16] {
    let mut context = hmac::Context::with_key(key);
    context.update(b"join-challenge\0");
    context.update(event.as_str().as_bytes());
    context.update(b"\0");
    if let Some(client) = client {
        context.update(&client.bytes());
    }
    context.update(b"\0");
    context.update(fields.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&context.sign().as_ref()[..16]);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex16(text: &str) -> Option<[u8; 16]> {
    if text.len() != PART_HEX || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A new challenge for `client` joining `event`, signed with `key`.
pub fn issue(
    key: &hmac::Key,
    event: &EventId,
    client: Option<ClientKey>,
    difficulty: u8,
    now_ms: i64,
) -> Challenge {
    let expires_at_ms = now_ms + CHALLENGE_TTL_MS;
    let salt = uuid::Uuid::new_v4().as_u128();
    let fields = format!("{expires_at_ms:x}.{difficulty}.{salt:032x}");
    let mac = mac(key, event, client, &fields);
    Challenge {
        challenge: format!("{fields}.{}", hex(&mac)),
        difficulty,
        expires_at_ms,
        algorithm: "sha256-leading-zero-bits",
    }
}

/// Leading zero bits of a digest.
fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in digest {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// Whether `nonce` solves `challenge` at `difficulty` bits.
pub fn solves(challenge: &str, nonce: &str, difficulty: u8) -> bool {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(challenge.as_bytes());
    context.update(b":");
    context.update(nonce.as_bytes());
    leading_zero_bits(context.finish().as_ref()) >= u32::from(difficulty)
}

/// Checks a solution; `keys` are the room's challenge keys, the current one first (a
/// challenge issued just before a key rotation still verifies).
pub fn verify<'a>(
    keys: impl IntoIterator<Item = &'a hmac::Key>,
    event: &EventId,
    client: Option<ClientKey>,
    challenge: &str,
    nonce: &str,
    now_ms: i64,
) -> Result<Solved, Refusal> {
    let nonce_ok = (1..=MAX_NONCE_LEN).contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric());
    if challenge.len() > MAX_CHALLENGE_LEN || !nonce_ok {
        return Err(Refusal::Malformed);
    }
    let (fields, mac_hex) = challenge.rsplit_once('.').ok_or(Refusal::Malformed)?;
    let mut parts = fields.split('.');
    let (Some(expires), Some(difficulty), Some(salt), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let expires_at_ms = i64::from_str_radix(expires, 16).map_err(|_| Refusal::Malformed)?;
    let difficulty: u8 = difficulty.parse().map_err(|_| Refusal::Malformed)?;
    let given = unhex16(mac_hex).ok_or(Refusal::Malformed)?;
    if unhex16(salt).is_none() {
        return Err(Refusal::Malformed);
    }
    let key = keys
        .into_iter()
        .find(|key| bool::from(mac(key, event, client, fields)[..].ct_eq(&given[..])))
        .ok_or(Refusal::Forged)?;
    if now_ms >= expires_at_ms {
        return Err(Refusal::Expired);
    }
    if !solves(challenge, nonce, difficulty) {
        return Err(Refusal::Unsolved);
    }
    let seed = hmac::sign(key, &given);
    let mut request_seed = [0u8; 16];
    request_seed.copy_from_slice(&seed.as_ref()[..16]);
    Ok(Solved {
        issued_at_ms: expires_at_ms - CHALLENGE_TTL_MS,
        request_seed: u128::from_be_bytes(request_seed),
    })
}

/// Solves a challenge by trying nonces in order (tests, benchmarks and the load suite's bot).
pub fn solve(challenge: &str, difficulty: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| solves(challenge, nonce, difficulty))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000;

    fn key(seed: &[u8]) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, seed)
    }

    fn event(id: &str) -> EventId {
        EventId::parse(id).unwrap()
    }

    fn client(text: &str) -> Option<ClientKey> {
        Some(ClientKey::of(text.parse().unwrap()))
    }

    #[test]
    fn a_solution_verifies_once_for_its_event_and_client_and_names_one_request() {
        let room = key(b"room");
        let issued = issue(&room, &event("demo"), client("192.0.2.1"), 8, NOW);
        let nonce = solve(&issued.challenge, 8);
        let check = |k: &hmac::Key, e: &str, c: &str, at: i64| {
            verify([k], &event(e), client(c), &issued.challenge, &nonce, at)
        };
        let solved = check(&room, "demo", "192.0.2.1", NOW + 1_000).unwrap();
        assert_eq!(solved.issued_at_ms, NOW);
        // The same solution again names the same request.
        assert_eq!(check(&room, "demo", "192.0.2.1", NOW + 2_000), Ok(solved));
        // Another nonce that solves it too: still the same request.
        let other = (0u64..)
            .map(|n| format!("x{n}"))
            .find(|n| solves(&issued.challenge, n, 8))
            .unwrap();
        assert_eq!(
            verify(
                [&room],
                &event("demo"),
                client("192.0.2.1"),
                &issued.challenge,
                &other,
                NOW
            )
            .map(|s| s.request_seed),
            Ok(solved.request_seed)
        );
        assert_eq!(
            check(&room, "other", "192.0.2.1", NOW),
            Err(Refusal::Forged)
        );
        assert_eq!(check(&room, "demo", "192.0.2.2", NOW), Err(Refusal::Forged));
        assert_eq!(
            check(&key(b"elsewhere"), "demo", "192.0.2.1", NOW),
            Err(Refusal::Forged)
        );
        assert_eq!(
            check(&room, "demo", "192.0.2.1", NOW + CHALLENGE_TTL_MS),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn a_rotated_key_still_verifies_what_it_issued() {
        let (old, new) = (key(b"old"), key(b"new"));
        let issued = issue(&old, &event("demo"), None, 4, NOW);
        let nonce = solve(&issued.challenge, 4);
        assert!(
            verify(
                [&new, &old],
                &event("demo"),
                None,
                &issued.challenge,
                &nonce,
                NOW
            )
            .is_ok()
        );
    }

    #[test]
    fn changed_fields_wrong_nonces_and_garbage_are_refused() {
        let room = key(b"room");
        let issued = issue(&room, &event("demo"), None, 12, NOW);
        let nonce = solve(&issued.challenge, 12);
        let verify_at = |challenge: &str, nonce: &str| {
            verify([&room], &event("demo"), None, challenge, nonce, NOW)
        };
        // An easier difficulty written in: the MAC no longer matches.
        let easier = issued.challenge.replacen(".12.", ".1.", 1);
        assert_eq!(verify_at(&easier, "0"), Err(Refusal::Forged));
        let wrong = (0u64..)
            .map(|n| n.to_string())
            .find(|n| !solves(&issued.challenge, n, 12))
            .unwrap();
        assert_eq!(verify_at(&issued.challenge, &wrong), Err(Refusal::Unsolved));
        for (challenge, nonce) in [
            ("", nonce.as_str()),
            ("a.b.c.d", nonce.as_str()),
            (issued.challenge.as_str(), ""),
            (issued.challenge.as_str(), "1 2"),
            (&"9".repeat(200), nonce.as_str()),
        ] {
            assert_eq!(
                verify_at(challenge, nonce),
                Err(Refusal::Malformed),
                "{challenge:?}"
            );
        }
        assert!(verify_at(&issued.challenge, &nonce).is_ok());
    }

    #[test]
    fn leading_zero_bits_are_counted_across_bytes() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x0f, 0xff]), 20);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }
}
