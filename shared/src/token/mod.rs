//! JWT issue and verification, with the claims of the AWS solution.

pub mod keys;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::{EventId, RequestId, SessionStatus, TokenRecord};
use crate::error::Error;
pub use keys::{KeyAlgorithm, KeyError, KeyRing, SigningKey};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: i64 = 5;

/// Longest token the verifier will even parse: real ones are well under 2 KiB.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The claims of every token the room signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The event id.
    pub aud: String,
    /// The request id.
    pub sub: String,
    pub queue_position: u64,
    /// `access`, `refresh` or `id`.
    pub token_use: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("bad token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token from another issuer")]
    WrongIssuer,
    #[error("token is not an access token")]
    WrongUse,
    #[error("token is for another event")]
    WrongEvent,
    #[error("token revoked")]
    Revoked,
}

impl TokenError {
    /// A short machine-readable reason, for logs, metrics and error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Missing => "token_missing",
            TokenError::Malformed => "token_malformed",
            TokenError::UnknownKey => "token_unknown_key",
            TokenError::BadSignature => "token_bad_signature",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::WrongIssuer => "token_wrong_issuer",
            TokenError::WrongUse => "token_wrong_use",
            TokenError::WrongEvent => "token_wrong_event",
            TokenError::Revoked => "token_revoked",
        }
    }
}

/// Where signing keys come from when they can change while the process runs (a secret on
/// AWS, rotated by the operator).
#[async_trait]
pub trait KeySource: Send + Sync {
    async fn load(&self) -> Result<KeyRing, KeyError>;
}

/// A token naming an unknown key triggers a reload at most this often: a rotation is picked up
/// at once, while a flood of forged `kid`s cannot turn into a flood of secret reads.
const UNKNOWN_KID_RELOAD_EVERY: Duration = Duration::from_secs(30);

struct Loaded {
    ring: Arc<KeyRing>,
    at: Instant,
}

/// Signs and verifies the room's tokens, with the keys cached in process.
pub struct TokenIssuer {
    // std RwLock: held only to copy the Arc out or swap it in.
    keys: RwLock<Loaded>,
    source: Option<(Arc<dyn KeySource>, Duration)>,
    // Held across a reload, so concurrent callers wait for one reload instead of each making one.
    reloading: tokio::sync::Mutex<()>,
    issuer: String,
}

impl TokenIssuer {
    /// Fixed keys (the local server, tests).
    pub fn new(keys: Arc<KeyRing>, issuer: impl Into<String>) -> Self {
        Self {
            keys: RwLock::new(Loaded {
                ring: keys,
                at: Instant::now(),
            }),
            source: None,
            reloading: tokio::sync::Mutex::new(()),
            issuer: issuer.into(),
        }
    }

    /// Keys loaded from `source` now, and again every `refresh_every` (and early when a token
    /// names a key not yet known), so every instance follows a rotation.
    pub async fn from_source(
        source: Arc<dyn KeySource>,
        refresh_every: Duration,
        issuer: impl Into<String>,
    ) -> Result<Self, KeyError> {
        let ring = source.load().await?;
        let mut issuer = Self::new(Arc::new(ring), issuer);
        issuer.source = Some((source, refresh_every));
        Ok(issuer)
    }

    fn loaded(&self) -> (Arc<KeyRing>, Instant) {
        let loaded = match self.keys.read() {
            Ok(loaded) => loaded,
            Err(poisoned) => poisoned.into_inner(),
        };
        (loaded.ring.clone(), loaded.at)
    }

    /// The current keys, reloaded first when older than the refresh period. A failed reload
    /// keeps the keys in hand (logged): tokens keep flowing while the secret store is down.
    pub async fn keys(&self) -> Arc<KeyRing> {
        let (ring, at) = self.loaded();
        match &self.source {
            Some((_, every)) if at.elapsed() >= *every => self.reload(at).await,
            _ => ring,
        }
    }

