//! An event: one line of visitors with its own counters, strategy and limits.

use serde::{Deserialize, Serialize};

use super::challenge::ChallengeSettings;
use super::strategy::Strategy;
use crate::error::Error;

/// Longest event id accepted: ids travel in URLs, cache keys and token audiences.
const MAX_EVENT_ID_LEN: usize = 64;

/// Longest operator message: a line or two on a phone.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Earliest time an operator may put in a schedule: 2000-01-01T00:00:00Z (ms since the epoch).
pub const EARLIEST_TIME_MS: i64 = 946_684_800_000;
/// Latest: 2200-01-01T00:00:00Z. Any sale fits, and so does every date formatter and every sum
/// of a time and a lifetime.
pub const LATEST_TIME_MS: i64 = 7_258_118_400_000;
/// Largest count an operator may set (caps, increments, rate limits, uses): beyond any event,
/// and exact in every JSON reader (browsers keep 53 bits of an integer).
pub const MAX_COUNT: u64 = 1_000_000_000;

/// Checks that an operator's count is between `min` and [`MAX_COUNT`].
pub fn check_count(field: &str, value: u64, min: u64) -> Result<(), Error> {
    if (min..=MAX_COUNT).contains(&value) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{field} must be between {min} and {MAX_COUNT}"
        )))
    }
}

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
    /// Closed by the operator: the event is over, nobody joins or gets a token.
    #[serde(default)]
    pub closed: bool,
    /// When the line opens, the sale starts and the event ends.
    #[serde(default)]
    pub schedule: Schedule,
    /// At most this many new admissions per minute, on top of the strategy.
    #[serde(default)]
    pub rate_limit_per_min: Option<u64>,
    /// Let visitors through as soon as they have a position while the strategy and rate
    /// limits allow it, instead of waiting for the runner's next pass: the room only queues
    /// when traffic exceeds the limits.
    #[serde(default)]
    pub safety_net: bool,
    /// The pre-queue draw, recorded when the sale starts so anyone can replay it.
    #[serde(default)]
    pub draw: Option<Draw>,
    /// When the authorizer cannot check revocation (store down, breaker open): let tokens
    /// with a valid signature through (`true`), or refuse them with a 503 (`false`, the
    /// default: a completed or abandoned session stays shut out).
    #[serde(default)]
    pub authorizer_fail_open: bool,
    /// A note from the operator that every waiting page shows (empty: none).
    #[serde(default)]
    pub message: String,
    /// How the event's waiting page looks: its title, logo and colour.
    #[serde(default)]
    pub appearance: Appearance,
    /// Whether joining needs a solved proof of work, and how hard it is.
    #[serde(default)]
    pub challenge: ChallengeSettings,
    /// When the operator last changed the config (ms since the epoch; set by the room, not by
    /// the operator): with the counters' own change times, the validator of what pages poll.
    #[serde(default)]
    pub updated_at_ms: i64,
}

/// The operator's own title, logo and accent colour for the waiting page; empty: the room's.
/// Shown as text and checked values only, never as HTML.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Appearance {
    /// In place of "Waiting room" in the page's bar and tab.
    pub title: String,
    /// An `https://` image shown in place of the room's logo.
    pub logo_url: String,
    /// `#rrggbb`: buttons, the number, the progress bar.
    pub accent_color: String,
}

/// Longest title of a waiting page.
pub const MAX_TITLE_CHARS: usize = 80;

impl Appearance {
    fn validate(&self) -> Result<(), Error> {
        if self.title.chars().count() > MAX_TITLE_CHARS {
            return Err(Error::Invalid(format!(
                "appearance.title must be at most {MAX_TITLE_CHARS} characters"
            )));
        }
        let url_ok = self.logo_url.is_empty()
            || (self.logo_url.starts_with("https://")
                && self.logo_url.len() <= 2048
                && !self
                    .logo_url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "\"'<>`".contains(c)));
        if !url_ok {
            return Err(Error::Invalid(
                "appearance.logo_url must be an https:// address".into(),
            ));
        }
        let color_ok = self.accent_color.is_empty()
            || (self.accent_color.len() == 7
                && self.accent_color.starts_with('#')
                && self.accent_color[1..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit()));
        if !color_ok {
            return Err(Error::Invalid(
                "appearance.accent_color must be a colour like #2f5d8a".into(),
            ));
        }
        Ok(())
    }
}

/// Times (ms since the epoch) that shape an event; all optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schedule {
    /// Visitors may join from here; everyone who joins before `start_at_ms` is shuffled.
    pub prequeue_at_ms: Option<i64>,
    /// The sale starts: the pre-queue is drawn and admissions begin.
    pub start_at_ms: Option<i64>,
    /// The event is over.
    pub end_at_ms: Option<i64>,
}

