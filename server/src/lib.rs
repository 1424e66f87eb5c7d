//! The Leasehold processes, composed from the libraries: `leasehold-api` (the HTTP API;
//! in the embedded shape with the worker in the same process) and `leasehold-worker`.
//! This is the only crate that knows both the API and the worker.

pub mod cli;
pub mod embedded;

use std::future::Future;

use leasehold_api::AppState;
use tokio::net::TcpListener;

pub use embedded::Composed;

/// Serves the API until `shutdown` resolves; with `LEASEHOLD_EMBEDDED_WORKER` (the default
/// on SQLite) the worker runs in this process too and stops with it.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Composed::new(state)?.serve(listener, shutdown).await
}
