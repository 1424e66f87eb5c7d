//! `Idempotency-Key` records: the first response of a creating POST, replayed for 24 h.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKey::Table)
                    .col(string(IdempotencyKey::Id).primary_key())
                    .col(string(IdempotencyKey::Scope))
                    .col(string(IdempotencyKey::Key))
                    .col(string(IdempotencyKey::Fingerprint))
                    .col(string(IdempotencyKey::State))
                    .col(integer_null(IdempotencyKey::StatusCode))
                    .col(text_null(IdempotencyKey::ResponseBody))
                    .col(big_integer(IdempotencyKey::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_key_scope_key")
                    .table(IdempotencyKey::Table)
                    .col(IdempotencyKey::Scope)
                    .col(IdempotencyKey::Key)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(IdempotencyKey::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum IdempotencyKey {
    Table,
    Id,
    Scope,
    Key,
    Fingerprint,
    State,
    StatusCode,
    ResponseBody,
    CreatedAt,
}
