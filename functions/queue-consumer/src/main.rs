//! The SQS consumer: assigns positions to each batch with one queue-counter update, and
//! reports the messages to retry as batch item failures.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use waiting_room_core::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let room = lambda::room_from_env(lambda::Needs::default()).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let room = room.clone();
        async move {
            let response = lambda::handle_sqs_batch(&room, event.payload).await;
            lambda::flush_invocation_metrics("queue-consumer");
            Ok::<SqsBatchResponse, Error>(response)
        }
    }))
    .await
}
