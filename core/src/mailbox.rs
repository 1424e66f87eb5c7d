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
use crate::leases::{self, Gone, Owner, state, variant};
use crate::{tokens, webhook};

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
    leases::set_hook(&mut row, &new.hook);
    let lease = row.insert(&txn).await?;
    leases::schedule_end(&txn, &lease, now).await?;
    if let Some((claim, render)) = idempotency {
        crate::idempotency::complete(&txn, claim, 201, &render(&lease)).await?;
    }
    txn.commit().await?;
    Ok(lease)
}

/// The Mailbox whose drop token has this SHA-256, whatever its state.
pub async fn find_by_drop_token_hash(db: &impl ConnectionTrait, hash: &str) -> Result<Option<lease::Model>, DbErr> {
    lease::Entity::find()
        .filter(lease::Column::DropTokenHash.eq(hash))
        .filter(lease::Column::Variant.eq(variant::MAILBOX))
        .one(db)
        .await
}

/// Drop tokens recently looked up, so a burst of drops into one mailbox does not read its
/// row for each. A cached row can be stale by up to the TTL, which is harmless: it only
/// serves the quick checks before the bytes are stored, and the commit's conditional
/// `UPDATE` re-checks state, expiry and room against the database.
#[derive(Debug)]
pub struct TokenCache {
    ttl_ms: i64,
    entries: std::sync::Mutex<std::collections::HashMap<String, (lease::Model, i64)>>,
}

/// Entries kept before the cache starts over.
const TOKEN_CACHE_MAX: usize = 10_000;

impl TokenCache {
    /// A cache whose entries live `ttl_ms`.
    pub fn new(ttl_ms: i64) -> Self {
        Self { ttl_ms, entries: std::sync::Mutex::default() }
    }

