//! Mailboxes and their messages.

use leasehold_core::leases::Variant;
use leasehold_core::time::rfc3339;
use leasehold_entities::{lease, mailbox_message};
use serde_json::{Value, json};

use super::urls::{self, url};
use crate::state::AppState;

/// The 201 body of a new Mailbox, with its drop URL (which carries the drop token);
/// `webhook_secret` only when the server minted it.
pub fn mailbox_created(state: &AppState, lease: &lease::Model, token: &str, webhook_secret: Option<&str>) -> Value {
    json!({
        "status": "ok",
        "lease_id": lease.id,
        "variant": Variant::Mailbox,
        "drop_url": url(state, urls::DROP, token),
        "poll_url": url(state, urls::MESSAGES, &lease.id),
        "events_url": url(state, urls::EVENTS, &lease.id),
        "created_at": rfc3339(lease.created_at),
        "expires_at": rfc3339(lease.expires_at),
        "duration_seconds": lease.duration_seconds,
        "capacity_bytes": lease.capacity_bytes,
        "max_message_bytes": lease.max_message_bytes,
        "max_messages": lease.max_messages,
        "cost_micros": lease.cost_micros.to_string(),
        "webhook_url": lease.webhook_url,
        "webhook_secret": webhook_secret,
    })
}

/// The listing (and event stream) JSON of one message.
pub fn message_json(m: &mailbox_message::Model) -> Value {
    json!({
        "id": m.id,
        "seq": m.seq,
        "size_bytes": m.size_bytes,
        "content_type": m.content_type,
        "received_at": rfc3339(m.received_at),
        "sha256": m.sha256,
    })
}

/// The 201 body of a drop.
pub fn message_dropped(m: &mailbox_message::Model) -> Value {
    json!({
        "status": "ok",
        "message_id": m.id,
        "seq": m.seq,
        "size_bytes": m.size_bytes,
        "content_type": m.content_type,
        "sha256": m.sha256,
        "received_at": rfc3339(m.received_at),
    })
}
