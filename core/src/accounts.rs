//! Accounts, API keys and the ledger. Balance changes are single conditional `UPDATE`s
//! and always write a ledger row in the same transaction.

use leasehold_entities::{account, api_key, ledger_entry};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::{ids, tokens};

/// Failures of account operations.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No such account.
    #[error("account not found")]
    NotFound,
    /// No such (unrevoked) API key.
    #[error("api key not found")]
    KeyNotFound,
    /// The last key of an account cannot be revoked.
    #[error("the last api key of an account cannot be revoked")]
    LastKey,
    /// An amount out of range.
    #[error("{0}")]
    Invalid(&'static str),
    /// Not enough balance for a charge.
    #[error("insufficient balance")]
    InsufficientBalance {
        /// What the charge needs.
        required: i64,
        /// What the account has.
        balance: i64,
    },
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A newly created account and its first key (shown once).
#[derive(Debug)]
pub struct NewAccount {
    /// The account row.
    pub account: account::Model,
    /// The plaintext API key.
    pub api_key: String,
}

/// Creates an account with an opening credit and its first API key.
pub async fn create(
    db: &DatabaseConnection,
    name: &str,
    credit_micros: i64,
    now: i64,
) -> Result<NewAccount, AccountError> {
    if credit_micros < 0 {
        return Err(AccountError::Invalid("credit_micros must not be negative"));
    }
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(AccountError::Invalid("name must be 1 to 200 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(AccountError::Invalid("name must not contain control characters"));
    }
    let txn = crate::db::begin_write(db).await?;
    let account = account::ActiveModel {
        id: Set(ids::account_id()),
        name: Set(name.to_owned()),
        balance_micros: Set(credit_micros),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    if credit_micros > 0 {
        insert_ledger(&txn, &account.id, "credit", credit_micros, credit_micros, None, Some("opening credit"), now)
            .await?;
    }
    let api_key = insert_key(&txn, &account.id, now).await?;
    txn.commit().await?;
    Ok(NewAccount { account, api_key })
}

/// Looks an account up by id.
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<account::Model, AccountError> {
    account::Entity::find_by_id(id).one(db).await?.ok_or(AccountError::NotFound)
}

/// Number of accounts.
pub async fn count(db: &DatabaseConnection) -> Result<u64, DbErr> {
    account::Entity::find().count(db).await
}

/// Adds `amount` to the balance with a ledger row; returns the account after it.
pub async fn credit(
    db: &DatabaseConnection,
    account_id: &str,
    amount: i64,
    memo: Option<&str>,
    now: i64,
) -> Result<account::Model, AccountError> {
    if amount <= 0 {
        return Err(AccountError::Invalid("amount_micros must be positive"));
    }
    if memo.is_some_and(|m| m.chars().any(|c| c.is_control() && c != '\n' && c != '\t')) {
        return Err(AccountError::Invalid("memo must not contain control characters other than newline and tab"));
    }
    let txn = crate::db::begin_write(db).await?;
    let updated = account::Entity::update_many()
        .col_expr(account::Column::BalanceMicros, Expr::col(account::Column::BalanceMicros).add(amount))
        .filter(account::Column::Id.eq(account_id))
        .filter(account::Column::BalanceMicros.lte(i64::MAX - amount))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(match find(&txn, account_id).await {
            Ok(_) => AccountError::Invalid("balance would overflow"),
            Err(e) => e,
        });
    }
    let account = find(&txn, account_id).await?;
    insert_ledger(&txn, account_id, "credit", amount, account.balance_micros, None, memo, now).await?;
    txn.commit().await?;
    Ok(account)
}

/// Takes `amount` from the balance inside `txn`, only if the balance covers it, and writes
/// the ledger row. Must be the first write of the transaction (it takes the row lock).
pub async fn charge(
    txn: &impl ConnectionTrait,
    account_id: &str,
    amount: i64,
    lease_id: &str,
    now: i64,
) -> Result<(), AccountError> {
    let updated = account::Entity::update_many()
        .col_expr(account::Column::BalanceMicros, Expr::col(account::Column::BalanceMicros).sub(amount))
        .filter(account::Column::Id.eq(account_id))
        .filter(account::Column::BalanceMicros.gte(amount))
        .exec(txn)
        .await?;
    let account = find(txn, account_id).await?;
    if updated.rows_affected != 1 {
        return Err(AccountError::InsufficientBalance { required: amount, balance: account.balance_micros });
    }
    insert_ledger(txn, account_id, "charge", amount, account.balance_micros, Some(lease_id), None, now).await
}

#[allow(clippy::too_many_arguments)]
async fn insert_ledger(
    txn: &impl ConnectionTrait,
    account_id: &str,
    kind: &str,
    amount: i64,
    balance_after: i64,
    lease_id: Option<&str>,
    memo: Option<&str>,
    now: i64,
) -> Result<(), AccountError> {
    ledger_entry::ActiveModel {
        id: Set(ids::row_id()),
        account_id: Set(account_id.to_owned()),
        kind: Set(kind.to_owned()),
        amount_micros: Set(amount),
        balance_after_micros: Set(balance_after),
        lease_id: Set(lease_id.map(str::to_owned)),
        memo: Set(memo.map(str::to_owned)),
        created_at: Set(now),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// Ledger entries of an account, newest first, strictly older than `cursor` (an entry id).
pub async fn ledger(
    db: &DatabaseConnection,
    account_id: &str,
    cursor: Option<&str>,
    limit: u64,
) -> Result<Vec<ledger_entry::Model>, DbErr> {
    let mut query = ledger_entry::Entity::find().filter(ledger_entry::Column::AccountId.eq(account_id));
    if let Some(cursor) = cursor {
        query = query.filter(ledger_entry::Column::Id.lt(cursor));
    }
    query.order_by_desc(ledger_entry::Column::Id).limit(limit).all(db).await
}

/// Finds the account of an unrevoked API key, and records its use (at most once a minute).
pub async fn authenticate(db: &DatabaseConnection, key: &str, now: i64) -> Result<Option<account::Model>, DbErr> {
    if !key.starts_with(tokens::API_KEY_PREFIX) {
        return Ok(None);
    }
    let hash = tokens::sha256_hex(key.as_bytes());
    let Some(row) = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(&hash))
        .filter(api_key::Column::RevokedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if row.last_used_at.is_none_or(|t| now - t > 60_000) {
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
            .filter(api_key::Column::Id.eq(&row.id))
            .exec(db)
            .await?;
    }
    account::Entity::find_by_id(row.account_id).one(db).await
}

/// Mints another key for an account; returns the plaintext key and its row.
pub async fn mint_key(
    db: &DatabaseConnection,
    account_id: &str,
    now: i64,
) -> Result<(String, api_key::Model), AccountError> {
    let txn = crate::db::begin_write(db).await?;
    let key = insert_key(&txn, account_id, now).await?;
    let row = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(tokens::sha256_hex(key.as_bytes())))
        .one(&txn)
        .await?
        .ok_or(AccountError::KeyNotFound)?;
    txn.commit().await?;
    Ok((key, row))
}

async fn insert_key(txn: &impl ConnectionTrait, account_id: &str, now: i64) -> Result<String, AccountError> {
    // Display prefixes carry 16 random bits; make them unique within the account so that
    // revocation by prefix is unambiguous.
    loop {
        let key = tokens::new_api_key();
        let prefix = tokens::display_prefix(&key).to_owned();
        let taken = api_key::Entity::find()
            .filter(api_key::Column::AccountId.eq(account_id))
            .filter(api_key::Column::Prefix.eq(&prefix))
            .count(txn)
            .await?;
        if taken > 0 {
            continue;
        }
        api_key::ActiveModel {
            id: Set(ids::row_id()),
            account_id: Set(account_id.to_owned()),
            key_hash: Set(tokens::sha256_hex(key.as_bytes())),
            prefix: Set(prefix),
            created_at: Set(now),
            last_used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(txn)
        .await?;
        return Ok(key);
    }
}

/// Unrevoked keys of an account, oldest first.
pub async fn list_keys(db: &DatabaseConnection, account_id: &str) -> Result<Vec<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::AccountId.eq(account_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await
}

/// Revokes the key with this display prefix, unless it is the account's last one.
pub async fn revoke_key(
    db: &DatabaseConnection,
    account_id: &str,
    prefix: &str,
    now: i64,
) -> Result<api_key::Model, AccountError> {
    let txn = crate::db::begin_write(db).await?;
    // A no-op write on the account row serializes concurrent revocations of one account
    // (row lock on PostgreSQL, the write lock on SQLite) so two can never both pass the
    // "not the last key" check.
    account::Entity::update_many()
        .col_expr(account::Column::Name, Expr::col(account::Column::Name))
        .filter(account::Column::Id.eq(account_id))
        .exec(&txn)
        .await?;
    let keys = api_key::Entity::find()
        .filter(api_key::Column::AccountId.eq(account_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .all(&txn)
        .await?;
    let Some(target) = keys.iter().find(|k| k.prefix == prefix).cloned() else {
        return Err(AccountError::KeyNotFound);
    };
    if keys.len() == 1 {
        return Err(AccountError::LastKey);
    }
    api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(&target.id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(api_key::Model { revoked_at: Some(now), ..target })
}
