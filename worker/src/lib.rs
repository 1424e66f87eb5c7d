//! The Leasehold worker: background jobs (expiry, deletion, webhooks) run here. At this
//! stage it connects to the database and blob store and waits for shutdown; jobs arrive
//! with the queue.

use std::future::Future;

use leasehold_core::blob::BlobStore;
use leasehold_core::{Clock, Config};
use sea_orm::DatabaseConnection;

/// What every job needs.
#[derive(Clone)]
pub struct WorkerContext {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Blob store.
    pub blobs: BlobStore,
    /// Source of "now".
    pub clock: Clock,
}

impl WorkerContext {
    /// Connects to the configured database and blob store.
    pub async fn connect(config: &Config, clock: Clock) -> anyhow::Result<Self> {
        let db = leasehold_core::db::connect(config).await?;
        leasehold_core::db::migrate(&db).await?;
        let blobs = BlobStore::open(&config.blob).await?;
        Ok(Self { db, blobs, clock })
    }
}

/// Runs until `shutdown` resolves.
pub async fn run(ctx: WorkerContext, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    leasehold_core::db::ping(&ctx.db).await?;
    ctx.blobs.check().await?;
    tracing::info!(blob_store = ctx.blobs.kind(), "leasehold-worker connected; waiting for jobs");
    shutdown.await;
    tracing::info!("leasehold-worker stopped");
    Ok(())
}
