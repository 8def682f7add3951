//! A visitor's place in line and, once admitted, its token.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// The id a visitor receives from enqueue (`api_request_id`): a UUIDv7, whose 74 random bits
/// make it unguessable and whose timestamp tells when the visitor arrived, so a request that
/// was never assigned can be told apart from one still in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(Uuid);

impl RequestId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// When the id was made (ms since the epoch); `None` for ids not made by [`Self::new`].
    pub fn created_at_ms(&self) -> Option<i64> {
        let (secs, nanos) = self.0.get_timestamp()?.to_unix();
        Some(secs as i64 * 1000 + (nanos / 1_000_000) as i64)
    }

    pub fn parse(raw: &str) -> Result<Self, Error> {
        Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| Error::Invalid("request_id must be a UUID".into()))
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<String> for RequestId {
    type Error = Error;
    fn try_from(raw: String) -> Result<Self, Error> {
        Self::parse(&raw)
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.0.to_string()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One visitor waiting to be given a position: the body of an enqueue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueRequest {
    pub event_id: super::EventId,
    pub request_id: RequestId,
    /// When the visitor arrived (ms since the epoch).
    pub entry_time_ms: i64,
}

/// Where a token's session stands. The numbers are the AWS solution's `status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Active,
    Completed,
    Abandoned,
    Expired,
}

impl SessionStatus {
    pub fn code(self) -> i32 {
        match self {
            SessionStatus::Active => 0,
            SessionStatus::Completed => 1,
            SessionStatus::Abandoned => -1,
            SessionStatus::Expired => -2,
        }
    }
}

/// How a session ended, as `update_session` reports it (1 completed, -1 abandoned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Completed,
    Abandoned,
}

impl SessionEnd {
    pub fn from_code(code: i64) -> Result<Self, Error> {
        match code {
            1 => Ok(SessionEnd::Completed),
            -1 => Ok(SessionEnd::Abandoned),
            _ => Err(Error::Invalid(
                "status must be 1 (completed) or -1 (abandoned)".into(),
            )),
        }
    }

    pub fn status(self) -> SessionStatus {
        match self {
            SessionEnd::Completed => SessionStatus::Completed,
            SessionEnd::Abandoned => SessionStatus::Abandoned,
        }
    }
}

/// The signed token set handed to an admitted visitor, kept so that asking again returns
/// the same tokens (signing RS256 three times costs milliseconds of CPU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Seconds since the epoch, as the JWT `iat` claim.
    pub issued_at: i64,
    /// Seconds since the epoch, as the JWT `exp` claim.
    pub expires_at: i64,
    pub access_token: String,
    pub refresh_token: String,
    pub id_token: String,
    pub status: SessionStatus,
}

/// A bypass or invite code: lets its holder skip the line, `uses_left` more times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BypassCode {
    pub code: String,
    pub uses_left: u64,
    pub created_at_ms: i64,
}

/// Longest code accepted.
pub const MAX_CODE_LEN: usize = 64;

/// Checks a code's spelling: 4–64 characters of `[A-Za-z0-9_-]`.
pub fn validate_code(code: &str) -> Result<(), Error> {
    let ok = (4..=MAX_CODE_LEN).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "codes are 4-64 characters of letters, digits, '-' or '_'".into(),
        ))
    }
}

/// A visitor with a position: its arrival number in the event's line (its place in line is
/// the same unless a pre-queue draw shuffled it, see [`super::EventConfig::place`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub request_id: RequestId,
    pub position: u64,
    pub entry_time_ms: i64,
    /// Let in by a bypass code, without a place in line (`position` is 0).
    #[serde(default)]
    pub bypass: bool,
    pub token: Option<TokenRecord>,
}

/// One move of the serving counter: positions `previous+1..=serving_counter` were let in at
/// `at_ms`. The claim window of each position runs from here, and the unclaimed remainder is
/// what expires (the AWS solution's serving-counter-issued-at table, minus its scans).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingIncrement {
    pub previous: u64,
    pub serving_counter: u64,
    pub at_ms: i64,
    /// Tokens claimed by positions of this increment.
    pub claimed: u64,
    /// Set once the claim window closed and the unclaimed positions were counted as expired.
    pub swept: bool,
}

impl ServingIncrement {
    pub fn size(&self) -> u64 {
        self.serving_counter - self.previous
    }

    pub fn contains(&self, position: u64) -> bool {
        position > self.previous && position <= self.serving_counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_must_be_uuids() {
        let id = RequestId::new();
        assert_eq!(RequestId::parse(&id.to_string()).unwrap(), id);
        assert!(RequestId::parse("42").is_err());
        assert!(RequestId::parse("<script>").is_err());
    }

    #[test]
    fn request_ids_carry_their_creation_time() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let at = RequestId::new().created_at_ms().unwrap();
        assert!((at - before).abs() < 1_000);
        let v4 = RequestId::parse("9b2f2a0e-5a4e-4d0c-9b59-2a4f5a0d8c11").unwrap();
        assert_eq!(v4.created_at_ms(), None);
    }

    #[test]
    fn session_status_codes_match_update_session() {
        assert_eq!(SessionEnd::from_code(1).unwrap().status().code(), 1);
        assert_eq!(SessionEnd::from_code(-1).unwrap().status().code(), -1);
        assert!(SessionEnd::from_code(0).is_err());
    }
}
