//! The validate-token Lambda authorizer main apps put in front of their own routes: REST
//! `TOKEN` and `REQUEST` authorizers and HTTP API simple responses.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use waiting_room_core::authorizer::handle_authorizer_event;
use waiting_room_core::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let needs = lambda::Needs {
        tokens: true,
        ..Default::default()
    };
    let room = lambda::room_from_env(needs).await?;
    let default_event = lambda::authorizer_event_from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (room, default_event) = (room.clone(), default_event.clone());
        async move {
            let decision =
                handle_authorizer_event(&room, event.payload, default_event.as_ref()).await;
            lambda::flush_invocation_metrics("authorizer");
            // A REST authorizer's error message `Unauthorized` is what API Gateway turns into a 401.
            decision.map_err(Error::from)
        }
    }))
    .await
}
