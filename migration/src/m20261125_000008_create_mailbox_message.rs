//! Messages of a Mailbox lease. `seq` is assigned from the lease row's `next_seq` in the
//! transaction that commits the drop, so `(lease_id, seq)` is unique and gap-free in
//! commit order.

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
                    .table(MailboxMessage::Table)
                    .col(string(MailboxMessage::Id).primary_key())
                    .col(string(MailboxMessage::LeaseId))
                    .col(big_integer(MailboxMessage::Seq))
                    .col(string(MailboxMessage::BlobKey))
                    .col(string(MailboxMessage::ContentType))
                    .col(big_integer(MailboxMessage::SizeBytes))
                    .col(string(MailboxMessage::Sha256))
                    .col(big_integer(MailboxMessage::ReceivedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MailboxMessage::Table, MailboxMessage::LeaseId)
                            .to(Lease::Table, Lease::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mailbox_message_seq")
                    .table(MailboxMessage::Table)
                    .col(MailboxMessage::LeaseId)
                    .col(MailboxMessage::Seq)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MailboxMessage::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum MailboxMessage {
    Table,
    Id,
    LeaseId,
    Seq,
    BlobKey,
    ContentType,
    SizeBytes,
    Sha256,
    ReceivedAt,
}
