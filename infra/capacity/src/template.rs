//! What the model needs from `template.yaml`, read from the template itself (compiled in), so
//! the model and the stack cannot drift: each function's memory, timeout, reserved concurrency,
//! routes, schedule and queue settings; the alarms (and how many metrics each watches), the
//! dashboards, the secrets, the log groups and their retention, the table's billing.

use std::collections::BTreeMap;

use serde_yaml::Value;

/// The stack's template.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

/// One Lambda function of the stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub logical_id: String,
    pub binary: String,
    pub memory_mb: f64,
    pub timeout_secs: f64,
    /// `ReservedConcurrentExecutions`, if set.
    pub reserved_concurrency: Option<f64>,
    /// The template parameter that sets it, if one does.
    pub reserved_parameter: Option<String>,
    /// HTTP API paths routed to it.
    pub routes: Vec<String>,
    /// Seconds between scheduled invocations (`rate(N minute(s)|hour(s))`), if scheduled.
    pub schedule_secs: Option<f64>,
    /// SQS event source: batch size and the most instances at once.
    pub queue_batch_size: Option<f64>,
    pub queue_max_concurrency: Option<f64>,
    /// X-Ray tracing with monitoring on, and with it off.
    pub tracing: (bool, bool),
}

/// The stack as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub functions: Vec<Function>,
    /// Metrics watched by each alarm (a metric-math alarm is priced per metric).
    pub alarm_metrics: Vec<(String, f64)>,
    /// Logical ids of the dashboards.
    pub dashboards: Vec<String>,
    /// Secrets the stack creates, plus those it is given by ARN (the signing key).
    pub secrets: f64,
    pub log_groups: f64,
    pub log_retention_days: f64,
    pub table_on_demand: bool,
    pub point_in_time_recovery: bool,
    /// MinTTL of the `/event_state` cache policy: each CloudFront cache fetches the document
    /// at most once per this many seconds.
    pub event_state_min_ttl_secs: f64,
    /// Resources created only under a condition, by condition (`Monitoring` turns the alarms
    /// and the dashboard on or off).
    pub conditional: BTreeMap<String, String>,
    /// Parameter defaults.
    pub parameters: BTreeMap<String, Value>,
}

impl Stack {
    /// The stack of this repository's template.
    pub fn of_repository() -> Result<Self, String> {
        Self::parse(TEMPLATE)
    }

    /// The stack of this repository's template deployed with some parameters set (`NAME`,
    /// `VALUE` pairs), as an operator sets them for an event.
    pub fn of_repository_with(overrides: &[(String, String)]) -> Result<Self, String> {
        Self::parse_with(TEMPLATE, overrides)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_with(text, &[])
    }

