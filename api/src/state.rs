//! Shared state of the API: everything a handler needs, cheap to clone.

use std::sync::Arc;

use leasehold_core::blob::BlobStore;
use leasehold_core::{Clock, Config};
use sea_orm::DatabaseConnection;

use crate::metrics::Metrics;

/// State of one API instance. It holds nothing another pod needs.
#[derive(Clone)]
pub struct AppState {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Database pool.
    pub db: DatabaseConnection,
    /// Blob store.
    pub blobs: BlobStore,
    /// Source of "now".
    pub clock: Clock,
    /// Prometheus metrics of this instance.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Connects to the database (running migrations) and opens the blob store.
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let db = leasehold_core::db::connect(&config).await?;
        leasehold_core::db::migrate(&db).await?;
        let blobs = BlobStore::open(&config.blob).await?;
        Ok(Self { config: Arc::new(config), db, blobs, clock, metrics: Arc::new(Metrics::new()) })
    }

    /// Current time in unix milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// An absolute URL under the public base.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.public_url)
    }
}
