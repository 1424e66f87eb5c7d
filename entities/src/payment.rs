//! An x402 payment: its nonce is taken (unique per network and payer) before the
//! facilitator is asked to verify it, so one payment is settled at most once across pods.

use sea_orm::entity::prelude::*;

pub use crate::states::PaymentState;

/// A row of `payment`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment")]
pub struct Model {
    /// `pay_<ULID>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// v1 network name (`base`).
    pub network: String,
    /// Payer address, lower case.
    pub payer: String,
    /// EIP-3009 nonce, lower-case hex.
    pub nonce: String,
    /// Amount authorized, in micros (= USDC atomic units).
    pub amount_micros: i64,
    /// Pending or settled.
    pub state: PaymentState,
    /// Settlement transaction.
    pub tx_hash: Option<String>,
    /// The lease it paid for (set with the lease).
    pub lease_id: Option<String>,
    /// When the nonce was taken (unix ms).
    pub created_at: i64,
    /// When it was settled.
    pub settled_at: Option<i64>,
}

/// Relations of `payment`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
