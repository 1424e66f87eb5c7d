//! A wallet session (`rs_wallet_…`, SPEC §4.3), stored as the SHA-256 of its token.

use sea_orm::entity::prelude::*;

/// A row of `wallet_session`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "wallet_session")]
pub struct Model {
    /// Bare ULID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// SHA-256 of the token.
    pub token_hash: String,
    /// The wallet (EIP-55).
    pub wallet: String,
    /// Sign-in time (unix ms).
    pub created_at: i64,
    /// End of the session (unix ms).
    pub expires_at: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
}

/// Relations of `wallet_session`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
