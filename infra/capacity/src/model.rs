//! The line of one event, second by second, with the room's own rules: the strategy decides
//! admissions ([`EventConfig::admissions`]), the measured admission rate gives the ETA
//! ([`eta::admission_rate`], [`eta::eta_seconds`]) and the ETA and distance give each visitor's
//! polling pace ([`eta::next_poll_ms`]). From the traffic, the measured per-item costs
//! ([`Costs`]) and the stack's own settings ([`Stack`]) it derives, second by second, what every
//! AWS service sees against each of its limits, when the first is crossed, and what it costs.

use waiting_room_core::domain::{EventConfig, EventCounters, ServingIncrement, eta};

use crate::aws::{Costs, Durations, Limits, StepRates, with_retries};
use crate::flow::{PAGE_UNPLACED_POLL_MS, Step};
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

/// How the visitor page polls, so today's page and a page polling a shared, cacheable
/// document can both be priced.
#[derive(Debug, Clone, PartialEq)]
pub struct PageBehaviour {
    /// Origin requests per waiting (placed) visitor per minute; `None`: the room's own pacing
    /// (`GET /status` at the `next_poll_ms` it answers), which no cache can serve.
    pub origin_polls_per_min: Option<f64>,
    /// Requests a waiting visitor sends CloudFront per minute; `None`: as many as reach the
    /// origin.
    pub viewer_polls_per_min: Option<f64>,
    /// Origin requests per second per event for a shared document (CloudFront's misses after
    /// collapsing per cache key).
    pub shared_origin_rps: f64,
    /// Pause between look-ups while a request has no position.
    pub unplaced_poll_ms: f64,
}

impl Default for PageBehaviour {
    /// Today's page: `/status` at the room's pace, every 800 ms before a position.
    fn default() -> Self {
        Self {
            origin_polls_per_min: None,
            viewer_polls_per_min: None,
            shared_origin_rps: 0.0,
            unplaced_poll_ms: PAGE_UNPLACED_POLL_MS as f64,
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
            page: PageBehaviour::default(),
            page_requests: 5.0,
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
    let mut backlog = 0.0f64;
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
    let reads_fn = stack.serving("/status");
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
    let claim_delay = 1; // served visitors poll every second near the front

    for t in 0..48 * 3600u64 {
        let now_ms = t as i64 * 1000;
        let mut rates = StepRates::default();

        // Arrivals: one enqueue request and one SQS message each.
        let arrived = scenario
            .arrival
            .at(t, scenario.visitors)
            .min(total - arrived_total);
        arrived_total += arrived;
        backlog += arrived;
        rates.add(Step::Enqueue, arrived, arrived);

        // The consumer: batches within the 1 s window, as many as its instances take.
        let assigned = backlog.min(consumer_per_sec);
        backlog -= assigned;
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
                history.push(ServingIncrement {
                    previous: counters.serving_counter,
                    serving_counter: counters.serving_counter + admit,
                    at_ms: now_ms,
                    claim_by_ms: now_ms + config.position_expiry_secs as i64 * 1000,
                });
                counters.serving_changed_at_ms = now_ms;
                let admitted_now = admit as f64;
                serving += admitted_now;
                to_claim.push(Cohort {
                    at: t + claim_delay,
                    count: admitted_now * (1.0 - scenario.abandon),
                });
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
        let everyone_placed = arrived_total >= total - 0.5 && backlog < 0.5;
        if all_admitted.is_none() && everyone_placed && serving >= queue.floor() {
            all_admitted = Some(t);
        }

        // Look-ups: placed visitors at the page's pace, unplaced ones every 800 ms, served ones
        // once more before they claim.
        let rate = eta::admission_rate(&history, now_ms);
        let waiting = (queue - serving).max(0.0);
        let waiting_polls = match page.origin_polls_per_min {
            Some(per_min) => waiting * per_min / 60.0,
            None => polls_per_sec(waiting, rate),
        };
        let placed_polls = waiting_polls + claims;
        let unplaced_polls = backlog * 1000.0 / page.unplaced_poll_ms.max(1.0);
        rates.add(Step::Poll, waiting_polls, waiting_polls);
        rates.add(Step::ServedPoll, claims, claims);
        rates.add(Step::UnplacedPoll, unplaced_polls, unplaced_polls);
        let viewer_polls = match page.viewer_polls_per_min {
            Some(per_min) => waiting * per_min / 60.0 + claims,
            None => placed_polls,
        } + unplaced_polls;
        let shared = if waiting > 0.5 || backlog > 0.5 {
            page.shared_origin_rps
        } else {
            0.0
        };

        // Lambda: requests and busy time per function.
        let authorizer = scenario.authorized_requests * claims;
        let mut lambda = LambdaDemand::new();
        lambda.add(enqueue_fn, arrived, durations.enqueue_ms);
        lambda.add(reads_fn, placed_polls + unplaced_polls, durations.poll_ms);
        lambda.add(shared_fn, shared, durations.poll_ms);
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
        // Every busy reads instance reloads its cached event view about once a second.
        let reads_instances = lambda
            .concurrency_of(reads_fn.map_or("", |f| f.binary.as_str()))
            .ceil()
            .max(1.0);
        rates.add(Step::ViewLoad, reads_instances, 0.0);

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
            let detail = format!("busiest of {} partitions measured", class.partitions);
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
        let api = arrived + placed_polls + unplaced_polls + shared + claims + ended;
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
        usage.polls += placed_polls + unplaced_polls;
        usage.viewer_requests += viewer;
        usage.api_requests += api;
        usage.rcu += load.table.read + load.indexes.read;
        usage.wcu += load.table.write + load.indexes.write;
        // SendMessage per visitor; the event source mapping receives and deletes ten at a time.
        usage.sqs_requests += arrived * 1.2;

        seconds.push(Second {
            t,
            arrived,
            backlog,
            waiting,
            admitted: serving,
            polls: placed_polls + unplaced_polls,
            api_requests: api,
            busiest_item_rcu: item.read,
            busiest_item_wcu: item.write,
        });

        let done = arrived_total >= total - 0.5
            && backlog < 0.5
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
    fn a_shared_cacheable_document_takes_the_polls_off_the_origin() {
        let mut today = Scenario::new(
            200_000,
            Arrival::parse("uniform:60").unwrap(),
            periodic(500, 5),
        );
        today.session_secs = 60;
        let mut shared = today.clone();
        shared.page = PageBehaviour {
            origin_polls_per_min: Some(0.0),
            viewer_polls_per_min: Some(30.0),
            shared_origin_rps: 10.0,
            ..PageBehaviour::default()
        };
        let api = |o: &Outcome| {
            o.verdicts
                .iter()
                .find(|v| v.name == "API Gateway requests")
                .unwrap()
                .peak
        };
        let (today, shared) = (run(&today), run(&shared));
        assert!(
            api(&shared) < api(&today) / 2.0,
            "{} vs {}",
            api(&shared),
            api(&today)
        );
    }
}
