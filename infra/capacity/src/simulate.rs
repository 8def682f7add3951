//! `waiting-room simulate`: an event's line simulated second by second with the room's own
//! strategy and polling rules, the per-item DynamoDB costs measured on the wire
//! (`measured/dynamodb.json`) and the stack's settings read from `template.yaml`; one verdict
//! per AWS limit, the first limit crossed and when, the cost per 1,000 admitted visitors, and
//! the cost of an idle month.
//!
//! `cargo run --release -p waiting-room -- simulate --preset million`

use std::path::PathBuf;

use crate::aws::{Costs, Durations, Limits, Prices};
use crate::chart;
use crate::flow::unplaced_delay_ms;
use crate::idle::idle_month;
use crate::measured::{CHECKED_IN_PATH, Measured};
use crate::model::{Arrival, Outcome, PageBehaviour, Scenario, simulate};
use crate::template::Stack;
use waiting_room_core::domain::{EventConfig, EventId, Strategy, eta};
use waiting_room_core::token::KeyAlgorithm;

/// Named scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// 1,000,000 visitors joining over 60 s (peaks of 50,000/s), one event admitting
    /// 20,000/s (a move of 20,000 every second), 10-minute sessions ended by `update_session`.
    Million,
}

/// What to simulate: the event, its strategy, the page's polling and the AWS settings.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// A named scenario; the flags below that it sets (visitors, arrival, strategy, session
    /// length) override it when given.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Visitors who join the line [default: 100,000].
    #[arg(long)]
    pub visitors: Option<u64>,
    /// `uniform:SECS`, or `spike:SHARE:SPIKE_SECS:REST_SECS` (SHARE of everyone within the
    /// first SPIKE_SECS, the rest evenly over the next REST_SECS) [default: spike:0.5:60:1800].
    #[arg(long)]
    pub arrival: Option<String>,
    /// `max-size:MAX_ACTIVE` or `periodic:INCREMENT_BY:INTERVAL_SECS` [default: max-size:2000].
    #[arg(long)]
    pub strategy: Option<String>,
    /// Seconds an admitted visitor stays before the main app ends the session [default: 600].
    #[arg(long)]
    pub session_secs: Option<u64>,
    /// At most this many admissions per minute, on top of the strategy.
    #[arg(long)]
    pub rate_limit_per_min: Option<u64>,
    /// Seconds between strategy passes [default: the template's StrategyEverySecs].
    #[arg(long)]
    pub runner_every: Option<u64>,
    /// Share of sessions ended by `update_session`; the rest expire with their token.
    #[arg(long, default_value_t = 1.0)]
    pub sessions_ended: f64,
    /// Share of served visitors who never claim their token.
    #[arg(long, default_value_t = 0.05)]
    pub abandon: f64,
    /// Token algorithm (signing time).
    #[arg(long, default_value = "RS256")]
    pub algorithm: KeyAlgorithm,
    /// Main-app requests per admitted visitor checked by the room's authorizer.
    #[arg(long, default_value_t = 0.0)]
    pub authorized_requests: f64,
    /// Origin requests per second per event for `/event_state` [default: 600 CloudFront
    /// caches, each fetching once per the template's MinTTL].
    #[arg(long)]
    pub state_origin_rps: Option<f64>,
    /// Lambda concurrent executions in the account.
    #[arg(long, default_value_t = 1_000.0)]
    pub lambda_concurrency: f64,
    /// Writes and reads per second the table takes at once (warm throughput).
    #[arg(long, default_value_t = 4_000.0)]
    pub table_wcu: f64,
    #[arg(long, default_value_t = 12_000.0)]
    pub table_rcu: f64,
    /// How long a transaction holds its items, in ms (assumed).
    #[arg(long, default_value_t = 25.0)]
    pub transaction_ms: f64,
    /// A template parameter as deployed for the event, `NAME=VALUE` (repeatable); the preset
    /// million sets ConsumerMaxConcurrency=30, enough consumers for 50,000 joins/s.
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    pub parameters: Vec<String>,
    /// Per-item costs measured on the wire [default: the checked-in measurement].
    #[arg(long)]
    pub measured: Option<PathBuf>,
    /// Write the chart here (SVG).
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

