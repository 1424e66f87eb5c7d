//! The reaper: tombstones past their retention are removed (the id then answers 404),
//! bytes that no committed row references (a crash between upload and commit, under a dead
//! or a live lease) and temp files or multipart uploads left by a crash mid-upload are
//! deleted after the orphan age, and finished job rows and day-old sign-in challenges are
//! pruned.

use std::collections::{BTreeMap, HashSet};

use apalis::prelude::{BoxDynError, Data};
use apalis_cron::Tick;
use leasehold_core::blob::lease_prefix;
use leasehold_core::leases::LeaseState;
use leasehold_core::{checkpoint, mailbox};
use leasehold_entities::{lease, storage_object};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::JobError;
use crate::WorkerContext;

/// What one reap removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Tombstone rows deleted.
    pub tombstones: u64,
    /// Orphan objects deleted.
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
        .filter(lease::Column::State.ne(LeaseState::Active))
        .filter(lease::Column::PurgedAt.is_not_null())
        .filter(lease::Column::DeletedAt.lte(now.saturating_sub(retention)))
        .exec(&ctx.db)
        .await?
        .rows_affected;
    let orphan_cutoff = now - i64::try_from(ctx.config.worker.orphan_age.as_millis()).unwrap_or(i64::MAX / 2);
    let orphans = reap_orphans(ctx, orphan_cutoff).await?;
    let incomplete = ctx.blobs.reap_incomplete(orphan_cutoff).await?;
    let day_ago_secs = now / 1000 - 86_400;
    leasehold_core::queue::prune_finished(&ctx.db, day_ago_secs).await?;
    // Sign-in challenges are answered within minutes; a day later they only take room.
    leasehold_core::wallets::prune_challenges(&ctx.db, now - 86_400_000).await?;
    Ok(Reaped { tombstones, orphans, incomplete })
}

/// Deletes the bytes that no committed row references once they are older than `cutoff`
/// (younger ones may belong to a write about to commit): objects under leases that have no
/// row or were purged, and objects under live leases that a crash left without their row
/// (a message whose drop never committed, a checkpoint version, a Storage object). One
/// listing of the store, compared with the blob keys of the listed leases' rows; returns
/// how many objects were deleted.
async fn reap_orphans(ctx: &WorkerContext, cutoff: i64) -> Result<u64, JobError> {
    let mut listed: BTreeMap<String, Listed> = BTreeMap::new();
    for entry in ctx.blobs.list("leases/").await? {
        let Some(id) = entry.key.split('/').nth(1) else { continue };
        let lease = listed.entry(id.to_owned()).or_default();
        lease.newest = lease.newest.max(entry.modified_ms);
        if entry.modified_ms <= cutoff {
            lease.old.push(entry.key);
        }
    }
    listed.retain(|_, l| !l.old.is_empty());
    let ids: Vec<&str> = listed.keys().map(String::as_str).collect();
    let mut reaped = 0;
    for batch in ids.chunks(BATCH) {
        let (owned, referenced) = committed(ctx, batch).await?;
        let mut keys = Vec::new();
        for id in batch {
            let Some(lease) = listed.get(*id) else { continue };
            if !owned.contains(*id) && lease.newest <= cutoff {
                // Nothing of this lease is referenced or young: its whole prefix goes.
                reaped += ctx.blobs.delete_prefix(&lease_prefix(id)).await?;
                tracing::info!(lease.id = %id, "orphan lease blobs deleted");
                continue;
            }
            let orphans = lease.old.iter().filter(|k| !referenced.contains(k.as_str()));
            for key in orphans {
                tracing::info!(lease.id = %id, blob.key = %key, "orphan blob deleted");
                keys.push(key.clone());
            }
        }
        reaped += ctx.blobs.delete_keys(&keys).await?;
    }
    Ok(reaped)
}

/// How many leases one round of queries covers.
const BATCH: usize = 500;

/// One lease's objects in the listing.
#[derive(Default)]
struct Listed {
    /// Objects older than the cutoff.
    old: Vec<String>,
    /// The newest object's modification time.
    newest: i64,
}

/// Of these lease ids, the ones with an unpurged row, and every blob key that a committed
/// row of theirs references.
async fn committed(ctx: &WorkerContext, ids: &[&str]) -> Result<(HashSet<String>, HashSet<String>), JobError> {
    let owned = lease::Entity::find()
        .select_only()
        .column(lease::Column::Id)
        .filter(lease::Column::Id.is_in(ids.iter().copied()))
        .filter(lease::Column::PurgedAt.is_null())
        .into_tuple::<String>()
        .all(&ctx.db)
        .await?;
    let mut referenced: HashSet<String> = storage_object::Entity::find()
        .select_only()
        .column(storage_object::Column::BlobKey)
        .filter(storage_object::Column::LeaseId.is_in(ids.iter().copied()))
        .into_tuple::<String>()
        .all(&ctx.db)
        .await?
        .into_iter()
        .collect();
    referenced.extend(mailbox::message_keys(&ctx.db, ids).await?);
    referenced.extend(checkpoint::version_keys(&ctx.db, ids).await?);
    Ok((owned.into_iter().collect(), referenced))
}
