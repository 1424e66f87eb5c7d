//! x402 payments (SPEC §4.2). The unique index on (network, payer, nonce) is what makes
//! a payment settle at most once across pods: a request takes the nonce with an `INSERT`
//! before asking the facilitator anything.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payment::Table)
                    .col(string(Payment::Id).primary_key())
                    .col(string(Payment::Network))
                    .col(string(Payment::Payer))
                    .col(string(Payment::Nonce))
                    .col(big_integer(Payment::AmountMicros))
                    .col(string(Payment::State))
                    .col(string_null(Payment::TxHash))
                    .col(string_null(Payment::LeaseId))
                    .col(big_integer(Payment::CreatedAt))
                    .col(big_integer_null(Payment::SettledAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payment_nonce")
                    .table(Payment::Table)
                    .col(Payment::Network)
                    .col(Payment::Payer)
                    .col(Payment::Nonce)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_payment_lease").table(Payment::Table).col(Payment::LeaseId).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Payment::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Payment {
    Table,
    Id,
    Network,
    Payer,
    Nonce,
    AmountMicros,
    State,
    TxHash,
    LeaseId,
    CreatedAt,
    SettledAt,
}
