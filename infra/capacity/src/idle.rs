//! A month with no event open, priced from the template's own resources ([`Stack`]): the
//! scheduled runner's invocations (rate, memory, and how long an idle invocation runs: one
//! pass, as `lambda::handle_schedule` makes when no event is busy), its DynamoDB reads per
//! idle pass (measured), the
//! queue's idle long polls, traces, logs and their retention, secrets, alarms, dashboards and
//! the table.

use std::time::Duration;

use crate::aws::Prices;
use crate::flow::Step;
use crate::measured::Measured;
use crate::template::Stack;

/// Seconds in the month priced (30 days).
pub const MONTH_SECS: f64 = 30.0 * 86_400.0;
/// Assumed: log bytes one idle runner invocation writes (the platform's START/END/REPORT
/// lines, the "scheduled run" line and the metrics line).
pub const LOG_BYTES_PER_INVOCATION: f64 = 1_000.0;
/// Assumed: SQS long polls the consumer's event source mapping makes while the queue is empty
/// (5 pollers, one 20 s poll each).
pub const IDLE_QUEUE_POLLS_PER_SEC: f64 = 5.0 / 20.0;
/// Assumed: what an idle table holds (the event items and the catalog).
pub const IDLE_TABLE_GB: f64 = 0.000_01;

/// Assumed: how long one idle pass runs (a few reads on the table).
pub const IDLE_PASS_SECS: f64 = 0.2;

/// Passes and seconds of one scheduled invocation when nothing is to be done: one pass, after
/// which [`waiting_room_core::lambda::handle_schedule`] returns, since no event is busy.
pub fn runner_invocation() -> (u64, f64) {
    (1, IDLE_PASS_SECS)
}

/// One line of the idle bill.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub item: String,
    pub usd: f64,
    pub how: String,
}

/// The idle month.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleMonth {
    pub lines: Vec<Line>,
}

impl IdleMonth {
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.usd).sum()
    }
}

