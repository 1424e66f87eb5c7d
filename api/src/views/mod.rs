//! Every JSON body a lease route answers with and every URL the API hands out, in one
//! place: the write pipeline ([`crate::write`]) renders creations from here (and stores
//! the same rendering for `Idempotency-Key` replays), the read routes render listings.

mod checkpoint;
mod handoff;
mod lease;
mod mailbox;
pub mod urls;

pub use self::checkpoint::{checkpoint_created, version_headers, version_written};
pub use self::handoff::{handoff_issued, handoff_json};
pub use self::lease::{lease_headers, lease_json, storage_created};
pub use self::mailbox::{mailbox_created, message_dropped, message_json};