    /// The Mailbox this token opens (`None`: no such token); `fresh` skips the cache.
    pub async fn find(
        &self,
        db: &impl ConnectionTrait,
        token: &str,
        now: i64,
        fresh: bool,
    ) -> Result<Option<lease::Model>, DbErr> {
        if !tokens::is_drop_token(token) {
            return Ok(None);
        }
        let hash = tokens::sha256_hex(token.as_bytes());
        let lock = || self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !fresh
            && let Some((lease, at)) = lock().get(&hash)
            && now - at < self.ttl_ms
        {
            return Ok(Some(lease.clone()));
        }
        let found = find_by_drop_token_hash(db, &hash).await?;
        if let Some(lease) = &found {
            let mut entries = lock();
            if entries.len() >= TOKEN_CACHE_MAX {
                entries.clear();
            }
            entries.insert(hash, (lease.clone(), now));
        }
        Ok(found)
    }
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
pub type RenderMessage = fn(&mailbox_message::Model) -> String;

/// One drop whose bytes are stored, waiting to commit.
#[derive(Clone, Debug)]
pub struct PendingDrop {
    /// The mailbox.
    pub lease_id: String,
    /// The message.
    pub message: NewMessage,
    /// The idempotency claim to complete with the rendered response.
    pub idempotency: Option<(String, RenderMessage)>,
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

/// Commits drops together (group commit): conditional `UPDATE`s on the lease rows take
/// room and the next `seq`s (so concurrent drops on any number of pods never exceed the
/// caps), then the accepted messages are inserted, their idempotency records
/// completed and their mailboxes announced, all in one transaction. A refused drop does
/// not disturb the others.
pub async fn commit_drops(db: &DatabaseConnection, drops: &[PendingDrop]) -> Result<Vec<Dropped>, DbErr> {
    let gate = crate::db::write_gate(db).await;
    let txn = db.begin().await?;
    let mut seqs: Vec<Option<i64>> = vec![None; drops.len()];
    // Mailboxes with a webhook receiver: each stored drop is an event.
    let mut hooked: Vec<&str> = Vec::new();
    for (lease_id, members) in by_lease(drops) {
        // All of one mailbox's drops at once when they all fit (then each would have fit in
        // turn); otherwise one by one, exactly as if they had come alone.
        let bytes = members.iter().map(|&i| drops[i].message.size_bytes).sum();
        let latest = members.iter().map(|&i| drops[i].now).max().unwrap_or_default();
        let count = i64::try_from(members.len()).unwrap_or(i64::MAX);
        if let Some((first, lease)) = reserve(&txn, lease_id, bytes, count, latest).await? {
            for (k, &i) in members.iter().enumerate() {
                seqs[i] = Some(first + i64::try_from(k).unwrap_or_default());
            }
            if webhook::wants_events(&lease) {
                hooked.push(lease_id);
            }
        } else if members.len() > 1 {
            for &i in &members {
                let reserved = reserve(&txn, lease_id, drops[i].message.size_bytes, 1, drops[i].now).await?;
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
    let outcomes: Vec<Option<mailbox_message::Model>> = drops
        .iter()
        .zip(&seqs)
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
        .collect();
    let rows: Vec<mailbox_message::ActiveModel> = outcomes.iter().flatten().cloned().map(Into::into).collect();
    if !rows.is_empty() {
        mailbox_message::Entity::insert_many(rows).exec(&txn).await?;
    }
    let mut announced: Vec<&str> = Vec::new();
    let mut events = Vec::new();
    for (d, row) in drops.iter().zip(&outcomes) {
        let Some(row) = row else { continue };
        if let Some((claim, render)) = &d.idempotency {
            crate::idempotency::complete(&txn, claim, 201, &render(row)).await?;
        }
        if !announced.contains(&d.lease_id.as_str()) {
            announce(&txn, &d.lease_id).await?;
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
    webhook::record_many(&txn, events, latest).await?;
    txn.commit().await?;
    drop(gate);
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
        .filter(lease::Column::State.eq(state::ACTIVE))
        .filter(lease::Column::ExpiresAt.gt(now))
        .filter(Expr::col(lease::Column::UsedBytes).add(bytes).lte(Expr::col(lease::Column::CapacityBytes)))
        .filter(Expr::col(lease::Column::MessageCount).add(count).lte(Expr::col(lease::Column::MaxMessages)))
        .exec_with_returning(txn)
        .await?;
    Ok(reserved.into_iter().next().map(|lease| (lease.next_seq - count, lease)))
}

/// Largest group commit.
pub const MAX_BATCH: usize = 128;

struct Queued {
    drop: PendingDrop,
    reply: tokio::sync::oneshot::Sender<Result<Dropped, DbErr>>,
}

/// Group commit of drops for one process: whatever drops arrive while a transaction runs
/// commit together in the next one, so a burst costs one commit instead of one each. A
/// lone drop commits at once.
#[derive(Clone, Debug)]
pub struct Committer {
    queue: tokio::sync::mpsc::Sender<Queued>,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued").field("lease_id", &self.drop.lease_id).finish_non_exhaustive()
    }
}

impl Committer {
    /// Starts the committing task; it ends when every handle is dropped.
    pub fn start(db: DatabaseConnection) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Queued>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let drops: Vec<PendingDrop> = batch.iter().map(|q| q.drop.clone()).collect();
                match commit_drops(&db, &drops).await {
                    Ok(outcomes) => {
                        for (q, outcome) in batch.drain(..).zip(outcomes) {
                            q.reply.send(Ok(outcome)).ok();
                        }
                    }
                    // The whole transaction rolled back: give each drop its own, so one
                    // bad drop cannot fail the others.
                    Err(_) if batch.len() > 1 => {
                        for q in batch.drain(..) {
                            let one = commit_drops(&db, std::slice::from_ref(&q.drop)).await;
                            q.reply.send(one.map(|mut o| o.remove(0))).ok();
                        }
                    }
                    Err(e) => {
                        if let Some(q) = batch.pop() {
                            q.reply.send(Err(e)).ok();
                        }
                    }
                }
            }
        });
        Self { queue }
    }

    /// Commits one drop (with whatever else is waiting).
    pub async fn commit(&self, drop: PendingDrop) -> Result<Dropped, DbErr> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue.send(Queued { drop, reply }).await.map_err(|_| DbErr::Custom("drop committer stopped".into()))?;
        answer.await.map_err(|_| DbErr::Custom("drop committer stopped".into()))?
    }
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

    fn pending(lease_id: &str) -> PendingDrop {
        let message =
            NewMessage { id: "msg_x".into(), content_type: "text/plain".into(), size_bytes: 1, sha256: String::new() };
        PendingDrop { lease_id: lease_id.into(), message, idempotency: None, now: 0 }
    }

    #[test]
    fn batches_group_by_mailbox_in_id_order_keeping_arrival_order() {
        let drops = [pending("lse_b"), pending("lse_a"), pending("lse_b"), pending("lse_a"), pending("lse_c")];
        assert_eq!(by_lease(&drops), vec![("lse_a", vec![1, 3]), ("lse_b", vec![0, 2]), ("lse_c", vec![4])]);
    }

    #[test]
    fn message_blobs_live_under_the_lease_prefix() {
        let key = message_key("lse_1", "msg_2");
        assert_eq!(key, "leases/lse_1/messages/msg_2");
        assert!(key.starts_with(&crate::blob::lease_prefix("lse_1")));
    }
}
