//! The line of one event, second by second, with the room's own rules: the strategy decides
//! admissions ([`EventConfig::admissions`]), the measured admission rate gives the ETA
//! ([`eta::admission_rate`], [`eta::eta_seconds`]) and the ETA and distance give each visitor's
//! polling pace ([`eta::next_poll_ms`]). From the traffic it derives what every AWS service
//! sees, where the first limit is hit, and what it costs.

use waiting_room_core::domain::{EventConfig, EventCounters, ServingIncrement, eta};

use crate::aws::{Limits, PerCall, Traffic, Usage};
use crate::flow::FlowCounts;

/// How visitors arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// Evenly over `secs`.
    Uniform { secs: u64 },
    /// `share` of everyone within the first `spike_secs`, the rest evenly over the next `rest_secs`.
    Spike {
        share: f64,
        spike_secs: u64,
        rest_secs: u64,
    },
}

impl Arrival {
    /// Visitors arriving during second `t` (0-based), out of `total`.
    fn at(&self, t: u64, total: u64) -> f64 {
        let total = total as f64;
        match *self {
            Arrival::Uniform { secs } => {
                if t < secs.max(1) {
                    total / secs.max(1) as f64
                } else {
                    0.0
                }
            }
            Arrival::Spike {
                share,
                spike_secs,
                rest_secs,
            } => {
                let spike_secs = spike_secs.max(1);
                if t < spike_secs {
                    total * share / spike_secs as f64
                } else if t < spike_secs + rest_secs {
                    total * (1.0 - share) / rest_secs.max(1) as f64
                } else {
                    0.0
                }
            }
        }
    }

    /// `uniform:SECS` or `spike:SHARE:SPIKE_SECS:REST_SECS`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parts: Vec<&str> = raw.split(':').collect();
        let number = |s: &str| s.parse::<f64>().map_err(|e| format!("{raw}: {e}"));
        match parts.as_slice() {
            ["uniform", secs] => Ok(Arrival::Uniform {
                secs: number(secs)? as u64,
            }),
            ["spike", share, spike, rest] => Ok(Arrival::Spike {
                share: number(share)?.clamp(0.0, 1.0),
                spike_secs: number(spike)? as u64,
                rest_secs: number(rest)? as u64,
            }),
            _ => Err(format!(
                "arrival {raw:?}: use uniform:SECS or spike:SHARE:SPIKE_SECS:REST_SECS"
            )),
        }
    }
}

/// What the operator plans.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub visitors: u64,
    pub arrival: Arrival,
    /// Strategy, rate limit, token lifetime and claim window of the event.
    pub config: EventConfig,
    /// Seconds between two strategy passes (the template's `StrategyEverySecs`).
    pub runner_every_secs: u64,
    /// How long an admitted visitor stays before the main app ends the session
    /// (`update_session`); sessions never ended expire with their token.
    pub session_secs: u64,
    /// Share of served visitors who never claim their token (their place expires).
    pub abandon: f64,
    /// Requests to the main app per admitted visitor that go through the authorizer.
    pub authorized_requests: f64,
}

impl Scenario {
    pub fn new(visitors: u64, arrival: Arrival, config: EventConfig) -> Self {
        Self {
            visitors,
            arrival,
            config,
            runner_every_secs: 5,
            session_secs: 600,
            abandon: 0.05,
            authorized_requests: 0.0,
        }
    }
}

/// One second of the simulated event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Second {
    pub t: u64,
    pub arrived: f64,
    /// In SQS, not yet given a position.
    pub backlog: f64,
    /// With a position, not yet let in.
    pub waiting: f64,
    pub admitted: f64,
    pub polls: f64,
    pub api_requests: f64,
    pub lambda_concurrency: f64,
    pub event_item_wcu: f64,
    pub event_item_rcu: f64,
    pub table_wcu: f64,
    pub table_rcu: f64,
}

