//! The sweep: a periodic safety net so that a lost or failed job can never leave bytes
//! behind. It expires active leases past their instant (in batches, `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL so workers share the work) and purges tombstones that still owe
//! a purge. Leases are left to their own job for a grace period first. Webhook events
//! whose delivery job was lost (a worker killed mid-attempt) are enqueued again once their
//! attempt is overdue by the grace period and no attempt holds them.

use apalis::prelude::{BoxDynError, Data};
use apalis_cron::Tick;
use leasehold_core::leases::LeaseState;
use leasehold_core::queue::{self, DeliverWebhook, RunAt};
use leasehold_core::webhook;
use leasehold_entities::{lease, webhook_event};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::JobError;
use super::end_lease::{BATCH, expire_due, purge_batch};
use crate::WorkerContext;

/// The apalis-cron handler.
pub async fn run(_: Tick, ctx: Data<WorkerContext>) -> Result<(), BoxDynError> {
    tick(&ctx).await;
    Ok(())
}

/// One tick of the timer: the sweep, its metrics and log lines, and the queue depth
/// figures. Failures are logged; the next tick tries again.
pub async fn tick(ctx: &WorkerContext) {
    match sweep(ctx).await {
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
    if let Err(e) = record_depth(ctx).await {
        tracing::warn!(error = %e, "queue depth unavailable");
    }
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
        .filter(lease::Column::State.ne(LeaseState::Active))
        .filter(lease::Column::DeletedAt.lte(ctx.clock.now_ms().saturating_sub(grace)))
        .order_by_asc(lease::Column::DeletedAt)
        .limit(BATCH)
        .all(&ctx.db)
        .await?;
    purged += purge_batch(ctx, owed).await?.len() as u64;
    let requeued = requeue_stalled_events(ctx, grace).await?;
    if requeued > 0 {
        tracing::info!(events = requeued, "sweep re-enqueued webhook deliveries whose job was lost");
    }
    Ok(purged)
}

/// Enqueues a delivery job for pending events overdue by `grace` that no attempt holds;
/// returns how many. A run that finds the event settled or held does nothing, so an
/// event whose job was merely slow is not sent twice.
pub async fn requeue_stalled_events(ctx: &WorkerContext, grace: i64) -> Result<u64, JobError> {
    let now = ctx.clock.now_ms();
    let stalled = webhook_event::Entity::find()
        .filter(webhook_event::Column::State.eq(webhook::DeliveryState::Pending))
        .filter(webhook_event::Column::NextAttemptAt.lte(now.saturating_sub(grace)))
        .filter(
            Condition::any()
                .add(webhook_event::Column::LockedUntil.is_null())
                .add(webhook_event::Column::LockedUntil.lte(now)),
        )
        .order_by_asc(webhook_event::Column::NextAttemptAt)
        .limit(BATCH)
        .all(&ctx.db)
        .await?;
    let bucket = now / grace.max(1);
    for evt in &stalled {
        let job = DeliverWebhook { event_id: evt.id.as_str().into() };
        let key = format!("sweep:{}:{}:{bucket}", evt.id, evt.attempts);
        queue::enqueue(&ctx.db, &job, RunAt::Now, Some(key), now).await?;
    }
    Ok(stalled.len() as u64)
}

async fn record_depth(ctx: &WorkerContext) -> Result<(), sea_orm::DbErr> {
    let now_secs = ctx.clock.now_ms() / 1000;
    for &(queue, _) in leasehold_core::queue::QUEUES {
        let depth = leasehold_core::queue::depth(&ctx.db, queue, now_secs).await?;
        for status in ["ready", "scheduled", "running", "retrying", "dead"] {
            let n = depth.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
            ctx.metrics.queue_depth(queue, status, n);
        }
    }
    Ok(())
}
