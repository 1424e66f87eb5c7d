//! Mailbox leases (SPEC §6.2): creation, drops with capacity and count enforced by one
//! conditional `UPDATE` on the lease row, per-mailbox `seq` assigned in the committing
//! transaction, cursor reads and message deletion.
//!
//! The `UPDATE` that reserves room also hands out the `seq` and holds the lease row's lock
//! until the drop commits, so drops into one mailbox commit in `seq` order: a reader that
//! sees `seq = n` has already been able to see every message below it.

mod committer;
mod drops;
mod messages;
mod token_cache;

use leasehold_entities::lease;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

pub use self::committer::{Committer, MAX_BATCH};
pub use self::drops::{Dropped, NewMessage, PendingDrop, commit_drops, commit_drops_in};
pub use self::messages::{delete_message, delete_messages_of, find_message, message_key, message_keys, messages_after};
pub use self::token_cache::TokenCache;
use crate::leases::{self, Owner, Variant};

/// PostgreSQL channel on which committed drops are announced (payload: the lease id), so
/// long polls and event streams on every pod wake up.
pub const NOTIFY_CHANNEL: &str = "leasehold_mailbox";

/// A Mailbox lease about to be committed.
#[derive(Clone, Debug)]
pub struct NewMailbox {
    /// Pre-generated lease id.
    pub lease_id: String,
    /// Capacity ceiling in bytes (the priced size).
    pub capacity_bytes: i64,
    /// Largest single message.
    pub max_message_bytes: i64,
    /// Most messages held at once.
    pub max_messages: i64,
    /// Duration.
    pub duration_seconds: i64,
    /// Price.
    pub cost_micros: i64,
    /// SHA-256 of the drop token (the token itself is never stored).
    pub drop_token_hash: String,
    /// Webhook settings.
    pub hook: crate::webhook::Hook,
}

/// Writes the Mailbox lease and its `EndLease` job in the caller's transaction (the
/// write pipeline charges and commits).
pub async fn create(
    txn: &impl ConnectionTrait,
    owner: &Owner,
    new: NewMailbox,
    now: i64,
) -> Result<lease::Model, DbErr> {
    let mut row = leases::base_lease(
        &new.lease_id,
        Variant::Mailbox,
        owner,
        new.capacity_bytes,
        new.cost_micros,
        new.duration_seconds,
        now,
    );
    row.capacity_bytes = Set(Some(new.capacity_bytes));
    row.max_message_bytes = Set(Some(new.max_message_bytes));
    row.max_messages = Set(Some(new.max_messages));
    row.drop_token_hash = Set(Some(new.drop_token_hash));
    leases::set_hook(&mut row, &new.hook);
    let lease = row.insert(txn).await?;
    leases::schedule_end(txn, &lease, now).await?;
    Ok(lease)
}

/// The Mailbox whose drop token has this SHA-256, whatever its state.
pub async fn find_by_drop_token_hash(db: &impl ConnectionTrait, hash: &str) -> Result<Option<lease::Model>, DbErr> {
    lease::Entity::find()
        .filter(lease::Column::DropTokenHash.eq(hash))
        .filter(lease::Column::Variant.eq(Variant::Mailbox))
        .one(db)
        .await
}
