//! The polled reads: position, serving counter, waiting count, claim window, status. Behind
//! CloudFront, which caches the serving counter and waiting count for a second.

use waiting_room_core::{http, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let room = lambda::room_from_env(lambda::Needs::default()).await?;
    let app = lambda::with_metrics(http::reads_router(room), "public-reads");
    lambda_http::run(app).await
}
