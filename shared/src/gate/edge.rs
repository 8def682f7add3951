//! The pass the gate on CloudFront checks (`PassGateFunction` in template.yaml). CloudFront
//! Functions offer HMAC but neither RSA nor Ed25519, so this pass is not the token: it is
//! `v1.<kid>.<event id>.<request id>.<expiry>.<hex HMAC-SHA256 of what precedes it>`, signed
//! with the day's key, which the function reads from a KeyValueStore under
//! `pass_key_<kid>`.
//!
//! Keys: one a day, derived from the signing key (`HMAC(DER, label)`, then one HMAC per day),
//! so whoever reads the signing secret derives the same keys: token-issue signs with the
//! current day's key with no call per claim and no second secret, and the pass-keys function
//! publishes the previous, current and next day's keys ([`published`]). A pass signed just
//! before midnight stays valid until its key is dropped a day later, so passes live at most
//! one day ([`MAX_PASS_SECS`]). The derivation and the format are frozen in
//! `edge-pass-vectors.json`, which the function's tests read too.
//!
//! What the function cannot see is the room's store: a session the application ends stays
//! open at the edge until its pass expires. Passes are therefore short ([`EdgePasses::ttl`]);
//! the visitor page gets a new one only while the session is active.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::{EventId, RequestId};
use crate::token::{KeyRing, SigningKey};

/// Seconds of one key's day.
pub const DAY_SECS: i64 = 86_400;

/// The longest a pass may live: its key is published until the end of the next day.
pub const MAX_PASS_SECS: u64 = DAY_SECS as u64;

/// The KeyValueStore key under which a key id's key is kept.
pub const STORE_KEY_PREFIX: &str = "pass_key_";

const VERSION: &str = "v1";

fn mac(key: &[u8], message: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The secret the day keys of one signing key derive from.
pub struct PassRoot([u8; 32]);

impl PassRoot {
    pub fn of(key: &SigningKey) -> Self {
        Self::from_bytes(mac(&key.private_der(), b"waiting-room edge pass root").as_ref())
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let mut root = [0u8; 32];
        root.copy_from_slice(&bytes[..32]);
        Self(root)
    }

    /// The key of day `day` (days since the epoch). Its id names the day and the root, so a
    /// pass signed after the signing key changed is refused as an unknown key, not taken
    /// for a forgery, until its key is published.
    pub fn day_key(&self, day: i64) -> DayKey {
        let fingerprint = mac(&self.0, b"kid");
        DayKey {
            kid: format!("{day}-{}", hex(&fingerprint.as_ref()[..4])),
            key: URL_SAFE_NO_PAD.encode(mac(&self.0, format!("pass key {day}").as_bytes())),
        }
    }
}

/// One day's key: its id and the key itself (the string's bytes key the HMAC, as the
/// CloudFront function uses the string it reads).
#[derive(Clone, PartialEq, Eq)]
pub struct DayKey {
    pub kid: String,
    pub key: String,
}

impl std::fmt::Debug for DayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("DayKey").field("kid", &self.kid).finish()
    }
}

impl DayKey {
    /// The pass of `request_id` at `event_id`, valid until `exp` (seconds since the epoch).
    pub fn sign(&self, event_id: &str, request_id: &str, exp: i64) -> String {
        let signed = format!("{VERSION}.{}.{event_id}.{request_id}.{exp}", self.kid);
        let tag = mac(self.key.as_bytes(), signed.as_bytes());
        format!("{signed}.{}", hex(tag.as_ref()))
    }
}

/// The day of `now_secs`.
pub fn day_of(now_secs: i64) -> i64 {
    now_secs.div_euclid(DAY_SECS)
}

/// What the store should hold at `now_secs`, by store key: the previous, current and next
/// day's keys of the current signing key, and the previous and current day's of every key
/// kept for verification during a rotation of the signing key.
pub fn published(keys: &KeyRing, now_secs: i64) -> BTreeMap<String, String> {
    let today = day_of(now_secs);
    let mut wanted = BTreeMap::new();
    for (i, key) in keys.all().iter().enumerate() {
        let root = PassRoot::of(key);
        let days = if i == 0 {
            today - 1..=today + 1
        } else {
            today - 1..=today
        };
        for day in days {
            let day_key = root.day_key(day);
            wanted.insert(format!("{STORE_KEY_PREFIX}{}", day_key.kid), day_key.key);
        }
    }
    wanted
}

/// The edge passes a room issues on claim.
#[derive(Debug, Clone, Copy)]
pub struct EdgePasses {
    /// How long a pass lives (at most [`MAX_PASS_SECS`], never beyond its token): a session
    /// ended in the room stays open at the edge until then.
    ttl: Duration,
}

