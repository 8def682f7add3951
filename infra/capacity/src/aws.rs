//! What the room's traffic asks of AWS: DynamoDB units per item class from the measured run
//! ([`Measured`]), Lambda time per request, the limits that bind, and public us-east-1 prices.
//! Every number here that is not measured is an assumption or a documented limit, and says
//! which, and where it comes from.

use std::collections::BTreeMap;

use waiting_room_core::adapters::dynamodb::Scope;
use waiting_room_core::domain::exits::STRIPES;

use crate::flow::{Step, unplaced_delay_ms};
use crate::measured::{ClassCost, Measured, Per};

/// How often each step happens in one second (or over a whole event).
#[derive(Debug, Clone, Default)]
pub struct StepRates {
    /// Occurrences and visitors acted on, per step.
    pub rates: BTreeMap<Step, (f64, f64)>,
    /// Occurrences of only one class's part of a step (a process that reloads the serving
    /// moves but not the event item).
    pub class_only: BTreeMap<(Step, String), f64>,
}

impl StepRates {
    pub fn add(&mut self, step: Step, occurrences: f64, visitors: f64) {
        let entry = self.rates.entry(step).or_default();
        entry.0 += occurrences;
        entry.1 += visitors;
    }

    pub fn add_class(&mut self, step: Step, class: &str, occurrences: f64) {
        *self.class_only.entry((step, class.to_owned())).or_default() += occurrences;
    }

    pub fn occurrences(&self, step: Step) -> f64 {
        self.rates.get(&step).map_or(0.0, |r| r.0)
    }
}

/// Load on one class of items in one second, in units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassLoad {
    pub read_units: f64,
    pub write_units: f64,
    /// Units on single items (not queries, not index writes).
    pub item_read_units: f64,
    pub item_write_units: f64,
    pub transactions: f64,
    /// Of the busiest single item, the most one visitor's step puts on it (per-visitor items).
    pub per_visitor_item_read_units: f64,
    pub per_visitor_item_write_units: f64,
}

/// Read and write units on one item or partition.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl Units {
    fn max(self, other: Units) -> Units {
        Units {
            read: self.read.max(other.read),
            write: self.write.max(other.write),
        }
    }
}

/// The DynamoDB side of one second.
#[derive(Debug, Clone, Default)]
pub struct DynamoLoad {
    pub classes: BTreeMap<String, ClassLoad>,
    /// Busiest single item (and its class), reads and writes.
    pub busiest_item: (String, Units),
    pub busiest_partition: (String, Units),
    /// Busiest partition of each index.
    pub index_partitions: BTreeMap<String, Units>,
    /// Transactions per second on the busiest item written by transactions.
    pub busiest_item_transactions: (String, f64),
    pub table: Units,
    pub indexes: Units,
}

/// Per-item DynamoDB costs of the room, from a measured run.
#[derive(Debug, Clone)]
pub struct Costs {
    pub measured: Measured,
}

impl Costs {
    pub fn new(measured: Measured) -> Self {
        Self { measured }
    }

    /// Steps the model knows how to count, with the measured costs it needs; an error names
    /// what the measurement has that the model cannot price.
    pub fn check(&self) -> Result<(), String> {
        // Striped classes spread over the code's own stripe count; a measurement taken with
        // another count is stale.
        for class in &self.measured.classes {
            if class.partition == Scope::Striped && class.partitions != STRIPES {
                return Err(format!(
                    "the measurement spreads {} over {} partitions, the code over {STRIPES} stripes: run bash infra/capacity/measure.sh",
                    class.name, class.partitions
                ));
            }
        }
        for step in &self.measured.steps {
            for cost in &step.classes {
                if self.measured.class(&cost.class).is_none() {
                    return Err(format!(
                        "{:?} costs class {} that the measurement does not describe",
                        step.step, cost.class
                    ));
                }
            }
        }
        Ok(())
    }

