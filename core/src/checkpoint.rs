//! Checkpoint leases (SPEC §6.3): a versioned state slot keyed by `workflow_id`. A new
//! version takes the next number with one conditional `UPDATE` on the lease row
//! (optionally compare-and-swap on the current version), and versions beyond
//! `max_versions` are pruned in the same transaction.

use leasehold_entities::{checkpoint_version, lease};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, ExprTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr,
};

use crate::leases::{self, Gone, LeaseState, Owner, Variant};

/// True for 1–128 characters of `A-Z a-z 0-9 . _ -`, except `.` and `..` (a client
/// resolves them away in the returned `checkpoint_url`).
pub fn valid_workflow_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && id != "."
        && id != ".."
}

/// True for `application/json` and `…+json` media types, whose bodies must parse.
pub fn is_json(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// A fresh blob key for a version's body (the number is only known at commit).
pub fn version_key(lease_id: &str) -> String {
    crate::blob::lease_key(lease_id, &format!("versions/{}", ulid::Ulid::generate()))
}

/// A body already in the blob store, about to become a version.
#[derive(Clone, Debug)]
pub struct NewVersion {
    /// Its blob key.
    pub blob_key: String,
    /// Content type.
    pub content_type: String,
    /// Exact size.
    pub size_bytes: i64,
    /// Hex SHA-256.
    pub sha256: String,
}

impl NewVersion {
    fn row(&self, lease_id: &str, version: i64, now: i64) -> checkpoint_version::ActiveModel {
        checkpoint_version::ActiveModel {
            lease_id: Set(lease_id.to_owned()),
            version: Set(version),
            blob_key: Set(self.blob_key.clone()),
            content_type: Set(self.content_type.clone()),
            size_bytes: Set(self.size_bytes),
            sha256: Set(self.sha256.clone()),
            created_at: Set(now),
        }
    }
}

/// A Checkpoint lease about to be committed.
#[derive(Clone, Debug)]
pub struct NewCheckpoint {
    /// Pre-generated lease id.
    pub lease_id: String,
    /// The workflow.
    pub workflow_id: String,
    /// Largest version body (the priced size).
    pub max_body_bytes: i64,
    /// Versions kept.
    pub max_versions: i64,
    /// Duration.
    pub duration_seconds: i64,
    /// Price.
    pub cost_micros: i64,
    /// Webhook settings.
    pub hook: crate::webhook::Hook,
}

/// Why a checkpoint could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The owner already has an active checkpoint of this workflow.
    #[error("an active checkpoint of this workflow exists")]
    WorkflowExists,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Writes the lease, version 1 and its `EndLease` job in the caller's transaction (the
/// write pipeline charges and commits). An active checkpoint of the same owner and workflow
/// that is past its expiry instant (the worker has not run yet) is turned into a tombstone
/// first, in the same transaction, so the workflow id is free from the instant the old
/// lease expires.
pub async fn create(
    txn: &impl ConnectionTrait,
    owner: &Owner,
    new: &NewCheckpoint,
    first: &NewVersion,
    now: i64,
) -> Result<(lease::Model, checkpoint_version::Model), CreateError> {
    expire_stale(txn, owner, &new.workflow_id, now).await?;
    let mut row = leases::base_lease(
        &new.lease_id,
        Variant::Checkpoint,
        owner,
        new.max_body_bytes,
        new.cost_micros,
        new.duration_seconds,
        now,
    );
    row.workflow_id = Set(Some(new.workflow_id.clone()));
    row.max_body_bytes = Set(Some(new.max_body_bytes));
    row.max_versions = Set(Some(new.max_versions));
    row.current_version = Set(Some(1));
    leases::set_hook(&mut row, &new.hook);
    let lease = match row.insert(txn).await {
        Ok(lease) => lease,
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(CreateError::WorkflowExists);
        }
        Err(e) => return Err(e.into()),
    };
    let version = first.row(&lease.id, 1, now).insert(txn).await?;
    leases::schedule_end(txn, &lease, now).await?;
    Ok((lease, version))
}

/// Turns the owner's active checkpoint of this workflow into an `expired` tombstone if it
/// is past its expiry instant, with its `lease.expired` event.
async fn expire_stale(txn: &impl ConnectionTrait, owner: &Owner, workflow_id: &str, now: i64) -> Result<(), DbErr> {
    let which = sea_orm::Condition::all()
        .add(lease::Column::OwnerKind.eq(owner.kind))
        .add(lease::Column::OwnerId.eq(&owner.id))
        .add(lease::Column::WorkflowId.eq(workflow_id))
        .add(lease::Column::ExpiresAt.lte(now));
    leases::expire_matching_in(txn, which, now).await?;
    Ok(())
}

