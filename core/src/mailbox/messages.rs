//! Reading and deleting the messages of a mailbox, and their blob keys.

use leasehold_entities::{lease, mailbox_message};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, ExprTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// The blob key of a message.
pub fn message_key(lease_id: &str, message_id: &str) -> String {
    crate::blob::lease_key(lease_id, &format!("messages/{message_id}"))
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
    let txn = crate::db::begin_write(db).await?;
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
