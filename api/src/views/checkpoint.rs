//! Checkpoints and their versions.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use leasehold_core::leases::Variant;
use leasehold_core::time::{http_date, rfc3339};
use leasehold_entities::{checkpoint_version, lease};
use serde_json::{Value, json};

use super::lease::lease_headers;
use super::urls::{self, url};
use crate::error::{ApiError, put_header};
use crate::state::AppState;

/// The 201 body of a new Checkpoint with its first version; `webhook_secret` only when
/// the server minted it.
pub fn checkpoint_created(
    state: &AppState,
    lease: &lease::Model,
    v: &checkpoint_version::Model,
    webhook_secret: Option<&str>,
) -> Value {
    let workflow = lease.workflow_id.clone().unwrap_or_default();
    json!({
        "status": "ok",
        "lease_id": lease.id,
        "variant": Variant::Checkpoint,
        "workflow_id": workflow,
        "version": v.version,
        "size_bytes": v.size_bytes,
        "sha256": v.sha256,
        "content_type": v.content_type,
        "max_body_bytes": lease.max_body_bytes,
        "max_versions": lease.max_versions,
        "created_at": rfc3339(lease.created_at),
        "expires_at": rfc3339(lease.expires_at),
        "duration_seconds": lease.duration_seconds,
        "cost_micros": lease.cost_micros.to_string(),
        "checkpoint_url": url(state, urls::CHECKPOINT, &workflow),
        "webhook_url": lease.webhook_url,
        "webhook_secret": webhook_secret,
    })
}

/// The headers and 200 body of a written version.
pub fn version_written(lease: &lease::Model, version: &checkpoint_version::Model) -> (HeaderMap, Value) {
    let body = json!({
        "status": "ok",
        "lease_id": lease.id,
        "workflow_id": lease.workflow_id,
        "version": version.version,
        "size_bytes": version.size_bytes,
        "sha256": version.sha256,
        "updated_at": rfc3339(version.created_at),
    });
    let mut headers = lease_headers(lease);
    headers.insert(HeaderName::from_static("x-checkpoint-version"), HeaderValue::from(version.version));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", version.version)) {
        headers.insert(header::ETAG, etag);
    }
    (headers, body)
}

/// The headers of a version's body (also sent by a Checkpoint claim).
pub fn version_headers(lease: &lease::Model, v: &checkpoint_version::Model) -> Result<HeaderMap, ApiError> {
    let mut h = lease_headers(lease);
    put_header(&mut h, HeaderName::from_static("x-checkpoint-version"), v.version.to_string())?;
    put_header(&mut h, HeaderName::from_static("x-workflow-id"), lease.workflow_id.clone().unwrap_or_default())?;
    put_header(&mut h, header::ETAG, format!("\"{}\"", v.version))?;
    put_header(&mut h, header::LAST_MODIFIED, http_date(v.created_at))?;
    put_header(&mut h, header::CONTENT_TYPE, v.content_type.clone())?;
    Ok(h)
}
