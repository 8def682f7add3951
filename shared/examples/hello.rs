//! A bare axum hello-world, the yardstick for the room's cached reads: `infra/load/http-bench.sh`
//! runs `wrk` against it and against `/serving_num` and `/event_state` on the same machine, in
//! the same run, with the same settings and the same URLs (it answers every path). Not part of
//! any shipped binary.
//!
//! `cargo run --release -p waiting-room-core --example hello -- 127.0.0.1:8091`

use axum::Router;

#[tokio::main]
async fn main() {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8091".into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
    println!("hello-world on http://{listen}/");
    let app = Router::new().fallback(|| async { "Hello, World!" });
    axum::serve(listener, app).await.expect("server stopped");
}
