//! Leases of every variant, and the Storage creation.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use leasehold_core::leases::{self, Variant};
use leasehold_core::time::rfc3339;
use leasehold_entities::{lease, storage_object};
use serde_json::{Value, json};

use super::urls::{self, url};
use crate::state::AppState;

/// `X-Lease-Id` and `X-Lease-Expires-At`, carried by every lease response.
pub fn lease_headers(lease: &lease::Model) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&lease.id) {
        headers.insert(HeaderName::from_static("x-lease-id"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&rfc3339(lease.expires_at)) {
        headers.insert(HeaderName::from_static("x-lease-expires-at"), v);
    }
    headers
}

/// The public JSON of a lease, with its variant's fields.
pub fn lease_json(state: &AppState, lease: &lease::Model, object: Option<&storage_object::Model>) -> Value {
    let now = state.now();
    let mut v = json!({
        "lease_id": lease.id,
        "variant": lease.variant,
        "state": leases::effective_state(lease, now),
        "owner": { "kind": lease.owner_kind, "id": lease.owner_id },
        "size_bytes": lease.size_bytes,
        "created_at": rfc3339(lease.created_at),
        "expires_at": rfc3339(lease.expires_at),
        "duration_seconds": lease.duration_seconds,
        "cost_micros": lease.cost_micros.to_string(),
        "deleted_at": lease.deleted_at.map(rfc3339),
        "webhook_url": lease.webhook_url,
        "expiry_warning_seconds": lease.expiry_warning_seconds,
        "deliveries_url": url(state, urls::DELIVERIES, &lease.id),
    });
    if lease.variant == Variant::Mailbox {
        v["capacity_bytes"] = lease.capacity_bytes.into();
        v["max_message_bytes"] = lease.max_message_bytes.into();
        v["max_messages"] = lease.max_messages.into();
        v["used_bytes"] = lease.used_bytes.into();
        v["message_count"] = lease.message_count.into();
        v["poll_url"] = url(state, urls::MESSAGES, &lease.id).into();
    }
    if lease.variant == Variant::Checkpoint {
        let workflow = lease.workflow_id.clone().unwrap_or_default();
        v["workflow_id"] = workflow.clone().into();
        v["current_version"] = lease.current_version.into();
        v["max_body_bytes"] = lease.max_body_bytes.into();
        v["max_versions"] = lease.max_versions.into();
        v["checkpoint_url"] = url(state, urls::CHECKPOINT, &workflow).into();
    }
    if let Some(o) = object {
        v["file_name"] = o.file_name.clone().into();
        v["content_type"] = o.content_type.clone().into();
        v["sha256"] = o.sha256.clone().into();
        v["download_url"] = url(state, urls::DOWNLOAD, &lease.id).into();
    }
    v
}

/// The 201 body of a new Storage lease; `webhook_secret` only when the server minted it.
pub fn storage_created(
    state: &AppState,
    lease: &lease::Model,
    object: &storage_object::Model,
    webhook_secret: Option<&str>,
) -> Value {
    json!({
        "status": "ok",
        "lease_id": lease.id,
        "variant": Variant::Storage,
        "file_name": object.file_name,
        "content_type": object.content_type,
        "size_bytes": object.size_bytes,
        "sha256": object.sha256,
        "created_at": rfc3339(lease.created_at),
        "expires_at": rfc3339(lease.expires_at),
        "duration_seconds": lease.duration_seconds,
        "cost_micros": lease.cost_micros.to_string(),
        "download_url": url(state, urls::DOWNLOAD, &lease.id),
        "webhook_url": lease.webhook_url,
        "webhook_secret": webhook_secret,
    })
}
