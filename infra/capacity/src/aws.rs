//! What the room's calls cost on AWS: DynamoDB units per store call, Lambda time per request,
//! the limits that bind first, and public us-east-1 prices. Every number here is an assumption
//! an operator may question; each says where it comes from.

use crate::flow::{FlowCounts, Step};

/// DynamoDB capacity one store call takes. Derived from the DynamoDB adapter's design (one
/// table; the event item holds config and counters; reads strongly consistent; multi-item
/// steps in transactions, which cost twice): a request read is a `BatchGetItem` of the event
/// item and the request item, a token claim is a 3-item transaction, a batch assignment is a
/// conditional claim put plus a position update per visitor and one counter `ADD` per batch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub rcu: f64,
    pub wcu: f64,
    /// Of those, units on the event item (one partition: 3,000 RCU/s, 1,000 WCU/s).
    pub event_rcu: f64,
    pub event_wcu: f64,
}

impl Units {
    const fn new(rcu: f64, wcu: f64, event_rcu: f64, event_wcu: f64) -> Self {
        Self {
            rcu,
            wcu,
            event_rcu,
            event_wcu,
        }
    }

    fn add(&mut self, other: Units, times: f64) {
        self.rcu += other.rcu * times;
        self.wcu += other.wcu * times;
        self.event_rcu += other.event_rcu * times;
        self.event_wcu += other.event_wcu * times;
    }
}

/// What happened in one second (or a whole event), as counts of room operations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Traffic {
    pub polls: f64,
    pub tokens: f64,
    pub batches: f64,
    pub assigned: f64,
    pub serving_moves: f64,
    pub runner_passes: f64,
    pub sessions_ended: f64,
    pub authorizer_calls: f64,
    /// Warm Lambda instances, each refreshing its cached event view once a second.
    pub lambda_instances: f64,
}

/// Totals over one event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub enqueues: f64,
    pub assigned: f64,
    pub batches: f64,
    pub polls: f64,
    pub tokens: f64,
    pub sessions_ended: f64,
    pub runner_passes: f64,
    pub serving_moves: f64,
    pub authorizer_calls: f64,
    pub rcu: f64,
    pub wcu: f64,
    pub lambda_gb_secs: f64,
    pub duration_secs: f64,
    pub claimed: f64,
}

/// Per-call costs: Lambda time per request and DynamoDB units per store call.
#[derive(Debug, Clone)]
pub struct PerCall {
    pub lambda_memory_mb: f64,
    pub enqueue_ms: f64,
    pub poll_ms: f64,
    pub token_ms: f64,
    pub batch_ms: f64,
    pub authorizer_ms: f64,
    /// Size of a request item once it holds the token set, in KB (writes cost 1 WCU per KB).
    pub request_item_kb: f64,
    /// Page files (HTML, script, style, strings) and `/event_info`, per visitor, from CloudFront.
    pub page_requests: f64,
    pub page_kb: f64,
    pub poll_kb: f64,
}

impl PerCall {
    /// Defaults for the template's 256 MB arm64 functions. Durations are estimates: one
    /// DynamoDB or SQS round trip is a few ms; an RS256 signature costs ~1.3 ms on a full core
    /// (BENCHMARKS.md), ~7 times that at 256 MB (a full vCPU comes at 1,769 MB), and a token
    /// set is three signatures.
    pub fn rs256() -> Self {
        Self {
            lambda_memory_mb: 256.0,
            enqueue_ms: 12.0,
            poll_ms: 8.0,
            token_ms: 40.0,
            batch_ms: 600.0,
            authorizer_ms: 8.0,
            request_item_kb: 3.0,
            page_requests: 5.0,
            page_kb: 34.0,
            poll_kb: 1.0,
        }
    }

    /// EdDSA tokens: signing is ~60 times cheaper and tokens are smaller.
    pub fn eddsa() -> Self {
        Self {
            token_ms: 14.0,
            request_item_kb: 2.0,
            ..Self::rs256()
        }
    }

