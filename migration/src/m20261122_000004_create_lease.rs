//! Leases of every variant: common columns plus nullable variant columns.
//!
//! Mailbox counters (`used_bytes`, `message_count`, `next_seq`) and the checkpoint's
//! `current_version` live on the lease row so that caps and versions are enforced with one
//! conditional `UPDATE` on it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Lease::Table)
                    .col(string(Lease::Id).primary_key())
                    .col(string(Lease::Variant))
                    .col(string(Lease::State))
                    .col(string(Lease::OwnerKind))
                    .col(string(Lease::OwnerId))
                    .col(big_integer(Lease::SizeBytes))
                    .col(big_integer(Lease::CostMicros))
                    .col(big_integer(Lease::DurationSeconds))
                    .col(big_integer(Lease::CreatedAt))
                    .col(big_integer(Lease::ExpiresAt))
                    .col(big_integer_null(Lease::DeletedAt))
                    .col(string_null(Lease::WebhookUrl))
                    .col(text_null(Lease::WebhookSecretEnc))
                    .col(big_integer_null(Lease::ExpiryWarningSeconds))
                    .col(big_integer_null(Lease::CapacityBytes))
                    .col(big_integer_null(Lease::MaxMessageBytes))
                    .col(big_integer_null(Lease::MaxMessages))
                    .col(big_integer(Lease::UsedBytes).default(0))
                    .col(big_integer(Lease::MessageCount).default(0))
                    .col(big_integer(Lease::NextSeq).default(1))
                    .col(string_null(Lease::DropTokenHash).unique_key())
                    .col(string_null(Lease::WorkflowId))
                    .col(big_integer_null(Lease::MaxBodyBytes))
                    .col(big_integer_null(Lease::MaxVersions))
                    .col(big_integer_null(Lease::CurrentVersion))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lease_owner")
                    .table(Lease::Table)
                    .col(Lease::OwnerKind)
                    .col(Lease::OwnerId)
                    .col(Lease::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lease_state_expires")
                    .table(Lease::Table)
                    .col(Lease::State)
                    .col(Lease::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Lease::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Lease {
    Table,
    Id,
    Variant,
    State,
    OwnerKind,
    OwnerId,
    SizeBytes,
    CostMicros,
    DurationSeconds,
    CreatedAt,
    ExpiresAt,
    DeletedAt,
    WebhookUrl,
    WebhookSecretEnc,
    ExpiryWarningSeconds,
    CapacityBytes,
    MaxMessageBytes,
    MaxMessages,
    UsedBytes,
    MessageCount,
    NextSeq,
    DropTokenHash,
    WorkflowId,
    MaxBodyBytes,
    MaxVersions,
    CurrentVersion,
}
