//! The first response of a creating POST sent with `Idempotency-Key`.

use sea_orm::entity::prelude::*;

pub use crate::states::KeyState;

/// A row of `idempotency_key`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_key")]
pub struct Model {
    /// Internal ULID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Who and where: owner and route (or mailbox, for drops).
    pub scope: String,
    /// The client's key.
    pub key: String,
    /// SHA-256 of the request's defining parts; a different request with the same key is
    /// refused.
    pub fingerprint: String,
    /// `pending` while the first request runs, `done` once its response is stored.
    pub state: KeyState,
    /// Stored response status.
    pub status_code: Option<i32>,
    /// Stored response body (JSON).
    pub response_body: Option<String>,
    /// When the first request arrived (unix ms); records live 24 h.
    pub created_at: i64,
    /// Last sign of life of the request holding a `pending` key (unix ms); `NULL` on rows
    /// older than the column, where `created_at` stands in.
    pub heartbeat_at: Option<i64>,
}

/// Relations of `idempotency_key`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
