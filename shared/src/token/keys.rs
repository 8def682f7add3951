//! Signing keys: loaded from PEM (a file locally, a secret on AWS) or generated, each with a
//! `kid` (its RFC 7638 thumbprint) and the public JWK that verifiers fetch.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::json;

/// Why a key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM private key")]
    NotPem,
    #[error("unsupported key: only RSA (2048 bits or more) and Ed25519 private keys are accepted")]
    Unsupported,
    #[error("key generation failed")]
    Generation,
    #[error("key rejected: {0}")]
    Rejected(String),
    #[error("key source unavailable: {0}")]
    Source(String),
}

/// The signature algorithms the room signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyAlgorithm {
    /// RS256: what API Gateway JWT authorizers and the AWS solution's clients verify.
    RS256,
    /// EdDSA (Ed25519): smaller and about 60 times cheaper to sign.
    EdDSA,
}

impl KeyAlgorithm {
    pub fn jwt(self) -> Algorithm {
        match self {
            KeyAlgorithm::RS256 => Algorithm::RS256,
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "rs256" => Ok(KeyAlgorithm::RS256),
            "eddsa" | "ed25519" => Ok(KeyAlgorithm::EdDSA),
            other => Err(format!("unknown algorithm {other:?}: use RS256 or EdDSA")),
        }
    }
}

/// A private key ready to sign, with its public half as a JWK.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    jwk: serde_json::Value,
    pem: String,
    /// The key join challenges are signed with, derived from the private key: whoever can
    /// issue tokens can issue challenges, and no second secret is kept.
    challenge: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl SigningKey {
    /// A fresh key: RSA 2048 or Ed25519.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        let der = match algorithm {
            KeyAlgorithm::RS256 => aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map_err(|_| KeyError::Generation)?
                .as_ref()
                .to_vec(),
            KeyAlgorithm::EdDSA => Ed25519KeyPair::generate()
                .and_then(|k| AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&k))
                .map_err(|_| KeyError::Generation)?
                .as_ref()
                .to_vec(),
        };
        Self::from_pem(&pem_encode("PRIVATE KEY", &der))
    }

    /// Reads a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_decode(pem)?;
        let rsa = match label.as_str() {
            "RSA PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_der(&der).ok(),
            "PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).ok(),
            _ => return Err(KeyError::Unsupported),
        };
        let (algorithm, encoding, jwk) = if let Some(pair) = rsa {
            let public = pair.public_key();
            let jwk = json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            });
            let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|e| KeyError::Rejected(e.to_string()))?;
            (KeyAlgorithm::RS256, encoding, jwk)
        } else if label == "PRIVATE KEY" {
            let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| KeyError::Unsupported)?;
            let jwk = json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            });
            (KeyAlgorithm::EdDSA, EncodingKey::from_ed_der(&der), jwk)
        } else {
            return Err(KeyError::Unsupported);
        };
        Self::assemble(algorithm, encoding, jwk, pem.trim().to_owned() + "\n")
    }

    fn assemble(
        algorithm: KeyAlgorithm,
        encoding: EncodingKey,
        mut jwk: serde_json::Value,
        pem: String,
    ) -> Result<Self, KeyError> {
        let parsed: Jwk =
            serde_json::from_value(jwk.clone()).map_err(|e| KeyError::Rejected(e.to_string()))?;
        let kid = parsed
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| KeyError::Rejected(e.to_string()))?;
        let decoding =
            DecodingKey::from_jwk(&parsed).map_err(|e| KeyError::Rejected(e.to_string()))?;
        let alg = match algorithm {
            KeyAlgorithm::RS256 => "RS256",
            KeyAlgorithm::EdDSA => "EdDSA",
        };
        if let Some(fields) = jwk.as_object_mut() {
            fields.insert("kid".into(), json!(kid));
            fields.insert("alg".into(), json!(alg));
            fields.insert("use".into(), json!("sig"));
        }
        let mut derived = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        derived.update(b"waiting-room join challenge key\0");
        derived.update(pem.as_bytes());
        let challenge =
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, derived.finish().as_ref());
        Ok(Self {
            kid,
            algorithm,
            encoding,
            decoding,
            jwk,
            pem,
            challenge,
        })
    }

    /// The public key as one JWK (what `/public_key` serves).
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// The private key as PKCS#8 PEM, for saving a generated key.
    pub fn private_pem(&self) -> &str {
        &self.pem
    }

    /// The private key's DER, the secret that keys derived from this one start from (the
    /// edge passes' keys). Empty never happens: the PEM was decoded when the key was made.
    pub(crate) fn private_der(&self) -> Vec<u8> {
        pem_decode(&self.pem)
            .map(|(_, der)| der)
            .unwrap_or_default()
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

fn pem_decode(pem: &str) -> Result<(String, Vec<u8>), KeyError> {
    let pem = pem.trim();
    let label = pem
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.split_once("-----"))
        .map(|(label, _)| label.to_owned())
        .ok_or(KeyError::NotPem)?;
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = STANDARD.decode(body).map_err(|_| KeyError::NotPem)?;
    Ok((label, der))
}

