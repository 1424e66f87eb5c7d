//! `Idempotency-Key` (SPEC §2): the same key from the same owner (or into the same mailbox)
//! within 24 h replays the first response and never charges or stores twice; the same key
//! with a different request is refused.
//!
//! A request first claims the key with an `INSERT` (the unique index decides races across
//! pods), does its work, and stores its response in the transaction that commits the work.
//! A request that fails releases the key, so a retry can succeed. While it runs, the
//! holder refreshes the claim's heartbeat every [`HEARTBEAT_MS`]; a `pending` claim whose
//! heartbeat is older than [`STALE_PENDING_MS`] belongs to a crashed process and is taken
//! over by the next request with that key (compare-and-delete, then the unique insert
//! picks exactly one winner). A holder that was presumed dead but comes back cannot commit:
//! completing a claim it no longer holds fails ([`CLAIM_LOST`]), so its work rolls back.

use leasehold_entities::idempotency_key::{self, KeyState};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set, SqlErr,
};

use crate::{ids, tokens};

/// How long a key is remembered.
pub const RETENTION_MS: i64 = 24 * 3600 * 1000;
/// How often the request holding a `pending` claim shows it is alive.
pub const HEARTBEAT_MS: i64 = 10 * 1000;
/// A `pending` claim whose heartbeat is older than this is taken over by a retry.
pub const STALE_PENDING_MS: i64 = 45 * 1000;
/// Text of the error that completing a claim taken over by another request returns.
pub const CLAIM_LOST: &str = "the Idempotency-Key claim was taken over by a retry";

/// What to do with a request that carries a key.
#[derive(Debug)]
pub enum Claim {
    /// First time: go ahead; complete or release this claim.
    Fresh(String),
    /// Seen before with the same request: send this again.
    Replay {
        /// Stored status.
        status: u16,
        /// Stored JSON body.
        body: String,
    },
    /// Seen before with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// SHA-256 over the parts that define a request.
pub fn fingerprint(parts: &[&str]) -> String {
    tokens::sha256_hex(parts.join("\n").as_bytes())
}

/// Validates a client key: 1–255 printable ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// Claims `key` within `scope` for a request with this fingerprint.
pub async fn claim(
    db: &DatabaseConnection,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
) -> Result<Claim, DbErr> {
    for _ in 0..3 {
        let id = ids::row_id();
        let inserted = idempotency_key::ActiveModel {
            id: Set(id.clone()),
            scope: Set(scope.to_owned()),
            key: Set(key.to_owned()),
            fingerprint: Set(fingerprint.to_owned()),
            state: Set(KeyState::Pending),
            status_code: Set(None),
            response_body: Set(None),
            created_at: Set(now),
            heartbeat_at: Set(Some(now)),
        }
        .insert(db)
        .await;
        match inserted {
            Ok(_) => return Ok(Claim::Fresh(id)),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
            Err(e) => return Err(e),
        }
        let Some(existing) = idempotency_key::Entity::find()
            .filter(idempotency_key::Column::Scope.eq(scope))
            .filter(idempotency_key::Column::Key.eq(key))
            .one(db)
            .await?
        else {
            continue;
        };
        let expired = now - existing.created_at >= RETENTION_MS;
        let last_sign = existing.heartbeat_at.unwrap_or(existing.created_at);
        let stale = existing.state == KeyState::Pending && now - last_sign >= STALE_PENDING_MS;
        if expired || stale {
            // Remove exactly the row we looked at, as we saw it: a heartbeat since, or a
            // concurrent taker that removed it first, makes this delete do nothing, and the
            // loop's insert decides.
            let heartbeat = match existing.heartbeat_at {
                Some(h) => idempotency_key::Column::HeartbeatAt.eq(h),
                None => idempotency_key::Column::HeartbeatAt.is_null(),
            };
            idempotency_key::Entity::delete_many()
                .filter(idempotency_key::Column::Id.eq(&existing.id))
                .filter(idempotency_key::Column::State.eq(existing.state))
                .filter(idempotency_key::Column::CreatedAt.eq(existing.created_at))
                .filter(heartbeat)
                .exec(db)
                .await?;
            continue;
        }
        if existing.fingerprint != fingerprint {
            return Ok(Claim::Mismatch);
        }
        return Ok(match (existing.state, existing.status_code, existing.response_body) {
            (KeyState::Done, Some(status), Some(body)) => {
                Claim::Replay { status: u16::try_from(status).unwrap_or(500), body }
            }
            _ => Claim::InProgress,
        });
    }
    Ok(Claim::InProgress)
}

/// Stores the response of a claimed request; call inside the transaction that commits it.
/// Fails with [`CLAIM_LOST`] if the claim was taken over meanwhile (its holder was presumed
/// dead), so the transaction rolls back and the work is done once, by the taker.
pub async fn complete(txn: &impl ConnectionTrait, claim_id: &str, status: u16, body: &str) -> Result<(), DbErr> {
    let updated = idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::State, Expr::value(KeyState::Done))
        .col_expr(idempotency_key::Column::StatusCode, Expr::value(i32::from(status)))
        .col_expr(idempotency_key::Column::ResponseBody, Expr::value(body))
        .filter(idempotency_key::Column::Id.eq(claim_id))
        .filter(idempotency_key::Column::State.eq(KeyState::Pending))
        .exec(txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(DbErr::Custom(CLAIM_LOST.to_owned()));
    }
    Ok(())
}

/// True for the error of completing a claim that was taken over.
pub fn is_claim_lost(e: &DbErr) -> bool {
    matches!(e, DbErr::Custom(m) if m == CLAIM_LOST)
}

/// The sign of life of a running request's `pending` claim.
pub async fn heartbeat(db: &DatabaseConnection, claim_id: &str, now: i64) -> Result<(), DbErr> {
    idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::HeartbeatAt, Expr::value(now))
        .filter(idempotency_key::Column::Id.eq(claim_id))
        .filter(idempotency_key::Column::State.eq(KeyState::Pending))
        .exec(db)
        .await?;
    Ok(())
}

/// Releases the claim of a request that failed, so the key can be used again.
pub async fn release(db: &DatabaseConnection, claim_id: &str) -> Result<(), DbErr> {
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::Id.eq(claim_id))
        .filter(idempotency_key::Column::State.eq(KeyState::Pending))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_up_to_255() {
        assert!(valid_key("abc-123_DEF"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(valid_key(&"k".repeat(255)));
    }

    #[test]
    fn fingerprints_separate_parts() {
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
    }
}
