//! The admin API. Scripts reach it through API Gateway with IAM (the verified caller is
//! recorded in the audit trail); the control panel with the admin key (deployed as its digest).

use waiting_room_core::http::{self, AdminAuth};
use waiting_room_core::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let key = lambda::admin_key_from_env()?;
    let room = lambda::room_from_env(lambda::Needs::default()).await?;
    let app = http::admin_router(room, AdminAuth::Gateway { key })
        .layer(axum::middleware::from_fn(lambda::gateway_identity));
    lambda_http::run(lambda::with_metrics(app, "admin-api")).await
}