    /// The load of one second of traffic.
    pub fn load(&self, rates: &StepRates) -> DynamoLoad {
        let mut load = DynamoLoad::default();
        for step in &self.measured.steps {
            let (occurrences, visitors) = rates.rates.get(&step.step).copied().unwrap_or_default();
            for cost in &step.classes {
                let only = rates
                    .class_only
                    .get(&(step.step, cost.class.clone()))
                    .copied()
                    .unwrap_or_default();
                let times = match cost.per {
                    Per::Occurrence => occurrences + only,
                    Per::Visitor => visitors + only,
                };
                if times == 0.0 {
                    continue;
                }
                // A visitor's request reads the event (and the serving moves) from its
                // process's cache; what the measured run saw of the cache's reloads during such
                // a step is counted per instance by the caller instead (`Step::ViewLoad`).
                let cached = step.step.reads_cached_event()
                    && self
                        .measured
                        .class(&cost.class)
                        .is_some_and(|c| matches!(c.item, Scope::One | Scope::PerMove));
                if cached {
                    let mut cost = cost.clone();
                    cost.read_units = 0.0;
                    cost.item_read_units = 0.0;
                    let class = load.classes.entry(cost.class.clone()).or_default();
                    add(class, &cost, times, step.step);
                    continue;
                }
                let class = load.classes.entry(cost.class.clone()).or_default();
                add(class, cost, times, step.step);
            }
        }
        for (name, class) in &load.classes {
            let Some(measured) = self.measured.class(name) else {
                continue;
            };
            let item = self.on_one_item(measured.item, class);
            let partition = self.on_one(
                measured.partition,
                Units {
                    read: class.read_units,
                    write: class.write_units,
                },
                item,
            );
            let total = Units {
                read: class.read_units,
                write: class.write_units,
            };
            if measured.index {
                load.indexes.read += total.read;
                load.indexes.write += total.write;
                load.index_partitions.insert(name.clone(), partition);
                continue;
            }
            load.table.read += total.read;
            load.table.write += total.write;
            if weight(item) > weight(load.busiest_item.1) {
                load.busiest_item = (name.clone(), item);
            }
            if weight(partition) > weight(load.busiest_partition.1) {
                load.busiest_partition = (name.clone(), partition);
            }
            let share = match measured.item {
                Scope::One | Scope::PerMove => 1.0,
                Scope::Striped => stripe_share(),
                // One visitor's item sees one of its own transactions at a time.
                Scope::PerVisitor | Scope::PerEntry => 0.0,
            };
            let transactions = class.transactions * share;
            if transactions > load.busiest_item_transactions.1 {
                load.busiest_item_transactions = (name.clone(), transactions);
            }
        }
        load
    }

    /// Units on the busiest item of a class, by how its items multiply.
    fn on_one_item(&self, scope: Scope, class: &ClassLoad) -> Units {
        let all = Units {
            read: class.item_read_units,
            write: class.item_write_units,
        };
        match scope {
            Scope::One | Scope::PerMove => all,
            Scope::Striped => Units {
                read: all.read * stripe_share(),
                write: all.write * stripe_share(),
            },
            Scope::PerVisitor | Scope::PerEntry => Units {
                read: class.per_visitor_item_read_units,
                write: class.per_visitor_item_write_units,
            },
        }
    }

    /// Units on the busiest partition of a class.
    fn on_one(&self, scope: Scope, all: Units, item: Units) -> Units {
        match scope {
            Scope::One | Scope::PerMove => all,
            Scope::Striped => Units {
                read: all.read * stripe_share(),
                write: all.write * stripe_share(),
            },
            Scope::PerVisitor | Scope::PerEntry => item,
        }
    }
}

/// Share of a striped class's load on its busiest stripe: claims and session ends are striped
/// by place in line (`exits::stripe_of`), and a second's claims are consecutive places, so
/// they spread evenly over the code's [`STRIPES`] (the measured run, a few hundred visitors,
/// is too small to show it: its busiest stripe is sampling noise).
fn stripe_share() -> f64 {
    1.0 / STRIPES as f64
}

fn add(class: &mut ClassLoad, cost: &ClassCost, times: f64, step: Step) {
    class.read_units += cost.read_units * times;
    class.write_units += cost.write_units * times;
    class.item_read_units += cost.item_read_units * times;
    class.item_write_units += cost.item_write_units * times;
    class.transactions += cost.transactions * times;
    // One visitor's own item: at most one look-up a second (the fastest pace the room or the
    // page sets), and its other steps once each.
    let pace = match step {
        Step::UnplacedPoll => 1000.0 / unplaced_delay_ms(0) as f64,
        _ => 1.0,
    };
    let own = Units {
        read: cost.item_read_units.min(cost.read_units) * pace,
        write: cost.busiest_item_write_units * pace,
    };
    let current = Units {
        read: class.per_visitor_item_read_units,
        write: class.per_visitor_item_write_units,
    }
    .max(own);
    class.per_visitor_item_read_units = current.read;
    class.per_visitor_item_write_units = current.write;
}

/// Share of an item's own limits (3,000 reads/s, 1,000 writes/s).
fn weight(units: Units) -> f64 {
    units.read / 3_000.0 + units.write / 1_000.0
}

