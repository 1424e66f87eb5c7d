//! Lease rules shared by every variant: states, ownership, and the expiry instant after
//! which nothing is served (SPEC §5).

use leasehold_entities::{lease, storage_object};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use crate::queue::{self, EndLease, RunAt};

pub use leasehold_entities::lease::{LeaseState, OwnerKind, Variant};

/// Who owns a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// An account or a wallet.
    pub kind: OwnerKind,
    /// Account id or wallet address.
    pub id: String,
}

impl Owner {
    /// An account owner.
    pub fn account(id: impl Into<String>) -> Self {
        Self { kind: OwnerKind::Account, id: id.into() }
    }
}

/// Why a lease no longer serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// At or past `expires_at` (unix ms).
    Expired {
        /// The expiry instant.
        expires_at: i64,
    },
    /// Deleted.
    Deleted,
}

/// The state a client sees: an active lease past its expiry instant is expired, whether or
/// not the worker has run yet.
pub fn effective_state(lease: &lease::Model, now: i64) -> LeaseState {
    match lease.state {
        LeaseState::Active if now >= lease.expires_at => LeaseState::Expired,
        state => state,
    }
}

/// `Ok` while the lease may be served.
pub fn check_serving(lease: &lease::Model, now: i64) -> Result<(), Gone> {
    match effective_state(lease, now) {
        LeaseState::Active => Ok(()),
        LeaseState::Deleted => Err(Gone::Deleted),
        _ => Err(Gone::Expired { expires_at: lease.expires_at }),
    }
}

/// The lease with this id if `owner` owns it; another owner's lease is `None`, exactly like
/// one that does not exist.
pub async fn find_owned(
    db: &impl ConnectionTrait,
    owner: &Owner,
    lease_id: &str,
) -> Result<Option<lease::Model>, DbErr> {
    lease::Entity::find_by_id(lease_id)
        .filter(lease::Column::OwnerKind.eq(owner.kind))
        .filter(lease::Column::OwnerId.eq(&owner.id))
        .one(db)
        .await
}

/// Filter of a lease listing.
#[derive(Clone, Debug, Default)]
pub struct ListFilter<'a> {
    /// Only this variant.
    pub variant: Option<Variant>,
    /// Only this effective state.
    pub state: Option<LeaseState>,
    /// Only leases with ids below this one (the previous page's last id).
    pub cursor: Option<&'a str>,
    /// Page size.
    pub limit: u64,
}

/// The owner's leases, newest first.
pub async fn list_owned(
    db: &DatabaseConnection,
    owner: &Owner,
    filter: &ListFilter<'_>,
    now: i64,
) -> Result<Vec<lease::Model>, DbErr> {
    let mut query = lease::Entity::find()
        .filter(lease::Column::OwnerKind.eq(owner.kind))
        .filter(lease::Column::OwnerId.eq(&owner.id));
    if let Some(v) = filter.variant {
        query = query.filter(lease::Column::Variant.eq(v));
    }
    if let Some(cursor) = filter.cursor {
        query = query.filter(lease::Column::Id.lt(cursor));
    }
    let active =
        Condition::all().add(lease::Column::State.eq(LeaseState::Active)).add(lease::Column::ExpiresAt.gt(now));
    query = match filter.state {
        Some(LeaseState::Active) => query.filter(active),
        Some(LeaseState::Expired) => query.filter(
            Condition::any().add(lease::Column::State.eq(LeaseState::Expired)).add(
                Condition::all()
                    .add(lease::Column::State.eq(LeaseState::Active))
                    .add(lease::Column::ExpiresAt.lte(now)),
            ),
        ),
        Some(other) => query.filter(lease::Column::State.eq(other)),
        None => query,
    };
    query.order_by_desc(lease::Column::Id).limit(filter.limit).all(db).await
}

/// Outcome of an owner's delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The lease is now `deleted`.
    Deleted,
    /// It no longer serves.
    Gone(Gone),
}

