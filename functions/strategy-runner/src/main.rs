//! The scheduled strategy runner: EventBridge invokes it once a minute; it makes a pass every
//! few seconds until just before the next invocation (and its own timeout).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use waiting_room_core::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let room = lambda::room_from_env(lambda::Needs::default()).await?;
    let every = lambda::strategy_every_from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent>| {
        let room = room.clone();
        async move {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let to_deadline = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
            let budget = lambda::runner_budget(to_deadline);
            let report = lambda::handle_schedule(&room, event.payload, every, budget).await;
            lambda::flush_invocation_metrics("strategy-runner");
            Ok::<_, Error>(report)
        }
    }))
    .await
}