/// Demand after retries: a share `p` of the offered requests is refused (throttled or
/// cancelled) and each refused one is tried again, up to `attempts` in all, so the offered rate
/// O satisfies O = D (1 + p + ... + p^(attempts-1)). `refused(O)` gives p for an offered rate.
pub fn with_retries(demand: f64, attempts: u32, refused: impl Fn(f64) -> f64) -> f64 {
    let mut offered = demand;
    for _ in 0..100 {
        let p = refused(offered).clamp(0.0, 1.0);
        let next = demand * (0..attempts).map(|k| p.powi(k as i32)).sum::<f64>();
        if (next - offered).abs() < 1e-6 * demand.max(1.0) {
            return next;
        }
        offered = next;
    }
    offered
}

/// The documented limits that bind a waiting room on AWS, and the assumptions beside them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// One partition (so one item): 1,000 WCU/s and 3,000 RCU/s.
    pub item_wcu: f64,
    pub item_rcu: f64,
    /// A new on-demand table serves 4,000 writes/s and 12,000 reads/s at once (warm
    /// throughput), and scales from there up to the table quota.
    pub table_warm_wcu: f64,
    pub table_warm_rcu: f64,
    pub table_quota_wcu: f64,
    pub table_quota_rcu: f64,
    /// Concurrent executions per account and region, and requests per second per unit of it.
    pub lambda_concurrency: f64,
    pub lambda_requests_per_concurrency: f64,
    /// API Gateway requests per second per account and region (steady state).
    pub api_rps: f64,
    /// CloudFront requests per second per distribution.
    pub cloudfront_rps: f64,
    /// Assumed: how long a transaction holds its items (about one TransactWriteItems round
    /// trip); two transactions on one item within it conflict and one is cancelled.
    pub transaction_ms: f64,
    /// Attempts the SDK makes on a throttled call (its standard retry mode), and the adapter
    /// on a cancelled transaction (`ATTEMPTS` in the DynamoDB store).
    pub sdk_attempts: u32,
    pub transaction_attempts: u32,
    /// Assumed: seconds the consumer takes for a batch of 1,000.
    pub batch_secs: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            item_wcu: 1_000.0,
            item_rcu: 3_000.0,
            table_warm_wcu: 4_000.0,
            table_warm_rcu: 12_000.0,
            table_quota_wcu: 40_000.0,
            table_quota_rcu: 40_000.0,
            lambda_concurrency: 1_000.0,
            lambda_requests_per_concurrency: 10.0,
            api_rps: 10_000.0,
            cloudfront_rps: 250_000.0,
            transaction_ms: 25.0,
            sdk_attempts: 3,
            transaction_attempts: 8,
            batch_secs: 0.6,
        }
    }
}

impl Limits {
    /// Transactions per second one item completes at most: attempts arrive at random, each
    /// holds the item `transaction_ms`, and one that meets another is cancelled; the completed
    /// rate A·e^(-A·d) peaks at 1/(e·d).
    pub fn item_transactions(&self) -> f64 {
        1.0 / (std::f64::consts::E * self.transaction_ms / 1000.0)
    }

    /// Share of transactions cancelled at an offered rate on one item.
    pub fn conflict_share(&self, offered_per_sec: f64) -> f64 {
        1.0 - (-offered_per_sec * self.transaction_ms / 1000.0).exp()
    }

    /// Sources, as printed beside each verdict.
    pub const ITEM: &'static str =
        "DynamoDB developer guide, partition throughput: 3,000 RCU and 1,000 WCU per partition";
    pub const TABLE_WARM: &'static str =
        "DynamoDB developer guide, on-demand: a new table serves 4,000 WRU/12,000 RRU at once";
    pub const TABLE_QUOTA: &'static str =
        "DynamoDB service quotas: 40,000 RRU and 40,000 WRU per table (default, adjustable)";
    pub const TRANSACTIONS: &'static str = "DynamoDB developer guide, transaction conflicts (cancelled, not queued); hold time assumed";
    pub const API: &'static str =
        "API Gateway quotas: 10,000 requests/s per account and region (burst 5,000)";
    pub const LAMBDA: &'static str =
        "Lambda quotas: 1,000 concurrent executions per account and region (default)";
    pub const LAMBDA_RPS: &'static str = "Lambda quotas: requests/s at most 10 x concurrency (per function: its reserved concurrency, or the account's)";
    pub const CLOUDFRONT: &'static str = "CloudFront quotas: 250,000 requests/s per distribution";
    pub const SQS: &'static str =
        "template: ConsumerMaxConcurrency x BatchSize per batch time (batch time assumed)";
}

