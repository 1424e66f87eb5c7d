//! Handoff (SPEC §7): claim URLs with exact claim counting. A transfer takes a slot with
//! one conditional `UPDATE` (`claims_completed + claims_in_flight < max_claims`) and gives
//! it back exactly once: counted when its body was sent in full, returned when the
//! transfer broke, or taken back from a crashed process whose heartbeat went quiet for 15
//! minutes. Across pods, `max_claims` completed claims happen exactly, never one more.

use leasehold_entities::{handoff, handoff_claim, lease};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, Set,
};

use crate::leases::{self, Owner};
use crate::{ids, tokens, webhook};

/// A transfer whose heartbeat is older than this is taken to have crashed.
pub const STALE_MS: i64 = 15 * 60 * 1000;
/// How often a running transfer proves it is alive.
pub const HEARTBEAT_MS: i64 = 60 * 1000;

pub use leasehold_entities::handoff_claim::ClaimState;

/// Why a claim is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Revoked by the owner.
    Revoked,
    /// Past its `expires_at`.
    Expired,
    /// `max_claims` completed.
    Exhausted,
    /// Every remaining slot is held by a transfer in flight.
    InProgress,
}

/// Why a handoff refuses claims now, if it does.
pub fn refusal(h: &handoff::Model, now: i64) -> Option<Refusal> {
    if h.revoked_at.is_some() {
        Some(Refusal::Revoked)
    } else if now >= h.expires_at {
        Some(Refusal::Expired)
    } else if h.claims_completed >= h.max_claims {
        Some(Refusal::Exhausted)
    } else if h.claims_completed + h.claims_in_flight >= h.max_claims {
        Some(Refusal::InProgress)
    } else {
        None
    }
}

/// A handoff about to be issued.
#[derive(Clone, Debug)]
pub struct NewHandoff {
    /// The lease.
    pub lease_id: String,
    /// Its owner.
    pub owner: Owner,
    /// SHA-256 of the token.
    pub token_hash: String,
    /// Claims allowed.
    pub max_claims: i64,
    /// The final claim deletes the lease.
    pub delete_on_claim: bool,
    /// End of the claim URL (already clamped to the lease).
    pub expires_at: i64,
}

/// Writes the handoff in the caller's transaction (the write pipeline commits).
pub async fn issue(txn: &impl ConnectionTrait, new: NewHandoff, now: i64) -> Result<handoff::Model, DbErr> {
    handoff::ActiveModel {
        id: Set(ids::handoff_id()),
        lease_id: Set(new.lease_id),
        owner_kind: Set(new.owner.kind),
        owner_id: Set(new.owner.id),
        token_hash: Set(new.token_hash),
        max_claims: Set(new.max_claims),
        delete_on_claim: Set(new.delete_on_claim),
        claims_completed: Set(0),
        claims_in_flight: Set(0),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
    }
    .insert(txn)
    .await
}

/// The handoff a token opens.
pub async fn find_by_token(db: &impl ConnectionTrait, token: &str) -> Result<Option<handoff::Model>, DbErr> {
    if !tokens::is_handoff_token(token) {
        return Ok(None);
    }
    handoff::Entity::find().filter(handoff::Column::TokenHash.eq(tokens::sha256_hex(token.as_bytes()))).one(db).await
}

/// The owner's handoff by `hnd_` id or by token; another owner's is `None`.
pub async fn find_owned(db: &impl ConnectionTrait, owner: &Owner, id: &str) -> Result<Option<handoff::Model>, DbErr> {
    let found = if ids::is_valid("hnd", id) {
        handoff::Entity::find_by_id(id).one(db).await?
    } else {
        find_by_token(db, id).await?
    };
    Ok(found.filter(|h| h.owner_kind == owner.kind && h.owner_id == owner.id))
}

/// The owner's handoffs (of one lease), newest first.
pub async fn list_owned(
    db: &impl ConnectionTrait,
    owner: &Owner,
    lease_id: Option<&str>,
) -> Result<Vec<handoff::Model>, DbErr> {
    let mut query = handoff::Entity::find()
        .filter(handoff::Column::OwnerKind.eq(owner.kind))
        .filter(handoff::Column::OwnerId.eq(&owner.id));
    if let Some(id) = lease_id {
        query = query.filter(handoff::Column::LeaseId.eq(id));
    }
    query.order_by_desc(handoff::Column::Id).all(db).await
}

/// The claim log of a handoff, oldest first.
pub async fn claims(db: &impl ConnectionTrait, handoff_id: &str) -> Result<Vec<handoff_claim::Model>, DbErr> {
    handoff_claim::Entity::find()
        .filter(handoff_claim::Column::HandoffId.eq(handoff_id))
        .order_by_asc(handoff_claim::Column::Id)
        .all(db)
        .await
}