    /// The DynamoDB capacity of one store call.
    pub fn units(&self, operation: &str) -> Units {
        match operation {
            "get_event" | "counters" => Units::new(1.0, 0.0, 1.0, 0.0),
            "list_events" => Units::new(1.0, 0.0, 0.0, 0.0),
            // BatchGetItem of the event item and the request item.
            "get_request" => Units::new(2.0, 0.0, 1.0, 0.0),
            // The event item (generation), then a Query for the serving move(s).
            "increment_for" | "serving_history" => Units::new(2.0, 0.0, 1.0, 0.0),
            // Nothing due: the event item and an empty Query.
            "expire_tokens" | "expire_positions" => Units::new(2.0, 0.0, 1.0, 0.0),
            // The event item, then a transaction: counter (event item) and the serving move.
            "advance_serving" => Units::new(1.0, 4.0, 1.0, 2.0),
            // Event + request read, the serving move, then a 3-item transaction: the request
            // item with the tokens, the move's claim count, the event's tokens_issued.
            "claim_token" => Units::new(3.0, 2.0 * (self.request_item_kb + 2.0), 1.0, 2.0),
            // Transaction: the request item and the event's completed counter.
            "end_session" => Units::new(1.0, 2.0 * (self.request_item_kb + 1.0), 1.0, 2.0),
            // Per batch: the event item read and the queue counter ADD (visitors: see `assign`).
            "assign_positions" => Units::new(1.0, 1.0, 1.0, 1.0),
            "append_audit" => Units::new(0.0, 1.0, 0.0, 0.0),
            _ => Units::new(1.0, 1.0, 0.0, 0.0),
        }
    }

    /// Units per visitor of a batch: the conditional claim put and the position update.
    const ASSIGN_PER_VISITOR: Units = Units::new(0.0, 2.0, 0.0, 0.0);

    /// Everything DynamoDB serves for `traffic`, with the store calls per operation measured
    /// in `flow`.
    pub fn dynamodb(&self, flow: &FlowCounts, traffic: &Traffic) -> Units {
        let mut units = Units::default();
        let mut per = |step: Step, times: f64, keep: &dyn Fn(&str) -> bool| {
            for operation in flow.operations() {
                if keep(operation) {
                    units.add(self.units(operation), flow.per(step, operation) * times);
                }
            }
        };
        // The event view (config, counters, rate) is cached per instance: counted per instance
        // below, not per poll.
        let view = |op: &str| matches!(op, "get_event" | "counters" | "serving_history");
        per(Step::Poll, traffic.polls, &|op| !view(op));
        per(Step::Token, traffic.tokens, &|op| op != "get_event");
        per(Step::Batch, traffic.batches, &|_| true);
        per(Step::RunnerPass, traffic.runner_passes, &|op| {
            op != "advance_serving"
        });
        units.add(self.units("advance_serving"), traffic.serving_moves);
        units.add(Self::ASSIGN_PER_VISITOR, traffic.assigned);
        units.add(self.units("end_session"), traffic.sessions_ended);
        // The authorizer: the request read behind the breaker (the config is cached).
        units.add(self.units("get_request"), traffic.authorizer_calls);
        for operation in ["get_event", "counters", "serving_history"] {
            units.add(self.units(operation), traffic.lambda_instances.max(1.0));
        }
        units
    }

    fn busy_secs(
        &self,
        enqueues: f64,
        polls: f64,
        tokens: f64,
        batches: f64,
        authorizer: f64,
    ) -> f64 {
        (enqueues * self.enqueue_ms
            + polls * self.poll_ms
            + tokens * self.token_ms
            + batches * self.batch_ms
            + authorizer * self.authorizer_ms)
            / 1000.0
    }

    /// Lambda instances busy at once for a second of this traffic (Little's law).
    pub fn lambda_concurrency(
        &self,
        enqueues: f64,
        polls: f64,
        tokens: f64,
        batches: f64,
        authorizer: f64,
    ) -> f64 {
        self.busy_secs(enqueues, polls, tokens, batches, authorizer)
    }

    pub fn lambda_gb_secs(
        &self,
        enqueues: f64,
        polls: f64,
        tokens: f64,
        batches: f64,
        authorizer: f64,
    ) -> f64 {
        self.busy_secs(enqueues, polls, tokens, batches, authorizer) * self.lambda_memory_mb
            / 1024.0
    }
}

/// The limits that bind a waiting room on AWS, with their defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// One partition, so one item: 1,000 WCU/s and 3,000 RCU/s (DynamoDB developer guide).
    pub partition_wcu: f64,
    pub partition_rcu: f64,
    /// A new on-demand table serves up to 4,000 writes/s and 12,000 reads/s at once and
    /// scales from there (or set warm throughput before the sale).
    pub table_wcu: f64,
    pub table_rcu: f64,
    /// Default concurrent executions per account and region.
    pub lambda_concurrency: f64,
    /// Default API Gateway throttle per account and region (steady state).
    pub api_rps: f64,
    /// The consumer's event source mapping: `ConsumerMaxConcurrency` batches of 1,000 at once.
    pub consumer_concurrency: f64,
    pub batch_secs: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            partition_wcu: 1_000.0,
            partition_rcu: 3_000.0,
            table_wcu: 4_000.0,
            table_rcu: 12_000.0,
            lambda_concurrency: 1_000.0,
            api_rps: 10_000.0,
            consumer_concurrency: 5.0,
            batch_secs: 0.6,
        }
    }
}

