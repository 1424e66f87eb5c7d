//! Accounts with a prepaid balance.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Account::Table)
                    .col(string(Account::Id).primary_key())
                    .col(string(Account::Name))
                    .col(big_integer(Account::BalanceMicros).check(Expr::col(Account::BalanceMicros).gte(0)))
                    .col(big_integer(Account::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Account::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Account {
    Table,
    Id,
    Name,
    BalanceMicros,
    CreatedAt,
}
