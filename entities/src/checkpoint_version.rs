//! One stored version of a Checkpoint lease.

use sea_orm::entity::prelude::*;

/// A row of `checkpoint_version`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "checkpoint_version")]
pub struct Model {
    /// The Checkpoint lease.
    #[sea_orm(primary_key, auto_increment = false)]
    pub lease_id: String,
    /// Version number, from 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i64,
    /// Key in the blob store (`leases/<lease_id>/versions/<ULID>`).
    pub blob_key: String,
    /// Content type as sent.
    pub content_type: String,
    /// Exact size.
    pub size_bytes: i64,
    /// Lowercase hex SHA-256 of the body.
    pub sha256: String,
    /// When this version was written (unix ms).
    pub created_at: i64,
}

/// Relations of `checkpoint_version`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
