//! `EndLease`: at its expiry instant a lease becomes an `expired` tombstone; an expired or
//! deleted lease then loses every byte and its child rows.
//!
//! Leases tend to expire in crowds, so the job works in batches: the first job to run
//! expires *every* lease that is due (one conditional `UPDATE … RETURNING`, `SKIP LOCKED`
//! on PostgreSQL so workers split the crowd), deletes their bytes together, and marks them
//! purged in one transaction; the jobs of the other leases then find nothing left to do.
//! Idempotent and safe to run concurrently: only the run whose `UPDATE` sets `purged_at`
//! records a deletion.

use apalis::prelude::{BoxDynError, Data};
use leasehold_core::leases::{self, LeaseState};
use leasehold_core::queue::{self, EndLease, Job, RunAt};
use leasehold_core::{checkpoint, mailbox};
use leasehold_entities::{lease, storage_object};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, ExprTrait, QueryFilter};

use super::JobError;
use crate::WorkerContext;

/// Leases handled per batch.
pub const BATCH: u64 = 500;

/// One batch run at a time per process; jobs queued behind it usually find their lease
/// already purged.
static BATCH_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a run did to the job's own lease.
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

/// Ends this lease (and every other lease that is due): expire if its instant has come,
/// then purge.
pub async fn end_lease(ctx: &WorkerContext, lease_id: &str) -> Result<Ended, JobError> {
    let now = ctx.clock.now_ms();
    let Some(lease) = lease::Entity::find_by_id(lease_id).one(&ctx.db).await? else { return Ok(Ended::Gone) };
    if lease.purged_at.is_some() {
        return Ok(Ended::AlreadyPurged);
    }
    if lease.state == LeaseState::Active && now < lease.expires_at {
        // apalis schedules in whole seconds; never act before the instant itself.
        let job = EndLease { lease_id: lease_id.into() };
        queue::enqueue(&ctx.db, &job, RunAt::NotBefore(lease.expires_at), None, now).await?;
        return Ok(Ended::NotYet);
    }
    let _batch = BATCH_LOCK.lock().await;
    let mut mine = false;
    if lease.state == LeaseState::Active {
        loop {
            let expired = expire_due(ctx, ctx.clock.now_ms()).await?;
            let full = expired.len() as u64 == BATCH;
            mine |= purge_batch(ctx, expired).await?.iter().any(|id| id == lease_id);
            if !full {
                break;
            }
        }
    }
    let Some(fresh) = lease::Entity::find_by_id(lease_id).one(&ctx.db).await? else { return Ok(Ended::Gone) };
    if fresh.purged_at.is_none() && fresh.state != LeaseState::Active {
        mine |= purge_batch(ctx, vec![fresh]).await?.iter().any(|id| id == lease_id);
    }
    Ok(if mine { Ended::Purged } else { Ended::AlreadyPurged })
}

/// Turns up to one batch of active leases past `cutoff` into `expired` tombstones, with
/// their `lease.expired` events in the same transaction, and returns exactly the ones
/// this call turned.
pub async fn expire_due(ctx: &WorkerContext, cutoff: i64) -> Result<Vec<lease::Model>, JobError> {
    let mut due = Query::select();
    due.column(lease::Column::Id)
        .from(lease::Entity)
        .and_where(Expr::col(lease::Column::State).eq(LeaseState::Active))
        .and_where(Expr::col(lease::Column::ExpiresAt).lte(cutoff))
        .order_by(lease::Column::ExpiresAt, sea_orm::Order::Asc)
        .limit(BATCH);
    if ctx.db.get_database_backend() == DbBackend::Postgres {
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let which = sea_orm::Condition::all().add(lease::Column::Id.in_subquery(due));
    Ok(leases::expire_matching(&ctx.db, which, ctx.clock.now_ms()).await?)
}

/// Removes every byte and child row of these dead leases; returns the ids this call
/// purged (others were purged meanwhile by another run).
pub async fn purge_batch(ctx: &WorkerContext, dead: Vec<lease::Model>) -> Result<Vec<String>, JobError> {
    if dead.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = dead.iter().map(|l| l.id.as_str()).collect();
    let objects =
        storage_object::Entity::find().filter(storage_object::Column::LeaseId.is_in(ids.clone())).all(&ctx.db).await?;
    let mut keys: Vec<String> = objects.into_iter().map(|o| o.blob_key).collect();
    keys.extend(mailbox::message_keys(&ctx.db, &ids).await?);
    keys.extend(checkpoint::version_keys(&ctx.db, &ids).await?);
    ctx.blobs.delete_leases(&ids, &keys, ctx.config.worker.concurrency).await?;
    let now = ctx.clock.now_ms();
    let txn = leasehold_core::db::begin_write(&ctx.db).await?;
    let marked = lease::Entity::update_many()
        .col_expr(lease::Column::PurgedAt, Expr::value(now))
        .filter(lease::Column::Id.is_in(ids))
        .filter(lease::Column::PurgedAt.is_null())
        .filter(lease::Column::State.ne(LeaseState::Active))
        .exec_with_returning(&txn)
        .await?;
    let purged: Vec<String> = marked.iter().map(|l| l.id.clone()).collect();
    if !purged.is_empty() {
        let purged_ids: Vec<&str> = purged.iter().map(String::as_str).collect();
        storage_object::Entity::delete_many()
            .filter(storage_object::Column::LeaseId.is_in(purged_ids.iter().copied()))
            .exec(&txn)
            .await?;
        mailbox::delete_messages_of(&txn, &purged_ids).await?;
        checkpoint::delete_versions_of(&txn, &purged_ids).await?;
    }
    txn.commit().await?;
    let mut worst = 0.0f64;
    for l in &marked {
        let lag = (now - leases::ended_at(l)) as f64 / 1000.0;
        worst = worst.max(lag);
        ctx.metrics.purged(lag);
        tracing::debug!(lease.id = %l.id, state = %l.state, lag_seconds = lag, "lease purged");
    }
    if !marked.is_empty() {
        tracing::info!(leases = marked.len(), max_lag_seconds = worst, "leases purged");
    }
    Ok(purged)
}
