//! Shared domain logic of Leasehold: configuration, database access, the blob store,
//! pricing, tokens and the lease rules that the API and the worker both apply.

pub mod accounts;
pub mod blob;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod db;
pub mod evm;
pub mod handoff;
pub mod idempotency;
pub mod ids;
pub mod leases;
pub mod mailbox;
pub mod payments;
pub mod pricing;
pub mod queue;
pub mod ratelimit;
pub mod runtime;
pub mod secret;
pub mod secretbox;
pub mod ssrf;
pub mod telemetry;
pub mod time;
pub mod tokens;
pub mod wallets;
pub mod webhook;

pub use clock::Clock;
pub use config::Config;
