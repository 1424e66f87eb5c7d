//! sea-orm entities, one file per table. Timestamps are unix milliseconds; money is
//! integer micros.

pub mod account;
pub mod api_key;
pub mod auth_challenge;
pub mod checkpoint_version;
pub mod handoff;
pub mod handoff_claim;
pub mod idempotency_key;
pub mod lease;
pub mod lease_kind;
pub mod ledger_entry;
pub mod mailbox_message;
pub mod payment;
pub mod states;
pub mod storage_object;
pub mod wallet_session;
pub mod webhook_event;