/// Revokes (idempotent: a second revoke keeps the first time); returns the row.
pub async fn revoke(db: &DatabaseConnection, id: &str, now: i64) -> Result<Option<handoff::Model>, DbErr> {
    handoff::Entity::update_many()
        .col_expr(handoff::Column::RevokedAt, Expr::value(now))
        .filter(handoff::Column::Id.eq(id))
        .filter(handoff::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    handoff::Entity::find_by_id(id).one(db).await
}

/// Gives back, exactly once each, the slots of transfers whose heartbeat went quiet.
async fn free_abandoned(txn: &impl ConnectionTrait, handoff_id: &str, now: i64) -> Result<(), DbErr> {
    let abandoned = handoff_claim::Entity::update_many()
        .col_expr(handoff_claim::Column::State, Expr::value(ClaimState::Abandoned))
        .col_expr(handoff_claim::Column::FinishedAt, Expr::value(now))
        .filter(handoff_claim::Column::HandoffId.eq(handoff_id))
        .filter(handoff_claim::Column::State.eq(ClaimState::InFlight))
        .filter(handoff_claim::Column::HeartbeatAt.lt(now - STALE_MS))
        .exec(txn)
        .await?
        .rows_affected;
    if abandoned > 0 {
        let n = i64::try_from(abandoned).unwrap_or(i64::MAX);
        handoff::Entity::update_many()
            .col_expr(handoff::Column::ClaimsInFlight, Expr::col(handoff::Column::ClaimsInFlight).sub(n))
            .filter(handoff::Column::Id.eq(handoff_id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// A slot taken for one transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The claim row.
    pub claim_id: String,
    /// The handoff after taking the slot.
    pub handoff: handoff::Model,
}

/// Takes a slot for a transfer, or says why not.
pub async fn acquire(
    db: &DatabaseConnection,
    handoff_id: &str,
    user_agent: Option<&str>,
    now: i64,
) -> Result<Result<Slot, Refusal>, DbErr> {
    let _gate = crate::db::write_gate(db).await;
    let txn = crate::db::begin_write(db).await?;
    free_abandoned(&txn, handoff_id, now).await?;
    let taken = handoff::Entity::update_many()
        .col_expr(handoff::Column::ClaimsInFlight, Expr::col(handoff::Column::ClaimsInFlight).add(1))
        .filter(handoff::Column::Id.eq(handoff_id))
        .filter(handoff::Column::RevokedAt.is_null())
        .filter(handoff::Column::ExpiresAt.gt(now))
        .filter(
            Expr::col(handoff::Column::ClaimsCompleted)
                .add(Expr::col(handoff::Column::ClaimsInFlight))
                .lt(Expr::col(handoff::Column::MaxClaims)),
        )
        .exec_with_returning(&txn)
        .await?;
    let Some(handoff) = taken.into_iter().next() else {
        let fresh = handoff::Entity::find_by_id(handoff_id).one(&txn).await?;
        txn.commit().await?;
        return Ok(Err(fresh.and_then(|h| refusal(&h, now)).unwrap_or(Refusal::Revoked)));
    };
    let claim_id = ids::row_id();
    handoff_claim::ActiveModel {
        id: Set(claim_id.clone()),
        handoff_id: Set(handoff_id.to_owned()),
        state: Set(ClaimState::InFlight),
        started_at: Set(now),
        heartbeat_at: Set(now),
        finished_at: Set(None),
        bytes_sent: Set(0),
        user_agent: Set(user_agent.map(|ua| ua.chars().take(512).collect())),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Ok(Slot { claim_id, handoff }))
}

/// Ends an in-flight claim row in `state`; true if this call ended it (so its slot is
/// settled exactly once).
async fn finish(
    txn: &impl ConnectionTrait,
    claim_id: &str,
    state: ClaimState,
    bytes: i64,
    now: i64,
) -> Result<bool, DbErr> {
    Ok(handoff_claim::Entity::update_many()
        .col_expr(handoff_claim::Column::State, Expr::value(state))
        .col_expr(handoff_claim::Column::FinishedAt, Expr::value(now))
        .col_expr(handoff_claim::Column::BytesSent, Expr::value(bytes))
        .filter(handoff_claim::Column::Id.eq(claim_id))
        .filter(handoff_claim::Column::State.eq(ClaimState::InFlight))
        .exec(txn)
        .await?
        .rows_affected
        == 1)
}

/// What a completed claim did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The handoff after counting the claim.
    pub handoff: handoff::Model,
    /// This was the final claim of a `delete_on_claim` handoff and it deleted the lease.
    pub deleted_lease: bool,
}

/// Counts a claim whose body was sent in full; the final claim of a `delete_on_claim`
/// handoff deletes the lease in the same transaction. `None` if the slot had already been
/// settled (taken back as abandoned).
pub async fn complete(
    db: &DatabaseConnection,
    claim_id: &str,
    handoff_id: &str,
    bytes: i64,
    now: i64,
) -> Result<Option<Completed>, DbErr> {
    let _gate = crate::db::write_gate(db).await;
    let txn = crate::db::begin_write(db).await?;
    if !finish(&txn, claim_id, ClaimState::Completed, bytes, now).await? {
        txn.rollback().await?;
        return Ok(None);
    }
    let counted = handoff::Entity::update_many()
        .col_expr(handoff::Column::ClaimsInFlight, Expr::col(handoff::Column::ClaimsInFlight).sub(1))
        .col_expr(handoff::Column::ClaimsCompleted, Expr::col(handoff::Column::ClaimsCompleted).add(1))
        .filter(handoff::Column::Id.eq(handoff_id))
        .exec_with_returning(&txn)
        .await?;
    let Some(handoff) = counted.into_iter().next() else {
        txn.rollback().await?;
        return Ok(None);
    };
    let exhausted = handoff.claims_completed >= handoff.max_claims;
    let deleted_lease = handoff.delete_on_claim && exhausted && leases::delete_in(&txn, &handoff.lease_id, now).await?;
    record_claim_events(&txn, &handoff, claim_id, deleted_lease, now).await?;
    txn.commit().await?;
    Ok(Some(Completed { handoff, deleted_lease }))
}

/// `handoff.claimed` for a counted claim and, for the last one, `handoff.exhausted`, when
/// the lease has a webhook receiver.
async fn record_claim_events(
    txn: &impl ConnectionTrait,
    handoff: &handoff::Model,
    claim_id: &str,
    deleted_lease: bool,
    now: i64,
) -> Result<(), DbErr> {
    let Some(lease) = lease::Entity::find_by_id(&handoff.lease_id).one(txn).await? else { return Ok(()) };
    if !webhook::wants_events(&lease) {
        return Ok(());
    }
    let mut fields = serde_json::Map::new();
    fields.insert("handoff_id".into(), handoff.id.clone().into());
    fields.insert("max_claims".into(), handoff.max_claims.into());
    fields.insert("claims_used".into(), handoff.claims_completed.into());
    let mut claimed = fields.clone();
    claimed.insert("claim_id".into(), claim_id.into());
    claimed.insert("claims_remaining".into(), Ord::max(handoff.max_claims - handoff.claims_completed, 0).into());
    claimed.insert("lease_deleted".into(), deleted_lease.into());
    let event = |event_type, fields| webhook::NewEvent { lease_id: &lease.id, event_type, fields, occurred_at: now };
    let mut events = vec![event(webhook::event::HANDOFF_CLAIMED, claimed)];
    if handoff.claims_completed >= handoff.max_claims {
        fields.insert("delete_on_claim".into(), handoff.delete_on_claim.into());
        events.push(event(webhook::event::HANDOFF_EXHAUSTED, fields));
    }
    webhook::record_many(txn, events, now).await?;
    Ok(())
}

/// Gives the slot of a broken transfer back.
pub async fn release(
    db: &DatabaseConnection,
    claim_id: &str,
    handoff_id: &str,
    bytes: i64,
    now: i64,
) -> Result<(), DbErr> {
    let _gate = crate::db::write_gate(db).await;
    let txn = crate::db::begin_write(db).await?;
    if finish(&txn, claim_id, ClaimState::Failed, bytes, now).await? {
        handoff::Entity::update_many()
            .col_expr(handoff::Column::ClaimsInFlight, Expr::col(handoff::Column::ClaimsInFlight).sub(1))
            .filter(handoff::Column::Id.eq(handoff_id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await
}

/// A running transfer's sign of life.
pub async fn heartbeat(db: &DatabaseConnection, claim_id: &str, now: i64) -> Result<(), DbErr> {
    handoff_claim::Entity::update_many()
        .col_expr(handoff_claim::Column::HeartbeatAt, Expr::value(now))
        .filter(handoff_claim::Column::Id.eq(claim_id))
        .filter(handoff_claim::Column::State.eq(ClaimState::InFlight))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(completed: i64, in_flight: i64) -> handoff::Model {
        handoff::Model {
            id: "hnd_x".into(),
            lease_id: "lse_x".into(),
            owner_kind: leases::OwnerKind::Account,
            owner_id: "acct_x".into(),
            token_hash: String::new(),
            max_claims: 2,
            delete_on_claim: false,
            claims_completed: completed,
            claims_in_flight: in_flight,
            created_at: 0,
            expires_at: 1000,
            revoked_at: None,
        }
    }

    #[test]
    fn refusals_follow_the_documented_order() {
        assert_eq!(refusal(&h(0, 0), 0), None);
        assert_eq!(refusal(&h(1, 1), 0), Some(Refusal::InProgress));
        assert_eq!(refusal(&h(2, 0), 0), Some(Refusal::Exhausted));
        assert_eq!(refusal(&h(0, 0), 1000), Some(Refusal::Expired));
        let mut revoked = h(2, 0);
        revoked.revoked_at = Some(5);
        assert_eq!(refusal(&revoked, 2000), Some(Refusal::Revoked));
    }
}
