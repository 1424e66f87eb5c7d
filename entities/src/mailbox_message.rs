//! A message dropped into a Mailbox lease.

use sea_orm::entity::prelude::*;

/// A row of `mailbox_message`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mailbox_message")]
pub struct Model {
    /// `msg_<ULID>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The Mailbox lease.
    pub lease_id: String,
    /// Per-mailbox sequence number, assigned when the drop commits.
    pub seq: i64,
    /// Key in the blob store (`leases/<lease_id>/messages/<id>`).
    pub blob_key: String,
    /// Content type as sent.
    pub content_type: String,
    /// Exact size.
    pub size_bytes: i64,
    /// Lowercase hex SHA-256 of the body.
    pub sha256: String,
    /// When the drop committed (unix ms).
    pub received_at: i64,
}

/// Relations of `mailbox_message`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
