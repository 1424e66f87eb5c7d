//! A Sign-In with Ethereum challenge this server issued (SPEC §4.3).

use sea_orm::entity::prelude::*;

/// A row of `auth_challenge`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_challenge")]
pub struct Model {
    /// The message's single-use nonce.
    #[sea_orm(primary_key, auto_increment = false)]
    pub nonce: String,
    /// The wallet it was issued for (EIP-55).
    pub wallet: String,
    /// The exact EIP-4361 message issued.
    pub message: String,
    /// Issue time (unix ms).
    pub issued_at: i64,
    /// Its `Expiration Time` (unix ms).
    pub expires_at: i64,
    /// When a verify consumed it.
    pub used_at: Option<i64>,
}

/// Relations of `auth_challenge`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