/// Lambda time per request (estimates: one DynamoDB or SQS round trip is a few ms; an RS256
/// signature ~1.3 ms on a full core, ~7 times that at 256 MB; a token set is three).
#[derive(Debug, Clone)]
pub struct Durations {
    pub enqueue_ms: f64,
    pub poll_ms: f64,
    pub token_ms: f64,
    pub session_end_ms: f64,
    pub batch_ms: f64,
    pub authorizer_ms: f64,
}

impl Durations {
    pub fn rs256() -> Self {
        Self {
            enqueue_ms: 12.0,
            poll_ms: 8.0,
            token_ms: 40.0,
            session_end_ms: 15.0,
            batch_ms: 600.0,
            authorizer_ms: 8.0,
        }
    }

    pub fn eddsa() -> Self {
        Self {
            token_ms: 14.0,
            ..Self::rs256()
        }
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
    pub dynamodb_storage_gb_month: f64,
    pub dynamodb_pitr_gb_month: f64,
    pub sqs_standard_per_million: f64,
    pub cloudfront_https_per_10k: f64,
    pub cloudfront_gb_out: f64,
    pub secret_month: f64,
    pub alarm_metric_month: f64,
    pub dashboard_month: f64,
    pub logs_ingest_gb: f64,
    pub logs_storage_gb_month: f64,
    pub xray_traces_per_million: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            api_gateway_http_per_million: 1.00,
            lambda_requests_per_million: 0.20,
            lambda_arm_gb_sec: 0.000_013_333_4,
            dynamodb_wru_per_million: 0.625,
            dynamodb_rru_per_million: 0.125,
            dynamodb_storage_gb_month: 0.25,
            dynamodb_pitr_gb_month: 0.20,
            sqs_standard_per_million: 0.40,
            cloudfront_https_per_10k: 0.0100,
            cloudfront_gb_out: 0.085,
            secret_month: 0.40,
            alarm_metric_month: 0.10,
            dashboard_month: 3.00,
            logs_ingest_gb: 0.50,
            logs_storage_gb_month: 0.03,
            xray_traces_per_million: 5.00,
        }
    }
}

impl Prices {
    /// Where each price comes from (looked up 2026-11-23).
    pub const SOURCES: &'static [(&'static str, &'static str)] = &[
        (
            "API Gateway HTTP API: $1.00 per million requests (first 300 M/month)",
            "aws.amazon.com/api-gateway/pricing",
        ),
        (
            "Lambda arm64: $0.20 per million requests, $0.0000133334 per GB-s (first 7.5 B GB-s/month)",
            "aws.amazon.com/lambda/pricing",
        ),
        (
            "DynamoDB on-demand: $0.625 per million write request units, $0.125 per million read request units; storage $0.25/GB-month, point-in-time recovery $0.20/GB-month",
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
        (
            "Secrets Manager $0.40 per secret-month; CloudWatch $0.10 per alarm metric-month, $3.00 per dashboard-month, logs $0.50/GB ingested and $0.03/GB-month stored; X-Ray $5.00 per million traces",
            "aws.amazon.com/secrets-manager/pricing, aws.amazon.com/cloudwatch/pricing, aws.amazon.com/xray/pricing",
        ),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_visitor_items_scale_with_visitors_and_shared_ones_with_the_step() {
        let costs = Costs::new(Measured::checked_in().unwrap());
        let load = |batches: f64, visitors: f64| {
            let mut rates = StepRates::default();
            rates.add(Step::Batch, batches, visitors);
            costs.load(&rates)
        };
        let (small, large) = (load(1.0, 100.0), load(1.0, 1_000.0));
        let request = |l: &DynamoLoad| l.classes["request"].write_units;
        let event = |l: &DynamoLoad| l.classes["event"].write_units;
        assert!((request(&large) / request(&small) - 10.0).abs() < 1e-9);
        assert_eq!(event(&large), event(&small), "one counter move per batch");
        // A request item only ever sees its own visitor.
        assert!(large.busiest_item.0 != "request");
    }

    #[test]
    fn retries_amplify_demand_only_past_the_limit() {
        let limit = 1_000.0;
        let throttled = |o: f64| 1.0 - limit / o;
        assert_eq!(with_retries(500.0, 3, throttled), 500.0);
        let offered = with_retries(2_000.0, 3, throttled);
        assert!(offered > 2_000.0 && offered <= 6_000.0, "{offered}");
    }

    #[test]
    fn one_item_completes_few_transactions() {
        let limits = Limits::default();
        assert!((limits.item_transactions() - 14.7).abs() < 0.1);
        assert!(limits.conflict_share(1.0) < 0.05);
        assert!(limits.conflict_share(1_000.0) > 0.99);
    }
}
