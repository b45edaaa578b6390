//! The HTTP limit of this machine: axum on tokio (the same versions and runtime as `homekey
//! serve`) answering `GET /_matrix/client/v3/account/whoami` with 200 and a fixed body, no
//! work at all. Listens on 127.0.0.1 on a port the system picks, prints
//! `listening on http://ADDR` as `homekey serve` does, and stops on SIGTERM or SIGINT.
//! A benchmark's yardstick, never a route of the real server.
//!
//!     cargo run --release --example bench-bare-route

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route(
        "/_matrix/client/v3/account/whoami",
        get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                r#"{"user_id":"@bench:example.com","device_id":"BENCH","is_guest":false}"#,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            use tokio::signal::unix::{SignalKind, signal};
            let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await
}
