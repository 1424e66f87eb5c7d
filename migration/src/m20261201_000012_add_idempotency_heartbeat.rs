//! `heartbeat_at` on `idempotency_key`: the request holding a `pending` key refreshes it
//! while it runs, so a key left by a crashed process is taken over within a minute instead
//! of blocking retries for 15. Rows written before this column have `NULL` (their
//! `created_at` stands in).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKey::Table)
                    .add_column(big_integer_null(IdempotencyKey::HeartbeatAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(IdempotencyKey::Table).drop_column(IdempotencyKey::HeartbeatAt).to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum IdempotencyKey {
    Table,
    HeartbeatAt,
}