    /// Reloads unless someone else did since `seen_at`.
    async fn reload(&self, seen_at: Instant) -> Arc<KeyRing> {
        let Some((source, _)) = &self.source else {
            return self.loaded().0;
        };
        let _one_at_a_time = self.reloading.lock().await;
        let (ring, at) = self.loaded();
        if at > seen_at {
            return ring;
        }
        match source.load().await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                if let Ok(mut loaded) = self.keys.write() {
                    *loaded = Loaded {
                        ring: fresh.clone(),
                        at: Instant::now(),
                    };
                }
                tracing::info!(kid = %fresh.current().kid, "signing keys reloaded");
                fresh
            }
            Err(error) => {
                tracing::error!(%error, "signing keys could not be reloaded; keeping the current ones");
                if let Ok(mut loaded) = self.keys.write() {
                    loaded.at = Instant::now();
                }
                ring
            }
        }
    }

    /// The keys that verify `kid`, reloading early (rate-limited) when it is not known yet.
    async fn keys_for(&self, kid: &str) -> Arc<KeyRing> {
        let ring = self.keys().await;
        if ring.find(kid).is_some() || self.source.is_none() {
            return ring;
        }
        let (_, at) = self.loaded();
        if at.elapsed() < UNKNOWN_KID_RELOAD_EVERY {
            return ring;
        }
        self.reload(at).await
    }

    /// Signs the access, refresh and id tokens of an admitted visitor. Signing runs on the
    /// blocking pool: an RS256 set costs milliseconds of CPU, which would otherwise hold an
    /// async worker and delay every poll behind a burst of claims.
    pub async fn issue(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        position: u64,
        now_ms: i64,
        ttl_secs: u64,
    ) -> Result<TokenRecord, Error> {
        let iat = now_ms / 1000;
        let claims = Claims {
            aud: event_id.to_string(),
            sub: request_id.to_string(),
            queue_position: position,
            token_use: String::new(),
            iss: self.issuer.clone(),
            iat,
            nbf: iat,
            exp: iat + ttl_secs as i64,
        };
        let keys = self.keys().await;
        tokio::task::spawn_blocking(move || sign_set(&keys, claims))
            .await
            .map_err(|e| Error::Signing(e.to_string()))?
    }

    /// Checks signature, key, issuer, time window and use of an access token. The audience is
    /// returned for the caller to match against the event it protects.
    pub async fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let keys = self.keys_for(&kid).await;
        let key = keys.find(&kid).ok_or(TokenError::UnknownKey)?;
        // The algorithm comes from our key, never from the token, so `alg: none` or an HMAC
        // signed with the public key cannot pass.
        if header.alg != key.algorithm.jwt() {
            return Err(TokenError::BadSignature);
        }
        let mut validation = Validation::new(key.algorithm.jwt());
        // Time is checked below against the room's clock; audience by the caller.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[&self.issuer]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                _ => TokenError::Malformed,
            })?
            .claims;
        let now = now_ms / 1000;
        if now > claims.exp + LEEWAY_SECS {
            return Err(TokenError::Expired);
        }
        if now + LEEWAY_SECS < claims.nbf {
            return Err(TokenError::NotYetValid);
        }
        if claims.token_use != "access" {
            return Err(TokenError::WrongUse);
        }
        Ok(claims)
    }
}

