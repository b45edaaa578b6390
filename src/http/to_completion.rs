//! Every request runs to its end, whether or not its client waits for the answer.
//!
//! A client that closes its connection makes hyper drop the request's future. Dropped in the
//! middle of a database transaction, sqlx's SQLite driver could leave that transaction open on
//! its pooled connection: SQLite's write lock then stayed held, every other write (logins,
//! heartbeats, `homekey user …`) waited and failed with "database is locked", and requests
//! later given that connection failed with "begin_with at non-zero transaction depth"
//! (found by bench/run.sh's refresh row, whose load stops with requests in flight). A change
//! half-made and abandoned is never what homekey wants either: so each request's handler runs
//! on a task of its own, which the client's going away does not cancel.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub async fn run_to_completion(request: Request, next: Next) -> Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        // A handler that panicked panics here too, as it did before it had a task of its own.
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}
