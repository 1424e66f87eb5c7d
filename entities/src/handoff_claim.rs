//! One claim attempt of a Handoff that took a slot.

use sea_orm::entity::prelude::*;

pub use crate::states::ClaimState;

/// A row of `handoff_claim`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "handoff_claim")]
pub struct Model {
    /// Row id (ULID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The handoff.
    pub handoff_id: String,
    /// `in_flight`, `completed`, `failed` or `abandoned`.
    pub state: ClaimState,
    /// When the transfer began (unix ms).
    pub started_at: i64,
    /// Last sign of life of the transfer (unix ms).
    pub heartbeat_at: i64,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// Body bytes handed to the connection.
    pub bytes_sent: i64,
    /// The claimer's `User-Agent`.
    pub user_agent: Option<String>,
}

/// Relations of `handoff_claim`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
