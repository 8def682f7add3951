//! What an operator does: create and tune events, move the counter, end sessions, reset.
//! Every change is written to the event's audit trail with who made it.

use serde::{Deserialize, Serialize};

use super::WaitingRoom;
use crate::domain::event::check_count;
use crate::domain::{
    Appearance, BypassCode, ChallengeCounts, ChallengeMode, ChallengeSettings, EventConfig,
    EventCounters, EventId, EventState, RequestId, Schedule, ServingIncrement, SessionEnd,
    Strategy, eta,
};
use crate::error::Error;
use crate::ports::{AuditEntry, EndOutcome, Page};

/// Longest page of `expired_tokens`.
pub const MAX_PAGE: usize = 1_000;

/// The fields an operator sends to create an event; everything but the id has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    pub event_id: EventId,
    pub name: Option<String>,
    pub strategy: Option<Strategy>,
    pub token_ttl_secs: Option<u64>,
    pub position_expiry_secs: Option<u64>,
    pub target_url: Option<String>,
    pub paused: Option<bool>,
    pub schedule: Option<Schedule>,
    pub rate_limit_per_min: Option<u64>,
    pub safety_net: Option<bool>,
    pub authorizer_fail_open: Option<bool>,
    pub message: Option<String>,
    pub appearance: Option<Appearance>,
    pub challenge: Option<ChallengeSettings>,
}

impl NewEvent {
    pub fn into_config(self) -> EventConfig {
        let mut config = EventConfig::new(self.event_id);
        if let Some(name) = self.name {
            config.name = name;
        }
        if let Some(strategy) = self.strategy {
            config.strategy = strategy;
        }
        if let Some(ttl) = self.token_ttl_secs {
            config.token_ttl_secs = ttl;
        }
        if let Some(expiry) = self.position_expiry_secs {
            config.position_expiry_secs = expiry;
        }
        if let Some(url) = self.target_url {
            config.target_url = url;
        }
        if let Some(paused) = self.paused {
            config.paused = paused;
        }
        if let Some(schedule) = self.schedule {
            config.schedule = schedule;
        }
        config.rate_limit_per_min = self.rate_limit_per_min;
        if let Some(safety_net) = self.safety_net {
            config.safety_net = safety_net;
        }
        if let Some(fail_open) = self.authorizer_fail_open {
            config.authorizer_fail_open = fail_open;
        }
        if let Some(message) = self.message {
            config.message = message;
        }
        if let Some(appearance) = self.appearance {
            config.appearance = appearance;
        }
        if let Some(challenge) = self.challenge {
            config.challenge = challenge;
        }
        config
    }
}

/// Codes an operator asks for: the given spellings, or `count` random ones; each usable
/// `uses` times (1: single-use).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCodes {
    #[serde(default)]
    pub codes: Vec<String>,
    #[serde(default)]
    pub count: u32,
    #[serde(default = "one")]
    pub uses: u64,
}

fn one() -> u64 {
    1
}

/// Most codes made in one request.
const MAX_CODES_PER_REQUEST: usize = 1_000;

/// A snapshot for the control panel, computed from counters only (never a scan).
#[derive(Debug, Clone, Serialize)]
pub struct EventMetrics {
    pub config: EventConfig,
    pub state: EventState,
    pub counters: EventCounters,
    pub waiting: u64,
    pub active_tokens: u64,
    /// Served but not yet claimed or expired.
    pub pending_claims: u64,
    pub in_flight: u64,
    pub admission_rate_per_min: f64,
    /// Serving counter moves of the last few minutes, for the admission chart.
    pub recent_admissions: Vec<ServingIncrement>,
    /// Join challenges issued, solved and refused, as this process counted them (on AWS the
    /// `challenges_total` metric counts them across the functions).
    pub challenges: ChallengeCounts,
    pub at_ms: i64,
}

