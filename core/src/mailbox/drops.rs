//! Drops: group commit of stored messages with capacity, count and `seq` enforced by
//! one conditional `UPDATE` on the lease row.

use leasehold_entities::{lease, mailbox_message};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, ExprTrait, QueryFilter, Statement,
};

use super::{NOTIFY_CHANNEL, message_key};
use crate::leases::{self, Gone, LeaseState};
use crate::webhook;

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

/// One drop whose bytes are stored, waiting to commit.
#[derive(Clone, Debug)]
pub struct PendingDrop {
    /// The mailbox.
    pub lease_id: String,
    /// The message.
    pub message: NewMessage,
    /// When it arrived (unix ms): its `received_at`, and the instant the lease must still
    /// serve at.
    pub now: i64,
}

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

/// Commits drops together (group commit) in a transaction of their own: see
/// [`commit_drops_in`].
pub async fn commit_drops(db: &DatabaseConnection, drops: &[PendingDrop]) -> Result<Vec<Dropped>, DbErr> {
    let _gate = crate::db::write_gate(db).await;
    let txn = crate::db::begin_write(db).await?;
    let outcomes = commit_drops_in(&txn, drops).await?;
    txn.commit().await?;
    Ok(outcomes)
}

/// Writes drops in the caller's transaction: conditional `UPDATE`s on the lease rows take
/// room and the next `seq`s (so concurrent drops on any number of pods never exceed the
/// caps), then the accepted messages are inserted, their mailboxes announced and their
/// events recorded. A refused drop does not disturb the others.
pub async fn commit_drops_in(txn: &impl ConnectionTrait, drops: &[PendingDrop]) -> Result<Vec<Dropped>, DbErr> {
    let (seqs, hooked) = reserve_room(txn, drops).await?;
    let outcomes = message_rows(drops, &seqs);
    let rows: Vec<mailbox_message::ActiveModel> = outcomes.iter().flatten().cloned().map(Into::into).collect();
    if !rows.is_empty() {
        mailbox_message::Entity::insert_many(rows).exec(txn).await?;
    }
    finish_stored(txn, drops, &outcomes, &hooked).await?;
    outcomes_of(txn, drops, outcomes).await
}

/// Reserves room and `seq`s for every drop, mailbox by mailbox; the first `seq` of each
/// accepted drop (`None`: refused), and the mailboxes with a webhook receiver (each stored
/// drop is an event).
async fn reserve_room<'a>(
    txn: &impl ConnectionTrait,
    drops: &'a [PendingDrop],
) -> Result<(Vec<Option<i64>>, Vec<&'a str>), DbErr> {
    let mut seqs: Vec<Option<i64>> = vec![None; drops.len()];
    let mut hooked: Vec<&str> = Vec::new();
    for (lease_id, members) in by_lease(drops) {
        // All of one mailbox's drops at once when they all fit (then each would have fit in
        // turn); otherwise one by one, exactly as if they had come alone.
        let bytes = members.iter().map(|&i| drops[i].message.size_bytes).sum();
        let latest = members.iter().map(|&i| drops[i].now).max().unwrap_or_default();
        let count = i64::try_from(members.len()).unwrap_or(i64::MAX);
        if let Some((first, lease)) = reserve(txn, lease_id, bytes, count, latest).await? {
            for (k, &i) in members.iter().enumerate() {
                seqs[i] = Some(first + i64::try_from(k).unwrap_or_default());
            }
            if webhook::wants_events(&lease) {
                hooked.push(lease_id);
            }
        } else if members.len() > 1 {
            for &i in &members {
                let reserved = reserve(txn, lease_id, drops[i].message.size_bytes, 1, drops[i].now).await?;
                if let Some((_, lease)) = &reserved
                    && webhook::wants_events(lease)
                    && !hooked.contains(&lease_id)
                {
                    hooked.push(lease_id);
                }
                seqs[i] = reserved.map(|(seq, _)| seq);
            }
        }
    }
    Ok((seqs, hooked))
}

/// The message row of each drop that got a `seq`.
fn message_rows(drops: &[PendingDrop], seqs: &[Option<i64>]) -> Vec<Option<mailbox_message::Model>> {
    drops
        .iter()
        .zip(seqs)
        .map(|(d, seq)| {
            seq.map(|seq| mailbox_message::Model {
                id: d.message.id.clone(),
                lease_id: d.lease_id.clone(),
                seq,
                blob_key: message_key(&d.lease_id, &d.message.id),
                content_type: d.message.content_type.clone(),
                size_bytes: d.message.size_bytes,
                sha256: d.message.sha256.clone(),
                received_at: d.now,
            })
        })
        .collect()
}

