//! The sweep: a periodic safety net so that a lost or failed job can never leave bytes
//! behind. It expires active leases past their instant (in batches, `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL so workers share the work) and purges tombstones that still owe
//! a purge. Leases are left to their own job for a grace period first.

use apalis::prelude::{BoxDynError, Data};
use apalis_cron::Tick;
use leasehold_core::jobs::{EndLease, Job};
use leasehold_core::leases::state;
use leasehold_entities::lease;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::JobError;
use super::end_lease::{BATCH, expire_due, purge_batch};
use crate::WorkerContext;

/// The apalis-cron handler.
pub async fn run(_: Tick, ctx: Data<WorkerContext>) -> Result<(), BoxDynError> {
    match sweep(&ctx).await {
        Ok(purged) => {
            ctx.metrics.job("sweep", "ok");
            if purged > 0 {
                tracing::info!(purged, "sweep purged leases their jobs had not reached");
            }
        }
        Err(e) => {
            ctx.metrics.job("sweep", "error");
            tracing::warn!(error = %e, "sweep failed; it runs again at the next tick");
        }
    }
    if let Err(e) = record_depth(&ctx).await {
        tracing::warn!(error = %e, "queue depth unavailable");
    }
    Ok(())
}

/// One sweep; returns how many leases it purged.
pub async fn sweep(ctx: &WorkerContext) -> Result<u64, JobError> {
    let grace = i64::try_from(ctx.config.worker.sweep_grace.as_millis()).unwrap_or(i64::MAX);
    let mut purged = 0;
    loop {
        let expired = expire_due(ctx, ctx.clock.now_ms().saturating_sub(grace)).await?;
        let full = expired.len() as u64 == BATCH;
        purged += purge_batch(ctx, expired).await?.len() as u64;
        if !full {
            break;
        }
    }
    let owed = lease::Entity::find()
        .filter(lease::Column::PurgedAt.is_null())
        .filter(lease::Column::State.ne(state::ACTIVE))
        .filter(lease::Column::DeletedAt.lte(ctx.clock.now_ms().saturating_sub(grace)))
        .order_by_asc(lease::Column::DeletedAt)
        .limit(BATCH)
        .all(&ctx.db)
        .await?;
    purged += purge_batch(ctx, owed).await?.len() as u64;
    Ok(purged)
}

async fn record_depth(ctx: &WorkerContext) -> Result<(), sea_orm::DbErr> {
    let now_secs = ctx.clock.now_ms() / 1000;
    let depth = crate::queue::depth(&ctx.db, now_secs).await?;
    for status in ["ready", "scheduled", "running", "retrying", "dead"] {
        let n = depth.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        ctx.metrics.queue_depth(EndLease::QUEUE, status, n);
    }
    Ok(())
}
