//! Job payloads shared by the API (which enqueues them) and the worker (which runs them),
//! and the one function that enqueues a job inside the caller's transaction.
//!
//! Jobs carry ids only and are idempotent. The row written here is exactly the row apalis
//! writes itself (`Jobs` on SQLite, `apalis.jobs` on PostgreSQL); writing it through the
//! caller's sea-orm transaction makes the enqueue atomic with the write that causes it.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use serde::{Deserialize, Serialize};

/// A job payload with its queue.
pub trait Job: Serialize {
    /// The apalis queue (`job_type`) it runs on.
    const QUEUE: &'static str;
    /// Prefix of the names of the workers that run it (`<prefix>-<instance>-<n>`).
    const WORKER: &'static str;
}

/// Ends a lease: at its expiry instant it becomes `expired`; an expired or deleted lease
/// then loses every byte in the blob store and its child rows. Safe to run any number of
/// times, early or late.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndLease {
    /// The lease.
    pub lease_id: crate::ids::LeaseId,
}

impl Job for EndLease {
    const QUEUE: &'static str = "leasehold.end_lease";
    const WORKER: &'static str = "end-lease";
}

/// Delivers one webhook event (one attempt; a failed attempt enqueues the next one at its
/// scheduled instant). Safe to run any number of times: the event row records attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverWebhook {
    /// The `evt_` id.
    pub event_id: crate::ids::EventId,
}

impl Job for DeliverWebhook {
    const QUEUE: &'static str = "leasehold.webhook";
    const WORKER: &'static str = "webhook";
}

/// Attempts before apalis gives a job up (the sweep still catches what it leaves).
pub const MAX_ATTEMPTS: i32 = 5;

/// When to run a job.
#[derive(Clone, Copy, Debug)]
pub enum RunAt {
    /// As soon as a worker is free.
    Now,
    /// Not before this instant (unix ms); rounded up to apalis's whole seconds so the job
    /// never runs early.
    NotBefore(i64),
}

/// Inserts a job in the caller's transaction (or connection). With an idempotency key, a
/// second enqueue of the same key on the same queue does nothing.
pub async fn enqueue<C: ConnectionTrait, J: Job>(
    conn: &C,
    job: &J,
    run_at: RunAt,
    idempotency_key: Option<String>,
    now_ms: i64,
) -> Result<(), DbErr> {
    enqueue_many(conn, &[(job, run_at, idempotency_key)], now_ms).await
}

/// Inserts several jobs of one queue with one statement (see [`enqueue`]).
pub async fn enqueue_many<C: ConnectionTrait, J: Job>(
    conn: &C,
    jobs: &[(&J, RunAt, Option<String>)],
    now_ms: i64,
) -> Result<(), DbErr> {
    if jobs.is_empty() {
        return Ok(());
    }
    let backend = conn.get_database_backend();
    let (table, row) = match backend {
        DbBackend::Sqlite => ("Jobs", "(?, ?, ?, 'Pending', 0, ?, ?, 0, ?)".to_owned()),
        DbBackend::Postgres => ("apalis.jobs", String::new()),
        other => return Err(DbErr::Custom(format!("unsupported database backend {other:?}"))),
    };
    let mut rows = Vec::with_capacity(jobs.len());
    let mut values: Vec<Value> = Vec::with_capacity(jobs.len() * 6);
    for (i, (job, run_at, key)) in jobs.iter().enumerate() {
        let payload = serde_json::to_vec(job).map_err(|e| DbErr::Custom(format!("job payload: {e}")))?;
        let run_at_secs = match run_at {
            RunAt::Now => now_ms.div_euclid(1000),
            RunAt::NotBefore(ms) => ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0),
        };
        rows.push(match backend {
            DbBackend::Postgres => {
                let n = i * 6;
                format!(
                    "(${}, ${}, ${}, 'Pending', 0, ${}, to_timestamp(${}::bigint), 0, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6
                )
            }
            _ => row.clone(),
        });
        values.extend([
            payload.into(),
            ulid::Ulid::generate().to_string().into(),
            J::QUEUE.into(),
            MAX_ATTEMPTS.into(),
            run_at_secs.into(),
            key.clone().into(),
        ]);
    }
    let sql = format!(
        "INSERT INTO {table} (job, id, job_type, status, attempts, max_attempts, run_at, priority, idempotency_key) \
         VALUES {} ON CONFLICT (job_type, idempotency_key) DO NOTHING",
        rows.join(", ")
    );
    conn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_ids_only() {
        let json = serde_json::to_string(&EndLease { lease_id: "lse_1".into() }).expect("json");
        assert_eq!(json, r#"{"lease_id":"lse_1"}"#);
    }
}
