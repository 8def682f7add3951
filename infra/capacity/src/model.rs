//! The line of one event, second by second, with the room's own rules: the strategy decides
//! admissions ([`EventConfig::admissions`]), the measured admission rate gives the ETA
//! ([`eta::admission_rate`], [`eta::eta_seconds`]) and the ETA and distance give each visitor's
//! polling pace ([`eta::next_poll_ms`]). From the traffic, the measured per-item costs
//! ([`Costs`]) and the stack's own settings ([`Stack`]) it derives, second by second, what every
//! AWS service sees against each of its limits, when the first is crossed, and what it costs.

use std::collections::VecDeque;

use waiting_room_core::domain::{EventConfig, EventCounters, ServingIncrement, eta};
use waiting_room_core::service::CacheSettings;

use crate::aws::{Costs, Durations, Limits, StepRates, with_retries};
use crate::flow::{Step, unplaced_delay_ms};
use crate::template::{Function, Stack};

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

/// The visitor page as it is (`shared/web/assets/room.js`, `queue.js`): it joins, asks for
/// its position at the back-off of [`unplaced_delay_ms`] until it has one, then polls only the
/// shared `/event_state` document through CloudFront, at the pace of the poll policy the room
/// publishes in that document ([`eta::POLL_POLICY`], the rule of [`eta::next_poll_ms`]), and
/// claims its token at the first poll that shows its place served.
#[derive(Debug, Clone, PartialEq)]
pub struct PageBehaviour {
    /// Origin requests per second per event for `/event_state`: every CloudFront cache that
    /// serves the crowd fetches it at most once per MinTTL (concurrent misses collapse).
    pub state_origin_rps: f64,
}

/// Assumed: CloudFront caches fetching `/event_state` from the origin, each at most once per
/// MinTTL. CloudFront has several hundred edge locations (and regional edge caches between
/// them and the origin that collapse their misses further); a crowd of one region reaches far
/// fewer. Even this bound is a few Lambda instances' work.
pub const EDGE_CACHES: f64 = 600.0;

impl PageBehaviour {
    /// The page behind the template's CloudFront: `EDGE_CACHES` fetches per MinTTL of the
    /// `/event_state` cache policy.
    pub fn of(stack: &Stack) -> Self {
        Self {
            state_origin_rps: EDGE_CACHES / stack.event_state_min_ttl_secs.max(1.0),
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
    /// (`update_session`).
    pub session_secs: u64,
    /// Share of sessions the main app ends; the others expire with their token.
    pub sessions_ended: f64,
    /// Share of served visitors who never claim their token (their place expires).
    pub abandon: f64,
    /// Requests to the main app per admitted visitor that go through the authorizer.
    pub authorized_requests: f64,
    pub page: PageBehaviour,
    /// How long each process keeps the event's config and counters (the Lambda functions'
    /// in-process cache).
    pub cache: CacheSettings,
    /// Page files (HTML, script, style, strings) per visitor, from CloudFront.
    pub page_requests: f64,
}

impl Scenario {
    pub fn new(visitors: u64, arrival: Arrival, config: EventConfig) -> Self {
        Self {
            visitors,
            arrival,
            config,
            runner_every_secs: 5,
            session_secs: 600,
            sessions_ended: 1.0,
            abandon: 0.05,
            authorized_requests: 0.0,
            page: PageBehaviour {
                state_origin_rps: EDGE_CACHES,
            },
            cache: CacheSettings::default(),
            page_requests: 5.0,
        }
    }
}

/// One second of the simulated event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Second {
    pub t: u64,
    pub arrived: f64,
    /// Tokens claimed.
    pub claims: f64,
    /// In SQS, not yet given a position.
    pub backlog: f64,
    /// With a position, not yet let in.
    pub waiting: f64,
    pub admitted: f64,
    pub polls: f64,
    pub api_requests: f64,
    pub busiest_item_rcu: f64,
    pub busiest_item_wcu: f64,
}

/// One limit: its peak demand over the event and when it was first crossed.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub name: String,
    /// What bore the peak (an item class, a function...).
    pub detail: String,
    pub unit: &'static str,
    pub peak: f64,
    pub peak_at: u64,
    pub limit: f64,
    pub source: String,
    pub first_crossed: Option<u64>,
}

