//! The AWS quotas (and the template's own settings) an event needs raised: for each, the value
//! the simulated event's peak demand asks for and the default, with the documentation it comes
//! from.

use crate::aws::Limits;
use crate::model::Outcome;
use crate::template::Stack;

/// Instances Lambda keeps for functions without reserved concurrency: reserved concurrency
/// may take the account's concurrency only down to this.
/// Source: Lambda developer guide, "Configuring reserved concurrency" (docs.aws.amazon.com/
/// lambda/latest/dg/configuration-concurrency.html): "You can reserve up to the Unreserved
/// account concurrency value that is shown, minus 100".
pub const UNRESERVED_MINIMUM: f64 = 100.0;

/// One quota or setting, what the event needs and its default.
#[derive(Debug, Clone, PartialEq)]
pub struct Need {
    pub name: String,
    pub needed: f64,
    pub default: f64,
    pub source: &'static str,
}

// Sources, checked against the AWS documentation pages named:
// - API Gateway quotas (docs.aws.amazon.com/apigateway/latest/developerguide/limits.html):
//   "Throttle quota per account, per Region across HTTP APIs, REST APIs, WebSocket APIs...
//   10,000 requests per second", can be increased (Service Quotas code L-8A5B8E43).
// - Lambda quotas (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
//   "Concurrent executions 1,000", can be increased to tens of thousands; "Each instance of
//   your execution environment can serve up to 10 requests per second".
// - DynamoDB on-demand maximum throughput (docs.aws.amazon.com/amazondynamodb/latest/
//   developerguide/on-demand-capacity-mode-max-throughput.html): "your on-demand throughput
//   rate is bounded by 40,000 table-level read and write throughput AWS service quota ...
//   you can request an increase".
// - CloudFront quotas (docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
//   cloudfront-limits.html): "Requests per second per distribution 250,000", request a
//   higher quota.
// - Warm throughput, not a quota: a new on-demand table serves 4,000 write and 12,000 read
//   units/s at once (DynamoDB developer guide, warm throughput); the table's `WarmThroughput`
//   (AWS::DynamoDB::Table WarmThroughput, ReadUnitsPerSecond/WriteUnitsPerSecond, "Update
//   requires: No interruption") raises it ahead of a known peak.
const API: &str = "Service Quotas: API Gateway L-8A5B8E43, throttle per account and Region";
const LAMBDA: &str =
    "Service Quotas: Lambda concurrent executions (account and Region), plus 100 left unreserved";
const DYNAMODB: &str = "Service Quotas: DynamoDB table-level throughput (on-demand)";
const WARM: &str = "template: Table WarmThroughput (pre-warm before the event; billed once)";
const CLOUDFRONT: &str = "Service Quotas: CloudFront requests per second per distribution";
const RESERVED: &str =
    "template parameter: reserved concurrency, >= busy instances and requests/10";
const CONSUMER: &str = "template parameter: ConsumerMaxConcurrency";

/// What the simulated event needs, quota by quota.
pub fn needs(outcome: &Outcome, stack: &Stack, limits: &Limits) -> Vec<Need> {
    let peak = |name: &str| {
        outcome
            .verdicts
            .iter()
            .find(|v| v.name == name)
            .map_or(0.0, |v| v.peak)
    };
    let mut needs = vec![
        Need {
            name: "API Gateway requests/s (account, Region)".into(),
            needed: peak("API Gateway requests").ceil(),
            default: limits.api_rps,
            source: API,
        },
        Need {
            name: "CloudFront requests/s (distribution)".into(),
            needed: peak("CloudFront requests").ceil(),
            default: limits.cloudfront_rps,
            source: CLOUDFRONT,
        },
        Need {
            name: "DynamoDB table write request units/s".into(),
            needed: peak("DynamoDB table writes, quota").ceil(),
            default: limits.table_quota_wcu,
            source: DYNAMODB,
        },
        Need {
            name: "DynamoDB table read request units/s".into(),
            needed: peak("DynamoDB table reads, quota").ceil(),
            default: limits.table_quota_rcu,
            source: DYNAMODB,
        },
        Need {
            name: "DynamoDB warm write units/s (new table)".into(),
            needed: peak("DynamoDB table writes, new table (warm)").ceil(),
            default: limits.table_warm_wcu,
            source: WARM,
        },
        Need {
            name: "DynamoDB warm read units/s (new table)".into(),
            needed: peak("DynamoDB table reads, new table (warm)").ceil(),
            default: limits.table_warm_rcu,
            source: WARM,
        },
    ];
    // Per function: enough reserved instances for its busy ones and for its requests.
    let mut account = UNRESERVED_MINIMUM;
    for function in &stack.functions {
        let busy = peak(&format!("Lambda {} concurrency", function.binary));
        let requests = peak(&format!("Lambda {} requests", function.binary));
        let mut needed = busy
            .max(requests / limits.lambda_requests_per_concurrency)
            .ceil();
        let consumer = function.queue_batch_size.is_some();
        if consumer {
            // The consumer keeps up with joins only with enough instances.
            let per_instance = function.queue_batch_size.unwrap_or(10.0) / limits.batch_secs;
            needed = needed.max((peak("SQS consumer throughput") / per_instance).ceil());
        }
        let Some(reserved) = function.reserved_concurrency else {
            account += needed;
            continue;
        };
        account += needed.max(reserved);
        let setting = function
            .reserved_parameter
            .clone()
            .unwrap_or_else(|| "ReservedConcurrentExecutions".into());
        needs.push(Need {
            name: format!("{setting} ({})", function.binary),
            needed,
            default: reserved,
            source: if consumer { CONSUMER } else { RESERVED },
        });
    }
    needs.push(Need {
        name: "Lambda concurrent executions (account, Region)".into(),
        needed: account,
        default: limits.lambda_concurrency,
        source: LAMBDA,
    });
    needs
}