/// The seeded permutation that ordered the pre-queue: arrivals `1..=size` were shuffled with
/// `seed` (see [`super::shuffle`]); later arrivals queue behind them in arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    pub size: u64,
    pub seed: u64,
    pub drawn_at_ms: i64,
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
            closed: false,
            schedule: Schedule::default(),
            rate_limit_per_min: None,
            safety_net: false,
            draw: None,
            authorizer_fail_open: false,
            message: String::new(),
            appearance: Appearance::default(),
            challenge: ChallengeSettings::default(),
            updated_at_ms: 0,
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
        if self.message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(Error::Invalid(format!(
                "message must be at most {MAX_MESSAGE_CHARS} characters"
            )));
        }
        let url_ok = self.target_url.is_empty()
            || self.target_url.starts_with("https://")
            || self.target_url.starts_with("http://");
        if !url_ok {
            return Err(Error::Invalid(
                "target_url must start with http:// or https://".into(),
            ));
        }
        let Schedule {
            prequeue_at_ms,
            start_at_ms,
            end_at_ms,
        } = self.schedule;
        if prequeue_at_ms.is_some() && start_at_ms.is_none() {
            return Err(Error::Invalid("a pre-queue needs a start time".into()));
        }
        let sensible =
            |at: Option<i64>| at.is_none_or(|at| (EARLIEST_TIME_MS..LATEST_TIME_MS).contains(&at));
        if ![prequeue_at_ms, start_at_ms, end_at_ms]
            .into_iter()
            .all(sensible)
        {
            return Err(Error::Invalid(format!(
                "schedule times must be between {EARLIEST_TIME_MS} (2000) and {LATEST_TIME_MS} \
                 (2200), in ms since the epoch"
            )));
        }
        let ordered = |a: Option<i64>, b: Option<i64>| a.zip(b).is_none_or(|(a, b)| a <= b);
        if !ordered(prequeue_at_ms, start_at_ms) || !ordered(start_at_ms, end_at_ms) {
            return Err(Error::Invalid(
                "schedule times must be in order: pre-queue, start, end".into(),
            ));
        }
        if let Some(limit) = self.rate_limit_per_min {
            check_count("rate_limit_per_min", limit, 1)?;
        }
        self.appearance.validate()?;
        self.challenge.validate()?;
        self.strategy.validate()
    }
}

/// Where an event stands, as the visitor page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Before the line opens: nobody may join yet.
    NotOpen,
    /// Visitors join and wait for the draw at the start.
    PreQueue,
    Open,
    /// Everyone queues; the serving counter is frozen.
    Paused,
    /// The event is over.
    Closed,
}

impl EventConfig {
    pub fn state(&self, now_ms: i64) -> EventState {
        let Schedule {
            prequeue_at_ms,
            start_at_ms,
            end_at_ms,
        } = self.schedule;
        let reached = |at: Option<i64>| at.is_some_and(|at| now_ms >= at);
        if self.closed || reached(end_at_ms) {
            EventState::Closed
        } else if start_at_ms.is_some() && !reached(start_at_ms) {
            if reached(prequeue_at_ms) {
                EventState::PreQueue
            } else {
                EventState::NotOpen
            }
        } else if self.awaits_draw() {
            // Started, but the runner has not drawn the pre-queue yet (at most one pass).
            EventState::PreQueue
        } else if self.paused {
            EventState::Paused
        } else {
            EventState::Open
        }
    }

    /// A pre-queue was held and its order is not drawn yet.
    pub fn awaits_draw(&self) -> bool {
        self.schedule.prequeue_at_ms.is_some() && self.draw.is_none()
    }

    /// The place in line of the visitor who arrived `arrival`-th: shuffled within the
    /// pre-queue, in arrival order after it.
    pub fn place(&self, arrival: u64) -> u64 {
        match self.draw {
            Some(draw) if arrival >= 1 && arrival <= draw.size => {
                1 + super::shuffle::permute(arrival - 1, draw.size, draw.seed)
            }
            _ => arrival,
        }
    }