/// The owner's checkpoint of this workflow: the active one, else the newest tombstone
/// (which answers 410 until reaped).
pub async fn find(db: &impl ConnectionTrait, owner: &Owner, workflow_id: &str) -> Result<Option<lease::Model>, DbErr> {
    let rows = lease::Entity::find()
        .filter(lease::Column::OwnerKind.eq(owner.kind))
        .filter(lease::Column::OwnerId.eq(&owner.id))
        .filter(lease::Column::Variant.eq(Variant::Checkpoint))
        .filter(lease::Column::WorkflowId.eq(workflow_id))
        .order_by_desc(lease::Column::Id)
        .limit(50)
        .all(db)
        .await?;
    let active = rows.iter().position(|l| l.state == LeaseState::Active);
    Ok(match active {
        Some(i) => rows.into_iter().nth(i),
        None => rows.into_iter().next(),
    })
}

/// What became of a new version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// Stored; these blob keys belonged to pruned versions (delete them after the commit).
    Stored {
        /// The new version.
        version: checkpoint_version::Model,
        /// Blob keys of the versions pruned by this write.
        pruned: Vec<String>,
    },
    /// `If-Match` named another version.
    Conflict {
        /// The version that is current.
        current: i64,
    },
    /// The lease no longer serves.
    Gone(Gone),
}

/// Writes the next version in the caller's transaction: one conditional `UPDATE` takes
/// its number (compare-and-swap when `expected` is given, so of concurrent writers with the
/// same `If-Match` exactly one wins), then the row is inserted and versions beyond
/// `max_versions` are pruned. A refusal (`Conflict`, `Gone`) writes nothing.
pub async fn write(
    txn: &impl ConnectionTrait,
    lease_id: &str,
    expected: Option<i64>,
    body: &NewVersion,
    now: i64,
) -> Result<Written, DbErr> {
    let mut bump = lease::Entity::update_many()
        .col_expr(lease::Column::CurrentVersion, Expr::col(lease::Column::CurrentVersion).add(1))
        .filter(lease::Column::Id.eq(lease_id))
        .filter(lease::Column::State.eq(LeaseState::Active))
        .filter(lease::Column::ExpiresAt.gt(now));
    if let Some(v) = expected {
        bump = bump.filter(lease::Column::CurrentVersion.eq(v));
    }
    let Some(lease) = bump.exec_with_returning(txn).await?.into_iter().next() else {
        let fresh = lease::Entity::find_by_id(lease_id).one(txn).await?;
        return Ok(match fresh {
            None => Written::Gone(Gone::Deleted),
            Some(l) => match leases::check_serving(&l, now) {
                Err(gone) => Written::Gone(gone),
                Ok(()) => Written::Conflict { current: l.current_version.unwrap_or(0) },
            },
        });
    };
    let number = lease.current_version.unwrap_or(1);
    let version = body.row(lease_id, number, now).insert(txn).await?;
    let keep_from = number - lease.max_versions.unwrap_or(1) + 1;
    let pruned = checkpoint_version::Entity::delete_many()
        .filter(checkpoint_version::Column::LeaseId.eq(lease_id))
        .filter(checkpoint_version::Column::Version.lt(keep_from))
        .exec_with_returning(txn)
        .await?;
    Ok(Written::Stored { version, pruned: pruned.into_iter().map(|v| v.blob_key).collect() })
}

/// Every kept version of a lease, newest first.
pub async fn versions(db: &impl ConnectionTrait, lease_id: &str) -> Result<Vec<checkpoint_version::Model>, DbErr> {
    checkpoint_version::Entity::find()
        .filter(checkpoint_version::Column::LeaseId.eq(lease_id))
        .order_by_desc(checkpoint_version::Column::Version)
        .all(db)
        .await
}

/// One version, if kept.
pub async fn version(
    db: &impl ConnectionTrait,
    lease_id: &str,
    number: i64,
) -> Result<Option<checkpoint_version::Model>, DbErr> {
    checkpoint_version::Entity::find_by_id((lease_id.to_owned(), number)).one(db).await
}

/// Blob keys of every version of these leases (for purging by known keys).
pub async fn version_keys(db: &impl ConnectionTrait, lease_ids: &[&str]) -> Result<Vec<String>, DbErr> {
    checkpoint_version::Entity::find()
        .select_only()
        .column(checkpoint_version::Column::BlobKey)
        .filter(checkpoint_version::Column::LeaseId.is_in(lease_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await
}

/// Deletes the version rows of these leases.
pub async fn delete_versions_of(db: &impl ConnectionTrait, lease_ids: &[&str]) -> Result<u64, DbErr> {
    Ok(checkpoint_version::Entity::delete_many()
        .filter(checkpoint_version::Column::LeaseId.is_in(lease_ids.iter().copied()))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_ids_are_short_safe_names() {
        for ok in ["a", "wf-1.step_2", &"x".repeat(128), "ABC.def-123_", "...", ".a", "..b"] {
            assert!(valid_workflow_id(ok), "{ok}");
        }
        for bad in ["", &"x".repeat(129), "a/b", "a b", "café", "a\u{0}", "../x", "a:b", ".", ".."] {
            assert!(!valid_workflow_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn json_media_types_are_recognized() {
        for json in ["application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"] {
            assert!(is_json(json), "{json}");
        }
        for other in ["text/plain", "application/octet-stream", "text/json+xml", "application/jsonx"] {
            assert!(!is_json(other), "{other}");
        }
    }
}
