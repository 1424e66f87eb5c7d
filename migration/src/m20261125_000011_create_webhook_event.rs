//! Webhook events (SPEC §8). Each row is one event of one lease and its delivery state;
//! the row is written in the transaction that causes the event, together with the job
//! that delivers it. The body is stored exactly as it is sent, so every retry carries the
//! same bytes and the same `webhook-id`.

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
                    .table(WebhookEvent::Table)
                    .col(string(WebhookEvent::Id).primary_key())
                    .col(string(WebhookEvent::LeaseId))
                    .col(string(WebhookEvent::EventType))
                    .col(text(WebhookEvent::Body))
                    .col(string(WebhookEvent::State))
                    .col(integer(WebhookEvent::Attempts).default(0))
                    .col(integer_null(WebhookEvent::LastStatusCode))
                    .col(text_null(WebhookEvent::LastError))
                    .col(big_integer_null(WebhookEvent::NextAttemptAt))
                    .col(big_integer_null(WebhookEvent::LockedUntil))
                    .col(big_integer(WebhookEvent::CreatedAt))
                    .col(big_integer_null(WebhookEvent::DeliveredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookEvent::Table, WebhookEvent::LeaseId)
                            .to(Lease::Table, Lease::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_event_lease")
                    .table(WebhookEvent::Table)
                    .col(WebhookEvent::LeaseId)
                    .col(WebhookEvent::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_event_due")
                    .table(WebhookEvent::Table)
                    .col(WebhookEvent::State)
                    .col(WebhookEvent::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebhookEvent::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum WebhookEvent {
    Table,
    Id,
    LeaseId,
    EventType,
    Body,
    State,
    Attempts,
    LastStatusCode,
    LastError,
    NextAttemptAt,
    LockedUntil,
    CreatedAt,
    DeliveredAt,
}
