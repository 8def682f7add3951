//! An event: one line of visitors with its own counters, strategy and limits.

use serde::{Deserialize, Serialize};

use super::strategy::Strategy;
use crate::error::Error;

/// Longest event id accepted: ids travel in URLs, cache keys and token audiences.
const MAX_EVENT_ID_LEN: usize = 64;

/// Validated event identifier: 1–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_EVENT_ID_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::Invalid(format!(
                "event_id must be 1-{MAX_EVENT_ID_LEN} characters of letters, digits, '-' or '_'"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = Error;
    fn try_from(raw: String) -> Result<Self, Error> {
        Self::parse(&raw)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.0
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an operator sets for an event. Counters live apart, in [`super::EventCounters`],
/// because they change thousands of times more often than the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventConfig {
    pub event_id: EventId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// Lifetime of an issued token, in seconds.
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// How long a served visitor may wait before claiming a token, in seconds.
    #[serde(default = "default_position_expiry")]
    pub position_expiry_secs: u64,
    /// Where the visitor page sends an admitted visitor, with the token appended.
    #[serde(default)]
    pub target_url: String,
    /// While paused the serving counter is frozen: nobody new is admitted.
    #[serde(default)]
    pub paused: bool,
}

fn default_token_ttl() -> u64 {
    3600
}

fn default_position_expiry() -> u64 {
    900
}

impl EventConfig {
    /// A new event with the defaults of the AWS solution (1 h tokens, 15 min to claim).
    pub fn new(event_id: EventId) -> Self {
        Self {
            name: event_id.to_string(),
            event_id,
            strategy: Strategy::default(),
            token_ttl_secs: default_token_ttl(),
            position_expiry_secs: default_position_expiry(),
            target_url: String::new(),
            paused: false,
        }
    }

    /// Checks the limits an operator may set, so a typo cannot stall or flood a room.
    pub fn validate(&self) -> Result<(), Error> {
        if !(10..=7 * 24 * 3600).contains(&self.token_ttl_secs) {
            return Err(Error::Invalid(
                "token_ttl_secs must be between 10 and 604800".into(),
            ));
        }
        if !(10..=7 * 24 * 3600).contains(&self.position_expiry_secs) {
            return Err(Error::Invalid(
                "position_expiry_secs must be between 10 and 604800".into(),
            ));
        }
        if self.name.len() > 200 || self.target_url.len() > 2048 {
            return Err(Error::Invalid("name or target_url too long".into()));
        }
        let url_ok = self.target_url.is_empty()
            || self.target_url.starts_with("https://")
            || self.target_url.starts_with("http://");
        if !url_ok {
            return Err(Error::Invalid(
                "target_url must start with http:// or https://".into(),
            ));
        }
        self.strategy.validate()
    }
}

/// Where an event stands, as the visitor page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    Open,
    Paused,
}

impl EventConfig {
    pub fn state(&self) -> EventState {
        if self.paused {
            EventState::Paused
        } else {
            EventState::Open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_url_safe_and_bounded() {
        assert!(EventId::parse("sale-2026_A").is_ok());
        assert!(EventId::parse("").is_err());
        assert!(EventId::parse("a b").is_err());
        assert!(EventId::parse("../etc").is_err());
        assert!(EventId::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn config_rejects_limits_that_would_stall_a_room() {
        let mut config = EventConfig::new(EventId::parse("e").unwrap());
        assert!(config.validate().is_ok());
        config.token_ttl_secs = 0;
        assert!(config.validate().is_err());
        config.token_ttl_secs = 60;
        config.target_url = "javascript:alert(1)".into();
        assert!(config.validate().is_err());
    }
}
