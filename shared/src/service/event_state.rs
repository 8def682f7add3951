//! What every waiting page of an event shares, rendered once per load of the event: the
//! `/event_state` document and the two counters of the AWS solution's API. Each is kept as the
//! bytes of its answer with its validators, so a cached read copies nothing and takes no lock,
//! and the CDN can keep it, keyed on the event id alone.
//!
//! Everything in the document is a function of the stored data (and of which schedule times
//! have passed), never of when it was read: two instances loading the same data render the same
//! bytes, the same `ETag` and the same `Last-Modified`, so caches agree and revalidate cheaply.

use axum::body::Bytes;
use axum::http::HeaderValue;
use serde::Serialize;

use super::visitor::UNASSIGNED_GRACE_MS;
use crate::domain::eta::{self, PollPolicy};
use crate::domain::{EventConfig, EventCounters, EventId, EventState, ServingIncrement};

/// Serving moves the document lists at most: enough for the rate window of a room that moves
/// every few seconds, small enough to keep the document a few kilobytes.
pub const MAX_MOVES: usize = 64;

/// An answer rendered once: its JSON body and validators, as the header values they are sent
/// as (checked once here, not on every request).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    /// Quoted, as sent in `ETag`.
    pub etag: HeaderValue,
    /// When the data behind the answer last changed (ms since the epoch).
    pub changed_at_ms: i64,
    /// `changed_at_ms` as an HTTP date (one-second resolution).
    pub last_modified: HeaderValue,
}

impl Rendered {
    pub fn new(body: Vec<u8>, etag: String, changed_at_ms: i64) -> Self {
        let changed = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(changed_at_ms.div_euclid(1000).max(0) as u64);
        Self {
            body: Bytes::from(body),
            // The tag is hex digits and dashes, the date ASCII: both always valid header values.
            etag: HeaderValue::from_str(&format!("\"{etag}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
            changed_at_ms,
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(changed))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        }
    }
}

/// One move of the serving counter as a page reads it: places `from + 1 ..= to` were let in at
/// `at_ms` and may claim their token until `claim_by_ms` (fixed when the move was made).
#[derive(Debug, Serialize)]
struct Move {
    from: u64,
    to: u64,
    at_ms: i64,
    claim_by_ms: i64,
}

/// The pre-queue draw a page needs to compute its own place. The seed is a string: it is a
/// 64-bit number, more than a JavaScript number holds exactly.
#[derive(Debug, Serialize)]
struct DrawDoc {
    size: u64,
    seed: String,
}

/// The poll policy, and how long the room keeps waiting for an unplaced request before it
/// forgets it (a page must not give up on its request sooner).
#[derive(Debug, Serialize)]
struct Poll {
    #[serde(flatten)]
    policy: PollPolicy,
    unplaced_grace_ms: i64,
}

/// `GET /event_state`: everything the waiting pages of one event share.
#[derive(Debug, Serialize)]
struct Document<'a> {
    event_id: &'a EventId,
    name: &'a str,
    state: EventState,
    /// Moves on every reset; with `reset_at_ms` a page tells its place is from before it.
    generation: u64,
    reset_at_ms: i64,
    opens_at_ms: Option<i64>,
    starts_at_ms: Option<i64>,
    ends_at_ms: Option<i64>,
    serving_counter: u64,
    queue_counter: u64,
    waiting_num: u64,
    /// Visitors let in per minute, measured over the moves below, as of the last one.
    admission_rate_per_min: f64,
    /// Recent moves of the serving counter, oldest first (the rate window before the last
    /// move, at most [`MAX_MOVES`]).
    serving_moves: Vec<Move>,
    position_expiry_secs: u64,
    draw: Option<DrawDoc>,
    poll: Poll,
    message: &'a str,
    /// The operator's title, logo and colour for the page (text and checked values only).
    title: &'a str,
    logo_url: &'a str,
    accent_color: &'a str,
    target_url: &'a str,
    changed_at_ms: i64,
}

/// The three shared answers of one event.
#[derive(Debug, Clone)]
pub struct SharedAnswers {
    pub event_state: Rendered,
    pub serving_num: Rendered,
    pub waiting_num: Rendered,
}

/// When the document's data last changed: the counters, the config, the draw, or a schedule
/// time that passed (the state changes then).
fn changed_at_ms(config: &EventConfig, counters: &EventCounters, now_ms: i64) -> i64 {
    let schedule = config.schedule;
    [
        counters.serving_changed_at_ms,
        counters.queue_changed_at_ms,
        counters.reset_at_ms,
        config.updated_at_ms,
        config.draw.map_or(0, |d| d.drawn_at_ms),
    ]
    .into_iter()
    .chain(
        [
            schedule.prequeue_at_ms,
            schedule.start_at_ms,
            schedule.end_at_ms,
        ]
        .into_iter()
        .flatten()
        .filter(|&at| at <= now_ms),
    )
    .max()
    .unwrap_or(0)
}

/// FNV-1a: a fixed hash (not std's, which may change between builds), so every instance gives
/// the same document the same `ETag`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn json(value: &impl Serialize) -> Vec<u8> {
    // Plain structs of numbers and strings always serialise.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Renders the shared answers from one load of the event. `moves` are the serving moves from
