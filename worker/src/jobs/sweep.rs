//! The sweep: a periodic safety net so that a lost or failed job can never leave bytes
//! behind. It expires active leases past their instant (in batches, `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL so workers share the work) and purges tombstones that still owe
//! a purge. Leases are left to their own job for a grace period first.

use apalis::prelude::{BoxDynError, Data};
use apalis_cron::Tick;
use futures_util::StreamExt;
use leasehold_core::jobs::{EndLease, Job};
use leasehold_core::leases::state;
use leasehold_entities::lease;
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};

use super::JobError;
use super::end_lease::{Ended, purge};
use crate::WorkerContext;

/// Leases taken per batch.
const BATCH: u64 = 500;

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
        let cutoff = ctx.clock.now_ms().saturating_sub(grace);
        let ids = expire_batch(ctx, cutoff).await?;
        purged += purge_all(ctx, &ids).await?;
        if (ids.len() as u64) < BATCH {
            break;
        }
    }
    let cutoff = ctx.clock.now_ms().saturating_sub(grace);
    let owed: Vec<String> = lease::Entity::find()
        .select_only()
        .column(lease::Column::Id)
        .filter(lease::Column::PurgedAt.is_null())
        .filter(lease::Column::State.ne(state::ACTIVE))
        .filter(lease::Column::DeletedAt.lte(cutoff))
        .order_by_asc(lease::Column::DeletedAt)
        .limit(BATCH)
        .into_tuple()
        .all(&ctx.db)
        .await?;
    purged += purge_all(ctx, &owed).await?;
    Ok(purged)
}

/// Marks up to one batch of overdue active leases expired; returns their ids.
async fn expire_batch(ctx: &WorkerContext, cutoff: i64) -> Result<Vec<String>, JobError> {
    let txn = ctx.db.begin().await?;
    let mut query = lease::Entity::find()
        .select_only()
        .column(lease::Column::Id)
        .filter(lease::Column::State.eq(state::ACTIVE))
        .filter(lease::Column::ExpiresAt.lte(cutoff))
        .order_by_asc(lease::Column::ExpiresAt)
        .limit(BATCH);
    if ctx.db.get_database_backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let ids: Vec<String> = query.into_tuple().all(&txn).await?;
    if !ids.is_empty() {
        lease::Entity::update_many()
            .col_expr(lease::Column::State, Expr::value(state::EXPIRED))
            .col_expr(lease::Column::DeletedAt, Expr::col(lease::Column::ExpiresAt))
            .filter(lease::Column::Id.is_in(ids.iter().map(String::as_str)))
            .filter(lease::Column::State.eq(state::ACTIVE))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(ids)
}

async fn purge_all(ctx: &WorkerContext, ids: &[String]) -> Result<u64, JobError> {
    let results: Vec<Result<Ended, JobError>> = futures_util::stream::iter(ids.iter().cloned())
        .map(|id| {
            let ctx = ctx.clone();
            async move { purge(&ctx, &id).await }
        })
        .buffer_unordered(ctx.config.worker.concurrency)
        .collect()
        .await;
    let mut purged = 0;
    for result in results {
        if result? == Ended::Purged {
            purged += 1;
        }
    }
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
