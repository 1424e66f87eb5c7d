//! An API key, stored as its SHA-256 only.

use sea_orm::entity::prelude::*;

/// A row of `api_key`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key")]
pub struct Model {
    /// Internal ULID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Lowercase hex SHA-256 of the key.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// First 12 characters of the key, for display and revocation.
    pub prefix: String,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last authenticated use (unix ms), updated at most once a minute.
    pub last_used_at: Option<i64>,
    /// Revocation time (unix ms); a revoked key authenticates nothing.
    pub revoked_at: Option<i64>,
}

/// Relations of `api_key`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
