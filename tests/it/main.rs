//! Integration tests: the real router over real sockets, on every available backend.

mod accounts;
mod admin;
mod bad_input;
mod checkpoint;
mod checkpoint_bad_input;
mod checkpoint_concurrency;
mod concurrency;
mod expiry;
mod handoff;
mod handoff_concurrency;
mod idempotency;
mod lifecycle;
mod mailbox;
mod mailbox_bad_input;
mod mailbox_concurrency;
mod ops;
mod pricing;
mod storage;
mod storage_bad_input;
mod webhooks;
mod worker_process;