impl Limits {
    pub fn consumer_visitors_per_sec(&self) -> f64 {
        self.consumer_concurrency * 1_000.0 / self.batch_secs
    }
}

/// Public on-demand prices, us-east-1, without free tiers or volume discounts.
#[derive(Debug, Clone)]
pub struct Prices {
    pub api_gateway_http_per_million: f64,
    pub lambda_requests_per_million: f64,
    pub lambda_arm_gb_sec: f64,
    pub dynamodb_wru_per_million: f64,
    pub dynamodb_rru_per_million: f64,
    pub sqs_standard_per_million: f64,
    pub cloudfront_https_per_10k: f64,
    pub cloudfront_gb_out: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            api_gateway_http_per_million: 1.00,
            lambda_requests_per_million: 0.20,
            lambda_arm_gb_sec: 0.000_013_333_4,
            dynamodb_wru_per_million: 0.625,
            dynamodb_rru_per_million: 0.125,
            sqs_standard_per_million: 0.40,
            cloudfront_https_per_10k: 0.0100,
            cloudfront_gb_out: 0.085,
        }
    }
}

impl Prices {
    /// Where each price comes from (looked up 2026-11-23).
    pub const SOURCES: &'static [(&'static str, &'static str)] = &[
        (
            "API Gateway HTTP API: $1.00 per million requests (first 300 M/month)",
            "aws.amazon.com/api-gateway/pricing; AWS whitepaper 'Best practices for API Gateway private APIs', cost optimization",
        ),
        (
            "Lambda arm64: $0.20 per million requests, $0.0000133334 per GB-s (first 7.5 B GB-s/month)",
            "aws.amazon.com/lambda/pricing",
        ),
        (
            "DynamoDB on-demand: $0.625 per million write request units, $0.125 per million read request units",
            "aws.amazon.com/dynamodb/pricing/on-demand (prices halved on 2024-11-01)",
        ),
        (
            "SQS standard: $0.40 per million requests (64 KB chunks; first 100 B/month)",
            "aws.amazon.com/sqs/pricing",
        ),
        (
            "CloudFront (United States): $0.0100 per 10,000 HTTPS requests, $0.085 per GB out (first 10 TB)",
            "aws.amazon.com/cloudfront/pricing",
        ),
    ];

    /// The bill of one event, per service, in USD.
    pub fn bill(&self, requests: &Requests) -> Vec<(&'static str, f64)> {
        vec![
            (
                "API Gateway",
                requests.api_gateway * self.api_gateway_http_per_million / 1e6,
            ),
            (
                "Lambda",
                requests.lambda_invocations * self.lambda_requests_per_million / 1e6
                    + requests.lambda_gb_secs * self.lambda_arm_gb_sec,
            ),
            (
                "DynamoDB",
                requests.dynamodb_wcu * self.dynamodb_wru_per_million / 1e6
                    + requests.dynamodb_rcu * self.dynamodb_rru_per_million / 1e6,
            ),
            ("SQS", requests.sqs * self.sqs_standard_per_million / 1e6),
            (
                "CloudFront",
                requests.cloudfront * self.cloudfront_https_per_10k / 1e4
                    + requests.cloudfront_gb * self.cloudfront_gb_out,
            ),
        ]
    }
}

/// What each service is asked for over one event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Requests {
    pub api_gateway: f64,
    pub lambda_invocations: f64,
    pub lambda_gb_secs: f64,
    pub dynamodb_rcu: f64,
    pub dynamodb_wcu: f64,
    pub sqs: f64,
    pub cloudfront: f64,
    pub cloudfront_gb: f64,
}

impl Requests {
    pub fn of(usage: &Usage, per_call: &PerCall) -> Self {
        let api_gateway = usage.enqueues + usage.polls + usage.tokens;
        // The strategy runner: one invocation a minute, looping ~55 s.
        let runner_invocations = (usage.duration_secs / 60.0).ceil();
        let runner_gb_secs = runner_invocations * 55.0 * per_call.lambda_memory_mb / 1024.0;
        let visitors = usage.enqueues;
        Self {
            api_gateway,
            lambda_invocations: api_gateway
                + usage.batches
                + usage.authorizer_calls
                + runner_invocations,
            lambda_gb_secs: usage.lambda_gb_secs + runner_gb_secs,
            dynamodb_rcu: usage.rcu,
            dynamodb_wcu: usage.wcu,
            // SendMessage per visitor; the event source mapping receives and deletes ten at a
            // time; its idle long polls (5 pollers, one 20 s poll each).
            sqs: usage.enqueues * 1.2 + usage.duration_secs / 20.0 * 5.0,
            cloudfront: visitors * per_call.page_requests + api_gateway,
            cloudfront_gb: (visitors * per_call.page_kb + api_gateway * per_call.poll_kb) / 1e6,
        }
    }
}