/// The keys in use: one signs, all of them verify (the previous one stays valid during a
/// rotation until tokens signed with it have expired).
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// `current` signs; `previous` only verify.
    pub fn new(current: SigningKey, previous: Vec<SigningKey>) -> Self {
        let mut keys = vec![current];
        keys.extend(previous);
        Self { keys }
    }

    /// Reads a key secret: a PEM private key, or during a rotation
    /// `{"current": "<pem>", "previous": ["<pem>", ...]}` (the previous keys only verify).
    pub fn from_secret(secret: &str) -> Result<Self, KeyError> {
        #[derive(serde::Deserialize)]
        struct Rotating {
            current: String,
            #[serde(default)]
            previous: Vec<String>,
        }
        let trimmed = secret.trim();
        if !trimmed.starts_with('{') {
            return Ok(Self::new(SigningKey::from_pem(trimmed)?, vec![]));
        }
        let rotating: Rotating = serde_json::from_str(trimmed)
            .map_err(|e| KeyError::Rejected(format!("key secret: {e}")))?;
        let previous = rotating
            .previous
            .iter()
            .map(|pem| SigningKey::from_pem(pem))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(
            SigningKey::from_pem(&rotating.current)?,
            previous,
        ))
    }

    pub fn current(&self) -> &SigningKey {
        &self.keys[0]
    }

    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Every key, the current one first.
    pub fn all(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The key new join challenges are signed with.
    pub fn challenge_key(&self) -> &aws_lc_rs::hmac::Key {
        &self.current().challenge
    }

    /// The keys join challenges are checked with, the one that signs them first.
    pub fn challenge_keys(&self) -> impl Iterator<Item = &aws_lc_rs::hmac::Key> {
        self.keys.iter().map(|key| &key.challenge)
    }

    /// Every key that verifies, as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        json!({ "keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem() {
        for algorithm in [KeyAlgorithm::RS256, KeyAlgorithm::EdDSA] {
            let key = SigningKey::generate(algorithm).unwrap();
            let again = SigningKey::from_pem(key.private_pem()).unwrap();
            assert_eq!(again.kid, key.kid);
            assert_eq!(again.algorithm, algorithm);
            assert_eq!(again.public_jwk(), key.public_jwk());
        }
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(matches!(
            SigningKey::from_pem("hello"),
            Err(KeyError::NotPem)
        ));
        let bogus = pem_encode("PRIVATE KEY", b"not a key");
        assert!(SigningKey::from_pem(&bogus).is_err());
    }

    #[test]
    fn a_secret_holds_one_key_or_a_rotation() {
        let current = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
        let previous = SigningKey::generate(KeyAlgorithm::RS256).unwrap();
        let single = KeyRing::from_secret(current.private_pem()).unwrap();
        assert_eq!(single.current().kid, current.kid);
        let rotating = serde_json::json!({
            "current": current.private_pem(),
            "previous": [previous.private_pem()],
        })
        .to_string();
        let ring = KeyRing::from_secret(&rotating).unwrap();
        assert_eq!(ring.current().kid, current.kid, "the new key signs");
        assert!(
            ring.find(&previous.kid).is_some(),
            "the old key still verifies"
        );
        assert!(KeyRing::from_secret("{\"current\": 5}").is_err());
        assert!(KeyRing::from_secret("not a key").is_err());
    }

    #[test]
    fn jwks_lists_every_key_with_its_kid() {
        let current = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
        let previous = SigningKey::generate(KeyAlgorithm::EdDSA).unwrap();
        let (a, b) = (current.kid.clone(), previous.kid.clone());
        let ring = KeyRing::new(current, vec![previous]);
        let kids: Vec<String> = ring.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kids, vec![a.clone(), b.clone()]);
        assert_eq!(ring.current().kid, a);
        assert!(ring.find(&b).is_some());
    }
}