impl EdgePasses {
    pub fn new(ttl: Duration) -> Result<Self, String> {
        if ttl.is_zero() || ttl.as_secs() > MAX_PASS_SECS {
            return Err(format!(
                "edge pass lifetime must be 1 to {MAX_PASS_SECS} seconds, not {}",
                ttl.as_secs()
            ));
        }
        Ok(Self { ttl })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The pass of a visitor whose token expires at `token_exp`, signed with today's key of
    /// the current signing key, and the seconds it is valid.
    pub fn issue(
        &self,
        keys: &KeyRing,
        event_id: &EventId,
        request_id: &RequestId,
        now_secs: i64,
        token_exp: i64,
    ) -> (String, u64) {
        let exp = token_exp.min(now_secs + self.ttl.as_secs() as i64);
        let day_key = PassRoot::of(keys.current()).day_key(day_of(now_secs));
        let pass = day_key.sign(event_id.as_str(), &request_id.to_string(), exp);
        (pass, (exp - now_secs).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::KeyAlgorithm;

    #[derive(serde::Deserialize)]
    struct Vectors {
        derivations: Vec<Derivation>,
        passes: Vec<Pass>,
    }

    #[derive(serde::Deserialize)]
    struct Derivation {
        root_hex: String,
        period: i64,
        kid: String,
        key: String,
    }

    #[derive(serde::Deserialize)]
    struct Pass {
        kid: String,
        key: String,
        event_id: String,
        request_id: String,
        exp: i64,
        pass: String,
    }

    fn vectors() -> Vectors {
        serde_json::from_str(include_str!("edge-pass-vectors.json")).unwrap()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn day_keys_and_passes_match_the_frozen_vectors_the_edge_function_accepts() {
        let v = vectors();
        assert!(v.derivations.len() >= 2 && v.passes.len() >= 2);
        for d in &v.derivations {
            let day_key = PassRoot::from_bytes(&unhex(&d.root_hex)).day_key(d.period);
            assert_eq!(day_key.kid, d.kid);
            assert_eq!(day_key.key, d.key);
        }
        for p in &v.passes {
            let day_key = DayKey {
                kid: p.kid.clone(),
                key: p.key.clone(),
            };
            assert_eq!(day_key.sign(&p.event_id, &p.request_id, p.exp), p.pass);
        }
    }

    #[test]
    fn passes_last_the_shorter_of_their_lifetime_and_the_token_and_at_most_a_day() {
        let keys = KeyRing::new(SigningKey::generate(KeyAlgorithm::EdDSA).unwrap(), vec![]);
        let passes = EdgePasses::new(Duration::from_secs(300)).unwrap();
        let event = EventId::parse("sale").unwrap();
        let request = RequestId::new(1, 0);
        let now = 20_000 * DAY_SECS + 100;
        let (pass, left) = passes.issue(&keys, &event, &request, now, now + 3600);
        assert_eq!(left, 300);
        let parts: Vec<&str> = pass.split('.').collect();
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[0], "v1");
        assert!(parts[1].starts_with("20000-"), "{pass}");
        assert_eq!(parts[2], "sale");
        assert_eq!(parts[3], request.to_string());
        assert_eq!(parts[4], (now + 300).to_string());
        let (_, left) = passes.issue(&keys, &event, &request, now, now + 60);
        assert_eq!(left, 60);
        assert!(EdgePasses::new(Duration::from_secs(MAX_PASS_SECS + 1)).is_err());
        assert!(EdgePasses::new(Duration::ZERO).is_err());
    }

    #[test]
    fn the_store_keeps_yesterday_today_and_tomorrow_and_the_outgoing_key_until_today() {
        let old = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
        let new = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
        let (old_root, new_root) = (PassRoot::of(&old), PassRoot::of(&new));
        let now = 20_000 * DAY_SECS + 5;
        let entry = |root: &PassRoot, day| {
            let k = root.day_key(day);
            (format!("{STORE_KEY_PREFIX}{}", k.kid), k.key)
        };

        let before = published(&KeyRing::from_secret(old.private_pem()).unwrap(), now);
        let expected: BTreeMap<_, _> = (19_999..=20_001).map(|d| entry(&old_root, d)).collect();
        assert_eq!(before, expected);

        // The signing key rotated: the new key's three days, and the old key's passes of
        // yesterday and today, which may still be in browsers.
        let secret =
            serde_json::json!({"current": new.private_pem(), "previous": [old.private_pem()]});
        let after = published(&KeyRing::from_secret(&secret.to_string()).unwrap(), now);
        let mut expected: BTreeMap<_, _> = (19_999..=20_001).map(|d| entry(&new_root, d)).collect();
        expected.extend((19_999..=20_000).map(|d| entry(&old_root, d)));
        assert_eq!(after, expected);
        assert_eq!(
            after.len(),
            5,
            "two signing keys never derive the same key id"
        );
    }
}
