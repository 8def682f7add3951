//! Joining the line: `POST /assign_queue_num` puts one message on SQS and answers 202;
//! `POST /redeem_code` lets a code holder in.

use waiting_room_core::{http, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let needs = lambda::Needs {
        buffer: true,
        ..Default::default()
    };
    let room = lambda::room_from_env(needs).await?;
    let app = lambda::with_metrics(http::enqueue_router(room), "assign-position");
    lambda_http::run(app).await
}