impl WaitingRoom {
    pub(super) async fn audit(
        &self,
        actor: &str,
        action: &str,
        event_id: &EventId,
        detail: String,
    ) {
        // Operators' text (an event's name, its URL) is kept and logged with control characters
        // escaped: a name holding a line break must not forge a line of the trail or the log.
        let entry = AuditEntry {
            at_ms: self.now_ms(),
            actor: escape_controls(actor),
            action: escape_controls(action),
            event_id: event_id.clone(),
            detail: escape_controls(&detail),
        };
        // The change itself already landed; a lost audit line is logged, not fatal.
        if let Err(error) = self.store.append_audit(&entry).await {
            tracing::warn!(%error, action, event_id = %event_id, "audit entry not written");
        }
        tracing::info!(actor = %entry.actor, action = %entry.action, event_id = %event_id, detail = %entry.detail, "admin change");
    }

    pub async fn create_event(&self, mut config: EventConfig, actor: &str) -> Result<(), Error> {
        config.validate()?;
        config.updated_at_ms = self.now_ms();
        if !self.store.create_event(&config, self.now_ms()).await? {
            return Err(Error::EventExists);
        }
        self.invalidate(&config.event_id);
        self.audit(actor, "create_event", &config.event_id, describe(&config))
            .await;
        Ok(())
    }

