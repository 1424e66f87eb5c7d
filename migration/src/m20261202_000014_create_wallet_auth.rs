//! Wallet owners (SPEC §4.3): the Sign-In with Ethereum challenges this server issued
//! (each nonce used once, consumed with one conditional `UPDATE` so two pods cannot both
//! accept it) and the `rs_wallet_` sessions they turn into (stored as SHA-256).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthChallenge::Table)
                    .col(string(AuthChallenge::Nonce).primary_key())
                    .col(string(AuthChallenge::Wallet))
                    .col(text(AuthChallenge::Message))
                    .col(big_integer(AuthChallenge::IssuedAt))
                    .col(big_integer(AuthChallenge::ExpiresAt))
                    .col(big_integer_null(AuthChallenge::UsedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_challenge_expires")
                    .table(AuthChallenge::Table)
                    .col(AuthChallenge::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WalletSession::Table)
                    .col(string(WalletSession::Id).primary_key())
                    .col(string(WalletSession::TokenHash).unique_key())
                    .col(string(WalletSession::Wallet))
                    .col(big_integer(WalletSession::CreatedAt))
                    .col(big_integer(WalletSession::ExpiresAt))
                    .col(big_integer_null(WalletSession::RevokedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WalletSession::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(AuthChallenge::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum AuthChallenge {
    Table,
    Nonce,
    Wallet,
    Message,
    IssuedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum WalletSession {
    Table,
    Id,
    TokenHash,
    Wallet,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}
