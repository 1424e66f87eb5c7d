//! The ledger: one row for every charge and credit, with the balance after it.

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
                    .table(LedgerEntry::Table)
                    .col(string(LedgerEntry::Id).primary_key())
                    .col(string(LedgerEntry::AccountId))
                    .col(string(LedgerEntry::Kind))
                    .col(big_integer(LedgerEntry::AmountMicros))
                    .col(big_integer(LedgerEntry::BalanceAfterMicros))
                    .col(string_null(LedgerEntry::LeaseId))
                    .col(string_null(LedgerEntry::Memo))
                    .col(big_integer(LedgerEntry::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LedgerEntry::Table, LedgerEntry::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ledger_entry_account_id")
                    .table(LedgerEntry::Table)
                    .col(LedgerEntry::AccountId)
                    .col(LedgerEntry::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(LedgerEntry::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum LedgerEntry {
    Table,
    Id,
    AccountId,
    Kind,
    AmountMicros,
    BalanceAfterMicros,
    LeaseId,
    Memo,
    CreatedAt,
}
