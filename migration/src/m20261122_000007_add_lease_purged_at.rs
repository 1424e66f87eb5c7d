//! `purged_at`: when the worker removed a dead lease's bytes and child rows. Tombstones
//! without it still owe a purge; the sweep finds them through this index.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Lease::Table).add_column(big_integer_null(Lease::PurgedAt)).to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lease_purge")
                    .table(Lease::Table)
                    .col(Lease::PurgedAt)
                    .col(Lease::DeletedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_lease_purge").table(Lease::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Lease::Table).drop_column(Lease::PurgedAt).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Lease {
    Table,
    PurgedAt,
    DeletedAt,
}
