//! Mailbox leases (SPEC §6.2): creation, drops with capacity and count enforced by one
//! conditional `UPDATE` on the lease row, per-mailbox `seq` assigned in the committing
//! transaction, cursor reads and message deletion.
//!
//! The `UPDATE` that reserves room also hands out the `seq` and holds the lease row's lock
//! until the drop commits, so drops into one mailbox commit in `seq` order: a reader that
//! sees `seq = n` has already been able to see every message below it.

use leasehold_entities::{lease, mailbox_message};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, ExprTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};

use crate::accounts::{self, AccountError};
use crate::jobs::{self, EndLease, RunAt};
use crate::leases::{self, Gone, Owner, state, variant};
use crate::tokens;

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
    /// Webhook receiver, if any.
    pub webhook_url: Option<String>,
    /// The webhook secret, sealed.
    pub webhook_secret_sealed: Option<String>,
}

/// Renders the stored (sealed) response of a new lease for `Idempotency-Key` replays.
pub type RenderLease<'a> = dyn Fn(&lease::Model) -> String + Sync + 'a;

/// Charges the account and writes the Mailbox lease and its `EndLease` job in one
/// transaction.
pub async fn create(
    db: &DatabaseConnection,
    account_id: &str,
    new: NewMailbox,
    idempotency: Option<(&str, &RenderLease<'_>)>,
    now: i64,
) -> Result<lease::Model, AccountError> {
    let txn = db.begin().await?;
    accounts::charge(&txn, account_id, new.cost_micros, &new.lease_id, now).await?;
    let mut row = leases::base_lease(
        &new.lease_id,
        variant::MAILBOX,
        &Owner::account(account_id),
        new.capacity_bytes,
        new.cost_micros,
        new.duration_seconds,
        now,
    );
    row.capacity_bytes = Set(Some(new.capacity_bytes));
    row.max_message_bytes = Set(Some(new.max_message_bytes));
    row.max_messages = Set(Some(new.max_messages));
    row.drop_token_hash = Set(Some(new.drop_token_hash));
    row.webhook_url = Set(new.webhook_url);
    row.webhook_secret_enc = Set(new.webhook_secret_sealed);
    let lease = row.insert(&txn).await?;
    let end = EndLease { lease_id: lease.id.clone() };
    jobs::enqueue(&txn, &end, RunAt::NotBefore(lease.expires_at), Some(format!("expire:{}", lease.id)), now).await?;
    if let Some((claim, render)) = idempotency {
        crate::idempotency::complete(&txn, claim, 201, &render(&lease)).await?;
    }
    txn.commit().await?;
    Ok(lease)
}

/// The Mailbox a drop token opens, whatever its state (`None`: no such token).
pub async fn find_by_drop_token(db: &impl ConnectionTrait, token: &str) -> Result<Option<lease::Model>, DbErr> {
    if !tokens::is_drop_token(token) {
        return Ok(None);
    }
    lease::Entity::find()
        .filter(lease::Column::DropTokenHash.eq(tokens::sha256_hex(token.as_bytes())))
        .filter(lease::Column::Variant.eq(variant::MAILBOX))
        .one(db)
        .await
}

/// The blob key of a message.
pub fn message_key(lease_id: &str, message_id: &str) -> String {
    crate::blob::lease_key(lease_id, &format!("messages/{message_id}"))
}

/// A dropped message whose bytes are already in the blob store.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// Pre-generated `msg_` id (the blob key is derived from it).
    pub id: String,
    /// Content type as sent.
    pub content_type: String,
    /// Exact size.
    pub size_bytes: i64,
    /// Hex SHA-256.
    pub sha256: String,
}

/// Renders the stored response of a drop for `Idempotency-Key` replays.
pub type RenderMessage<'a> = dyn Fn(&mailbox_message::Model) -> String + Sync + 'a;

/// What became of a drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Committed with this row.
    Stored(mailbox_message::Model),
    /// No room: capacity or message count exhausted.
    Full,
    /// The mailbox no longer serves.
    Gone(Gone),
}

