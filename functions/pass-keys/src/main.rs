//! Publishes the pass keys of the gate on CloudFront to its KeyValueStore: once a day, on every
//! deploy of the stack, and when invoked by hand (after rotating the signing key). Any event
//! does: each run makes the store hold yesterday's, today's and tomorrow's keys.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use waiting_room_core::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let ends = Arc::new(lambda::pass_keys_from_env().await?);
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| {
        let ends = ends.clone();
        async move {
            let (secret, store) = ends.as_ref();
            let now_secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            Ok::<_, Error>(lambda::publish_pass_keys(secret, store, now_secs).await?)
        }
    }))
    .await
}
