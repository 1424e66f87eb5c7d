//! The reaper: tombstones past their retention are removed (the id then answers 404),
//! blobs that no committed lease owns (a crash between upload and commit) and temp files
//! or multipart uploads left by a crash mid-upload are deleted after the orphan age, and
//! finished job rows are pruned.

use std::collections::BTreeMap;

use apalis::prelude::{BoxDynError, Data};
use apalis_cron::Tick;
use leasehold_core::blob::lease_prefix;
use leasehold_core::leases::state;
use leasehold_entities::lease;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::JobError;
use crate::WorkerContext;

/// What one reap removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Tombstone rows deleted.
    pub tombstones: u64,
    /// Lease prefixes whose orphan blobs were deleted.
    pub orphans: u64,
    /// Temp files and unfinished multipart uploads removed.
    pub incomplete: u64,
}

/// The apalis-cron handler.
pub async fn run(_: Tick, ctx: Data<WorkerContext>) -> Result<(), BoxDynError> {
    match reap(&ctx).await {
        Ok(r) => {
            ctx.metrics.job("reap", "ok");
            if r != Reaped::default() {
                tracing::info!(tombstones = r.tombstones, orphans = r.orphans, incomplete = r.incomplete, "reaped");
            }
        }
        Err(e) => {
            ctx.metrics.job("reap", "error");
            tracing::warn!(error = %e, "reap failed; it runs again at the next tick");
        }
    }
    Ok(())
}

/// One reap.
pub async fn reap(ctx: &WorkerContext) -> Result<Reaped, JobError> {
    let now = ctx.clock.now_ms();
    let retention = i64::try_from(ctx.config.limits.tombstone_retention_seconds).unwrap_or(i64::MAX / 1000) * 1000;
    let tombstones = lease::Entity::delete_many()
        .filter(lease::Column::State.ne(state::ACTIVE))
        .filter(lease::Column::PurgedAt.is_not_null())
        .filter(lease::Column::DeletedAt.lte(now.saturating_sub(retention)))
        .exec(&ctx.db)
        .await?
        .rows_affected;
    let orphan_cutoff = now - i64::try_from(ctx.config.worker.orphan_age.as_millis()).unwrap_or(i64::MAX / 2);
    let orphans = reap_orphans(ctx, orphan_cutoff).await?;
    let incomplete = ctx.blobs.reap_incomplete(orphan_cutoff).await?;
    let day_ago_secs = now / 1000 - 86_400;
    crate::queue::prune_finished(&ctx.db, day_ago_secs).await?;
    Ok(Reaped { tombstones, orphans, incomplete })
}

/// Deletes the blobs of leases that have no committed row (or only a purged tombstone)
/// once every one of their objects is older than `cutoff`.
async fn reap_orphans(ctx: &WorkerContext, cutoff: i64) -> Result<u64, JobError> {
    let mut newest: BTreeMap<String, i64> = BTreeMap::new();
    for entry in ctx.blobs.list("leases/").await? {
        if let Some(id) = entry.key.split('/').nth(1) {
            let t = newest.entry(id.to_owned()).or_insert(entry.modified_ms);
            *t = (*t).max(entry.modified_ms);
        }
    }
    let mut reaped = 0;
    for (id, modified) in newest {
        if modified > cutoff {
            continue;
        }
        let row = lease::Entity::find_by_id(&id).one(&ctx.db).await?;
        if row.is_none_or(|l| l.purged_at.is_some()) {
            ctx.blobs.delete_prefix(&lease_prefix(&id)).await?;
            tracing::info!(lease.id = %id, "orphan blobs deleted");
            reaped += 1;
        }
    }
    Ok(reaped)
}