fn strategy(raw: &str) -> Result<Strategy, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let number = |s: &str| s.parse::<u64>().map_err(|e| format!("{raw}: {e}"));
    let strategy = match parts.as_slice() {
        ["max-size", max] => Strategy::MaxSize {
            max_active: number(max)?,
        },
        ["periodic", by, every] => Strategy::Periodic {
            increment_by: number(by)?,
            interval_secs: number(every)?,
        },
        _ => {
            return Err(format!(
                "strategy {raw:?}: use max-size:MAX_ACTIVE or periodic:INCREMENT_BY:INTERVAL_SECS"
            ));
        }
    };
    strategy.validate().map_err(|e| e.to_string())?;
    Ok(strategy)
}

pub fn thousands(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn clock(secs: u64) -> String {
    format!("{}h{:02}m{:02}s", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The scenario the flags (and preset) describe.
fn scenario(args: &SimulateArgs, stack: &Stack) -> Result<Scenario, String> {
    let million = args.preset == Some(Preset::Million);
    let visitors = args
        .visitors
        .unwrap_or(if million { 1_000_000 } else { 100_000 });
    // Half in 10 s at 50,000/s, the other half over the next 50 s at 10,000/s.
    let arrival = args.arrival.clone().unwrap_or_else(|| {
        if million {
            "spike:0.5:10:50"
        } else {
            "spike:0.5:60:1800"
        }
        .into()
    });
    // 20,000 every second: moves of one second's admissions, so that their claims (which come
    // within a poll interval of the move) spread over the stripes at the admission rate.
    let strategy_text = args.strategy.clone().unwrap_or_else(|| {
        if million {
            "periodic:20000:1"
        } else {
            "max-size:2000"
        }
        .into()
    });
    let mut config = EventConfig::new(EventId::parse("sale").map_err(|e| e.to_string())?);
    config.strategy = strategy(&strategy_text)?;
    config.rate_limit_per_min = args.rate_limit_per_min;
    config.validate().map_err(|e| e.to_string())?;
    let mut scenario = Scenario::new(visitors, Arrival::parse(&arrival)?, config);
    scenario.runner_every_secs = args
        .runner_every
        .or_else(|| stack.parameter("StrategyEverySecs").map(|s| s as u64))
        .unwrap_or(5)
        .max(1);
    scenario.session_secs = args.session_secs.unwrap_or(600);
    scenario.sessions_ended = args.sessions_ended.clamp(0.0, 1.0);
    scenario.abandon = args.abandon.clamp(0.0, 1.0);
    scenario.authorized_requests = args.authorized_requests.max(0.0);
    scenario.page = match args.state_origin_rps {
        Some(rps) => PageBehaviour {
            state_origin_rps: rps.max(0.0),
        },
        None => PageBehaviour::of(stack),
    };
    Ok(scenario)
}

/// Simulates the event and prints the report (and writes the chart when asked).
/// The template parameters the event is deployed with: the flags', then the preset's.
fn parameters(args: &SimulateArgs) -> Result<Vec<(String, String)>, String> {
    let mut set: Vec<(String, String)> = args
        .parameters
        .iter()
        .map(|raw| {
            raw.split_once('=')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("--parameter {raw:?}: use NAME=VALUE"))
        })
        .collect::<Result<_, _>>()?;
    if args.preset == Some(Preset::Million)
        && !set.iter().any(|(n, _)| n == "ConsumerMaxConcurrency")
    {
        set.push(("ConsumerMaxConcurrency".into(), "30".into()));
    }
    Ok(set)
}

pub async fn run(args: &SimulateArgs) -> Result<(), String> {
    let deployed = parameters(args)?;
    let stack = Stack::of_repository_with(&deployed)?;
    let defaults = Stack::of_repository()?;
    let measured = match &args.measured {
        Some(path) => Measured::from_file(path)?,
        None => Measured::checked_in()?,
    };
    let costs = Costs::new(measured);
    costs.check()?;
    let scenario = scenario(args, &stack)?;
    let durations = match args.algorithm {
        KeyAlgorithm::RS256 => Durations::rs256(),
        KeyAlgorithm::EdDSA => Durations::eddsa(),
    };
    let limits = Limits {
        lambda_concurrency: args.lambda_concurrency,
        table_warm_wcu: args.table_wcu,
        table_warm_rcu: args.table_rcu,
        transaction_ms: args.transaction_ms.max(0.001),
        ..Limits::default()
    };
    let prices = Prices::default();
    let outcome = simulate(&scenario, &costs, &stack, &durations, &limits);
    print_report(
        args, &scenario, &costs, &defaults, &durations, &limits, &prices, &outcome,
    )?;
    if let Some(path) = &args.svg {
        let title = format!(
            "{} visitors, arrival {:?}, {:?}",
            thousands(scenario.visitors as f64),
            scenario.arrival,
            scenario.config.strategy
        );
        std::fs::write(path, chart::svg(&outcome, &title))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!();
        println!("chart written to {}", path.display());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    args: &SimulateArgs,
    scenario: &Scenario,
    costs: &Costs,
    defaults: &Stack,
    durations: &Durations,
    limits: &Limits,
    prices: &Prices,
    outcome: &Outcome,
) -> Result<(), String> {
    let usage = &outcome.usage;
    let page = &scenario.page;
    println!("== Event");
    println!(
        "{} visitors, arrival {:?}, strategy {:?}, rate limit {}, strategy pass every {} s",
        thousands(scenario.visitors as f64),
        scenario.arrival,
        scenario.config.strategy,
        args.rate_limit_per_min
            .map_or("none".into(), |r| format!("{r}/min")),
        scenario.runner_every_secs
    );
    let deployed = parameters(args)?;
    println!(
        "template.yaml with {}",
        if deployed.is_empty() {
            "its defaults".to_owned()
        } else {
            deployed
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!(
        "sessions {} s ({:.0}% ended by update_session), {:.0}% never claim, {:?} tokens",
        scenario.session_secs,
        scenario.sessions_ended * 100.0,
        scenario.abandon * 100.0,
        args.algorithm,
    );
    let policy = eta::POLL_POLICY;
    println!(
        "page: position look-ups after {}, {}, {}... ms up to every {} ms until placed; then /event_state through CloudFront at the poll policy it publishes (every {}..{} ms, +{} ms per place ahead, at most ETA/{}), fetched from the origin by at most {} CloudFront caches a second, those a viewer asked",
        unplaced_delay_ms(0),
        unplaced_delay_ms(1),
        unplaced_delay_ms(2),
        unplaced_delay_ms(u32::MAX),
        policy.min_ms,
        policy.max_ms,
        policy.ms_per_place,
        policy.eta_divisor,
        thousands(page.state_origin_rps)
    );
    println!();
    println!("== Line");
    match outcome.all_admitted_secs {
        Some(t) => println!("everyone let in after      {}", clock(t)),
        None => println!("everyone let in after      not within 48 h"),
    }
    println!(
        "peak waiting               {}",
        thousands(outcome.peak_waiting)
    );
    println!("tokens claimed             {}", thousands(usage.claimed));
    println!(
        "page requests per admitted {:.1}",
        usage.polls / usage.claimed.max(1.0)
    );
    println!();
    println!("== Limits: peak demand against each limit (demand after retries where refused)");
    for v in &outcome.verdicts {
        println!(
            "{:<4} {:<48} peak {:>12} {:<9} at {}  limit {:>9} {:>6}  ({}) [{}]",
            if v.first_crossed.is_some() {
                "OVER"
            } else {
                "ok"
            },
            v.name,
            thousands(v.peak),
            v.unit,
            clock(v.peak_at),
            thousands(v.limit),
            format!("{:.0}%", 100.0 * v.peak / v.limit.max(1e-9)),
            v.detail,
            v.source
        );
    }
    match outcome.busiest_item_or_partition() {
        Some(v) => println!(
            "items and partitions: busiest {} at {:.0}% of its budget ({} {}), {} half of it",
            v.name,
            100.0 * v.peak / v.limit,
            thousands(v.peak),
            v.unit,
            if v.peak <= v.limit / 2.0 {
                "within"
            } else {
                "OVER"
            }
        ),
        None => println!("items and partitions: no load"),
    }
    match outcome.first_crossed() {
        Some(v) => println!(
            "first limit crossed: {} at {} (limit {} {})",
            v.name,
            clock(v.first_crossed.unwrap_or_default()),
            thousands(v.limit),
            v.unit
        ),
        None => println!("first limit crossed: none"),
    }
    println!();
    println!("== Quotas and settings to raise for this event (needed: its peak demand)");
    let needs = crate::quotas::needs(outcome, defaults, limits);
    for need in needs.iter().filter(|n| n.needed > n.default) {
        println!(
            "raise {:<58} to {:>9} (default {:>9})  [{}]",
            need.name,
            thousands(need.needed),
            thousands(need.default),
            need.source
        );
    }
    let within: Vec<&str> = needs
        .iter()
        .filter(|n| n.needed <= n.default)
        .map(|n| n.name.as_str())
        .collect();
    println!(
        "within defaults: {}",
        if within.is_empty() {
            "none".to_owned()
        } else {
            within.join(", ")
        }
    );
    println!();
    println!("== Cost per 1,000 admitted visitors (USD, us-east-1, no free tier)");
    let page_kb = 34.0;
    let answer_kb = 1.0;
    let bill = [
        (
            "API Gateway",
            usage.api_requests * prices.api_gateway_http_per_million / 1e6,
        ),
        (
            "Lambda",
            usage.lambda_invocations * prices.lambda_requests_per_million / 1e6
                + usage.lambda_gb_secs * prices.lambda_arm_gb_sec,
        ),
        (
            "DynamoDB",
            usage.wcu * prices.dynamodb_wru_per_million / 1e6
                + usage.rcu * prices.dynamodb_rru_per_million / 1e6,
        ),
        (
            "SQS",
            usage.sqs_requests * prices.sqs_standard_per_million / 1e6,
        ),
        (
            "CloudFront",
            usage.viewer_requests * prices.cloudfront_https_per_10k / 1e4
                + (usage.enqueues * page_kb + usage.viewer_requests * answer_kb) / 1e6
                    * prices.cloudfront_gb_out,
        ),
    ];
    let per_k = 1_000.0 / usage.claimed.max(1.0);
    let total: f64 = bill.iter().map(|(_, usd)| usd).sum();
    for (name, usd) in &bill {
        println!("{name:<12} {:>9.4}", usd * per_k);
    }
    println!("{:<12} {:>9.4}", "total", total * per_k);
    println!(
        "(whole event: ${total:.2}; DynamoDB {} read and {} write units)",
        thousands(usage.rcu),
        thousands(usage.wcu)
    );
    println!();
    println!("== Idle month (no event open), from template.yaml");
    let default_on = defaults.monitoring_default();
    for monitoring in [default_on, !default_on] {
        let month = idle_month(defaults, &costs.measured, prices, monitoring)?;
        println!(
            "-- Monitoring={monitoring}{}",
            if monitoring == default_on {
                " (the template's default)"
            } else {
                ""
            }
        );
        for line in &month.lines {
            println!("{:<44} {:>8.2}  {}", line.item, line.usd, line.how);
        }
        println!(
            "{:<44} {:>8.2}",
            format!("idle cost per month, Monitoring={monitoring} (USD)"),
            month.total()
        );
    }
    println!();
    println!("== Assumptions");
    println!(
        "- per-item DynamoDB costs: {} ({} visitors, {} admitted, {} look-ups), written by: {}",
        args.measured
            .as_ref()
            .map_or(CHECKED_IN_PATH.into(), |p| p.display().to_string()),
        costs.measured.visitors,
        costs.measured.admitted,
        costs.measured.polls,
        costs.measured.command
    );
    for (price, source) in Prices::SOURCES {
        println!("- {price} [{source}]");
    }
    println!(
        "- Lambda ms per request (estimates): enqueue {}, look-up {}, token {}, session end {}, batch of 1,000 {}, authorizer {}; memory, reserved concurrency, consumer concurrency and batch size from template.yaml",
        durations.enqueue_ms,
        durations.poll_ms,
        durations.token_ms,
        durations.session_end_ms,
        durations.batch_ms,
        durations.authorizer_ms
    );
    println!(
        "- a transaction holds its items {} ms (assumed), so one item completes at most {:.0} transactions/s; refused calls are retried ({} attempts by the SDK, {} by the store for transactions)",
        limits.transaction_ms,
        limits.item_transactions(),
        limits.sdk_attempts,
        limits.transaction_attempts
    );
    println!(
        "- each busy instance keeps the event in process: reads reload it every {} ms, joins, claims and session ends their config every {} ms, and claiming instances the serving moves at most every {} ms (CacheSettings); a per-visitor item sees at most one look-up a second",
        scenario.cache.counters_ttl.as_millis(),
        scenario.cache.config_ttl.as_millis(),
        scenario.cache.counters_ttl.as_millis()
    );
    println!(
        "- claims: each served page learns of its move at its next poll, uniformly within its poll interval (caches in between, left out, only delay and spread them); claims and session ends spread evenly over the code's {} stripes (by place in line)",
        waiting_room_core::domain::exits::STRIPES
    );
    println!(
        "- look-ups of a position and the claim are priced with the measured costs of the look-up steps (a request read and the cached event)"
    );
    Ok(())
}
