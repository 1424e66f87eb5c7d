//! Runs the due jobs of every queue directly against apalis's tables, without the apalis
//! monitor: the same handlers the monitor calls, the same bookkeeping on the row (status,
//! attempts, result, `done_at`), on the context's injected clock. Tests drive jobs with it
//! ("run what is due now", then "advance the clock") instead of waiting for poll timers.

use apalis::prelude::Data;
use leasehold_core::queue::{DeliverWebhook, EndLease, Job, QUEUES};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement};
use serde::de::DeserializeOwned;

use crate::{WorkerContext, jobs};

/// What one [`drain`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Jobs run (whatever their outcome).
    pub ran: usize,
    /// Jobs whose handler failed: `(queue, job id, error)`; their rows are `Failed`.
    pub failed: Vec<(String, String, String)>,
}

#[derive(FromQueryResult)]
struct Due {
    id: String,
    job: Vec<u8>,
}

/// Runs every job of every queue in [`QUEUES`] that is due at `now_ms` (pending, unclaimed,
/// `run_at` not after `now_ms`), once each, in apalis's order (priority, then `run_at`,
/// then id). Jobs those runs enqueue are left for the next call.
pub async fn drain(ctx: &WorkerContext, now_ms: i64) -> Result<Drained, DbErr> {
    let mut drained = Drained::default();
    for &(queue, _) in QUEUES {
        for due in due_jobs(ctx, queue, now_ms).await? {
            if !claim(ctx, &due.id).await? {
                continue; // A worker took it meanwhile.
            }
            drained.ran += 1;
            let result = match queue {
                EndLease::QUEUE => run_one(ctx, &due.job, jobs::end_lease::run).await,
                DeliverWebhook::QUEUE => run_one(ctx, &due.job, jobs::deliver::run).await,
                other => Err(format!("no handler for queue {other}")),
            };
            if let Err(error) = &result {
                drained.failed.push((queue.to_owned(), due.id.clone(), error.clone()));
            }
            settle(ctx, &due.id, &result, ctx.clock.now_ms()).await?;
        }
    }
    Ok(drained)
}

async fn run_one<J, F, Fut>(ctx: &WorkerContext, payload: &[u8], handler: F) -> Result<(), String>
where
    J: DeserializeOwned,
    F: FnOnce(J, Data<WorkerContext>) -> Fut,
    Fut: Future<Output = Result<(), apalis::prelude::BoxDynError>>,
{
    let job: J = serde_json::from_slice(payload).map_err(|e| format!("job payload: {e}"))?;
    handler(job, Data(ctx.clone())).await.map_err(|e| e.to_string())
}

async fn due_jobs(ctx: &WorkerContext, queue: &str, now_ms: i64) -> Result<Vec<Due>, DbErr> {
    let backend = ctx.db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT id, job FROM apalis.jobs WHERE job_type = $1 AND status = 'Pending' AND lock_by IS NULL \
             AND run_at <= to_timestamp($2::bigint) ORDER BY priority DESC, run_at ASC, id ASC"
        }
        _ => {
            "SELECT id, job FROM Jobs WHERE job_type = ? AND status = 'Pending' AND lock_by IS NULL \
             AND run_at <= ? ORDER BY priority DESC, run_at ASC, id ASC"
        }
    };
    let values = [queue.into(), now_ms.div_euclid(1000).into()];
    Due::find_by_statement(Statement::from_sql_and_values(backend, sql, values)).all(&ctx.db).await
}

/// Marks the job running (one more attempt), as apalis's fetch and lock do; false if it
/// is no longer pending.
async fn claim(ctx: &WorkerContext, id: &str) -> Result<bool, DbErr> {
    let backend = ctx.db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE apalis.jobs SET status = 'Running', attempts = attempts + 1, lock_at = NOW() \
             WHERE id = $1 AND status = 'Pending' AND lock_by IS NULL"
        }
        _ => {
            "UPDATE Jobs SET status = 'Running', attempts = attempts + 1, lock_at = strftime('%s', 'now') \
             WHERE id = ? AND status = 'Pending' AND lock_by IS NULL"
        }
    };
    let result = ctx.db.execute_raw(Statement::from_sql_and_values(backend, sql, [id.into()])).await?;
    Ok(result.rows_affected() == 1)
}

/// Records the outcome as apalis's acknowledgement does: `Done` or `Failed`, the result
/// as JSON, `done_at`.
async fn settle(ctx: &WorkerContext, id: &str, result: &Result<(), String>, now_ms: i64) -> Result<(), DbErr> {
    let (status, json) = match result {
        Ok(()) => ("Done", serde_json::json!({ "Ok": null })),
        Err(e) => ("Failed", serde_json::json!({ "Err": e })),
    };
    let backend = ctx.db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE apalis.jobs SET status = $1, last_result = CAST($2 AS jsonb), \
             done_at = to_timestamp($3::bigint) WHERE id = $4"
        }
        _ => "UPDATE Jobs SET status = ?, last_result = ?, done_at = ? WHERE id = ?",
    };
    let values = [status.into(), json.to_string().into(), now_ms.div_euclid(1000).into(), id.into()];
    ctx.db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(())
}