    fn parse_with(text: &str, overrides: &[(String, String)]) -> Result<Self, String> {
        let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("template.yaml: {e}"))?;
        let mut parameters: BTreeMap<String, Value> = doc
            .get("Parameters")
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.get("Default")?.clone())))
                    .collect()
            })
            .unwrap_or_default();
        for (name, value) in overrides {
            let declared = doc
                .get("Parameters")
                .and_then(|p| p.get(name.as_str()))
                .is_some();
            if !declared {
                return Err(format!("template.yaml has no parameter {name}"));
            }
            parameters.insert(name.clone(), Value::String(value.clone()));
        }
        let resolve = |value: &Value| -> Option<Value> {
            match value {
                Value::Tagged(tagged) if tagged.tag == "!Ref" => {
                    parameters.get(tagged.value.as_str()?).cloned()
                }
                other => Some(other.clone()),
            }
        };
        let number = |value: Option<&Value>| -> Option<f64> {
            let value = resolve(value?)?;
            value
                .as_f64()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        };
        let globals = doc.get("Globals").and_then(|g| g.get("Function"));
        let global_memory = number(globals.and_then(|g| g.get("MemorySize"))).unwrap_or(128.0);
        let global_timeout = number(globals.and_then(|g| g.get("Timeout"))).unwrap_or(3.0);
        let global_tracing = tracing(globals.and_then(|g| g.get("Tracing")));

        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or("template.yaml: no Resources")?;
        let mut stack = Stack {
            functions: Vec::new(),
            alarm_metrics: Vec::new(),
            dashboards: Vec::new(),
            // The signing key's secret is made outside the stack and passed by ARN.
            secrets: if doc
                .get("Parameters")
                .and_then(|p| p.get("SigningKeySecretArn"))
                .is_some()
            {
                1.0
            } else {
                0.0
            },
            log_groups: 0.0,
            log_retention_days: 0.0,
            table_on_demand: false,
            point_in_time_recovery: false,
            event_state_min_ttl_secs: 0.0,
            conditional: BTreeMap::new(),
            parameters: parameters.clone(),
        };
        for (id, resource) in resources {
            let id = id.as_str().unwrap_or_default().to_owned();
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
            let props = resource.get("Properties");
            let prop = |name: &str| props.and_then(|p| p.get(name));
            if let Some(condition) = resource.get("Condition").and_then(Value::as_str) {
                stack.conditional.insert(id.clone(), condition.to_owned());
            }
            match kind {
                "AWS::CloudFront::CachePolicy" if id == "EventStateCachePolicy" => {
                    stack.event_state_min_ttl_secs =
                        number(prop("CachePolicyConfig").and_then(|c| c.get("MinTTL")))
                            .unwrap_or(0.0);
                }
                "AWS::Serverless::Function" => {
                    let mut function = Function {
                        binary: resource
                            .get("Metadata")
                            .and_then(|m| m.get("BuildProperties"))
                            .and_then(|b| b.get("Binary"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        logical_id: id,
                        memory_mb: number(prop("MemorySize")).unwrap_or(global_memory),
                        timeout_secs: number(prop("Timeout")).unwrap_or(global_timeout),
                        reserved_concurrency: number(prop("ReservedConcurrentExecutions")),
                        reserved_parameter: match prop("ReservedConcurrentExecutions") {
                            Some(Value::Tagged(tagged)) if tagged.tag == "!Ref" => {
                                tagged.value.as_str().map(str::to_owned)
                            }
                            _ => None,
                        },
                        routes: Vec::new(),
                        schedule_secs: None,
                        queue_batch_size: None,
                        queue_max_concurrency: None,
                        tracing: prop("Tracing").map_or(global_tracing, |t| tracing(Some(t))),
                    };
                    for (_, event) in prop("Events")
                        .and_then(Value::as_mapping)
                        .into_iter()
                        .flatten()
                    {
                        let props = event.get("Properties");
                        let get = |name: &str| props.and_then(|p| p.get(name));
                        match event.get("Type").and_then(Value::as_str) {
                            Some("HttpApi") => {
                                if let Some(path) = get("Path").and_then(Value::as_str) {
                                    function.routes.push(path.to_owned());
                                }
                            }
                            Some("Schedule") => {
                                function.schedule_secs =
                                    get("Schedule").and_then(Value::as_str).and_then(rate_secs);
                            }
                            Some("SQS") => {
                                function.queue_batch_size = number(get("BatchSize"));
                                function.queue_max_concurrency = number(
                                    get("ScalingConfig").and_then(|s| s.get("MaximumConcurrency")),
                                );
                            }
                            _ => {}
                        }
                    }
                    stack.functions.push(function);
                }
                "AWS::CloudWatch::Alarm" => {
                    let metrics = prop("Metrics")
                        .and_then(Value::as_sequence)
                        .map_or(1.0, |m| {
                            m.iter().filter(|m| m.get("MetricStat").is_some()).count() as f64
                        });
                    stack.alarm_metrics.push((id, metrics));
                }
                "AWS::CloudWatch::Dashboard" => stack.dashboards.push(id),
                "AWS::SecretsManager::Secret" => stack.secrets += 1.0,
                "AWS::Logs::LogGroup" => {
                    stack.log_groups += 1.0;
                    stack.log_retention_days = stack
                        .log_retention_days
                        .max(number(prop("RetentionInDays")).unwrap_or(0.0));
                }
                "AWS::DynamoDB::Table" => {
                    stack.table_on_demand =
                        prop("BillingMode").and_then(Value::as_str) == Some("PAY_PER_REQUEST");
                    stack.point_in_time_recovery = prop("PointInTimeRecoverySpecification")
                        .and_then(|p| p.get("PointInTimeRecoveryEnabled"))
                        .and_then(Value::as_bool)
                        == Some(true);
                }
                _ => {}
            }
        }
        Ok(stack)
    }

    /// The function serving an HTTP path.
    pub fn serving(&self, path: &str) -> Option<&Function> {
        self.functions
            .iter()
            .find(|f| f.routes.iter().any(|r| r == path))
    }

    pub fn by_binary(&self, binary: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.binary == binary)
    }

    pub fn scheduled(&self) -> Option<&Function> {
        self.functions.iter().find(|f| f.schedule_secs.is_some())
    }

    pub fn queue_consumer(&self) -> Option<&Function> {
        self.functions.iter().find(|f| f.queue_batch_size.is_some())
    }

    /// Whether the template turns monitoring (alarms, dashboard, traces) on by default.
    pub fn monitoring_default(&self) -> bool {
        self.parameters.get("Monitoring").and_then(Value::as_str) == Some("true")
    }

    /// Whether a resource exists with monitoring on or off: those under the `MonitoringOn`
    /// condition only with it on.
    pub fn exists(&self, logical_id: &str, monitoring: bool) -> bool {
        match self.conditional.get(logical_id).map(String::as_str) {
            Some("MonitoringOn") => monitoring,
            _ => true,
        }
    }

    /// A parameter's default, as a number.
    pub fn parameter(&self, name: &str) -> Option<f64> {
        let value = self.parameters.get(name)?;
        value
            .as_f64()
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
    }
}

