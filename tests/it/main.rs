//! Integration tests: the real router over real sockets, on every available backend.

mod accounts;
mod admin;
mod api_process;
mod checkpoint;
mod checkpoint_bad_input;
mod checkpoint_concurrency;
mod concurrency;
mod connections;
mod expiry;
mod faults;
mod handoff;
mod handoff_concurrency;
mod idempotency;
mod lifecycle;
mod logs;
mod mailbox;
mod mailbox_bad_input;
mod mailbox_concurrency;
mod ops;
mod pricing;
mod stalled;
mod storage;
mod storage_bad_input;
mod tour;
mod webhooks;
mod worker_process;
