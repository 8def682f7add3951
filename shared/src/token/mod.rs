//! JWT issue and verification, with the claims of the AWS solution.

pub mod keys;

use std::sync::Arc;

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

/// Signs and verifies the room's tokens.
pub struct TokenIssuer {
    keys: Arc<KeyRing>,
    issuer: String,
}

impl TokenIssuer {
    pub fn new(keys: Arc<KeyRing>, issuer: impl Into<String>) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
        }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Signs the access, refresh and id tokens of an admitted visitor.
    pub fn issue(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        position: u64,
        now_ms: i64,
        ttl_secs: u64,
    ) -> Result<TokenRecord, Error> {
        let iat = now_ms / 1000;
        let exp = iat + ttl_secs as i64;
        let key = self.keys.current();
        let mut header = Header::new(key.algorithm.jwt());
        header.kid = Some(key.kid.clone());
        let sign = |token_use: &str| {
            let claims = Claims {
                aud: event_id.to_string(),
                sub: request_id.to_string(),
                queue_position: position,
                token_use: token_use.to_owned(),
                iss: self.issuer.clone(),
                iat,
                nbf: iat,
                exp,
            };
            jsonwebtoken::encode(&header, &claims, &key.encoding)
                .map_err(|e| Error::Signing(e.to_string()))
        };
        Ok(TokenRecord {
            issued_at: iat,
            expires_at: exp,
            access_token: sign("access")?,
            refresh_token: sign("refresh")?,
            id_token: sign("id")?,
            status: SessionStatus::Active,
        })
    }

    /// Checks signature, key, issuer, time window and use of an access token. The audience is
    /// returned for the caller to match against the event it protects.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.keys.find(&kid).ok_or(TokenError::UnknownKey)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(algorithm: KeyAlgorithm) -> TokenIssuer {
        let key = SigningKey::generate(algorithm).unwrap();
        TokenIssuer::new(Arc::new(KeyRing::new(key, vec![])), "https://room.test")
    }

    #[test]
    fn issued_tokens_verify_with_the_aws_claims() {
        for algorithm in [KeyAlgorithm::RS256, KeyAlgorithm::EdDSA] {
            let tokens = issuer(algorithm);
            let event = EventId::parse("sale").unwrap();
            let request = RequestId::new();
            let set = tokens.issue(&event, &request, 42, 1_000_000, 60).unwrap();
            let claims = tokens.verify(&set.access_token, 1_000_000).unwrap();
            assert_eq!(claims.aud, "sale");
            assert_eq!(claims.sub, request.to_string());
            assert_eq!(claims.queue_position, 42);
            assert_eq!(claims.exp, 1_000 + 60);
            // Only the access token opens the door.
            assert_eq!(
                tokens.verify(&set.id_token, 1_000_000),
                Err(TokenError::WrongUse)
            );
        }
    }

    #[test]
    fn time_window_is_enforced_on_the_room_clock() {
        let tokens = issuer(KeyAlgorithm::EdDSA);
        let set = tokens
            .issue(
                &EventId::parse("e").unwrap(),
                &RequestId::new(),
                1,
                100_000,
                60,
            )
            .unwrap();
        assert_eq!(
            tokens.verify(&set.access_token, 100_000 + 66_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            tokens.verify(&set.access_token, 100_000 - 6_000),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn a_token_from_another_key_is_refused() {
        let ours = issuer(KeyAlgorithm::EdDSA);
        let theirs = issuer(KeyAlgorithm::EdDSA);
        let set = theirs
            .issue(&EventId::parse("e").unwrap(), &RequestId::new(), 1, 0, 60)
            .unwrap();
        assert_eq!(
            ours.verify(&set.access_token, 0),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(ours.verify("a.b.c", 0), Err(TokenError::Malformed));
        assert_eq!(ours.verify("", 0), Err(TokenError::Missing));
    }
}