/// The three tokens of a set, differing only in `token_use`, signed with the current key.
fn sign_set(keys: &KeyRing, claims: Claims) -> Result<TokenRecord, Error> {
    let key = keys.current();
    let mut header = Header::new(key.algorithm.jwt());
    header.kid = Some(key.kid.clone());
    let sign = |token_use: &str| {
        let claims = Claims {
            token_use: token_use.to_owned(),
            ..claims.clone()
        };
        jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| Error::Signing(e.to_string()))
    };
    Ok(TokenRecord {
        issued_at: claims.iat,
        expires_at: claims.exp,
        access_token: sign("access")?,
        refresh_token: sign("refresh")?,
        id_token: sign("id")?,
        status: SessionStatus::Active,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(algorithm: KeyAlgorithm) -> TokenIssuer {
        let key = SigningKey::generate(algorithm).unwrap();
        TokenIssuer::new(Arc::new(KeyRing::new(key, vec![])), "https://room.test")
    }

    #[tokio::test]
    async fn issued_tokens_verify_with_the_aws_claims() {
        for algorithm in [KeyAlgorithm::RS256, KeyAlgorithm::EdDSA] {
            let tokens = issuer(algorithm);
            let event = EventId::parse("sale").unwrap();
            let request = RequestId::new(0, 0);
            let set = tokens
                .issue(&event, &request, 42, 1_000_000, 60)
                .await
                .unwrap();
            let claims = tokens.verify(&set.access_token, 1_000_000).await.unwrap();
            assert_eq!(claims.aud, "sale");
            assert_eq!(claims.sub, request.to_string());
            assert_eq!(claims.queue_position, 42);
            assert_eq!(claims.exp, 1_000 + 60);
            // Only the access token opens the door.
            assert_eq!(
                tokens.verify(&set.id_token, 1_000_000).await,
                Err(TokenError::WrongUse)
            );
        }
    }

    #[tokio::test]
    async fn time_window_is_enforced_on_the_room_clock() {
        let tokens = issuer(KeyAlgorithm::EdDSA);
        let set = tokens
            .issue(
                &EventId::parse("e").unwrap(),
                &RequestId::new(0, 0),
                1,
                100_000,
                60,
            )
            .await
            .unwrap();
        assert_eq!(
            tokens.verify(&set.access_token, 100_000 + 66_000).await,
            Err(TokenError::Expired)
        );
        assert_eq!(
            tokens.verify(&set.access_token, 100_000 - 6_000).await,
            Err(TokenError::NotYetValid)
        );
    }

    /// A secret whose contents the test swaps, as an operator rotating the key would.
    struct Rotating(std::sync::Mutex<String>);

    #[async_trait]
    impl KeySource for Rotating {
        async fn load(&self) -> Result<KeyRing, KeyError> {
            KeyRing::from_secret(&self.0.lock().unwrap())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotated_key_is_picked_up_and_the_old_one_keeps_verifying() {
        let old = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
        let new = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
        let secret = Arc::new(Rotating(std::sync::Mutex::new(
            old.private_pem().to_owned(),
        )));
        let ours = TokenIssuer::from_source(
            secret.clone(),
            Duration::from_secs(300),
            "https://room.test",
        )
        .await
        .unwrap();
        let event = EventId::parse("e").unwrap();
        let before = ours
            .issue(&event, &RequestId::new(0, 0), 1, 0, 3600)
            .await
            .unwrap();

        // The operator rotates: the new key signs, the old one stays for verification.
        *secret.0.lock().unwrap() = serde_json::json!({
            "current": new.private_pem(), "previous": [old.private_pem()]
        })
        .to_string();
        let elsewhere = TokenIssuer::from_source(
            secret.clone(),
            Duration::from_secs(300),
            "https://room.test",
        )
        .await
        .unwrap();
        let after = elsewhere
            .issue(&event, &RequestId::new(0, 0), 2, 0, 3600)
            .await
            .unwrap();

        // Right after our last load, an unknown kid does not reload (no secret-read floods)...
        assert_eq!(
            ours.verify(&after.access_token, 0).await,
            Err(TokenError::UnknownKey)
        );
        // ...30 s later it does, and both generations of tokens verify.
        tokio::time::advance(UNKNOWN_KID_RELOAD_EVERY).await;
        assert!(ours.verify(&after.access_token, 0).await.is_ok());
        assert!(ours.verify(&before.access_token, 0).await.is_ok());
        // After the refresh period our own new tokens are signed with the new key too.
        tokio::time::advance(Duration::from_secs(300)).await;
        let ours_now = ours
            .issue(&event, &RequestId::new(0, 0), 3, 0, 3600)
            .await
            .unwrap();
        let kid = jsonwebtoken::decode_header(&ours_now.access_token)
            .unwrap()
            .kid
            .unwrap();
        assert_eq!(kid, new.kid);
    }

    #[tokio::test]
    async fn a_token_from_another_key_is_refused() {
        let ours = issuer(KeyAlgorithm::EdDSA);
        let theirs = issuer(KeyAlgorithm::EdDSA);
        let set = theirs
            .issue(
                &EventId::parse("e").unwrap(),
                &RequestId::new(0, 0),
                1,
                0,
                60,
            )
            .await
            .unwrap();
        assert_eq!(
            ours.verify(&set.access_token, 0).await,
            Err(TokenError::UnknownKey)
        );
        assert_eq!(ours.verify("a.b.c", 0).await, Err(TokenError::Malformed));
        assert_eq!(ours.verify("", 0).await, Err(TokenError::Missing));
    }
}
