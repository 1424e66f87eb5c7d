//! Handoffs (claim URLs) and their claim log. `claims_in_flight` and `claims_completed`
//! live on the handoff row so a slot is taken with one conditional `UPDATE`; each claim
//! row records its slot, so a slot is given back exactly once (completed, failed, or
//! abandoned by a crashed process after its heartbeat went quiet).

use sea_orm_migration::{prelude::*, schema::*};

use super::m20261122_000004_create_lease::Lease;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Handoff::Table)
                    .col(string(Handoff::Id).primary_key())
                    .col(string(Handoff::LeaseId))
                    .col(string(Handoff::OwnerKind))
                    .col(string(Handoff::OwnerId))
                    .col(string(Handoff::TokenHash).unique_key())
                    .col(big_integer(Handoff::MaxClaims))
                    .col(boolean(Handoff::DeleteOnClaim))
                    .col(big_integer(Handoff::ClaimsCompleted).default(0))
                    .col(big_integer(Handoff::ClaimsInFlight).default(0))
                    .col(big_integer(Handoff::CreatedAt))
                    .col(big_integer(Handoff::ExpiresAt))
                    .col(big_integer_null(Handoff::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Handoff::Table, Handoff::LeaseId)
                            .to(Lease::Table, Lease::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_handoff_owner_lease")
                    .table(Handoff::Table)
                    .col(Handoff::OwnerKind)
                    .col(Handoff::OwnerId)
                    .col(Handoff::LeaseId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HandoffClaim::Table)
                    .col(string(HandoffClaim::Id).primary_key())
                    .col(string(HandoffClaim::HandoffId))
                    .col(string(HandoffClaim::State))
                    .col(big_integer(HandoffClaim::StartedAt))
                    .col(big_integer(HandoffClaim::HeartbeatAt))
                    .col(big_integer_null(HandoffClaim::FinishedAt))
                    .col(big_integer(HandoffClaim::BytesSent).default(0))
                    .col(string_null(HandoffClaim::UserAgent))
                    .foreign_key(
                        ForeignKey::create()
                            .from(HandoffClaim::Table, HandoffClaim::HandoffId)
                            .to(Handoff::Table, Handoff::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_handoff_claim_state")
                    .table(HandoffClaim::Table)
                    .col(HandoffClaim::HandoffId)
                    .col(HandoffClaim::State)
                    .col(HandoffClaim::HeartbeatAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(HandoffClaim::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Handoff::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Handoff {
    Table,
    Id,
    LeaseId,
    OwnerKind,
    OwnerId,
    TokenHash,
    MaxClaims,
    DeleteOnClaim,
    ClaimsCompleted,
    ClaimsInFlight,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum HandoffClaim {
    Table,
    Id,
    HandoffId,
    State,
    StartedAt,
    HeartbeatAt,
    FinishedAt,
    BytesSent,
    UserAgent,
}
