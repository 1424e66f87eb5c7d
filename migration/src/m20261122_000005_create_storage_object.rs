//! The object of a Storage lease.

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
                    .table(StorageObject::Table)
                    .col(string(StorageObject::LeaseId).primary_key())
                    .col(string(StorageObject::BlobKey))
                    .col(string(StorageObject::FileName))
                    .col(string(StorageObject::ContentType))
                    .col(big_integer(StorageObject::SizeBytes))
                    .col(string(StorageObject::Sha256))
                    .col(big_integer(StorageObject::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(StorageObject::Table, StorageObject::LeaseId)
                            .to(Lease::Table, Lease::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StorageObject::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum StorageObject {
    Table,
    LeaseId,
    BlobKey,
    FileName,
    ContentType,
    SizeBytes,
    Sha256,
    CreatedAt,
}
