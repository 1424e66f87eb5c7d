//! API keys: only the SHA-256 of the key is stored, with its display prefix.

use sea_orm_migration::{prelude::*, schema::*};

use super::m20261122_000001_create_account::Account;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiKey::Table)
                    .col(string(ApiKey::Id).primary_key())
                    .col(string(ApiKey::AccountId))
                    .col(string_uniq(ApiKey::KeyHash))
                    .col(string(ApiKey::Prefix))
                    .col(big_integer(ApiKey::CreatedAt))
                    .col(big_integer_null(ApiKey::LastUsedAt))
                    .col(big_integer_null(ApiKey::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiKey::Table, ApiKey::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_key_account_prefix")
                    .table(ApiKey::Table)
                    .col(ApiKey::AccountId)
                    .col(ApiKey::Prefix)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ApiKey::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ApiKey {
    Table,
    Id,
    AccountId,
    KeyHash,
    Prefix,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}