    /// Creates the event unless it exists (for the events a server starts with).
    pub async fn ensure_event(&self, config: EventConfig) -> Result<(), Error> {
        match self.create_event(config, "startup").await {
            Ok(()) | Err(Error::EventExists) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn update_event(&self, config: EventConfig, actor: &str) -> Result<(), Error> {
        self.change_event(config, actor, "update_event").await
    }

    /// Stores a changed config and records the change under `action`.
    async fn change_event(
        &self,
        mut config: EventConfig,
        actor: &str,
        action: &str,
    ) -> Result<(), Error> {
        config.validate()?;
        config.updated_at_ms = self.now_ms();
        if !self.store.update_event(&config).await? {
            return Err(Error::UnknownEvent);
        }
        self.invalidate(&config.event_id);
        self.audit(actor, action, &config.event_id, describe(&config))
            .await;
        Ok(())
    }

    pub async fn event(&self, event_id: &EventId) -> Result<EventConfig, Error> {
        self.store
            .get_event(event_id)
            .await?
            .ok_or(Error::UnknownEvent)
    }

    pub async fn events(&self) -> Result<Vec<EventConfig>, Error> {
        Ok(self.store.list_events().await?)
    }

    pub async fn set_paused(
        &self,
        event_id: &EventId,
        paused: bool,
        actor: &str,
    ) -> Result<(), Error> {
        let mut config = self.event(event_id).await?;
        config.paused = paused;
        let action = if paused { "pause" } else { "resume" };
        self.change_event(config, actor, action).await
    }

    /// Ends the event (nobody joins or gets a token any more), or reopens it.
    pub async fn set_closed(
        &self,
        event_id: &EventId,
        closed: bool,
        actor: &str,
    ) -> Result<(), Error> {
        let mut config = self.event(event_id).await?;
        config.closed = closed;
        let action = if closed { "close" } else { "reopen" };
        self.change_event(config, actor, action).await
    }

    /// Moves the serving counter by hand; never past the queue counter. Returns the new value.
    pub async fn increment_serving(
        &self,
        event_id: &EventId,
        by: u64,
        actor: &str,
    ) -> Result<u64, Error> {
        check_count("increment_by", by, 0)?;
        let config = self.event(event_id).await?;
        match config.state(self.now_ms()) {
            EventState::Open => {}
            EventState::Paused => return Err(Error::Paused),
            EventState::Closed => return Err(Error::Closed),
            EventState::NotOpen | EventState::PreQueue => return Err(Error::NotOpen),
        }
        let increment = self
            .store
            .advance_serving(event_id, None, by, self.now_ms())
            .await?;
        self.invalidate(event_id);
        let serving = match increment {
            Some(inc) => inc.serving_counter,
            None => self.counters(event_id).await?.serving_counter,
        };
        self.audit(
            actor,
            "increment_serving_counter",
            event_id,
            format!("by {by} to {serving}"),
        )
        .await;
        Ok(serving)
    }

    /// Creates bypass or invite codes for an event and returns them.
    pub async fn create_codes(
        &self,
        event_id: &EventId,
        request: NewCodes,
        actor: &str,
    ) -> Result<Vec<BypassCode>, Error> {
        check_count("uses", request.uses, 1)?;
        // Counted before any is made: `count` alone could ask for billions.
        let wanted = request.codes.len().saturating_add(request.count as usize);
        if !(1..=MAX_CODES_PER_REQUEST).contains(&wanted) {
            return Err(Error::Invalid(format!(
                "ask for between 1 and {MAX_CODES_PER_REQUEST} codes"
            )));
        }
        let mut spellings = request.codes;
        // Random codes: 16 hex digits of a v4 UUID (60 random bits), upper case for reading.
        spellings.extend(
            (0..request.count)
                .map(|_| uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase()),
        );
        let now = self.now_ms();
        let codes = spellings
            .into_iter()
            .map(|code| {
                crate::domain::request::validate_code(&code)?;
                Ok(BypassCode {
                    code,
                    uses_left: request.uses,
                    created_at_ms: now,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if !self.store.put_codes(event_id, &codes).await? {
            return Err(Error::UnknownEvent);
        }
        // The trail records how many, never the codes themselves.
        self.audit(
            actor,
            "create_codes",
            event_id,
            format!("{} codes, {} uses each", codes.len(), request.uses),
        )
        .await;
        Ok(codes)
    }

    /// The counters with the exit counts summed now (operators' reads and admission; the hot
    /// reads take the counters the runner last settled, through [`WaitingRoom::view`]).
    pub async fn counters(&self, event_id: &EventId) -> Result<EventCounters, Error> {
        self.store
            .count_exits(event_id, self.now_ms())
            .await?
            .ok_or(Error::UnknownEvent)
    }

    pub async fn expired_tokens(
        &self,
        event_id: &EventId,
        after: Option<RequestId>,
        limit: usize,
    ) -> Result<Page, Error> {
        self.event(event_id).await?;
        Ok(self
            .store
            .expired_tokens(event_id, after, limit.clamp(1, MAX_PAGE), self.now_ms())
            .await?)
    }

    /// Ends a session: revokes its token at once and frees its MaxSize slot on the runner's
    /// next pass. The main application calls this for every visitor, so it touches no item
    /// every visitor shares: the event is checked against the cached config, nothing cached
    /// is dropped (the views show exit counts as the runner settles them), and the end goes
    /// to the logs rather than to the audit trail, a single partition kept for changes to the
    /// event.
    pub async fn update_session(
        &self,
        event_id: &EventId,
        request_id: &RequestId,
        end: SessionEnd,
        actor: &str,
    ) -> Result<EndOutcome, Error> {
        self.cached_config(event_id).await?;
        let outcome = self
            .store
            .end_session(event_id, request_id, end, self.now_ms())
            .await?;
        match outcome {
            EndOutcome::UnknownRequest => return Err(Error::UnknownRequest),
            EndOutcome::NoToken => return Err(Error::NotServed),
            EndOutcome::Ended | EndOutcome::AlreadyEnded => {}
        }
        tracing::info!(actor, event_id = %event_id, request_id = %request_id, ?end, ?outcome, "session ended");
        Ok(outcome)
    }

    /// Starts the event over: counters to zero, every position and token forgotten. The
    /// counters' generation moves, so cached answers and validators change with it.
    pub async fn reset(&self, event_id: &EventId, actor: &str) -> Result<(), Error> {
        if !self.store.reset_event(event_id, self.now_ms()).await? {
            return Err(Error::UnknownEvent);
        }
        self.invalidate(event_id);
        self.moves.forget(event_id);
        self.audit(actor, "reset_initial_state", event_id, String::new())
            .await;
        Ok(())
    }

    pub async fn metrics(&self, event_id: &EventId) -> Result<EventMetrics, Error> {
        let config = self.event(event_id).await?;
        let counters = self.counters(event_id).await?;
        let now = self.now_ms();
        let recent_admissions = self
            .store
            .serving_history(event_id, now - eta::RATE_WINDOW_MS)
            .await?;
        let rate = eta::admission_rate(&recent_admissions, now);
        Ok(EventMetrics {
            state: config.state(now),
            config,
            waiting: counters.waiting(),
            active_tokens: counters.active_tokens(),
            pending_claims: counters.pending_claims(),
            in_flight: counters.in_flight(),
            admission_rate_per_min: (rate * 600.0).round() / 10.0,
            counters,
            recent_admissions,
            challenges: self.guard.counts(event_id),
            at_ms: now,
        })
    }

    pub async fn audit_log(
        &self,
        event_id: &EventId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, Error> {
        self.event(event_id).await?;
        Ok(self
            .store
            .audit_log(event_id, limit.clamp(1, MAX_PAGE))
            .await?)
    }
}

/// An event's settings in one line an operator can read in the audit trail.
fn describe(config: &EventConfig) -> String {
    let strategy = match config.strategy {
        Strategy::Manual => "manual".to_owned(),
        Strategy::MaxSize { max_active } => format!("max size {max_active}"),
        Strategy::Periodic {
            increment_by,
            interval_secs,
        } => format!("{increment_by} every {interval_secs} s"),
    };
    let mut parts = vec![
        format!("\"{}\"", config.name),
        strategy,
        format!("tokens {} s", config.token_ttl_secs),
        format!("claim within {} s", config.position_expiry_secs),
    ];
    if let Some(limit) = config.rate_limit_per_min {
        parts.push(format!("at most {limit}/min"));
    }
    if config.safety_net {
        parts.push("safety net".into());
    }
    if config.authorizer_fail_open {
        parts.push("authorizer fails open".into());
    }
    match config.challenge.mode {
        ChallengeMode::Off => {}
        mode => parts.push(format!(
            "join challenge {mode:?} at {} bits",
            config.challenge.difficulty
        )),
    }
    let Schedule {
        prequeue_at_ms,
        start_at_ms,
        end_at_ms,
    } = config.schedule;
    for (label, at) in [
        ("pre-queue", prequeue_at_ms),
        ("start", start_at_ms),
        ("end", end_at_ms),
    ] {
        if let Some(at) = at {
            parts.push(format!("{label} {}", date(at)));
        }
    }
    if config.paused {
        parts.push("paused".into());
    }
    if config.closed {
        parts.push("closed".into());
    }
    if !config.target_url.is_empty() {
        parts.push(format!("target {}", config.target_url));
    }
    if !config.message.is_empty() {
        parts.push(format!("message \"{}\"", config.message));
    }
    parts.join(" · ")
}

/// A time for the audit trail: an HTTP date, or the raw milliseconds for a time no calendar
/// formatter takes (validation keeps such times out; the trail must never fail on one).
fn date(at_ms: i64) -> String {
    // httpdate takes years 1970 to 9999 and panics beyond.
    const YEAR_10000_MS: i64 = 253_402_300_800_000;
    if (0..YEAR_10000_MS).contains(&at_ms) {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at_ms as u64);
        httpdate::fmt_http_date(time)
    } else {
        format!("{at_ms} ms after the epoch")
    }
}

/// `text` with every control character (and the Unicode line separators) written as an escape,
/// so it stays on one line of a log or of the audit trail.
pub fn escape_controls(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_whatever_the_time() {
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(date(253_402_300_799_999), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(
            date(253_402_300_800_000),
            "253402300800000 ms after the epoch"
        );
        assert_eq!(date(i64::MIN), format!("{} ms after the epoch", i64::MIN));
        assert_eq!(date(i64::MAX), format!("{} ms after the epoch", i64::MAX));
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            escape_controls("Sale\r\n2026-01-01 INFO forged\u{1b}[31m"),
            "Sale\\r\\n2026-01-01 INFO forged\\u{1b}[31m"
        );
        assert_eq!(
            escape_controls("a\u{2028}b\tc\u{9b}"),
            "a\\u{2028}b\\tc\\u{9b}"
        );
        assert_eq!(
            escape_controls("Grande braderie · été"),
            "Grande braderie · été"
        );
    }
}
