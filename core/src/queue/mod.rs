//! The job queue's contract, in one place: the job payloads and their queues
//! ([`jobs`]), enqueueing inside the caller's transaction, apalis's tables, depth figures
//! for metrics, pruning finished jobs and releasing a stopping worker's claimed ones. The
//! API enqueues through it, the worker runs and releases through it, tests and benchmarks
//! set it up through it.

pub mod jobs;

pub use jobs::{DeliverWebhook, EndLease, Job, MAX_ATTEMPTS, RunAt, enqueue, enqueue_many};

/// Every queue: its apalis name and the prefix of the worker names that take its jobs.
pub const QUEUES: &[(&str, &str)] =
    &[(EndLease::QUEUE, EndLease::WORKER), (DeliverWebhook::QUEUE, DeliverWebhook::WORKER)];

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement};

/// Serializes queue setup within this process, like the schema migrations.
static SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Creates apalis's tables (`Jobs`/`Workers` on SQLite, schema `apalis` on PostgreSQL).
/// Idempotent; concurrent pods are serialized by sqlx's migration lock.
pub async fn setup(db: &DatabaseConnection, database_url: &str) -> anyhow::Result<()> {
    let _guard = SETUP.lock().await;
    match db.get_database_backend() {
        DbBackend::Postgres => apalis_postgres::PostgresStorage::setup(db.get_postgres_connection_pool()).await?,
        _ => {
            // apalis's SQLite setup switches its connection to `synchronous=OFF`; give it a
            // connection of its own, closed afterwards, so no pooled connection keeps that.
            let pool = sea_orm::sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(database_url).await?;
            let result = apalis_sqlite::SqliteStorage::setup(&pool).await;
            pool.close().await;
            result?;
        }
    }
    Ok(())
}

#[derive(FromQueryResult)]
struct Depth {
    status: String,
    count: i64,
}

/// Jobs of one queue by status: `ready`, `scheduled`, `running`, `retrying`, `dead`.
pub async fn depth(db: &DatabaseConnection, queue: &str, now_secs: i64) -> Result<Vec<(String, i64)>, DbErr> {
    let backend = db.get_database_backend();
    let (table, now, param) = match backend {
        DbBackend::Postgres => ("apalis.jobs", "to_timestamp($1::bigint)", "$2"),
        _ => ("Jobs", "?", "?"),
    };
    let sql = format!(
        "SELECT status, CAST(COUNT(*) AS BIGINT) AS count FROM (SELECT CASE \
           WHEN status = 'Pending' AND run_at <= {now} THEN 'ready' \
           WHEN status = 'Pending' THEN 'scheduled' \
           WHEN status IN ('Queued', 'Running') THEN 'running' \
           WHEN status = 'Failed' AND attempts < max_attempts THEN 'retrying' \
           WHEN status IN ('Failed', 'Killed') THEN 'dead' \
           ELSE 'done' END AS status FROM {table} WHERE job_type = {param}) AS s GROUP BY status"
    );
    let rows = Depth::find_by_statement(Statement::from_sql_and_values(backend, sql, [now_secs.into(), queue.into()]))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|d| (d.status, d.count)).collect())
}

/// Deletes finished job rows older than `before_secs` (apalis never does).
pub async fn prune_finished(db: &DatabaseConnection, before_secs: i64) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "DELETE FROM apalis.jobs WHERE status IN ('Done', 'Killed') AND done_at < to_timestamp($1::bigint)"
        }
        _ => "DELETE FROM Jobs WHERE status IN ('Done', 'Killed') AND done_at < ?",
    };
    let result = db.execute_raw(Statement::from_sql_and_values(backend, sql, [before_secs.into()])).await?;
    Ok(result.rows_affected())
}

/// Puts jobs that workers whose names start with `worker_prefix` still hold (claimed but
/// unacknowledged at shutdown) back in the queue, so another worker takes them at once
/// instead of after the dead-worker timeout. Jobs are idempotent, so running one again
/// whose acknowledgement was lost is harmless.
pub async fn release_claimed(db: &DatabaseConnection, worker_prefix: &str) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE apalis.jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL \
             WHERE status IN ('Queued', 'Running') AND lock_by LIKE $1"
        }
        _ => {
            "UPDATE Jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL \
              WHERE status IN ('Queued', 'Running') AND lock_by LIKE ?"
        }
    };
    let pattern = format!("{worker_prefix}%");
    let result = db.execute_raw(Statement::from_sql_and_values(backend, sql, [pattern.into()])).await?;
    Ok(result.rows_affected())
}
