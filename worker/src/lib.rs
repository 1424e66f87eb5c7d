//! The Leasehold worker (SPEC §5): ends leases at their expiry instant, removes every byte
//! of expired and deleted leases, sweeps up leases whose job was lost, and reaps tombstones
//! and orphan blobs. Jobs run on apalis: SQLite in embedded mode (inside `leasehold-api`),
//! PostgreSQL in distributed mode (any number of `leasehold-worker` processes).

pub mod delivery;
pub mod drain;
pub mod jobs;
pub mod metrics;
mod schedule;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_cron::CronScheduler;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use leasehold_core::blob::BlobStore;
use leasehold_core::queue::{DeliverWebhook, EndLease, Job};
use leasehold_core::secretbox::SecretBox;
use leasehold_core::{Clock, Config};
use sea_orm::{DatabaseConnection, DbBackend};

pub use drain::{Drained, drain};
pub use metrics::WorkerMetrics;
use schedule::Every;

/// What every job needs.
#[derive(Clone)]
pub struct WorkerContext {
    /// Database pool (also the job queue).
    pub db: DatabaseConnection,
    /// Blob store.
    pub blobs: BlobStore,
    /// Source of "now".
    pub clock: Clock,
    /// Configuration.
    pub config: Arc<Config>,
    /// Worker metrics.
    pub metrics: Arc<WorkerMetrics>,
    /// Opens sealed webhook secrets.
    pub secrets: SecretBox,
    /// Sends webhook deliveries.
    pub webhooks: delivery::Sender,
}

impl WorkerContext {
    /// A context on these connections; opens the secret key and builds the webhook client.
    pub fn new(
        db: DatabaseConnection,
        blobs: BlobStore,
        clock: Clock,
        config: Arc<Config>,
        metrics: Arc<WorkerMetrics>,
    ) -> anyhow::Result<Self> {
        let secrets = SecretBox::from_config(&config)?;
        let webhooks = delivery::Sender::new(&config.webhook)?;
        Ok(Self { db, blobs, clock, config, metrics, secrets, webhooks })
    }

    /// Connects to the configured database (migrating it and the queue) and blob store.
    pub async fn connect(config: Arc<Config>, clock: Clock, metrics: Arc<WorkerMetrics>) -> anyhow::Result<Self> {
        let db = leasehold_core::db::connect(&config).await?;
        leasehold_core::db::migrate(&db).await?;
        leasehold_core::queue::setup(&db, &config.database_url).await?;
        let blobs = BlobStore::open(&config.blob).await?;
        Self::new(db, blobs, clock, config, metrics)
    }
}

/// Registers one apalis queue on the monitor: PostgreSQL with LISTEN/NOTIFY and a 1 s
/// heartbeat, or SQLite; both also poll every `$poll` (a safety net on PostgreSQL, whose
/// notifications can arrive while a fetch is running and be lost; the only way on SQLite).
macro_rules! register_queue {
    ($monitor:expr, $ctx:expr, $instance:expr, $job:ty, $handler:path, $poll:expr) => {{
        let (c, name, concurrency) = ($ctx.clone(), $instance.clone(), $ctx.config.worker.concurrency);
        match $ctx.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = $ctx.db.get_postgres_connection_pool().clone();
                $monitor.register(move |restarts| {
                    let config = apalis_postgres::Config::default()
                        .queue(<$job>::QUEUE)
                        .batch_size(concurrency)
                        .heartbeat_interval(Duration::from_secs(1))
                        .missed_heartbeats(10);
                    let storage =
                        PostgresStorage::<$job>::new(&pool).with_config(config).with_pubsub().poll_with_interval($poll);
                    WorkerBuilder::new(format!("{}-{name}-{restarts}", <$job>::WORKER))
                        .backend(storage)
                        .data(c.clone())
                        .concurrency(concurrency)
                        .build($handler)
                })
            }
            _ => {
                let pool = $ctx.db.get_sqlite_connection_pool().clone();
                $monitor.register(move |restarts| {
                    let config = apalis_sqlite::Config::default()
                        .queue(<$job>::QUEUE)
                        .batch_size(concurrency)
                        .heartbeat_interval(Duration::from_secs(5))
                        .missed_heartbeats(2);
                    let storage = SqliteStorage::<$job>::new(&pool).with_config(config).poll_with_interval($poll);
                    WorkerBuilder::new(format!("{}-{name}-{restarts}", <$job>::WORKER))
                        .backend(storage)
                        .data(c.clone())
                        .concurrency(concurrency)
                        .build($handler)
                })
            }
        }
    }};
}

/// Runs every job until `shutdown` resolves; then jobs in flight finish (bounded by the
/// shutdown timeout) and jobs claimed but not started go back to the queue.
pub async fn run(ctx: WorkerContext, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    leasehold_core::db::ping(&ctx.db).await?;
    ctx.blobs.check().await?;
    let instance = ulid::Ulid::generate().to_string().to_lowercase();
    let concurrency = ctx.config.worker.concurrency;
    let mut monitor = Monitor::new()
        .should_restart(|worker, error| {
            tracing::warn!(worker = %worker.name(), error = %error, "worker stopped; restarting");
            true
        })
        .shutdown_timeout(ctx.config.shutdown_timeout);
    monitor = register_queue!(monitor, ctx, instance, EndLease, jobs::end_lease::run, Duration::from_millis(500));
    // Deliveries are latency-bound (drop → webhook p99 ≤ 250 ms): the queue is polled
    // every 50 ms (one indexed query), so a missed notification costs at most that.
    monitor = register_queue!(monitor, ctx, instance, DeliverWebhook, jobs::deliver::run, Duration::from_millis(50));
    let (c, name, every) = (ctx.clone(), instance.clone(), ctx.config.worker.sweep_interval);
    monitor = monitor.register(move |restarts| {
        WorkerBuilder::new(format!("sweep-{name}-{restarts}"))
            .backend(CronScheduler::new(Every(every)))
            .data(c.clone())
            .build(jobs::sweep::run)
    });
    let (c, name, every) = (ctx.clone(), instance.clone(), ctx.config.worker.reap_interval);
    monitor = monitor.register(move |restarts| {
        WorkerBuilder::new(format!("reap-{name}-{restarts}"))
            .backend(CronScheduler::new(Every(every)))
            .data(c.clone())
            .build(jobs::reap::run)
    });
    tracing::info!(blob_store = ctx.blobs.kind(), concurrency, "leasehold-worker running");
    monitor
        .run_with_signal(async move {
            shutdown.await;
            tracing::info!("leasehold-worker stopping: finishing jobs in flight");
            Ok(())
        })
        .await?;
    for (queue, worker) in leasehold_core::queue::QUEUES {
        match leasehold_core::queue::release_claimed(&ctx.db, &format!("{worker}-{instance}-")).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, queue, "released claimed jobs back to the queue"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release claimed jobs; other workers take them after the dead-worker timeout")
            }
        }
    }
    tracing::info!("leasehold-worker stopped");
    Ok(())
}

/// Serves the standalone worker's `/healthz` and `/metrics` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    registry: Arc<prometheus_client::registry::Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route("/healthz", get(|| async { "ok" })).route(
        "/metrics",
        get(move || async move {
            let mut out = String::new();
            if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
                tracing::error!(error = %e, "metrics encoding failed");
            }
            ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out)
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
