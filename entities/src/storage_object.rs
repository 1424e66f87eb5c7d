//! The object of a Storage lease.

use sea_orm::entity::prelude::*;

/// A row of `storage_object`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "storage_object")]
pub struct Model {
    /// The lease this object belongs to.
    #[sea_orm(primary_key, auto_increment = false)]
    pub lease_id: String,
    /// Key in the blob store (`leases/<lease_id>/object`).
    pub blob_key: String,
    /// File name as given, path components stripped.
    pub file_name: String,
    /// Content type as given.
    pub content_type: String,
    /// Exact size.
    pub size_bytes: i64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// Creation time (unix ms).
    pub created_at: i64,
}

/// Relations of `storage_object`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