/// Marks an active lease `deleted` with one conditional `UPDATE`, so a concurrent expiry
/// or second delete cannot both win, and enqueues the job that removes its bytes in the
/// same transaction.
pub async fn mark_deleted(db: &DatabaseConnection, lease: &lease::Model, now: i64) -> Result<DeleteOutcome, DbErr> {
    if let Err(gone) = check_serving(lease, now) {
        return Ok(DeleteOutcome::Gone(gone));
    }
    let txn = crate::db::begin_write(db).await?;
    if delete_in(&txn, &lease.id, now).await? {
        txn.commit().await?;
        return Ok(DeleteOutcome::Deleted);
    }
    txn.rollback().await?;
    let fresh = lease::Entity::find_by_id(&lease.id).one(db).await?;
    Ok(DeleteOutcome::Gone(match fresh.map(|l| check_serving(&l, now)) {
        Some(Err(gone)) => gone,
        _ => Gone::Deleted,
    }))
}

/// In the caller's transaction: marks the lease `deleted` if it still serves (one
/// conditional `UPDATE`), enqueues the job that removes its bytes and cancels a
/// `lease.expiring` warning not yet due. True if this call deleted it.
pub async fn delete_in(txn: &impl ConnectionTrait, lease_id: &str, now: i64) -> Result<bool, DbErr> {
    let updated = lease::Entity::update_many()
        .col_expr(lease::Column::State, Expr::value(LeaseState::Deleted))
        .col_expr(lease::Column::DeletedAt, Expr::value(now))
        .filter(lease::Column::Id.eq(lease_id))
        .filter(lease::Column::State.eq(LeaseState::Active))
        .filter(lease::Column::ExpiresAt.gt(now))
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(false);
    }
    let job = EndLease { lease_id: lease_id.into() };
    queue::enqueue(txn, &job, RunAt::Now, Some(format!("delete:{lease_id}")), now).await?;
    crate::webhook::cancel_expiry_warning(txn, lease_id, now).await?;
    Ok(true)
}

/// Turns the active leases matching `which` into `expired` tombstones (`deleted_at` = their
/// expiry instant) with their `lease.expired` events, in one transaction; returns exactly
/// the leases this call turned. Callers bound `which` to leases past their expiry.
pub async fn expire_matching(
    db: &DatabaseConnection,
    which: sea_orm::Condition,
    now: i64,
) -> Result<Vec<lease::Model>, DbErr> {
    let txn = crate::db::begin_write(db).await?;
    let expired = expire_matching_in(&txn, which, now).await?;
    txn.commit().await?;
    Ok(expired)
}

/// [`expire_matching`] in the caller's transaction.
pub async fn expire_matching_in(
    txn: &impl ConnectionTrait,
    which: sea_orm::Condition,
    now: i64,
) -> Result<Vec<lease::Model>, DbErr> {
    let expired = lease::Entity::update_many()
        .col_expr(lease::Column::State, Expr::value(LeaseState::Expired))
        .col_expr(lease::Column::DeletedAt, Expr::col(lease::Column::ExpiresAt))
        .filter(which)
        .filter(lease::Column::State.eq(LeaseState::Active))
        .exec_with_returning(txn)
        .await?;
    crate::webhook::record_expired(txn, &expired, now).await?;
    Ok(expired)
}

/// The instant a dead lease stopped serving: its expiry, or its deletion.
pub fn ended_at(lease: &lease::Model) -> i64 {
    match lease.state {
        LeaseState::Deleted => lease.deleted_at.unwrap_or(lease.expires_at),
        _ => lease.expires_at,
    }
}

/// A Storage lease about to be committed; its bytes are already in the blob store.
#[derive(Clone, Debug)]
pub struct NewStorage {
    /// Pre-generated lease id (the blob key is derived from it).
    pub lease_id: String,
    /// Blob key of the object.
    pub blob_key: String,
    /// Sanitized file name.
    pub file_name: String,
    /// Content type.
    pub content_type: String,
    /// Exact size.
    pub size_bytes: i64,
    /// Hex SHA-256.
    pub sha256: String,
    /// Duration.
    pub duration_seconds: i64,
    /// Price.
    pub cost_micros: i64,
    /// Webhook settings.
    pub hook: crate::webhook::Hook,
}

