//! `EndLease`: at its expiry instant a lease becomes an `expired` tombstone; an expired or
//! deleted lease then loses every byte and its child rows. Idempotent and safe to run
//! concurrently: the blob delete tolerates what is gone, and only the run that sets
//! `purged_at` records the deletion.

use apalis::prelude::{BoxDynError, Data};
use leasehold_core::jobs::{self, EndLease, Job, RunAt};
use leasehold_core::leases::{self, state};
use leasehold_entities::{lease, storage_object};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::JobError;
use crate::WorkerContext;

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The lease still serves; the job was scheduled again for its expiry instant.
    NotYet,
    /// This run removed the lease's bytes.
    Purged,
    /// Another run (or the sweep) already did.
    AlreadyPurged,
    /// The lease row no longer exists (reaped).
    Gone,
}

impl Ended {
    fn label(self) -> &'static str {
        match self {
            Self::NotYet => "rescheduled",
            Self::Purged => "purged",
            Self::AlreadyPurged => "already_purged",
            Self::Gone => "gone",
        }
    }
}

/// The apalis handler.
pub async fn run(job: EndLease, ctx: Data<WorkerContext>) -> Result<(), BoxDynError> {
    match end_lease(&ctx, &job.lease_id).await {
        Ok(ended) => {
            ctx.metrics.job(EndLease::QUEUE, ended.label());
            Ok(())
        }
        Err(e) => {
            ctx.metrics.job(EndLease::QUEUE, "error");
            tracing::warn!(lease.id = %job.lease_id, error = %e, "ending a lease failed; it will be retried");
            Err(e.into())
        }
    }
}

/// Expires the lease if its instant has come, then purges it if it is dead.
pub async fn end_lease(ctx: &WorkerContext, lease_id: &str) -> Result<Ended, JobError> {
    let now = ctx.clock.now_ms();
    let Some(lease) = lease::Entity::find_by_id(lease_id).one(&ctx.db).await? else { return Ok(Ended::Gone) };
    if lease.state == state::ACTIVE {
        if now < lease.expires_at {
            // apalis schedules in whole seconds; never act before the instant itself.
            let job = EndLease { lease_id: lease_id.to_owned() };
            jobs::enqueue(&ctx.db, &job, RunAt::NotBefore(lease.expires_at), None, now).await?;
            return Ok(Ended::NotYet);
        }
        leases::mark_expired(&ctx.db, lease_id, now).await?;
    }
    purge(ctx, lease_id).await
}

/// Removes every byte of a dead lease and its child rows, once.
pub async fn purge(ctx: &WorkerContext, lease_id: &str) -> Result<Ended, JobError> {
    let Some(lease) = lease::Entity::find_by_id(lease_id).one(&ctx.db).await? else { return Ok(Ended::Gone) };
    if lease.purged_at.is_some() {
        return Ok(Ended::AlreadyPurged);
    }
    if lease.state == state::ACTIVE {
        return Ok(Ended::NotYet);
    }
    let keys: Vec<String> = storage_object::Entity::find()
        .filter(storage_object::Column::LeaseId.eq(lease_id))
        .all(&ctx.db)
        .await?
        .into_iter()
        .map(|o| o.blob_key)
        .collect();
    let objects = ctx.blobs.delete_lease(lease_id, &keys).await?;
    let now = ctx.clock.now_ms();
    let txn = ctx.db.begin().await?;
    let marked = lease::Entity::update_many()
        .col_expr(lease::Column::PurgedAt, Expr::value(now))
        .filter(lease::Column::Id.eq(lease_id))
        .filter(lease::Column::PurgedAt.is_null())
        .exec(&txn)
        .await?;
    if marked.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(Ended::AlreadyPurged);
    }
    storage_object::Entity::delete_many().filter(storage_object::Column::LeaseId.eq(lease_id)).exec(&txn).await?;
    txn.commit().await?;
    let lag = (now - leases::ended_at(&lease)) as f64 / 1000.0;
    ctx.metrics.purged(lag);
    tracing::info!(lease.id = %lease_id, state = %lease.state, objects, lag_seconds = lag, "lease purged");
    Ok(Ended::Purged)
}