/// For the stored drops, in the committing transaction: announces each mailbox once and
/// records their `mailbox.message.received` events.
async fn finish_stored(
    txn: &impl ConnectionTrait,
    drops: &[PendingDrop],
    outcomes: &[Option<mailbox_message::Model>],
    hooked: &[&str],
) -> Result<(), DbErr> {
    let mut announced: Vec<&str> = Vec::new();
    let mut events = Vec::new();
    for (d, row) in drops.iter().zip(outcomes) {
        let Some(row) = row else { continue };
        if !announced.contains(&d.lease_id.as_str()) {
            announce(txn, &d.lease_id).await?;
            announced.push(&d.lease_id);
        }
        if hooked.contains(&d.lease_id.as_str()) {
            events.push(webhook::NewEvent {
                lease_id: &d.lease_id,
                event_type: webhook::event::MESSAGE_RECEIVED,
                fields: received_fields(row),
                occurred_at: row.received_at,
            });
        }
    }
    let latest = drops.iter().map(|d| d.now).max().unwrap_or_default();
    webhook::record_many(txn, events, latest).await?;
    Ok(())
}

/// What became of each drop: a refused one is `Full` when its mailbox still serves,
/// otherwise `Gone`.
async fn outcomes_of(
    db: &impl ConnectionTrait,
    drops: &[PendingDrop],
    outcomes: Vec<Option<mailbox_message::Model>>,
) -> Result<Vec<Dropped>, DbErr> {
    let mut result = Vec::with_capacity(drops.len());
    for (d, row) in drops.iter().zip(outcomes) {
        result.push(match row {
            Some(row) => Dropped::Stored(row),
            None => {
                match lease::Entity::find_by_id(&d.lease_id).one(db).await?.map(|l| leases::check_serving(&l, d.now)) {
                    Some(Ok(())) => Dropped::Full,
                    Some(Err(gone)) => Dropped::Gone(gone),
                    None => Dropped::Gone(Gone::Deleted),
                }
            }
        });
    }
    Ok(result)
}

/// The fields of a `mailbox.message.received` event.
fn received_fields(row: &mailbox_message::Model) -> serde_json::Map<String, serde_json::Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("message_id".into(), row.id.clone().into());
    fields.insert("seq".into(), row.seq.into());
    fields.insert("size_bytes".into(), row.size_bytes.into());
    fields.insert("content_type".into(), row.content_type.clone().into());
    fields.insert("received_at".into(), crate::time::rfc3339(row.received_at).into());
    fields
}

/// Indexes of the drops of each mailbox, in arrival order; mailboxes sorted by id, so
/// concurrent batches on different pods lock lease rows in one order (no deadlocks).
fn by_lease(drops: &[PendingDrop]) -> Vec<(&str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, d) in drops.iter().enumerate() {
        match groups.iter_mut().find(|(id, _)| *id == d.lease_id) {
            Some((_, members)) => members.push(i),
            None => groups.push((&d.lease_id, vec![i])),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(b.0));
    groups
}

/// Takes room for `count` messages of `bytes` in all, and as many `seq`s, with one
/// conditional `UPDATE` on the lease row; the first `seq` and the updated row, or `None`
/// if they do not fit or the lease does not serve at `now`.
async fn reserve(
    txn: &impl ConnectionTrait,
    lease_id: &str,
    bytes: i64,
    count: i64,
    now: i64,
) -> Result<Option<(i64, lease::Model)>, DbErr> {
    let reserved = lease::Entity::update_many()
        .col_expr(lease::Column::UsedBytes, Expr::col(lease::Column::UsedBytes).add(bytes))
        .col_expr(lease::Column::MessageCount, Expr::col(lease::Column::MessageCount).add(count))
        .col_expr(lease::Column::NextSeq, Expr::col(lease::Column::NextSeq).add(count))
        .filter(lease::Column::Id.eq(lease_id))
        .filter(lease::Column::State.eq(LeaseState::Active))
        .filter(lease::Column::ExpiresAt.gt(now))
        .filter(Expr::col(lease::Column::UsedBytes).add(bytes).lte(Expr::col(lease::Column::CapacityBytes)))
        .filter(Expr::col(lease::Column::MessageCount).add(count).lte(Expr::col(lease::Column::MaxMessages)))
        .exec_with_returning(txn)
        .await?;
    Ok(reserved.into_iter().next().map(|lease| (lease.next_seq - count, lease)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(lease_id: &str) -> PendingDrop {
        let message =
            NewMessage { id: "msg_x".into(), content_type: "text/plain".into(), size_bytes: 1, sha256: String::new() };
        PendingDrop { lease_id: lease_id.into(), message, now: 0 }
    }

    #[test]
    fn batches_group_by_mailbox_in_id_order_keeping_arrival_order() {
        let drops = [pending("lse_b"), pending("lse_a"), pending("lse_b"), pending("lse_a"), pending("lse_c")];
        assert_eq!(by_lease(&drops), vec![("lse_a", vec![1, 3]), ("lse_b", vec![0, 2]), ("lse_c", vec![4])]);
    }
}
