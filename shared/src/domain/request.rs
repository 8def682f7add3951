//! A visitor's place in line and, once admitted, its token.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// The id a visitor receives from enqueue (`api_request_id`): 64 lowercase hex digits holding
/// when it was made (ms since the epoch), the event's generation it was made in, and 122
/// random bits (a v4 UUID).
///
/// Why this shape. Holding a visitor's id is holding their place and token, so it must be
/// unguessable even among ids made in the same millisecond (a UUIDv7 keeps at most 74 random
/// bits, and far fewer when its counter fills the millisecond). The room must also tell a
/// request still in the enqueue buffer from one forgotten or wiped by a reset, without a store
/// write at enqueue: the creation time bounds how long the buffer may still hold it, and the
/// generation says on which side of a reset it was made. The consumer assigns only requests of
/// the event's current generation, and the look-ups report a missing request of an older one
/// as gone, so both agree request by request, not to the millisecond. Clients treat the id as
/// an opaque string (the AWS solution's did), and the text sorts as the value does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId {
    created_at_ms: u64,
    generation: u64,
    random: u128,
}

/// Hex digits of a request id's text.
const REQUEST_ID_LEN: usize = 64;

impl RequestId {
    /// A new id, made at `created_at_ms` in the event's `generation`. With
    /// [`RequestId::from_challenge`], the only places ids are made.
    pub fn new(created_at_ms: i64, generation: u64) -> Self {
        Self {
            created_at_ms: created_at_ms.max(0) as u64,
            generation,
            random: Uuid::new_v4().as_u128(),
        }
    }

    /// The id a solved join challenge names: made when the challenge was issued, its random
    /// part derived from the challenge (see [`crate::challenge::Solved`]), so the same
    /// solution always joins as the same request.
    pub fn from_challenge(issued_at_ms: i64, generation: u64, seed: u128) -> Self {
        Self {
            created_at_ms: issued_at_ms.max(0) as u64,
            generation,
            random: seed,
        }
    }

    /// When the id was made (ms since the epoch).
    pub fn created_at_ms(&self) -> i64 {
        i64::try_from(self.created_at_ms).unwrap_or(i64::MAX)
    }

    /// The generation of the event (see [`super::EventCounters::generation`]) it was made in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn parse(raw: &str) -> Result<Self, Error> {
        let invalid = || Error::Invalid("request_id must be 64 lowercase hex digits".into());
        let canonical = raw.len() == REQUEST_ID_LEN
            && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !canonical {
            return Err(invalid());
        }
        let field = |range: std::ops::Range<usize>| u128::from_str_radix(&raw[range], 16);
        match (field(0..16), field(16..32), field(32..64)) {
            (Ok(created_at_ms), Ok(generation), Ok(random)) => Ok(Self {
                created_at_ms: created_at_ms as u64,
                generation: generation as u64,
                random,
            }),
            _ => Err(invalid()),
        }
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
        id.to_string()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:016x}{:016x}{:032x}",
            self.created_at_ms, self.generation, self.random
        )
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl TokenRecord {
    /// The session's status at `now_ms`: an active session whose token has expired is
    /// expired (nothing is written when a token expires).
    pub fn status_at(&self, now_ms: i64) -> SessionStatus {
        if self.status == SessionStatus::Active && self.expires_at <= now_ms.div_euclid(1000) {
            SessionStatus::Expired
        } else {
            self.status
        }
    }
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
/// `at_ms` and may claim a token until `claim_by_ms`. The deadline is fixed when the move is
/// made, so an operator changing the claim window later never moves a window already open,
/// and it never goes down from one move to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingIncrement {
    pub previous: u64,
    pub serving_counter: u64,
    pub at_ms: i64,
    pub claim_by_ms: i64,
}

impl ServingIncrement {
    pub fn size(&self) -> u64 {
        self.serving_counter - self.previous
    }

    pub fn contains(&self, position: u64) -> bool {
        position > self.previous && position <= self.serving_counter
    }
}

/// How a claiming visitor was let in: what its claim counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// Through the line, at `position`, by a serving move whose claim window closes at
    /// `claim_by_ms`.
    Line { position: u64, claim_by_ms: i64 },
    /// Through a bypass code.
    Bypass,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_read_back_as_written_and_nothing_else() {
        let id = RequestId::new(1_767_225_600_123, 7);
        assert_eq!(RequestId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(id.to_string().len(), 64);
        assert!(RequestId::parse("42").is_err());
        assert!(RequestId::parse("<script>").is_err());
        assert!(RequestId::parse("9b2f2a0e-5a4e-4d0c-9b59-2a4f5a0d8c11").is_err());
        assert!(RequestId::parse(&id.to_string().to_uppercase()).is_err());
        assert!(RequestId::parse(&format!("+{}", &id.to_string()[1..])).is_err());
    }

    #[test]
    fn request_ids_carry_their_creation_time_and_generation() {
        let id = RequestId::new(1_767_225_600_123, 7);
        assert_eq!(id.created_at_ms(), 1_767_225_600_123);
        assert_eq!(id.generation(), 7);
        assert_eq!(RequestId::new(-5, 0).created_at_ms(), 0);
    }

    #[test]
    fn ids_of_one_instant_differ_in_their_random_bits() {
        let ids: Vec<RequestId> = (0..1_000).map(|_| RequestId::new(5, 1)).collect();
        let distinct: std::collections::HashSet<u128> = ids.iter().map(|id| id.random).collect();
        assert_eq!(distinct.len(), ids.len());
        // 122 random bits: v4 fixes the version nibble and two variant bits, nothing else.
        let varying = ids
            .iter()
            .fold(0u128, |acc, id| acc | (id.random ^ ids[0].random));
        assert_eq!(varying.count_ones(), 122);
    }

    #[test]
    fn the_text_sorts_as_the_id() {
        let mut ids: Vec<RequestId> = (0..200)
            .map(|i| RequestId::new(1_000 + i % 7, i as u64 % 3))
            .collect();
        let mut texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
        ids.sort();
        texts.sort();
        assert_eq!(
            ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            texts
        );
    }

    #[test]
    fn session_status_codes_match_update_session() {
        assert_eq!(SessionEnd::from_code(1).unwrap().status().code(), 1);
        assert_eq!(SessionEnd::from_code(-1).unwrap().status().code(), -1);
        assert!(SessionEnd::from_code(0).is_err());
    }
}