/// the rate window before the last move, oldest first.
pub fn render(
    config: &EventConfig,
    counters: &EventCounters,
    moves: &[ServingIncrement],
    now_ms: i64,
) -> SharedAnswers {
    let c = counters;
    let recent = &moves[moves.len().saturating_sub(MAX_MOVES)..];
    let rate = eta::admission_rate(recent, c.serving_changed_at_ms);
    let changed = changed_at_ms(config, counters, now_ms);
    let document = Document {
        event_id: &config.event_id,
        name: &config.name,
        state: config.state(now_ms),
        generation: c.generation,
        reset_at_ms: c.reset_at_ms,
        opens_at_ms: config.schedule.prequeue_at_ms,
        starts_at_ms: config.schedule.start_at_ms,
        ends_at_ms: config.schedule.end_at_ms,
        serving_counter: c.serving_counter,
        queue_counter: c.queue_counter,
        waiting_num: c.waiting(),
        admission_rate_per_min: (rate * 600.0).round() / 10.0,
        serving_moves: recent
            .iter()
            .map(|m| Move {
                from: m.previous,
                to: m.serving_counter,
                at_ms: m.at_ms,
                claim_by_ms: m.claim_by_ms,
            })
            .collect(),
        position_expiry_secs: config.position_expiry_secs,
        draw: config.draw.map(|d| DrawDoc {
            size: d.size,
            seed: d.seed.to_string(),
        }),
        poll: Poll {
            policy: eta::POLL_POLICY,
            unplaced_grace_ms: UNASSIGNED_GRACE_MS,
        },
        message: &config.message,
        title: &config.appearance.title,
        logo_url: &config.appearance.logo_url,
        accent_color: &config.appearance.accent_color,
        target_url: &config.target_url,
        changed_at_ms: changed,
    };
    let body = json(&document);
    let etag = format!("e{:x}-{:016x}", changed, fnv1a(&body));
    SharedAnswers {
        event_state: Rendered::new(body, etag, changed),
        serving_num: Rendered::new(
            json(&serde_json::json!({ "serving_counter": c.serving_counter })),
            format!(
                "s{}-{}-{}",
                c.generation, c.serving_counter, c.serving_changed_at_ms
            ),
            c.serving_changed_at_ms,
        ),
        waiting_num: Rendered::new(
            json(&serde_json::json!({ "waiting_num": c.waiting() })),
            format!(
                "w{}-{}-{}",
                c.generation, c.queue_counter, c.serving_counter
            ),
            c.serving_changed_at_ms.max(c.queue_changed_at_ms),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Draw, Schedule};

    fn config() -> EventConfig {
        let mut config = EventConfig::new(EventId::parse("e").unwrap());
        config.updated_at_ms = 1_000;
        config
    }

    fn document(answers: &SharedAnswers) -> serde_json::Value {
        serde_json::from_slice(&answers.event_state.body).unwrap()
    }

    #[test]
    fn the_same_data_renders_the_same_bytes_and_validators_whenever_it_is_read() {
        let counters = EventCounters {
            queue_counter: 10,
            serving_counter: 4,
            serving_changed_at_ms: 50_000,
            ..EventCounters::default()
        };
        let moves = [ServingIncrement {
            previous: 0,
            serving_counter: 4,
            at_ms: 50_000,
            claim_by_ms: 950_000,
        }];
        let a = render(&config(), &counters, &moves, 60_000);
        let b = render(&config(), &counters, &moves, 90_000);
        assert_eq!(a.event_state.body, b.event_state.body);
        assert_eq!(a.event_state.etag, b.event_state.etag);
        assert_eq!(a.event_state.changed_at_ms, 50_000);
        let doc = document(&a);
        assert_eq!(doc["serving_moves"][0]["to"], 4);
        assert_eq!(doc["waiting_num"], 6);
        // 4 admitted, measured over at least 10 s: 0.4/s.
        assert_eq!(doc["admission_rate_per_min"], 24.0);
    }

    #[test]
    fn a_change_anywhere_moves_the_validators() {
        let counters = EventCounters::default();
        let before = render(&config(), &counters, &[], 5_000);
        let mut paused = config();
        paused.paused = true;
        paused.updated_at_ms = 2_000;
        let after = render(&paused, &counters, &[], 5_000);
        assert_ne!(before.event_state.etag, after.event_state.etag);
        assert_eq!(after.event_state.changed_at_ms, 2_000);
        assert_eq!(document(&after)["state"], "paused");
    }

    #[test]
    fn a_schedule_time_that_passes_is_a_change_and_the_seed_is_a_string() {
        let mut config = config();
        config.schedule = Schedule {
            prequeue_at_ms: Some(10_000),
            start_at_ms: Some(20_000),
            end_at_ms: None,
        };
        let counters = EventCounters::default();
        let early = render(&config, &counters, &[], 15_000);
        assert_eq!(early.event_state.changed_at_ms, 10_000);
        assert_eq!(document(&early)["state"], "pre_queue");
        config.draw = Some(Draw {
            size: 3,
            seed: u64::MAX,
            drawn_at_ms: 20_500,
        });
        let drawn = render(&config, &counters, &[], 21_000);
        assert_eq!(drawn.event_state.changed_at_ms, 20_500);
        assert_eq!(document(&drawn)["draw"]["seed"], u64::MAX.to_string());
    }
}