/// Writes a Storage lease and its object, with its `EndLease` job, in the caller's
/// transaction (the write pipeline charges and commits).
pub async fn create_storage(
    txn: &impl ConnectionTrait,
    owner: &Owner,
    new: NewStorage,
    now: i64,
) -> Result<(lease::Model, storage_object::Model), DbErr> {
    let mut row =
        base_lease(&new.lease_id, Variant::Storage, owner, new.size_bytes, new.cost_micros, new.duration_seconds, now);
    set_hook(&mut row, &new.hook);
    let lease = row.insert(txn).await?;
    let object = storage_object::ActiveModel {
        lease_id: Set(new.lease_id),
        blob_key: Set(new.blob_key),
        file_name: Set(new.file_name),
        content_type: Set(new.content_type),
        size_bytes: Set(new.size_bytes),
        sha256: Set(new.sha256),
        created_at: Set(now),
    }
    .insert(txn)
    .await?;
    schedule_end(txn, &lease, now).await?;
    Ok((lease, object))
}

/// Sets a new lease's webhook columns.
pub fn set_hook(row: &mut lease::ActiveModel, hook: &crate::webhook::Hook) {
    row.webhook_url = Set(hook.url.clone());
    row.webhook_secret_enc = Set(hook.secret_sealed.clone());
    row.expiry_warning_seconds = Set(hook.expiry_warning_seconds);
}

/// In a new lease's transaction: its `EndLease` job at the expiry instant and, when asked
/// for, its `lease.expiring` event.
pub async fn schedule_end(txn: &impl ConnectionTrait, lease: &lease::Model, now: i64) -> Result<(), DbErr> {
    let end = EndLease { lease_id: lease.id.as_str().into() };
    queue::enqueue(txn, &end, RunAt::NotBefore(lease.expires_at), Some(format!("expire:{}", lease.id)), now).await?;
    crate::webhook::schedule_expiry_warning(txn, lease, now).await
}

/// The common columns of a new active lease.
pub fn base_lease(
    id: &str,
    variant: Variant,
    owner: &Owner,
    size_bytes: i64,
    cost_micros: i64,
    duration_seconds: i64,
    now: i64,
) -> lease::ActiveModel {
    lease::ActiveModel {
        id: Set(id.to_owned()),
        variant: Set(variant),
        state: Set(LeaseState::Active),
        owner_kind: Set(owner.kind),
        owner_id: Set(owner.id.clone()),
        size_bytes: Set(size_bytes),
        cost_micros: Set(cost_micros),
        duration_seconds: Set(duration_seconds),
        created_at: Set(now),
        expires_at: Set(now.saturating_add(duration_seconds.saturating_mul(1000))),
        deleted_at: Set(None),
        webhook_url: Set(None),
        webhook_secret_enc: Set(None),
        expiry_warning_seconds: Set(None),
        capacity_bytes: Set(None),
        max_message_bytes: Set(None),
        max_messages: Set(None),
        used_bytes: Set(0),
        message_count: Set(0),
        next_seq: Set(1),
        drop_token_hash: Set(None),
        workflow_id: Set(None),
        max_body_bytes: Set(None),
        max_versions: Set(None),
        current_version: Set(None),
        purged_at: Set(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(state: LeaseState, expires_at: i64) -> lease::Model {
        lease::Model {
            id: "lse_x".into(),
            variant: Variant::Storage,
            state,
            owner_kind: OwnerKind::Account,
            owner_id: "acct_x".into(),
            size_bytes: 1,
            cost_micros: 29,
            duration_seconds: 60,
            created_at: 0,
            expires_at,
            deleted_at: None,
            webhook_url: None,
            webhook_secret_enc: None,
            expiry_warning_seconds: None,
            capacity_bytes: None,
            max_message_bytes: None,
            max_messages: None,
            used_bytes: 0,
            message_count: 0,
            next_seq: 1,
            drop_token_hash: None,
            workflow_id: None,
            max_body_bytes: None,
            max_versions: None,
            current_version: None,
            purged_at: None,
        }
    }

    #[test]
    fn an_active_lease_stops_serving_at_its_expiry_instant() {
        let l = lease(LeaseState::Active, 1000);
        assert_eq!(check_serving(&l, 999), Ok(()));
        assert_eq!(check_serving(&l, 1000), Err(Gone::Expired { expires_at: 1000 }));
        assert_eq!(effective_state(&l, 1000), LeaseState::Expired);
    }

    #[test]
    fn tombstones_never_serve() {
        assert_eq!(check_serving(&lease(LeaseState::Deleted, 5000), 0), Err(Gone::Deleted));
        assert_eq!(check_serving(&lease(LeaseState::Expired, 5000), 0), Err(Gone::Expired { expires_at: 5000 }));
    }
}