/// Reserves room and a `seq` with one conditional `UPDATE` on the lease row (so concurrent
/// drops on any number of pods never exceed the caps), records the message, and announces
/// it, all in one transaction.
pub async fn commit_drop(
    db: &DatabaseConnection,
    lease_id: &str,
    message: NewMessage,
    idempotency: Option<(&str, &RenderMessage<'_>)>,
    now: i64,
) -> Result<Dropped, DbErr> {
    let txn = db.begin().await?;
    let reserved = lease::Entity::update_many()
        .col_expr(lease::Column::UsedBytes, Expr::col(lease::Column::UsedBytes).add(message.size_bytes))
        .col_expr(lease::Column::MessageCount, Expr::col(lease::Column::MessageCount).add(1))
        .col_expr(lease::Column::NextSeq, Expr::col(lease::Column::NextSeq).add(1))
        .filter(lease::Column::Id.eq(lease_id))
        .filter(lease::Column::State.eq(state::ACTIVE))
        .filter(lease::Column::ExpiresAt.gt(now))
        .filter(
            Expr::col(lease::Column::UsedBytes).add(message.size_bytes).lte(Expr::col(lease::Column::CapacityBytes)),
        )
        .filter(Expr::col(lease::Column::MessageCount).lt(Expr::col(lease::Column::MaxMessages)))
        .exec_with_returning(&txn)
        .await?;
    let Some(lease) = reserved.into_iter().next() else {
        txn.rollback().await?;
        let fresh = lease::Entity::find_by_id(lease_id).one(db).await?;
        return Ok(match fresh.map(|l| leases::check_serving(&l, now)) {
            Some(Ok(())) => Dropped::Full,
            Some(Err(gone)) => Dropped::Gone(gone),
            None => Dropped::Gone(Gone::Deleted),
        });
    };
    let row = mailbox_message::ActiveModel {
        blob_key: Set(message_key(lease_id, &message.id)),
        id: Set(message.id),
        lease_id: Set(lease_id.to_owned()),
        seq: Set(lease.next_seq - 1),
        content_type: Set(message.content_type),
        size_bytes: Set(message.size_bytes),
        sha256: Set(message.sha256),
        received_at: Set(now),
    }
    .insert(&txn)
    .await?;
    announce(&txn, lease_id).await?;
    if let Some((claim, render)) = idempotency {
        crate::idempotency::complete(&txn, claim, 201, &render(&row)).await?;
    }
    txn.commit().await?;
    Ok(Dropped::Stored(row))
}

/// On PostgreSQL, `NOTIFY` in the caller's transaction: delivered to every listening pod
/// when (and only if) it commits. Nothing on SQLite, whose one process is woken in memory.
async fn announce(txn: &impl ConnectionTrait, lease_id: &str) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [NOTIFY_CHANNEL.into(), lease_id.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Up to `limit` messages with `seq > after`, in `seq` order.
pub async fn messages_after(
    db: &impl ConnectionTrait,
    lease_id: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<mailbox_message::Model>, DbErr> {
    mailbox_message::Entity::find()
        .filter(mailbox_message::Column::LeaseId.eq(lease_id))
        .filter(mailbox_message::Column::Seq.gt(after))
        .order_by_asc(mailbox_message::Column::Seq)
        .limit(limit)
        .all(db)
        .await
}

/// One message of a mailbox (`None` for another mailbox's message or none at all).
pub async fn find_message(
    db: &impl ConnectionTrait,
    lease_id: &str,
    message_id: &str,
) -> Result<Option<mailbox_message::Model>, DbErr> {
    mailbox_message::Entity::find_by_id(message_id).filter(mailbox_message::Column::LeaseId.eq(lease_id)).one(db).await
}

/// Deletes one message and gives its room back, in one transaction. `DELETE … RETURNING`
/// decides concurrent deletes of the same message: only one frees its bytes. The caller
/// removes the blob after the commit.
pub async fn delete_message(
    db: &DatabaseConnection,
    lease_id: &str,
    message_id: &str,
) -> Result<Option<mailbox_message::Model>, DbErr> {
    let txn = db.begin().await?;
    let deleted = mailbox_message::Entity::delete_many()
        .filter(mailbox_message::Column::Id.eq(message_id))
        .filter(mailbox_message::Column::LeaseId.eq(lease_id))
        .exec_with_returning(&txn)
        .await?;
    let Some(message) = deleted.into_iter().next() else {
        txn.rollback().await?;
        return Ok(None);
    };
    lease::Entity::update_many()
        .col_expr(lease::Column::UsedBytes, Expr::col(lease::Column::UsedBytes).sub(message.size_bytes))
        .col_expr(lease::Column::MessageCount, Expr::col(lease::Column::MessageCount).sub(1))
        .filter(lease::Column::Id.eq(lease_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(Some(message))
}

/// Blob keys of every message of these leases (for purging by known keys).
pub async fn message_keys(db: &impl ConnectionTrait, lease_ids: &[&str]) -> Result<Vec<String>, DbErr> {
    let rows: Vec<String> = mailbox_message::Entity::find()
        .select_only()
        .column(mailbox_message::Column::BlobKey)
        .filter(mailbox_message::Column::LeaseId.is_in(lease_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows)
}

/// Deletes the message rows of these leases.
pub async fn delete_messages_of(db: &impl ConnectionTrait, lease_ids: &[&str]) -> Result<u64, DbErr> {
    Ok(mailbox_message::Entity::delete_many()
        .filter(mailbox_message::Column::LeaseId.is_in(lease_ids.iter().copied()))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_blobs_live_under_the_lease_prefix() {
        let key = message_key("lse_1", "msg_2");
        assert_eq!(key, "leases/lse_1/messages/msg_2");
        assert!(key.starts_with(&crate::blob::lease_prefix("lse_1")));
    }
}