/// Totals over one event, for the bill.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub enqueues: f64,
    pub polls: f64,
    pub viewer_requests: f64,
    pub api_requests: f64,
    pub lambda_invocations: f64,
    pub lambda_gb_secs: f64,
    pub rcu: f64,
    pub wcu: f64,
    pub sqs_requests: f64,
    pub claimed: f64,
    pub duration_secs: f64,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub seconds: Vec<Second>,
    /// When the last visitor was let in (serving counter reached everyone), if it was.
    pub all_admitted_secs: Option<u64>,
    pub peak_waiting: f64,
    pub usage: Usage,
    /// Every limit, in the order checked.
    pub verdicts: Vec<Verdict>,
}

impl Outcome {
    /// Of the limits of one item or one partition (table or index), the one nearest its
    /// budget at its peak.
    pub fn busiest_item_or_partition(&self) -> Option<&Verdict> {
        self.verdicts
            .iter()
            .filter(|v| v.source == Limits::ITEM)
            .max_by(|a, b| (a.peak / a.limit).total_cmp(&(b.peak / b.limit)))
    }

    /// The limit crossed first (earliest second; the larger overload on a tie).
    pub fn first_crossed(&self) -> Option<&Verdict> {
        self.verdicts
            .iter()
            .filter(|v| v.first_crossed.is_some())
            .min_by(|a, b| {
                a.first_crossed
                    .cmp(&b.first_crossed)
                    .then((b.peak / b.limit).total_cmp(&(a.peak / a.limit)))
            })
    }
}

/// Polls of the shared document during one second, with `waiting` in line and the room
/// letting `rate` visitors in per second: each polls every `next_poll_ms(ahead, eta)`, the rule
/// of the poll policy the document publishes.
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

/// Seconds a visitor `ahead` places from the front waits between two polls of the shared
/// document, when the room lets `rate` visitors in per second.
fn poll_secs(ahead: u64, rate: f64) -> f64 {
    eta::next_poll_ms(ahead, eta::eta_seconds(ahead + 1, rate)) as f64 / 1000.0
}

/// How the claims of one serving move of `size` places spread over the seconds after it: each
/// served visitor learns of the move at its next poll of the shared document, a uniformly
/// random moment within its poll interval (polls are jittered, so their phases are spread),
/// and claims then. Share of the claims in second 0, 1, ... after the move. Conservative: the
/// caches in between (CloudFront's MinTTL, the functions' 1 s counters) only delay and spread
/// the claims further, and are left out.
pub fn claim_spread(size: u64, rate: f64) -> Vec<f64> {
    const SAMPLES: u64 = 200;
    let mut shares: Vec<f64> = Vec::new();
    let samples = SAMPLES.min(size.max(1));
    for i in 0..samples {
        // The visitor in the middle of the i-th slice of the move, by places ahead of it.
        let ahead = (2 * i + 1) * size / (2 * samples);
        let p = poll_secs(ahead, rate).max(1e-3);
        let weight = 1.0 / samples as f64;
        let mut k = 0usize;
        while (k as f64) < p {
            let overlap = (p - k as f64).min(1.0);
            if shares.len() <= k {
                shares.resize(k + 1, 0.0);
            }
            shares[k] += weight * overlap / p;
            k += 1;
        }
    }
    shares
}

/// Look-ups one visitor makes between `age` and `age + 1` seconds after joining while its
/// request has no position: look-up k ends a pause of `unplaced_delay_ms(k)`, spread over that
/// pause (the page's jitter and the arrivals within a second smear them).
fn unplaced_lookups(age: f64) -> f64 {
    let mut start = 0.0;
    let mut total = 0.0;
    for attempt in 0.. {
        let pause = unplaced_delay_ms(attempt) as f64 / 1000.0;
        let end = start + pause;
        if start >= age + 1.0 {
            break;
        }
        let overlap = (end.min(age + 1.0) - start.max(age)).max(0.0);
        total += overlap / pause;
        start = end;
        if attempt > 10 && start > age + 1.0 {
            break;
        }
    }
    total
}

