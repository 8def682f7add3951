//! Tokens: `POST /generate_token`, the public keys, and `GET /authorize` for main apps that
//! are not behind API Gateway.

use waiting_room_core::{http, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let needs = lambda::Needs {
        tokens: true,
        ..Default::default()
    };
    let room = lambda::room_from_env(needs).await?;
    let app = lambda::with_metrics(http::tokens_router(room), "token-issue");
    lambda_http::run(app).await
}
