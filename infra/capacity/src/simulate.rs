//! `waiting-room simulate`: an event's line simulated second by second with the room's own
//! strategy and polling rules, what each AWS service sees, the first limit reached, and the
//! cost per 1,000 admitted visitors.
//!
//! `cargo run --release -p waiting-room -- simulate --visitors 100000 \
//!    --arrival spike:0.5:60:1800 --strategy max-size:2000 --svg docs/capacity-example.svg`

use std::path::PathBuf;

use crate::aws::{Limits, PerCall, Prices, Requests};
use crate::chart;
use crate::flow::{Backend, FlowSettings, count_store_calls};
use crate::model::{Arrival, Scenario, Second, simulate};
use waiting_room_core::domain::{EventConfig, EventId, Strategy};
use waiting_room_core::token::KeyAlgorithm;

/// What to simulate: the event, its strategy, and the AWS settings it runs under.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Visitors who join the line.
    #[arg(long, default_value_t = 100_000)]
    pub visitors: u64,
    /// `uniform:SECS`, or `spike:SHARE:SPIKE_SECS:REST_SECS` (SHARE of everyone within the
    /// first SPIKE_SECS, the rest evenly over the next REST_SECS).
    #[arg(long, default_value = "spike:0.5:60:1800")]
    pub arrival: String,
    /// `max-size:MAX_ACTIVE` or `periodic:INCREMENT_BY:INTERVAL_SECS`.
    #[arg(long, default_value = "max-size:2000")]
    pub strategy: String,
    /// At most this many admissions per minute, on top of the strategy.
    #[arg(long)]
    pub rate_limit_per_min: Option<u64>,
    /// Seconds between strategy passes (the template's StrategyEverySecs).
    #[arg(long, default_value_t = 5)]
    pub runner_every: u64,
    /// Seconds an admitted visitor stays before the main app ends the session.
    #[arg(long, default_value_t = 600)]
    pub session_secs: u64,
    /// Share of served visitors who never claim their token.
    #[arg(long, default_value_t = 0.05)]
    pub abandon: f64,
    /// Token algorithm (signing time and item size).
    #[arg(long, default_value = "RS256")]
    pub algorithm: KeyAlgorithm,
    /// Main-app requests per admitted visitor checked by the room's authorizer.
    #[arg(long, default_value_t = 0.0)]
    pub authorized_requests: f64,
    /// The consumer's ConsumerMaxConcurrency.
    #[arg(long, default_value_t = 5.0)]
    pub consumer_concurrency: f64,
    /// Lambda concurrent executions available to the room.
    #[arg(long, default_value_t = 1_000.0)]
    pub lambda_concurrency: f64,
    /// Writes and reads per second the table takes before on-demand scaling (warm throughput).
    #[arg(long, default_value_t = 4_000.0)]
    pub table_wcu: f64,
    #[arg(long, default_value_t = 12_000.0)]
    pub table_rcu: f64,
    /// Visitors in the store-call counting run the model takes its per-call figures from.
    #[arg(long, default_value_t = 10_000)]
    pub flow_visitors: u64,
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

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
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

