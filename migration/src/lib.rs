//! Database migrations, one concern per file, each with a working `down()`.
//!
//! Every timestamp column holds unix milliseconds (`BIGINT`), so comparisons are exact
//! and identical on SQLite and PostgreSQL; money is integer micros.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_account;
mod m20261122_000002_create_api_key;
mod m20261122_000003_create_ledger_entry;
mod m20261122_000004_create_lease;
mod m20261122_000005_create_storage_object;
mod m20261122_000006_create_idempotency_key;
mod m20261122_000007_add_lease_purged_at;
mod m20261125_000008_create_mailbox_message;
mod m20261125_000009_create_checkpoint_version;
mod m20261125_000010_create_handoff;
mod m20261125_000011_create_webhook_event;
mod m20261201_000012_add_idempotency_heartbeat;
mod m20261202_000013_create_payment;
mod m20261202_000014_create_wallet_auth;

/// All migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_account::Migration),
            Box::new(m20261122_000002_create_api_key::Migration),
            Box::new(m20261122_000003_create_ledger_entry::Migration),
            Box::new(m20261122_000004_create_lease::Migration),
            Box::new(m20261122_000005_create_storage_object::Migration),
            Box::new(m20261122_000006_create_idempotency_key::Migration),
            Box::new(m20261122_000007_add_lease_purged_at::Migration),
            Box::new(m20261125_000008_create_mailbox_message::Migration),
            Box::new(m20261125_000009_create_checkpoint_version::Migration),
            Box::new(m20261125_000010_create_handoff::Migration),
            Box::new(m20261125_000011_create_webhook_event::Migration),
            Box::new(m20261201_000012_add_idempotency_heartbeat::Migration),
            Box::new(m20261202_000013_create_payment::Migration),
            Box::new(m20261202_000014_create_wallet_auth::Migration),
        ]
    }
}