struct Cohort {
    at: u64,
    count: f64,
}

fn drain_due(cohorts: &mut Vec<Cohort>, t: u64) -> f64 {
    let due: f64 = cohorts.iter().filter(|c| c.at <= t).map(|c| c.count).sum();
    cohorts.retain(|c| c.at > t);
    due
}

/// Peak demands seen so far, one per limit, in the order first checked.
#[derive(Default)]
struct Verdicts(Vec<Verdict>);

impl Verdicts {
    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        t: u64,
        name: &str,
        detail: &str,
        unit: &'static str,
        demand: f64,
        limit: f64,
        source: &str,
    ) {
        let verdict = match self.0.iter_mut().find(|v| v.name == name) {
            Some(verdict) => verdict,
            None => {
                self.0.push(Verdict {
                    name: name.to_owned(),
                    detail: detail.to_owned(),
                    unit,
                    peak: 0.0,
                    peak_at: t,
                    limit,
                    source: source.to_owned(),
                    first_crossed: None,
                });
                self.0.last_mut().expect("just pushed")
            }
        };
        if demand > verdict.peak {
            verdict.peak = demand;
            verdict.peak_at = t;
            detail.clone_into(&mut verdict.detail);
        }
        if verdict.first_crossed.is_none() && demand > limit {
            verdict.first_crossed = Some(t);
        }
    }
}

/// What the stack's functions and the room's requests ask of Lambda in one second.
struct LambdaDemand<'a> {
    /// Per function: requests and busy seconds (concurrency, by Little's law).
    by_function: Vec<(&'a Function, f64, f64)>,
}

impl<'a> LambdaDemand<'a> {
    fn new() -> Self {
        Self {
            by_function: Vec::new(),
        }
    }

    fn add(&mut self, function: Option<&'a Function>, requests: f64, ms_each: f64) {
        let Some(function) = function else {
            return;
        };
        let busy = requests * ms_each / 1000.0;
        match self
            .by_function
            .iter_mut()
            .find(|(f, _, _)| f.logical_id == function.logical_id)
        {
            Some(entry) => {
                entry.1 += requests;
                entry.2 += busy;
            }
            None => self.by_function.push((function, requests, busy)),
        }
    }

    fn concurrency_of(&self, binary: &str) -> f64 {
        self.by_function
            .iter()
            .find(|(f, _, _)| f.binary == binary)
            .map_or(0.0, |(_, _, busy)| *busy)
    }
}

