//! Versions of a Checkpoint lease, and the rule that an owner has at most one *active*
//! checkpoint per `workflow_id` (a partial unique index, so two concurrent creations on
//! any pods cannot both win).

use sea_orm_migration::{prelude::*, schema::*};

use super::m20261122_000004_create_lease::Lease;

#[derive(DeriveMigrationName)]
pub struct Migration;

const ACTIVE_WORKFLOW_INDEX: &str = "CREATE UNIQUE INDEX idx_lease_active_workflow \
     ON lease (owner_kind, owner_id, workflow_id) WHERE state = 'active' AND workflow_id IS NOT NULL";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CheckpointVersion::Table)
                    .col(string(CheckpointVersion::LeaseId))
                    .col(big_integer(CheckpointVersion::Version))
                    .col(string(CheckpointVersion::BlobKey))
                    .col(string(CheckpointVersion::ContentType))
                    .col(big_integer(CheckpointVersion::SizeBytes))
                    .col(string(CheckpointVersion::Sha256))
                    .col(big_integer(CheckpointVersion::CreatedAt))
                    .primary_key(Index::create().col(CheckpointVersion::LeaseId).col(CheckpointVersion::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CheckpointVersion::Table, CheckpointVersion::LeaseId)
                            .to(Lease::Table, Lease::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Partial indexes are the same SQL on SQLite and PostgreSQL.
        manager.get_connection().execute_unprepared(ACTIVE_WORKFLOW_INDEX).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_lease_active_workflow").table(Lease::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(CheckpointVersion::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum CheckpointVersion {
    Table,
    LeaseId,
    Version,
    BlobKey,
    ContentType,
    SizeBytes,
    Sha256,
    CreatedAt,
}