/// The idle month with the template's `Monitoring` on or off (alarms, the dashboard and the
/// functions' traces exist only with it on).
pub fn idle_month(
    stack: &Stack,
    measured: &Measured,
    prices: &Prices,
    monitoring: bool,
) -> Result<IdleMonth, String> {
    let runner = stack
        .scheduled()
        .ok_or("template.yaml has no scheduled function")?;
    let rate = runner.schedule_secs.unwrap_or(60.0);
    let every = Duration::from_secs_f64(stack.parameter("StrategyEverySecs").unwrap_or(5.0));
    let (passes, secs) = runner_invocation();
    let invocations = MONTH_SECS / rate;
    let gb_secs = invocations * secs * runner.memory_mb / 1024.0;
    let idle_pass = measured
        .step(Step::IdlePass)
        .ok_or("the measurement has no idle pass")?;
    let pass_rcu: f64 = idle_pass.classes.iter().map(|c| c.read_units).sum();
    let pass_wcu: f64 = idle_pass.classes.iter().map(|c| c.write_units).sum();
    let total_passes = invocations * passes as f64;
    let alarms: Vec<&(String, f64)> = stack
        .alarm_metrics
        .iter()
        .filter(|(id, _)| stack.exists(id, monitoring))
        .collect();
    let alarm_metrics: f64 = alarms.iter().map(|(_, n)| n).sum();
    let dashboards = stack
        .dashboards
        .iter()
        .filter(|id| stack.exists(id, monitoring))
        .count() as f64;
    let traced_runner = if monitoring {
        runner.tracing.0
    } else {
        runner.tracing.1
    };
    let traced = if traced_runner { invocations } else { 0.0 };
    let log_gb = invocations * LOG_BYTES_PER_INVOCATION / 1e9;
    let queue_polls = if stack.queue_consumer().is_some() {
        IDLE_QUEUE_POLLS_PER_SEC * MONTH_SECS
    } else {
        0.0
    };
    let mut lines = vec![
        Line {
            item: format!("Lambda {} (scheduled)", runner.binary),
            usd: gb_secs * prices.lambda_arm_gb_sec
                + invocations * prices.lambda_requests_per_million / 1e6,
            how: format!(
                "{invocations:.0} invocations (every {rate:.0} s) x {secs:.0} s ({passes} passes every {} s) x {} MB = {gb_secs:.0} GB-s",
                every.as_secs_f64(),
                runner.memory_mb
            ),
        },
        Line {
            item: "DynamoDB reads of idle passes".into(),
            usd: total_passes * pass_rcu * prices.dynamodb_rru_per_million / 1e6
                + total_passes * pass_wcu * prices.dynamodb_wru_per_million / 1e6,
            how: format!(
                "{total_passes:.0} passes x {pass_rcu:.1} RCU + {pass_wcu:.1} WCU (measured idle pass)"
            ),
        },
        Line {
            item: "DynamoDB storage and point-in-time recovery".into(),
            usd: IDLE_TABLE_GB
                * (prices.dynamodb_storage_gb_month
                    + if stack.point_in_time_recovery {
                        prices.dynamodb_pitr_gb_month
                    } else {
                        0.0
                    }),
            how: format!(
                "{} table, {} GB held (assumed){}",
                if stack.table_on_demand {
                    "on-demand"
                } else {
                    "provisioned"
                },
                IDLE_TABLE_GB,
                if stack.point_in_time_recovery {
                    ", PITR on"
                } else {
                    ""
                }
            ),
        },
        Line {
            item: "SQS idle long polls".into(),
            usd: queue_polls * prices.sqs_standard_per_million / 1e6,
            how: format!("{queue_polls:.0} receives (assumed 5 pollers x one 20 s poll)"),
        },
        Line {
            item: "X-Ray traces".into(),
            usd: traced * prices.xray_traces_per_million / 1e6,
            how: format!("{traced:.0} traced invocations (Tracing: Active)"),
        },
        Line {
            item: "CloudWatch Logs".into(),
            usd: log_gb * prices.logs_ingest_gb
                + log_gb
                    * prices.logs_storage_gb_month
                    * (stack.log_retention_days / 30.0).min(1.0),
            how: format!(
                "{log_gb:.3} GB ingested ({LOG_BYTES_PER_INVOCATION} B per invocation, assumed), kept {} days in {} log groups",
                stack.log_retention_days, stack.log_groups
            ),
        },
        Line {
            item: "CloudWatch alarms".into(),
            usd: alarm_metrics * prices.alarm_metric_month,
            how: format!("{} alarms watching {alarm_metrics} metrics", alarms.len()),
        },
        Line {
            item: "CloudWatch dashboards".into(),
            usd: dashboards * prices.dashboard_month,
            how: format!("{dashboards} dashboard(s)"),
        },
        Line {
            item: "Secrets Manager".into(),
            usd: stack.secrets * prices.secret_month,
            how: format!(
                "{} secret(s): the signing key's (the admin key is deployed as its digest)",
                stack.secrets
            ),
        },
    ];
    lines.retain(|l| l.usd > 0.0 || l.item.starts_with("DynamoDB storage"));
    Ok(IdleMonth { lines })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aws_lambda_events::eventbridge::EventBridgeEvent;
    use waiting_room_core::WaitingRoom;
    use waiting_room_core::adapters::{ManualClock, MemoryStore};
    use waiting_room_core::domain::{EventConfig, EventId};
    use waiting_room_core::service::CacheSettings;

    use waiting_room_core::lambda;

    use super::*;

    /// The idle bill assumes an invocation makes as many passes as the runner really does with
    /// nothing to do (an open event nobody joined for a while): checked against
    /// `handle_schedule` itself, on a paused clock.
    #[tokio::test(start_paused = true)]
    async fn an_idle_invocation_runs_as_the_model_prices_it() {
        let stack = Stack::of_repository().unwrap();
        let runner = stack.scheduled().unwrap();
        let every = Duration::from_secs_f64(stack.parameter("StrategyEverySecs").unwrap());
        let budget = lambda::runner_budget(Duration::from_secs_f64(runner.timeout_secs));
        let clock = Arc::new(ManualClock::new(0));
        let room = WaitingRoom::new(
            Arc::new(MemoryStore::new()),
            clock.clone(),
            CacheSettings::default(),
        );
        room.ensure_event(EventConfig::new(EventId::parse("demo").unwrap()))
            .await
            .unwrap();
        clock.advance_ms(3_600_000);
        let started = tokio::time::Instant::now();
        let report =
            lambda::handle_schedule(&room, EventBridgeEvent::default(), every, budget).await;
        let elapsed = started.elapsed().as_secs_f64();
        let (passes, secs) = runner_invocation();
        assert_eq!(u64::from(report.passes), passes);
        assert!(elapsed <= secs, "ran {elapsed} s, priced {secs} s");
    }

    #[test]
    fn the_idle_month_prices_every_resource_of_the_template() {
        let stack = Stack::of_repository().unwrap();
        let measured = Measured::checked_in().unwrap();
        let month = idle_month(&stack, &measured, &Prices::default(), true).unwrap();
        let names: Vec<&str> = month.lines.iter().map(|l| l.item.as_str()).collect();
        for wanted in [
            "Lambda strategy-runner (scheduled)",
            "CloudWatch dashboards",
            "Secrets Manager",
            "CloudWatch alarms",
        ] {
            assert!(names.contains(&wanted), "{names:?}");
        }
        // 43,200 invocations of one 0.2 s pass at 128 MB: 1,080 GB-s, $0.0144 plus $0.0086 of
        // requests.
        let runner = &month.lines[0];
        assert!((runner.usd - 0.0230).abs() < 0.001, "{runner:?}");
        assert!(month.total() > runner.usd);
    }

    #[test]
    fn without_monitoring_the_alarms_dashboard_and_traces_cost_nothing() {
        let stack = Stack::of_repository().unwrap();
        assert!(!stack.monitoring_default(), "monitoring is off by default");
        let measured = Measured::checked_in().unwrap();
        let on = idle_month(&stack, &measured, &Prices::default(), true).unwrap();
        let off = idle_month(&stack, &measured, &Prices::default(), false).unwrap();
        let names: Vec<&str> = off.lines.iter().map(|l| l.item.as_str()).collect();
        for gone in ["CloudWatch dashboards", "CloudWatch alarms", "X-Ray traces"] {
            assert!(!names.contains(&gone), "{names:?}");
        }
        // Dashboard $3, 19 alarm metrics $1.90, the runner's traces $0.22.
        assert!(
            (on.total() - off.total() - 5.12).abs() < 0.01,
            "{on:?} {off:?}"
        );
        // The room as deployed by default idles for under a dollar a month.
        assert!(off.total() <= 1.0, "{off:?}");
    }
}
