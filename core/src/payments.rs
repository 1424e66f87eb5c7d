//! x402 payments (SPEC §4.2) in the database: a payment's nonce is taken with a unique
//! `INSERT` before the facilitator verifies it, so of any number of requests (on any
//! number of pods) carrying one payment exactly one goes on; the row becomes `settled`
//! in the transaction that commits the lease it paid for.

use leasehold_entities::payment::{self, PaymentState};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, SqlErr};

use crate::ids;

/// The identity of a payment: network, payer and EIP-3009 nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentKey {
    /// v1 network name.
    pub network: String,
    /// Payer address (compared lower case).
    pub payer: String,
    /// Nonce (compared lower case).
    pub nonce: String,
}

/// Takes the payment's nonce for this request: `Some(payment id)`, or `None` when another
/// request has taken it (the payment is used, or being used).
pub async fn take_nonce(
    db: &impl ConnectionTrait,
    key: &PaymentKey,
    amount_micros: i64,
    now: i64,
) -> Result<Option<String>, DbErr> {
    let id = ids::payment_id();
    let inserted = payment::ActiveModel {
        id: Set(id.clone()),
        network: Set(key.network.clone()),
        payer: Set(key.payer.to_ascii_lowercase()),
        nonce: Set(key.nonce.to_ascii_lowercase()),
        amount_micros: Set(amount_micros),
        state: Set(PaymentState::Pending),
        tx_hash: Set(None),
        lease_id: Set(None),
        created_at: Set(now),
        settled_at: Set(None),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(Some(id)),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Gives a nonce back after the request failed before settlement (the payment was not
/// executed, so the client may send it again).
pub async fn release_nonce(db: &impl ConnectionTrait, payment_id: &str) -> Result<(), DbErr> {
    payment::Entity::delete_many()
        .filter(payment::Column::Id.eq(payment_id))
        .filter(payment::Column::State.eq(PaymentState::Pending))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks the payment settled by `tx_hash`, for `lease_id` when the lease was committed
/// (in the lease's transaction) or `None` when it could not be.
pub async fn mark_settled(
    db: &impl ConnectionTrait,
    payment_id: &str,
    tx_hash: &str,
    lease_id: Option<&str>,
    now: i64,
) -> Result<(), DbErr> {
    let updated = payment::Entity::update_many()
        .col_expr(payment::Column::State, Expr::value(PaymentState::Settled))
        .col_expr(payment::Column::TxHash, Expr::value(tx_hash))
        .col_expr(payment::Column::LeaseId, Expr::value(lease_id))
        .col_expr(payment::Column::SettledAt, Expr::value(now))
        .filter(payment::Column::Id.eq(payment_id))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(DbErr::RecordNotUpdated);
    }
    Ok(())
}

/// The payment row that paid for a lease, if any.
pub async fn of_lease(db: &impl ConnectionTrait, lease_id: &str) -> Result<Option<payment::Model>, DbErr> {
    payment::Entity::find().filter(payment::Column::LeaseId.eq(lease_id)).one(db).await
}