/// Runs the event until everyone is in and has claimed (or let the claim lapse), at most 48 h.
pub fn simulate(
    scenario: &Scenario,
    costs: &Costs,
    stack: &Stack,
    durations: &Durations,
    limits: &Limits,
) -> Outcome {
    let config = &scenario.config;
    let page = &scenario.page;
    let total = scenario.visitors as f64;
    let mut counters = EventCounters::default();
    // Counters in fractions (the model moves crowds, not people); the strategy sees whole ones.
    let (mut queue, mut serving, mut issued, mut completed, mut expired) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    // Joined but not given a position yet, oldest first, by the second they joined.
    let mut backlog: VecDeque<Cohort> = VecDeque::new();
    let mut arrived_total = 0.0f64;
    let mut history: Vec<ServingIncrement> = Vec::new();
    let mut to_claim: Vec<Cohort> = Vec::new();
    let mut to_expire: Vec<Cohort> = Vec::new();
    let mut to_end: Vec<Cohort> = Vec::new();
    let mut to_lapse: Vec<Cohort> = Vec::new();
    let mut usage = Usage::default();
    let mut seconds = Vec::new();
    let mut all_admitted = None;
    let mut verdicts = Verdicts::default();
    let consumer = stack.queue_consumer();
    let consumer_per_sec = consumer.map_or(0.0, |c| {
        c.queue_max_concurrency.unwrap_or(1.0) * c.queue_batch_size.unwrap_or(10.0)
            / limits.batch_secs
    });
    let batch_size = consumer.and_then(|c| c.queue_batch_size).unwrap_or(10.0);
    let reads_fn = stack.serving("/queue_num");
    let shared_fn = stack.serving("/event_state").or(reads_fn);
    let enqueue_fn = stack.serving("/assign_queue_num");
    let token_fn = stack.serving("/generate_token");
    let session_fn = stack.serving("/update_session");
    let authorizer_fn = stack.by_binary("authorizer");
    let runner_fn = stack.scheduled();
    let reserved: f64 = stack
        .functions
        .iter()
        .filter_map(|f| f.reserved_concurrency)
        .sum();
    let unreserved = (limits.lambda_concurrency - reserved).max(0.0);

    for t in 0..48 * 3600u64 {
        let now_ms = t as i64 * 1000;
        let mut rates = StepRates::default();

        // Arrivals: one enqueue request and one SQS message each.
        let arrived = scenario
            .arrival
            .at(t, scenario.visitors)
            .min(total - arrived_total);
        arrived_total += arrived;
        if arrived > 0.0 {
            backlog.push_back(Cohort {
                at: t,
                count: arrived,
            });
        }
        rates.add(Step::Enqueue, arrived, arrived);

        // The consumer: batches within the 1 s window, as many as its instances take, oldest
        // messages first.
        let mut assigned = 0.0;
        while let Some(front) = backlog.front_mut() {
            let take = front.count.min(consumer_per_sec - assigned);
            assigned += take;
            front.count -= take;
            if front.count > 1e-9 {
                break;
            }
            backlog.pop_front();
        }
        queue += assigned;
        let batches = (assigned / batch_size).ceil();
        rates.add(Step::Batch, batches, assigned);

        // Claims of visitors served a moment ago, places that lapsed, sessions that end.
        let claims = drain_due(&mut to_claim, t);
        issued += claims;
        usage.claimed += claims;
        rates.add(Step::Token, claims, claims);
        if claims > 0.0 {
            to_end.push(Cohort {
                at: t + scenario.session_secs,
                count: claims * scenario.sessions_ended,
            });
            to_lapse.push(Cohort {
                at: t + config.token_ttl_secs,
                count: claims * (1.0 - scenario.sessions_ended),
            });
        }
        expired += drain_due(&mut to_expire, t);
        let ended = drain_due(&mut to_end, t);
        completed += ended;
        rates.add(Step::SessionEnd, ended, ended);
        let lapsing = drain_due(&mut to_lapse, t);

        // The strategy runner.
        let pass = t.is_multiple_of(scenario.runner_every_secs.max(1));
        if pass {
            rates.add(Step::RunnerPass, 1.0, lapsing);
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
                // The pages learn of the move at the pace the rate before it gave them.
                let spread = claim_spread(admit, eta::admission_rate(&history, now_ms));
                history.push(ServingIncrement {
                    previous: counters.serving_counter,
                    serving_counter: counters.serving_counter + admit,
                    at_ms: now_ms,
                    claim_by_ms: now_ms + config.position_expiry_secs as i64 * 1000,
                });
                counters.serving_changed_at_ms = now_ms;
                let admitted_now = admit as f64;
                serving += admitted_now;
                for (k, share) in spread.iter().enumerate() {
                    to_claim.push(Cohort {
                        at: t + k as u64,
                        count: admitted_now * (1.0 - scenario.abandon) * share,
                    });
                }
                to_expire.push(Cohort {
                    at: t + config.position_expiry_secs,
                    count: admitted_now * scenario.abandon,
                });
            }
        } else if lapsing > 0.0 {
            // Expired tokens wait for the next pass.
            to_lapse.push(Cohort {
                at: t + 1,
                count: lapsing,
            });
        }
        history.retain(|inc| inc.at_ms > now_ms - eta::RATE_WINDOW_MS);
        let unplaced: f64 = backlog.iter().map(|c| c.count).sum();
        let everyone_placed = arrived_total >= total - 0.5 && unplaced < 0.5;
        if all_admitted.is_none() && everyone_placed && serving >= queue.floor() {
            all_admitted = Some(t);
        }

        // The page: look-ups of its position at the page's back-off until it has one (and the
        // one that finds it), then polls of the shared document at the published pace, which
        // CloudFront answers; its origin sees each cache's fetch once per MinTTL.
        let rate = eta::admission_rate(&history, now_ms);
        let waiting = (queue - serving).max(0.0);
        let state_polls = polls_per_sec(waiting, rate);
        let unplaced_polls: f64 = backlog
            .iter()
            .map(|c| c.count * unplaced_lookups((t - c.at) as f64))
            .sum();
        let placing_polls = assigned;
        rates.add(Step::UnplacedPoll, unplaced_polls, unplaced_polls);
        rates.add(Step::Poll, placing_polls, placing_polls);
        let lookups = unplaced_polls + placing_polls;
        let viewer_polls = state_polls + lookups;
        // A cache fetches only in a second some viewer asks it: with the polls spread over the
        // caches at random, the expected number of caches asked.
        let caches = page.state_origin_rps;
        let state_origin = if caches > 0.0 {
            caches * (1.0 - (-state_polls / caches).exp())
        } else {
            0.0
        };

        // Lambda: requests and busy time per function.
        let authorizer = scenario.authorized_requests * claims;
        let mut lambda = LambdaDemand::new();
        lambda.add(enqueue_fn, arrived, durations.enqueue_ms);
        lambda.add(reads_fn, lookups, durations.poll_ms);
        lambda.add(shared_fn, state_origin, durations.poll_ms);
        lambda.add(token_fn, claims, durations.token_ms);
        lambda.add(session_fn, ended, durations.session_end_ms);
        lambda.add(
            consumer,
            batches,
            durations.batch_ms * assigned / batches.max(1.0) / 1000.0,
        );
        lambda.add(authorizer_fn, authorizer, durations.authorizer_ms);
        if pass {
            lambda.add(runner_fn, 0.0, 0.0);
        }
        // Every busy instance keeps the event in process: the reads reload config, counters
        // and serving moves once per counters TTL; joins, claims and session ends reload the
        // config once per config TTL, and a claiming instance reads the serving moves again
        // once per move it has not seen (at most once per counters TTL).
        let instances = |f: Option<&Function>| {
            let busy = lambda.concurrency_of(f.map_or("", |f| f.binary.as_str()));
            if busy > 0.0 { busy.ceil() } else { 0.0 }
        };
        let counters_secs = scenario.cache.counters_ttl.as_secs_f64().max(0.001);
        let config_secs = scenario.cache.config_ttl.as_secs_f64().max(0.001);
        let reads_instances = instances(reads_fn).max(instances(shared_fn)).max(1.0);
        let config_instances = instances(enqueue_fn) + instances(token_fn) + instances(session_fn);
        rates.add(
            Step::ViewLoad,
            reads_instances / counters_secs + config_instances / config_secs,
            0.0,
        );
        let moves_reloads = if history.last().is_some_and(|m| m.at_ms > now_ms - 60_000) {
            instances(token_fn) / counters_secs
        } else {
            0.0
        };
        rates.add_class(Step::ViewLoad, "serving-move", moves_reloads);

        // DynamoDB.
        let load = costs.load(&rates);
        let item = load.busiest_item.1;
        let item_detail = format!("{} item", load.busiest_item.0);
        let throttled = |capacity: f64| move |offered: f64| 1.0 - capacity / offered.max(1e-9);
        let retried = |demand: f64, capacity: f64| {
            with_retries(demand, limits.sdk_attempts, throttled(capacity))
        };
        verdicts.check(
            t,
            "DynamoDB busiest item, writes",
            &item_detail,
            "WCU/s",
            retried(item.write, limits.item_wcu),
            limits.item_wcu,
            Limits::ITEM,
        );
        verdicts.check(
            t,
            "DynamoDB busiest item, reads",
            &item_detail,
            "RCU/s",
            retried(item.read, limits.item_rcu),
            limits.item_rcu,
            Limits::ITEM,
        );
        let partition = load.busiest_partition.1;
        let partition_detail = format!("{} partition", load.busiest_partition.0);
        verdicts.check(
            t,
            "DynamoDB busiest table partition, writes",
            &partition_detail,
            "WCU/s",
            retried(partition.write, limits.item_wcu),
            limits.item_wcu,
            Limits::ITEM,
        );
        verdicts.check(
            t,
            "DynamoDB busiest table partition, reads",
            &partition_detail,
            "RCU/s",
            retried(partition.read, limits.item_rcu),
            limits.item_rcu,
            Limits::ITEM,
        );
        for class in &costs.measured.classes {
            if !class.index {
                continue;
            }
            let units = load
                .index_partitions
                .get(&class.name)
                .copied()
                .unwrap_or_default();
            let detail = format!(
                "one of {} stripes",
                waiting_room_core::domain::exits::STRIPES
            );
            verdicts.check(
                t,
                &format!("DynamoDB {} partition, writes", class.name),
                &detail,
                "WCU/s",
                retried(units.write, limits.item_wcu),
                limits.item_wcu,
                Limits::ITEM,
            );
        }
        let (tx_class, tx) = &load.busiest_item_transactions;
        let offered_tx = with_retries(*tx, limits.transaction_attempts, |o| {
            limits.conflict_share(o)
        });
        verdicts.check(
            t,
            "DynamoDB transactions on one item",
            &format!("{tx_class} item"),
            "tx/s",
            offered_tx,
            limits.item_transactions(),
            Limits::TRANSACTIONS,
        );
        verdicts.check(
            t,
            "DynamoDB table writes, new table (warm)",
            "table without indexes",
            "WRU/s",
            load.table.write,
            limits.table_warm_wcu,
            Limits::TABLE_WARM,
        );
        verdicts.check(
            t,
            "DynamoDB table reads, new table (warm)",
            "table without indexes",
            "RRU/s",
            load.table.read,
            limits.table_warm_rcu,
            Limits::TABLE_WARM,
        );
        verdicts.check(
            t,
            "DynamoDB table writes, quota",
            "table without indexes",
            "WRU/s",
            load.table.write,
            limits.table_quota_wcu,
            Limits::TABLE_QUOTA,
        );
        verdicts.check(
            t,
            "DynamoDB table reads, quota",
            "table without indexes",
            "RRU/s",
            load.table.read,
            limits.table_quota_rcu,
            Limits::TABLE_QUOTA,
        );

        // API Gateway: every origin request (public and admin APIs).
        let api = arrived + lookups + state_origin + claims + ended;
        verdicts.check(
            t,
            "API Gateway requests",
            "public and admin APIs",
            "req/s",
            api,
            limits.api_rps,
            Limits::API,
        );

        // Lambda: account concurrency, and per function its requests (and reserved concurrency).
        let unreserved_busy: f64 = lambda
            .by_function
            .iter()
            .filter(|(f, _, _)| f.reserved_concurrency.is_none())
            .map(|(_, _, busy)| busy)
            .sum();
        verdicts.check(
            t,
            "Lambda concurrency (account, unreserved)",
            "all functions without reserved concurrency",
            "instances",
            unreserved_busy,
            unreserved,
            Limits::LAMBDA,
        );
        for function in &stack.functions {
            let (requests, busy) = lambda
                .by_function
                .iter()
                .find(|(f, _, _)| f.logical_id == function.logical_id)
                .map_or((0.0, 0.0), |(_, r, b)| (*r, *b));
            let cap = function.reserved_concurrency.unwrap_or(unreserved);
            verdicts.check(
                t,
                &format!("Lambda {} requests", function.binary),
                if function.reserved_concurrency.is_some() {
                    "reserved concurrency x 10"
                } else {
                    "no reserved concurrency: the account's x 10"
                },
                "req/s",
                requests,
                cap * limits.lambda_requests_per_concurrency,
                Limits::LAMBDA_RPS,
            );
            if let Some(reserved) = function.reserved_concurrency {
                verdicts.check(
                    t,
                    &format!("Lambda {} concurrency", function.binary),
                    "reserved concurrency",
                    "instances",
                    busy,
                    reserved,
                    "template: ReservedConcurrentExecutions",
                );
            }
            usage.lambda_gb_secs += busy * function.memory_mb / 1024.0;
            usage.lambda_invocations += requests;
        }

        // The consumer keeps up with arrivals, or a backlog builds.
        verdicts.check(
            t,
            "SQS consumer throughput",
            "visitors given a position",
            "visitors/s",
            arrived,
            consumer_per_sec,
            Limits::SQS,
        );

        // CloudFront: what visitors send, cacheable or not.
        let viewer = arrived * (1.0 + scenario.page_requests) + viewer_polls + claims;
        verdicts.check(
            t,
            "CloudFront requests",
            "viewer requests to the distribution",
            "req/s",
            viewer,
            limits.cloudfront_rps,
            Limits::CLOUDFRONT,
        );

        usage.enqueues += arrived;
        usage.polls += viewer_polls;
        usage.viewer_requests += viewer;
        usage.api_requests += api;
        usage.rcu += load.table.read + load.indexes.read;
        usage.wcu += load.table.write + load.indexes.write;
        // SendMessage per visitor; the event source mapping receives and deletes ten at a time.
        usage.sqs_requests += arrived * 1.2;

        seconds.push(Second {
            t,
            arrived,
            claims,
            backlog: unplaced,
            waiting,
            admitted: serving,
            polls: viewer_polls,
            api_requests: api,
            busiest_item_rcu: item.read,
            busiest_item_wcu: item.write,
        });

        let done = arrived_total >= total - 0.5
            && unplaced < 0.5
            && serving >= total - 0.5
            && [&to_claim, &to_expire, &to_end, &to_lapse]
                .iter()
                .all(|cohorts| cohorts.is_empty());
        if done {
            break;
        }
    }

    usage.duration_secs = seconds.len() as f64;
    let peak_waiting = seconds.iter().map(|s| s.waiting).fold(0.0, f64::max);
    Outcome {
        seconds,
        all_admitted_secs: all_admitted,
        peak_waiting,
        usage,
        verdicts: verdicts.0,
    }
}