/// The first limit reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Bottleneck {
    pub limit: &'static str,
    pub at_secs: u64,
    pub demand: f64,
    pub capacity: f64,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub seconds: Vec<Second>,
    /// When the last visitor was let in (serving counter reached everyone), if it was.
    pub all_admitted_secs: Option<u64>,
    pub peak_waiting: f64,
    pub usage: Usage,
    /// Admitted visitors who claimed a token.
    pub claimed: f64,
    /// Every limit, by how close its peak came (demand / capacity), highest first.
    pub utilisation: Vec<(&'static str, f64, u64)>,
    pub first_bottleneck: Option<Bottleneck>,
}

/// Visitors who polled /status during one second, with `waiting` in line and the room
/// letting `rate` visitors in per second: each polls every `next_poll_ms(ahead, eta)`.
pub fn polls_per_sec(waiting: f64, rate: f64) -> f64 {
    let waiting = waiting.max(0.0);
    let n = waiting.floor() as u64;
    let pace = |ahead: u64| {
        let eta = eta::eta_seconds(ahead + 1, rate);
        1000.0 / eta::next_poll_ms(ahead, eta) as f64
    };
    // The pace only slows with distance, and is the slowest from where both the distance and
    // the ETA give the longest pause: beyond that, everyone polls at the slowest pace.
    let slowest = eta::MAX_POLL_MS as f64;
    let by_distance = (slowest as u64 - eta::MIN_POLL_MS) / 20 + 1;
    let by_eta = (rate * slowest / 250.0).ceil() as u64 + 1;
    let saturated = by_distance.max(by_eta).min(n);
    let mut total = 0.0;
    let mut ahead = 0;
    // Exact near the front, then in buckets of 0.5% of the distance (the pace changes slowly).
    while ahead < saturated {
        let width = if ahead < 2_000 {
            1
        } else {
            (ahead / 200).max(1)
        };
        let width = width.min(saturated - ahead);
        total += pace(ahead + width / 2) * width as f64;
        ahead += width;
    }
    total += (waiting - saturated as f64).max(0.0) * 1000.0 / slowest;
    total
}

struct Cohort {
    at: u64,
    count: f64,
}

