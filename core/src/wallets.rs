//! Wallet owners (SPEC §4.3): Sign-In with Ethereum challenges and `rs_wallet_` sessions.
//! A challenge's nonce is consumed with one conditional `UPDATE` (unused, unexpired, the
//! exact message issued), so of any number of verifies on any number of pods one wins.
//! Session tokens are stored as SHA-256, like API keys.

use leasehold_entities::{auth_challenge, wallet_session};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use crate::{ids, tokens};

/// How long a challenge may be answered.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;
/// How long a session lasts.
pub const SESSION_TTL_MS: i64 = 24 * 3600 * 1000;
/// Prefix of session tokens.
pub const SESSION_PREFIX: &str = "rs_wallet_";

/// Remembers an issued challenge.
pub async fn remember_challenge(
    db: &impl ConnectionTrait,
    nonce: &str,
    wallet: &str,
    message: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), DbErr> {
    auth_challenge::ActiveModel {
        nonce: Set(nonce.to_owned()),
        wallet: Set(wallet.to_owned()),
        message: Set(message.to_owned()),
        issued_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Consumes the challenge with this nonce if it is exactly `message`, unused and
/// unexpired; true if this call consumed it.
pub async fn consume_challenge(db: &impl ConnectionTrait, nonce: &str, message: &str, now: i64) -> Result<bool, DbErr> {
    let updated = auth_challenge::Entity::update_many()
        .col_expr(auth_challenge::Column::UsedAt, Expr::value(now))
        .filter(auth_challenge::Column::Nonce.eq(nonce))
        .filter(auth_challenge::Column::Message.eq(message))
        .filter(auth_challenge::Column::UsedAt.is_null())
        .filter(auth_challenge::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Opens a session for `wallet`; returns the token (shown once) and the row.
pub async fn open_session(
    db: &impl ConnectionTrait,
    wallet: &str,
    now: i64,
) -> Result<(String, wallet_session::Model), DbErr> {
    let token = format!("{SESSION_PREFIX}{}", tokens::random_hex32());
    let row = wallet_session::ActiveModel {
        id: Set(ids::row_id()),
        token_hash: Set(tokens::sha256_hex(token.as_bytes())),
        wallet: Set(wallet.to_owned()),
        created_at: Set(now),
        expires_at: Set(now.saturating_add(SESSION_TTL_MS)),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok((token, row))
}

/// The live session a token opens (unrevoked, unexpired).
pub async fn authenticate(
    db: &impl ConnectionTrait,
    token: &str,
    now: i64,
) -> Result<Option<wallet_session::Model>, DbErr> {
    if !token.starts_with(SESSION_PREFIX) {
        return Ok(None);
    }
    wallet_session::Entity::find()
        .filter(wallet_session::Column::TokenHash.eq(tokens::sha256_hex(token.as_bytes())))
        .filter(wallet_session::Column::RevokedAt.is_null())
        .filter(wallet_session::Column::ExpiresAt.gt(now))
        .one(db)
        .await
}

/// Revokes a session; true if it was live.
pub async fn revoke(db: &impl ConnectionTrait, session_id: &str, now: i64) -> Result<bool, DbErr> {
    let updated = wallet_session::Entity::update_many()
        .col_expr(wallet_session::Column::RevokedAt, Expr::value(now))
        .filter(wallet_session::Column::Id.eq(session_id))
        .filter(wallet_session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Removes challenges that expired before `before` (the reaper's job).
pub async fn prune_challenges(db: &impl ConnectionTrait, before: i64) -> Result<u64, DbErr> {
    Ok(auth_challenge::Entity::delete_many()
        .filter(auth_challenge::Column::ExpiresAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
