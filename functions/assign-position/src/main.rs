//! Joining the line: `POST /assign_queue_num` puts one message on SQS and answers 202;
//! `POST /redeem_code` lets a code holder in. It holds the signing key only to sign and check
//! join challenges.

use waiting_room_core::{http, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let needs = lambda::Needs {
        buffer: true,
        tokens: true,
    };
    let room = lambda::room_from_env(needs).await?;
    let proxies = lambda::trusted_proxies_from_env()?;
    let app = http::client_address::resolve(http::enqueue_router(room), proxies);
    let app = lambda::with_metrics(app, "assign-position");
    lambda_http::run(app).await
}
