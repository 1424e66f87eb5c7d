//! A lease of any variant.

use sea_orm::entity::prelude::*;

pub use crate::lease_kind::{LeaseState, OwnerKind, Variant};

/// A row of `lease`. Variant columns are `None` for other variants.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lease")]
pub struct Model {
    /// `lse_<ULID>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `storage`, `mailbox` or `checkpoint`.
    pub variant: Variant,
    /// `active`, `expired` or `deleted`.
    pub state: LeaseState,
    /// `account` or `wallet`.
    pub owner_kind: OwnerKind,
    /// Account id or wallet address.
    pub owner_id: String,
    /// Priced size: file size, capacity or `max_body_bytes`.
    pub size_bytes: i64,
    /// What the lease cost.
    pub cost_micros: i64,
    /// Requested duration.
    pub duration_seconds: i64,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Expiry instant (unix ms); nothing is served from it on.
    pub expires_at: i64,
    /// When the lease became `deleted` or `expired` (unix ms).
    pub deleted_at: Option<i64>,
    /// Webhook target.
    pub webhook_url: Option<String>,
    /// Webhook secret, encrypted.
    pub webhook_secret_enc: Option<String>,
    /// Seconds before expiry at which `lease.expiring` is sent.
    pub expiry_warning_seconds: Option<i64>,
    /// Mailbox: capacity ceiling.
    pub capacity_bytes: Option<i64>,
    /// Mailbox: largest message.
    pub max_message_bytes: Option<i64>,
    /// Mailbox: most messages.
    pub max_messages: Option<i64>,
    /// Mailbox: bytes held.
    pub used_bytes: i64,
    /// Mailbox: messages held.
    pub message_count: i64,
    /// Mailbox: next message sequence number.
    pub next_seq: i64,
    /// Mailbox: SHA-256 of the drop token.
    #[sea_orm(unique)]
    pub drop_token_hash: Option<String>,
    /// Checkpoint: workflow id.
    pub workflow_id: Option<String>,
    /// Checkpoint: largest body.
    pub max_body_bytes: Option<i64>,
    /// Checkpoint: versions kept.
    pub max_versions: Option<i64>,
    /// Checkpoint: current version.
    pub current_version: Option<i64>,
    /// When the worker removed this dead lease's bytes and child rows (unix ms).
    pub purged_at: Option<i64>,
}

/// Relations of `lease`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