/// Whether a `Tracing` setting traces, with monitoring on and off: `Active`, or
/// `!If [MonitoringOn, Active, PassThrough]`.
fn tracing(value: Option<&Value>) -> (bool, bool) {
    match value {
        Some(Value::String(mode)) => (mode == "Active", mode == "Active"),
        Some(Value::Tagged(tagged)) if tagged.tag == "!If" => {
            let branch = |i: usize| {
                tagged
                    .value
                    .as_sequence()
                    .and_then(|s| s.get(i))
                    .and_then(Value::as_str)
                    == Some("Active")
            };
            let on_monitoring = tagged
                .value
                .as_sequence()
                .and_then(|s| s.first())
                .and_then(Value::as_str)
                == Some("MonitoringOn");
            if on_monitoring {
                (branch(1), branch(2))
            } else {
                (branch(1) || branch(2), branch(1) || branch(2))
            }
        }
        _ => (false, false),
    }
}

/// `rate(1 minute)`, `rate(5 minutes)`, `rate(1 hour)` in seconds.
fn rate_secs(expression: &str) -> Option<f64> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let mut parts = inner.split_whitespace();
    let n: f64 = parts.next()?.parse().ok()?;
    let unit = match parts.next()?.trim_end_matches('s') {
        "minute" => 60.0,
        "hour" => 3600.0,
        "day" => 86_400.0,
        _ => return None,
    };
    Some(n * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_template_has_what_the_model_reads() {
        let stack = Stack::of_repository().unwrap();
        // The room's seven functions and the daily pass-key rotation (a run a day: nothing the
        // model needs to cost), which comes after the runner in the template.
        assert_eq!(stack.functions.len(), 8);
        let runner = stack.scheduled().expect("a scheduled function");
        assert_eq!(runner.binary, "strategy-runner");
        assert_eq!(runner.schedule_secs, Some(60.0));
        assert_eq!(runner.memory_mb, 128.0);
        assert_eq!(
            runner.reserved_concurrency,
            Some(1.0),
            "one runner at a time"
        );
        let consumer = stack.queue_consumer().expect("a queue consumer");
        assert_eq!(consumer.queue_batch_size, Some(1000.0));
        assert_eq!(
            consumer.queue_max_concurrency,
            Some(20.0),
            "ConsumerMaxConcurrency's default"
        );
        assert!(
            stack
                .functions
                .iter()
                .all(|f| f.reserved_concurrency.is_some()),
            "every function has reserved concurrency"
        );
        assert_eq!(stack.serving("/queue_num").unwrap().binary, "public-reads");
        assert_eq!(stack.event_state_min_ttl_secs, 1.0);
        assert_eq!(
            stack.serving("/generate_token").unwrap().binary,
            "token-issue"
        );
        assert!(!stack.dashboards.is_empty());
        assert_eq!(
            stack.secrets, 1.0,
            "the signing key's only: the admin key is deployed as its digest"
        );
        assert!(
            stack.alarm_metrics.iter().any(|(_, n)| *n > 1.0),
            "metric-math alarms"
        );
        assert_eq!(stack.log_retention_days, 30.0);
        assert!(stack.table_on_demand);
    }

    #[test]
    fn rates_read_as_seconds() {
        assert_eq!(rate_secs("rate(1 minute)"), Some(60.0));
        assert_eq!(rate_secs("rate(5 minutes)"), Some(300.0));
        assert_eq!(rate_secs("cron(0 12 * * ? *)"), None);
    }
}