/// Runs the event until everyone is in and has claimed (or let the claim lapse), at most 48 h.
pub fn simulate(
    scenario: &Scenario,
    flow: &FlowCounts,
    per_call: &PerCall,
    limits: &Limits,
) -> Outcome {
    let config = &scenario.config;
    let total = scenario.visitors as f64;
    let mut counters = EventCounters::default();
    // Counters in fractions (the model moves crowds, not people); the strategy sees whole ones.
    let (mut queue, mut serving, mut issued, mut completed, mut expired) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut backlog = 0.0f64;
    let mut arrived_total = 0.0f64;
    let mut history: Vec<ServingIncrement> = Vec::new();
    let mut to_claim: Vec<Cohort> = Vec::new();
    let mut to_expire: Vec<Cohort> = Vec::new();
    let mut to_complete: Vec<Cohort> = Vec::new();
    let mut usage = Usage::default();
    let mut seconds = Vec::new();
    let mut all_admitted = None;
    let mut peaks: Vec<(&'static str, f64, f64, u64)> = Vec::new(); // name, demand, cap, at
    let mut first: Option<Bottleneck> = None;
    let consumer_per_sec = limits.consumer_visitors_per_sec();
    let claim_delay = 1; // served visitors poll every second near the front

    for t in 0..48 * 3600u64 {
        let now_ms = t as i64 * 1000;
        let mut second = Second {
            t,
            ..Second::default()
        };

        // Arrivals: one enqueue request and one SQS message each.
        let arrived = scenario
            .arrival
            .at(t, scenario.visitors)
            .min(total - arrived_total);
        arrived_total += arrived;
        backlog += arrived;
        second.arrived = arrived;
        usage.enqueues += arrived;

        // The consumer: batches of up to 1,000 within the 1 s window.
        let assigned = backlog.min(consumer_per_sec);
        backlog -= assigned;
        queue += assigned;
        let batches = (assigned / 1_000.0).ceil();
        usage.batches += batches;
        usage.assigned += assigned;

        // Claims of visitors served a moment ago, and places that lapsed.
        let claims: f64 = drain_due(&mut to_claim, t);
        issued += claims;
        usage.tokens += claims;
        if claims > 0.0 {
            to_complete.push(Cohort {
                at: t + scenario.session_secs,
                count: claims,
            });
        }
        expired += drain_due(&mut to_expire, t);
        let ended = drain_due(&mut to_complete, t);
        completed += ended;
        usage.sessions_ended += ended;

        // The strategy runner.
        let mut admitted_now = 0.0;
        if t.is_multiple_of(scenario.runner_every_secs.max(1)) {
            usage.runner_passes += 1.0;
            counters.queue_counter = queue.floor() as u64;
            counters.serving_counter = serving.round() as u64;
            counters.tokens_issued = issued.round() as u64;
            counters.tokens_completed = completed.round() as u64;
            counters.positions_expired = expired.round() as u64;
            let last_minute: u64 = history
                .iter()
                .filter(|inc| inc.at_ms > now_ms - 60_000)
                .map(|inc| inc.size())
                .sum();
            let admit = config.admissions(&counters, now_ms, last_minute);
            if admit > 0 {
                history.push(ServingIncrement {
                    previous: counters.serving_counter,
                    serving_counter: counters.serving_counter + admit,
                    at_ms: now_ms,
                    claimed: 0,
                    swept: false,
                });
                counters.serving_changed_at_ms = now_ms;
                admitted_now = admit as f64;
                serving += admitted_now;
                usage.serving_moves += 1.0;
                to_claim.push(Cohort {
                    at: t + claim_delay,
                    count: admitted_now * (1.0 - scenario.abandon),
                });
                to_expire.push(Cohort {
                    at: t + config.position_expiry_secs,
                    count: admitted_now * scenario.abandon,
                });
            }
        }
        history.retain(|inc| inc.at_ms > now_ms - eta::RATE_WINDOW_MS);
        second.admitted = serving;
        // Everyone has arrived, has a place, and the counter has reached the last whole place
        // (arrivals come in fractions; the strategy admits whole visitors).
        let everyone_placed = arrived_total >= total - 0.5 && backlog < 0.5;
        if all_admitted.is_none() && everyone_placed && serving >= queue.floor() {
            all_admitted = Some(t);
        }

        // Polls: everyone holding a request id polls /status at the pace it is told.
        let rate = eta::admission_rate(&history, now_ms);
        let waiting = (queue - serving).max(0.0);
        second.waiting = waiting;
        second.backlog = backlog;
        // Unassigned visitors are told to come back in a second; served ones poll once more
        // before they claim.
        let polls = polls_per_sec(waiting, rate) + backlog + claims;
        second.polls = polls;
        usage.polls += polls;

        // What each service sees this second.
        let api = arrived + polls + claims;
        second.api_requests = api;
        // The main app's requests through the authorizer, counted when the token is claimed.
        let authorizer = scenario.authorized_requests * claims;
        usage.authorizer_calls += authorizer;
        let concurrency = per_call.lambda_concurrency(arrived, polls, claims, batches, authorizer);
        second.lambda_concurrency = concurrency;
        let units = per_call.dynamodb(
            flow,
            &Traffic {
                polls,
                tokens: claims,
                batches,
                assigned,
                serving_moves: if admitted_now > 0.0 { 1.0 } else { 0.0 },
                runner_passes: if t.is_multiple_of(scenario.runner_every_secs.max(1)) {
                    1.0
                } else {
                    0.0
                },
                sessions_ended: ended,
                authorizer_calls: authorizer,
                lambda_instances: concurrency,
            },
        );
        second.event_item_wcu = units.event_wcu;
        second.event_item_rcu = units.event_rcu;
        second.table_wcu = units.wcu;
        second.table_rcu = units.rcu;
        usage.wcu += units.wcu;
        usage.rcu += units.rcu;
        usage.lambda_gb_secs +=
            per_call.lambda_gb_secs(arrived, polls, claims, batches, authorizer);

        for (name, demand, capacity) in [
            (
                "DynamoDB event item writes (1,000 WCU/s per partition)",
                units.event_wcu,
                limits.partition_wcu,
            ),
            (
                "DynamoDB event item reads (3,000 RCU/s per partition)",
                units.event_rcu,
                limits.partition_rcu,
            ),
            (
                "DynamoDB table writes (new on-demand table, before it scales)",
                units.wcu,
                limits.table_wcu,
            ),
            (
                "DynamoDB table reads (new on-demand table, before it scales)",
                units.rcu,
                limits.table_rcu,
            ),
            (
                "Lambda concurrency (account)",
                concurrency,
                limits.lambda_concurrency,
            ),
            ("API Gateway requests/s (account)", api, limits.api_rps),
            (
                "SQS consumer throughput (visitors/s)",
                arrived,
                consumer_per_sec,
            ),
        ] {
            match peaks.iter_mut().find(|p| p.0 == name) {
                Some(peak) if demand > peak.1 => {
                    peak.1 = demand;
                    peak.3 = t;
                }
                Some(_) => {}
                None => peaks.push((name, demand, capacity, t)),
            }
            if first.is_none() && demand > capacity {
                first = Some(Bottleneck {
                    limit: name,
                    at_secs: t,
                    demand,
                    capacity,
                });
            }
        }
        seconds.push(second);

        let done = arrived_total >= total - 0.5
            && backlog < 0.5
            && serving >= total - 0.5
            && to_claim.is_empty();
        if done {
            break;
        }
    }

    let duration_secs = seconds.len() as f64;
    usage.duration_secs = duration_secs;
    usage.claimed = issued;
    let peak_waiting = seconds.iter().map(|s| s.waiting).fold(0.0, f64::max);
    let mut utilisation: Vec<(&'static str, f64, u64)> = peaks
        .iter()
        .map(|(name, demand, capacity, at)| (*name, demand / capacity, *at))
        .collect();
    utilisation.sort_by(|a, b| b.1.total_cmp(&a.1));
    Outcome {
        seconds,
        all_admitted_secs: all_admitted,
        peak_waiting,
        usage,
        claimed: issued,
        utilisation,
        first_bottleneck: first,
    }
}

fn drain_due(cohorts: &mut Vec<Cohort>, t: u64) -> f64 {
    let due: f64 = cohorts.iter().filter(|c| c.at <= t).map(|c| c.count).sum();
    cohorts.retain(|c| c.at > t);
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_visitors_poll_slowly_and_near_ones_often() {
        // Nobody admitted yet: the pace follows the distance alone.
        let near = polls_per_sec(10.0, 0.0);
        assert!(near > 9.0 && near <= 10.0, "{near}");
        let crowd = polls_per_sec(100_000.0, 0.0);
        // 100,000 visitors, most of them at the slowest pace of one poll per 30 s.
        assert!(crowd > 3_333.0 && crowd < 3_700.0, "{crowd}");
    }

    #[test]
    fn everyone_is_let_in_at_the_strategys_pace_whatever_the_arrival_fractions() {
        use crate::aws::{Limits, PerCall};
        use waiting_room_core::domain::{EventConfig, EventId, Strategy};
        // 100 every 5 s is 20 a second; arrivals come faster, so the strategy sets the pace.
        for (arrival, visitors) in [
            ("uniform:600", 20_000),
            ("spike:0.5:60:600", 100_000),
            ("uniform:7", 1_000),
        ] {
            let mut config = EventConfig::new(EventId::parse("sale").unwrap());
            config.strategy = Strategy::Periodic {
                increment_by: 100,
                interval_secs: 5,
            };
            let scenario = Scenario::new(visitors, Arrival::parse(arrival).unwrap(), config);
            let outcome = simulate(
                &scenario,
                &FlowCounts::default(),
                &PerCall::rs256(),
                &Limits::default(),
            );
            let took = outcome.all_admitted_secs.expect("everyone let in");
            let expected = visitors / 20;
            assert!(
                took.abs_diff(expected) <= 10,
                "{arrival}: {took} s, expected about {expected} s"
            );
        }
    }

    #[test]
    fn arrivals_add_up_to_the_event() {
        let profile = Arrival::parse("spike:0.5:10:100").unwrap();
        let sum: f64 = (0..200).map(|t| profile.at(t, 1_000)).sum();
        assert!((sum - 1_000.0).abs() < 1e-6);
        assert!(Arrival::parse("steady").is_err());
    }
}