/// Simulates the event and prints the report (and writes the chart when asked).
pub async fn run(args: &SimulateArgs) -> Result<(), String> {
    let parse = || -> Result<_, String> {
        let arrival = Arrival::parse(&args.arrival)?;
        let mut config = EventConfig::new(EventId::parse("sale").map_err(|e| e.to_string())?);
        config.strategy = strategy(&args.strategy)?;
        config.rate_limit_per_min = args.rate_limit_per_min;
        config.validate().map_err(|e| e.to_string())?;
        Ok((arrival, config))
    };
    let (arrival, config) = parse()?;
    let mut scenario = Scenario::new(args.visitors, arrival, config);
    scenario.runner_every_secs = args.runner_every.max(1);
    scenario.session_secs = args.session_secs;
    scenario.abandon = args.abandon.clamp(0.0, 1.0);
    scenario.authorized_requests = args.authorized_requests.max(0.0);
    let per_call = match args.algorithm {
        KeyAlgorithm::RS256 => PerCall::rs256(),
        KeyAlgorithm::EdDSA => PerCall::eddsa(),
    };
    let limits = Limits {
        consumer_concurrency: args.consumer_concurrency,
        lambda_concurrency: args.lambda_concurrency,
        table_wcu: args.table_wcu,
        table_rcu: args.table_rcu,
        ..Limits::default()
    };
    let prices = Prices::default();

    let flow = count_store_calls(
        &FlowSettings {
            visitors: args.flow_visitors,
            ..FlowSettings::default()
        },
        Backend::Memory,
    )
    .await;
    let outcome = simulate(&scenario, &flow, &per_call, &limits);
    let usage = &outcome.usage;
    let requests = Requests::of(usage, &per_call);

    println!("== Event");
    println!(
        "{} visitors, arrival {}, strategy {}, rate limit {}, strategy pass every {} s",
        thousands(args.visitors as f64),
        args.arrival,
        args.strategy,
        args.rate_limit_per_min
            .map_or("none".into(), |r| format!("{r}/min")),
        scenario.runner_every_secs
    );
    println!(
        "sessions {} s, {:.0}% never claim, {:?} tokens, {} authorized requests per visitor",
        args.session_secs,
        scenario.abandon * 100.0,
        args.algorithm,
        args.authorized_requests
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
    println!("tokens claimed             {}", thousands(outcome.claimed));
    println!(
        "polls per admitted visitor {:.1}",
        usage.polls / outcome.claimed.max(1.0)
    );
    let peak = |f: &dyn Fn(&Second) -> f64| outcome.seconds.iter().map(f).fold(0.0, f64::max);
    println!(
        "peak API requests/s        {}",
        thousands(peak(&|s| s.api_requests))
    );
    println!();
    println!("== Requests per service (whole event)");
    for (name, value) in [
        ("API Gateway requests", requests.api_gateway),
        ("Lambda invocations", requests.lambda_invocations),
        ("Lambda GB-seconds", requests.lambda_gb_secs),
        ("DynamoDB read units", requests.dynamodb_rcu),
        ("DynamoDB write units", requests.dynamodb_wcu),
        ("SQS requests", requests.sqs),
        ("CloudFront requests", requests.cloudfront),
    ] {
        println!(
            "{name:<26} {:>15}   {:>8.2} per admitted visitor",
            thousands(value),
            value / outcome.claimed.max(1.0)
        );
    }
    println!(
        "(store writes per admitted visitor measured over {} visitors: {:.3}; store reads per poll: {:.3})",
        thousands(flow.visitors as f64),
        flow.writes_per_admitted(),
        flow.reads_per_poll()
    );
    println!();
    println!("== Limits (peak demand / capacity)");
    for (name, share, at) in &outcome.utilisation {
        println!("{:>6.0}%  {name}  (peak at {})", share * 100.0, clock(*at));
    }
    match &outcome.first_bottleneck {
        Some(b) => println!(
            "first bottleneck: {} at {}: {} needed, {} available",
            b.limit,
            clock(b.at_secs),
            thousands(b.demand),
            thousands(b.capacity)
        ),
        None => println!(
            "first bottleneck: none reached; closest: {}",
            outcome
                .utilisation
                .first()
                .map_or("-", |(name, _, _)| *name)
        ),
    }
    println!();
    println!("== Cost per 1,000 admitted visitors (USD, us-east-1, no free tier)");
    let bill = prices.bill(&requests);
    let per_k = 1_000.0 / outcome.claimed.max(1.0);
    let total: f64 = bill.iter().map(|(_, usd)| usd).sum();
    for (name, usd) in &bill {
        println!("{name:<12} {:>9.4}", usd * per_k);
    }
    println!("{:<12} {:>9.4}", "total", total * per_k);
    println!("(whole event: ${total:.2})");
    println!();
    println!("== Assumptions");
    for (price, source) in Prices::SOURCES {
        println!("- {price} [{source}]");
    }
    println!(
        "- Lambda {} MB arm64; ms per request: enqueue {}, poll {}, token {}, batch of 1,000 {}, authorizer {}",
        per_call.lambda_memory_mb,
        per_call.enqueue_ms,
        per_call.poll_ms,
        per_call.token_ms,
        per_call.batch_ms,
        per_call.authorizer_ms
    );
    println!(
        "- DynamoDB: strongly consistent reads; a /status poll reads the event item and the request item; request item with tokens {} KB; transactions cost double",
        per_call.request_item_kb
    );
    println!(
        "- limits: event item 1,000 WCU/s and 3,000 RCU/s; table {} WCU/s and {} RCU/s before on-demand scales; Lambda {} concurrent; API Gateway 10,000 requests/s; consumer {} x 1,000 per {} s",
        thousands(limits.table_wcu),
        thousands(limits.table_rcu),
        thousands(limits.lambda_concurrency),
        limits.consumer_concurrency,
        limits.batch_secs
    );
    println!(
        "- page: {} CloudFront requests, {} KB per visitor; {} KB per API answer",
        per_call.page_requests, per_call.page_kb, per_call.poll_kb
    );

    if let Some(path) = &args.svg {
        let title = format!(
            "{} visitors, {}, {}",
            thousands(args.visitors as f64),
            args.arrival,
            args.strategy
        );
        std::fs::write(path, chart::svg(&outcome, &title))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!();
        println!("chart written to {}", path.display());
    }
    Ok(())
}