#[cfg(test)]
mod tests {
    use waiting_room_core::domain::{EventConfig, EventId, Strategy};

    use super::*;
    use crate::measured::Measured;

    fn run(scenario: &Scenario) -> Outcome {
        simulate(
            scenario,
            &Costs::new(Measured::checked_in().unwrap()),
            &Stack::of_repository().unwrap(),
            &Durations::rs256(),
            &Limits::default(),
        )
    }

    fn periodic(by: u64, every: u64) -> EventConfig {
        let mut config = EventConfig::new(EventId::parse("sale").unwrap());
        config.strategy = Strategy::Periodic {
            increment_by: by,
            interval_secs: every,
        };
        config
    }

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
        // 100 every 5 s is 20 a second; arrivals come faster, so the strategy sets the pace.
        for (arrival, visitors) in [
            ("uniform:600", 20_000),
            ("spike:0.5:60:600", 100_000),
            ("uniform:7", 1_000),
        ] {
            let scenario =
                Scenario::new(visitors, Arrival::parse(arrival).unwrap(), periodic(100, 5));
            let took = run(&scenario).all_admitted_secs.expect("everyone let in");
            let expected = visitors / 20;
            assert!(
                took.abs_diff(expected) <= 10,
                "{arrival}: {took} s, expected about {expected} s"
            );
        }
    }

    #[test]
    fn a_small_event_crosses_no_limit() {
        let scenario = Scenario::new(
            2_000,
            Arrival::parse("uniform:600").unwrap(),
            periodic(5, 5),
        );
        let outcome = run(&scenario);
        assert_eq!(outcome.first_crossed(), None, "{:#?}", outcome.verdicts);
        // Sessions end 10 minutes after their claim: the run lasts until they have.
        assert!(outcome.seconds.len() as u64 >= 600 + 2_000);
    }

    #[test]
    fn no_single_item_limits_a_crowd_before_the_table_does() {
        // 100,000 visitors in a minute, 2,000 let in a second.
        let scenario = Scenario::new(
            100_000,
            Arrival::parse("uniform:60").unwrap(),
            periodic(10_000, 5),
        );
        let outcome = run(&scenario);
        let first = outcome.first_crossed().expect("a limit is crossed");
        assert_eq!(first.name, "DynamoDB table writes, new table (warm)");
        let verdict = |name: &str| outcome.verdicts.iter().find(|v| v.name == name).unwrap();
        // Claims and session ends write the visitor's own item and one stripe of many: no
        // item or partition comes near its budget, and no item takes a transaction per visitor.
        for name in [
            "DynamoDB busiest item, writes",
            "DynamoDB busiest item, reads",
            "DynamoDB busiest table partition, writes",
            "DynamoDB busiest table partition, reads",
            "DynamoDB index:tokens_by_request partition, writes",
            "DynamoDB transactions on one item",
        ] {
            assert!(verdict(name).first_crossed.is_none(), "{:?}", verdict(name));
        }
        // Every limit has a verdict, each once.
        let mut names: Vec<&str> = outcome.verdicts.iter().map(|v| v.name.as_str()).collect();
        let all = names.len();
        names.dedup();
        assert_eq!(names.len(), all);
        for name in [
            "API Gateway requests",
            "CloudFront requests",
            "SQS consumer throughput",
            "Lambda concurrency (account, unreserved)",
            "DynamoDB table writes, quota",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }

    #[test]
    fn a_moves_claims_come_within_the_poll_interval_of_its_visitors() {
        // 20,000 let in a second, a move of 20,000: everyone in it is within a second of its
        // turn and polls every second (the policy's shortest pause), so the claims all come
        // within the second after the move.
        let spread = claim_spread(20_000, 20_000.0);
        assert!((spread.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(spread.len(), 1, "{spread:?}");
        // A move of 100,000 at that rate: the far end of it polls every 1.25 s (a quarter of
        // its 5 s ETA), so its claims spill into a second second, but most come in the first.
        let spread = claim_spread(100_000, 20_000.0);
        assert_eq!(spread.len(), 2, "{spread:?}");
        assert!(spread[0] > 0.8, "{spread:?}");
        // Nobody let in yet (no rate, no ETA): pages far back poll slowly, by distance, up to
        // the policy's longest pause.
        let spread = claim_spread(10_000, 0.0);
        assert_eq!(spread.len() as u64, eta::MAX_POLL_MS / 1000, "{spread:?}");
    }

    #[test]
    fn an_unplaced_page_asks_less_and_less_often() {
        // Asks at 0.5 s, then 1.5 s, 3.5 s, 7.5 s, then every 8 s.
        let first = unplaced_lookups(0.0);
        assert!((first - 1.5).abs() < 1e-9, "{first}");
        let later = unplaced_lookups(30.0);
        assert!((later - 0.125).abs() < 1e-9, "{later}");
        let total: f64 = (0..60).map(|a| unplaced_lookups(a as f64)).sum();
        // 4 look-ups in the first 7.5 s, then one per 8 s until 60 s.
        assert!((total - (4.0 + 52.5 / 8.0)).abs() < 1e-6, "{total}");
    }

    #[test]
    fn one_second_moves_keep_every_item_and_partition_under_half_its_budget() {
        // The preset's rates: 50,000 joins/s for 10 s, then 10,000/s, 20,000 let in a second,
        // with the consumers that takes.
        let stack =
            Stack::of_repository_with(&[("ConsumerMaxConcurrency".into(), "30".into())]).unwrap();
        let scenario = Scenario::new(
            1_000_000,
            Arrival::parse("spike:0.5:10:50").unwrap(),
            periodic(20_000, 1),
        );
        let outcome = simulate(
            &scenario,
            &Costs::new(Measured::checked_in().unwrap()),
            &stack,
            &Durations::rs256(),
            &Limits::default(),
        );
        let busiest = outcome.busiest_item_or_partition().unwrap();
        assert!(busiest.peak <= busiest.limit / 2.0, "{busiest:?}");
        // The same admissions in moves of 100,000 every 5 s put several seconds' claims on
        // the stripes at once.
        let bursts = Scenario {
            config: periodic(100_000, 5),
            ..scenario
        };
        let outcome = simulate(
            &bursts,
            &Costs::new(Measured::checked_in().unwrap()),
            &stack,
            &Durations::rs256(),
            &Limits::default(),
        );
        let stripe = outcome
            .verdicts
            .iter()
            .find(|v| v.name == "DynamoDB busiest item, writes")
            .unwrap();
        assert!(stripe.peak > stripe.limit / 2.0, "{stripe:?}");
    }
}
