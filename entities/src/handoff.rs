//! A Handoff: a counted, expiring, revocable claim URL for a lease.

use sea_orm::entity::prelude::*;

pub use crate::lease_kind::OwnerKind;

/// A row of `handoff`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "handoff")]
pub struct Model {
    /// `hnd_<ULID>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The lease handed off.
    pub lease_id: String,
    /// Owner kind of the lease (copied, for listing).
    pub owner_kind: OwnerKind,
    /// Owner id of the lease.
    pub owner_id: String,
    /// SHA-256 of the claim token.
    pub token_hash: String,
    /// Claims allowed.
    pub max_claims: i64,
    /// The final completed claim deletes the lease.
    pub delete_on_claim: bool,
    /// Claims whose body was sent in full.
    pub claims_completed: i64,
    /// Transfers holding a slot right now.
    pub claims_in_flight: i64,
    /// Issue time (unix ms).
    pub created_at: i64,
    /// End of the claim URL (unix ms), never past the lease's end.
    pub expires_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// Relations of `handoff`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
