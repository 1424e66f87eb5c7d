//! Webhooks (SPEC §8): the events a lease emits, their signatures, the retry schedule,
//! and the checks of a receiver's URL (its addresses through the SSRF guard of
//! [`crate::ssrf`]).
//!
//! An event is a `webhook_event` row written in the transaction that causes it, together
//! with the apalis job that delivers it; the worker alone sends it. The row holds the body
//! exactly as sent, so every attempt carries the same bytes and the same `webhook-id`.

mod destination;
mod events;
mod schedule;
mod sign;

pub use self::destination::{RESOLVE_TIMEOUT, UrlRefusal, parse_url, resolve_checked, resolve_name};
pub use self::events::{
    NewEvent, cancel_expiry_warning, events_of, record, record_expired, record_many, schedule_expiry_warning,
    wants_events,
};
pub use self::schedule::{next_delay, parse_retry_after, random_unit};
pub use self::sign::{SECRET_PREFIX, check_secret, mailbox_signature, mint_secret, standard_key, standard_signature};
pub use crate::ssrf::{AddressPolicy, Refusal, is_public};

/// Event types.
pub mod event {
    /// A message was dropped into a Mailbox.
    pub const MESSAGE_RECEIVED: &str = "mailbox.message.received";
    /// A claim of a Handoff completed.
    pub const HANDOFF_CLAIMED: &str = "handoff.claimed";
    /// A Handoff's last claim completed.
    pub const HANDOFF_EXHAUSTED: &str = "handoff.exhausted";
    /// The lease expires in `X-Expiry-Warning-Seconds`.
    pub const LEASE_EXPIRING: &str = "lease.expiring";
    /// The lease expired.
    pub const LEASE_EXPIRED: &str = "lease.expired";
}

pub use leasehold_entities::webhook_event::DeliveryState;

/// Context under which webhook secrets are sealed: the API seals them, the worker opens
/// them.
pub const SECRET_CONTEXT: &str = "webhook-secret";

/// Longest accepted webhook URL.
pub const MAX_URL_LEN: usize = 2048;
/// Longest response body read from a receiver.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The webhook settings a new lease is created with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hook {
    /// Receiver URL.
    pub url: Option<String>,
    /// The secret, sealed.
    pub secret_sealed: Option<String>,
    /// Seconds before expiry at which `lease.expiring` is sent.
    pub expiry_warning_seconds: Option<i64>,
}