    /// Visitors to admit now: what the strategy wants, within the rate limit given how many
    /// were admitted over the last minute.
    pub fn admissions(
        &self,
        counters: &super::EventCounters,
        now_ms: i64,
        admitted_last_minute: u64,
    ) -> u64 {
        let wanted = self.strategy.admissions(counters, now_ms);
        match self.rate_limit_per_min {
            Some(limit) => wanted.min(limit.saturating_sub(admitted_last_minute)),
            None => wanted,
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
        config.target_url = String::new();
        config.schedule.start_at_ms = Some(10);
        config.schedule.end_at_ms = Some(5);
        assert!(config.validate().is_err(), "ends before it starts");
    }

    #[test]
    fn the_appearance_takes_text_an_https_logo_and_a_hex_colour_only() {
        let mut config = EventConfig::new(EventId::parse("e").unwrap());
        config.appearance = Appearance {
            title: "春のセール <b>".into(),
            logo_url: "https://shop.example.com/logo.png".into(),
            accent_color: "#C0392b".into(),
        };
        assert!(
            config.validate().is_ok(),
            "any text is a title: it is shown as text"
        );
        for bad in [
            "http://shop.example.com/logo.png",
            "javascript:alert(1)",
            "https://x.example/a\" onerror=\"alert(1)",
            "https://x.example/a b",
        ] {
            config.appearance.logo_url = bad.into();
            assert!(config.validate().is_err(), "logo {bad}");
        }
        config.appearance.logo_url = String::new();
        for bad in ["red", "#12345", "#1234567", "#12345g", "url(x)"] {
            config.appearance.accent_color = bad.into();
            assert!(config.validate().is_err(), "colour {bad}");
        }
        config.appearance.accent_color = String::new();
        config.appearance.title = "x".repeat(MAX_TITLE_CHARS + 1);
        assert!(config.validate().is_err());
    }

    #[test]
    fn config_rejects_dates_and_counts_beyond_sensible_bounds() {
        let mut config = EventConfig::new(EventId::parse("e").unwrap());
        for at in [
            i64::MIN,
            -1,
            0,
            EARLIEST_TIME_MS - 1,
            LATEST_TIME_MS,
            253_402_300_800_000, // year 10000
            576_999_999_999_000,
            i64::MAX,
        ] {
            config.schedule = Schedule {
                end_at_ms: Some(at),
                ..Schedule::default()
            };
            assert!(config.validate().is_err(), "end at {at}");
        }
        config.schedule.end_at_ms = Some(LATEST_TIME_MS - 1);
        assert!(config.validate().is_ok());
        config.rate_limit_per_min = Some(MAX_COUNT + 1);
        assert!(config.validate().is_err());
        config.rate_limit_per_min = Some(MAX_COUNT);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_schedule_drives_the_state() {
        let mut config = EventConfig::new(EventId::parse("e").unwrap());
        assert_eq!(config.state(0), EventState::Open);
        config.schedule = Schedule {
            prequeue_at_ms: Some(100),
            start_at_ms: Some(200),
            end_at_ms: Some(300),
        };
        assert_eq!(config.state(99), EventState::NotOpen);
        assert_eq!(config.state(100), EventState::PreQueue);
        assert_eq!(
            config.state(250),
            EventState::PreQueue,
            "until the draw is made"
        );
        config.draw = Some(Draw {
            size: 3,
            seed: 1,
            drawn_at_ms: 200,
        });
        assert_eq!(config.state(250), EventState::Open);
        config.paused = true;
        assert_eq!(config.state(250), EventState::Paused);
        assert_eq!(config.state(300), EventState::Closed);
        config.schedule.end_at_ms = None;
        config.closed = true;
        assert_eq!(config.state(250), EventState::Closed);
    }

    #[test]
    fn places_are_shuffled_within_the_draw_and_in_arrival_order_after() {
        let mut config = EventConfig::new(EventId::parse("e").unwrap());
        assert_eq!(config.place(5), 5, "no draw: arrival order");
        config.draw = Some(Draw {
            size: 100,
            seed: 7,
            drawn_at_ms: 0,
        });
        let mut places: Vec<u64> = (1..=100).map(|a| config.place(a)).collect();
        assert_ne!(places, (1..=100).collect::<Vec<_>>(), "shuffled");
        places.sort_unstable();
        assert_eq!(
            places,
            (1..=100).collect::<Vec<_>>(),
            "a permutation of 1..=100"
        );
        assert_eq!(config.place(101), 101);
        assert_eq!(config.place(5_000), 5_000);
    }

    #[test]
    fn the_rate_limit_caps_the_strategy() {
        let mut config = EventConfig::new(EventId::parse("e").unwrap());
        config.strategy = Strategy::MaxSize { max_active: 100 };
        let counters = super::super::EventCounters {
            queue_counter: 1_000,
            ..Default::default()
        };
        assert_eq!(config.admissions(&counters, 0, 0), 100);
        config.rate_limit_per_min = Some(30);
        assert_eq!(config.admissions(&counters, 0, 0), 30);
        assert_eq!(config.admissions(&counters, 0, 25), 5);
        assert_eq!(config.admissions(&counters, 0, 40), 0);
    }
}
