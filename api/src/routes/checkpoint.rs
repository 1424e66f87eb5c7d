//! Checkpoint leases (SPEC §6.3): create with version 1, read the current version
//! (conditional GET), write new versions (optional compare-and-swap), list and read kept
//! versions, delete.

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use axum::Json;
use bytes::Bytes;
use leasehold_core::accounts::AccountError;
use leasehold_core::checkpoint::{self, CreateError, NewCheckpoint, NewVersion, Written};
use leasehold_core::leases::{self, Owner, Variant};
use leasehold_core::time::{http_date, rfc3339};
use leasehold_core::{ids, tokens};
use leasehold_entities::{checkpoint_version, lease};
use serde_json::{Value, json};

use super::leases::{delete_lease, lease_headers};
use crate::error::{ApiError, put_header};
use crate::extract::{
    AccountAuth, BodyError, content_type, duration_seconds, header_text, optional_u64, read_limited, single_header,
    to_i64,
};
use crate::idempotency::{self, Start};
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::webhook_headers;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// `/api/checkpoint…`.
pub fn router() -> OpenApiRouter<AppState> {
    let unlimited = || axum::extract::DefaultBodyLimit::disable();
    OpenApiRouter::new()
        .routes(routes!(create).layer(unlimited()))
        .routes(routes!(current, write).layer(unlimited()))
        .routes(routes!(remove))
}

fn invalid_workflow_id() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_workflow_id",
        "a workflow id is 1 to 128 characters of A-Z a-z 0-9 . _ -",
    )
}

/// The `{workflow_id}` path segment, validated (`400 invalid_workflow_id`).
pub struct WorkflowPath(pub String);

impl FromRequestParts<AppState> for WorkflowPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let id = match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => id,
            Err(_) => match Path::<(String, String)>::from_request_parts(parts, state).await {
                Ok(Path((id, _))) => id,
                Err(_) => return Err(invalid_workflow_id()),
            },
        };
        if checkpoint::valid_workflow_id(&id) { Ok(Self(id)) } else { Err(invalid_workflow_id()) }
    }
}

/// A body that may become a version: within the cap, parsing when its type is JSON.
async fn read_version_body(body: Body, headers: &HeaderMap, max: u64) -> Result<(String, Bytes), ApiError> {
    let content_type = content_type(headers, "application/json")?;
    let too_large =
        || ApiError::payload_too_large(format!("a version may be at most {max} bytes")).with("max_bytes", max);
    if optional_u64(headers, "Content-Length")?.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let bytes = match read_limited(body, max).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => return Err(too_large()),
        Err(BodyError::Interrupted) => return Err(ApiError::bad_request("the body was interrupted")),
    };
    if checkpoint::is_json(&content_type)
        && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
    {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("the body is not valid JSON: {e}")));
    }
    Ok((content_type, bytes))
}

/// Stores a version's body under a fresh key.
async fn store_body(
    state: &AppState,
    lease_id: &str,
    content_type: String,
    bytes: Bytes,
) -> Result<NewVersion, ApiError> {
    let new = NewVersion {
        blob_key: checkpoint::version_key(lease_id),
        content_type,
        size_bytes: to_i64(bytes.len() as u64),
        sha256: tokens::sha256_hex(&bytes),
    };
    state.metrics.bytes_in.inc_by(bytes.len() as u64);
    state.blobs.put_bytes(&new.blob_key, bytes).await?;
    Ok(new)
}

async fn discard(state: &AppState, key: &str) {
    if let Err(e) = state.blobs.delete(key).await {
        tracing::error!(blob.key = %key, error = %e, "could not remove the body of a refused version");
    }
}

fn created_json(state: &AppState, lease: &lease::Model, v: &checkpoint_version::Model) -> Value {
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
        "checkpoint_url": state.url(&format!("/api/checkpoint/{workflow}")),
        "webhook_url": lease.webhook_url,
    })
}

struct Shape {
    workflow_id: String,
    duration: u64,
    max_body_bytes: u64,
    max_versions: u64,
}

fn validate(state: &AppState, headers: &HeaderMap) -> Result<Shape, ApiError> {
    let limits = &state.config.limits;
    single_header(headers, "X-Workflow-Id")?;
    let workflow_id = header_text(headers, "X-Workflow-Id")
        .map_err(|_| invalid_workflow_id())?
        .filter(|w| checkpoint::valid_workflow_id(w))
        .ok_or_else(invalid_workflow_id)?
        .to_owned();
    let duration = duration_seconds(headers, state)?;
    let max_body_bytes = optional_u64(headers, "X-Max-Body-Bytes")?.unwrap_or(limits.checkpoint_default_body_bytes);
    if max_body_bytes == 0 {
        return Err(ApiError::invalid_header("X-Max-Body-Bytes", "must be at least 1"));
    }
    let max = limits.checkpoint_max_body_bytes;
    if max_body_bytes > max {
        return Err(
            ApiError::payload_too_large(format!("X-Max-Body-Bytes may be at most {max}")).with("max_bytes", max)
        );
    }
    let max_versions = optional_u64(headers, "X-Max-Versions")?.unwrap_or(limits.checkpoint_default_versions);
    if max_versions == 0 || max_versions > limits.checkpoint_max_versions {
        let most = limits.checkpoint_max_versions;
        return Err(ApiError::invalid_header("X-Max-Versions", format!("must be between 1 and {most}")));
    }
    Ok(Shape { workflow_id, duration, max_body_bytes, max_versions })
}

#[utoipa::path(post,
    path = "/api/checkpoint",
    tag = "checkpoint",
    summary = "Creates a checkpoint with its first version",
    extensions(("x-auth" = json!("owner")), ("x-priced" = json!(true))),
    params(("X-Duration-Seconds" = u64, Header, description = "Required; whole seconds within the bounds of `/api/pricing` `duration_seconds`"), ("X-Workflow-Id" = String, Header, description = "Required; `[A-Za-z0-9._-]{1,128}`"), ("X-Max-Body-Bytes" = Option<u64>, Header, description = "Optional; 1..=`checkpoint_max_body_bytes`"), ("X-Max-Versions" = Option<u64>, Header, description = "Optional; 1..=`checkpoint_max_versions`"), ("Idempotency-Key" = Option<String>, Header, description = "Optional; 1..=255 printable ASCII. The same key from the same owner within 24 h replays the first response (`Idempotent-Replayed: true`); with a different request → 422 `idempotency_key_reused`"), ("X-Webhook-Url" = Option<String>, Header, description = "Optional; an https URL (not private/loopback) that receives lease events"),("X-Webhook-Secret" = Option<String>, Header, description = "Optional; the HMAC key the webhook is signed with"),("X-Expiry-Warning-Seconds" = Option<u64>, Header, description = "Optional; seconds before expiry of the `lease.expiring` event")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The first version (JSON is validated when Content-Type says JSON)"),
    responses((status = 201, description = "The checkpoint", body = Value), (status = 400, description = "`bad_request`, `invalid_header` (names the `header`), `invalid_json`, `invalid_workflow_id`, `duration_out_of_range`, `webhook_url_forbidden`", body = ErrorBody), (status = 402, description = "`insufficient_balance` (with `required`)", body = ErrorBody), (status = 409, description = "`workflow_exists`, `idempotency_in_progress`", body = ErrorBody), (status = 413, description = "`payload_too_large`", body = ErrorBody), (status = 422, description = "`idempotency_key_reused`", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    auth: AccountAuth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let shape = validate(&state, &headers)?;
    let webhook = webhook_headers::read(&headers, &state.webhook_policy(), shape.duration).await?;
    let (content_type, bytes) = read_version_body(body, &headers, shape.max_body_bytes).await?;
    let owner = auth.owner();
    let scope = format!("{}:{}|POST /api/checkpoint", owner.kind, owner.id);
    let numbers = [shape.duration, shape.max_body_bytes, shape.max_versions].map(|n| n.to_string());
    let body_hash = tokens::sha256_hex(&bytes);
    let hook = webhook.fingerprint();
    let parts = [shape.workflow_id.as_str(), &numbers[0], &numbers[1], &numbers[2], &content_type, &body_hash, &hook];
    let claim = match idempotency::start(&state, &headers, &scope, &parts).await? {
        Start::Respond(replay) => return Ok(replay),
        Start::Proceed(claim) => claim,
    };
    let new = NewCheckpoint {
        lease_id: ids::lease_id(),
        workflow_id: shape.workflow_id,
        max_body_bytes: to_i64(shape.max_body_bytes),
        max_versions: to_i64(shape.max_versions),
        duration_seconds: to_i64(shape.duration),
        cost_micros: to_i64(state.config.tariff.cost_micros(shape.max_body_bytes, shape.duration)),
        hook: webhook.hook(&state.secrets),
    };
    let shown_secret = webhook.shown_secret().map(str::to_owned);
    // Store and commit in their own task: a client that goes away cannot leave bytes
    // without a row.
    let account_id = auth.account.id.clone();
    tokio::spawn(async move {
        let result =
            store_and_create(&state, &account_id, new, content_type, bytes, claim.as_deref(), shown_secret).await;
        if result.is_err() {
            idempotency::release(&state, claim.as_deref()).await;
        }
        result
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
}

async fn store_and_create(
    state: &AppState,
    account_id: &str,
    new: NewCheckpoint,
    content_type: String,
    bytes: Bytes,
    claim: Option<&str>,
    shown_secret: Option<String>,
) -> Result<Response, ApiError> {
    let first = store_body(state, &new.lease_id, content_type, bytes).await?;
    let with_secret = |mut v: Value| {
        v["webhook_secret"] = shown_secret.clone().into();
        v
    };
    let render = |l: &lease::Model, v: &checkpoint_version::Model| {
        let body = with_secret(created_json(state, l, v)).to_string();
        if shown_secret.is_some() { idempotency::seal(state, &body) } else { body }
    };
    let idem = claim.map(|c| (c, &render as &checkpoint::RenderCreated<'_>));
    match checkpoint::create(&state.db, account_id, &new, &first, idem, state.now()).await {
        Ok((lease, version)) => {
            tracing::info!(lease.id = %lease.id, cost_micros = lease.cost_micros, "checkpoint lease created");
            let body = with_secret(created_json(state, &lease, &version));
            Ok((StatusCode::CREATED, lease_headers(&lease), Json(body)).into_response())
        }
        Err(e) => {
            if let Err(cleanup) = state.blobs.delete_prefix(&leasehold_core::blob::lease_prefix(&new.lease_id)).await {
                tracing::error!(lease.id = %new.lease_id, error = %cleanup, "could not remove the bytes of an uncommitted lease");
            }
            Err(match e {
                CreateError::WorkflowExists => ApiError::new(
                    StatusCode::CONFLICT,
                    "workflow_exists",
                    "an active checkpoint of this workflow already exists",
                )
                .with("workflow_id", new.workflow_id),
                CreateError::Account(e) => {
                    if !matches!(e, AccountError::InsufficientBalance { .. }) {
                        tracing::error!(error = %e, "creating a checkpoint failed");
                    }
                    e.into()
                }
            })
        }
    }
}

/// The caller's checkpoint of this workflow while it serves (404, or 410 after its end).
pub(super) async fn serving(state: &AppState, owner: &Owner, workflow_id: &str) -> Result<lease::Model, ApiError> {
    let lease = checkpoint::find(&state.db, owner, workflow_id).await?.ok_or_else(ApiError::not_found)?;
    leases::check_serving(&lease, state.now()).map_err(ApiError::gone)?;
    Ok(lease)
}

/// `"3"`, `W/"3"` or `3` → 3.
fn parse_tag(tag: &str) -> Option<i64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let inner = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(tag);
    (!inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit())).then(|| inner.parse().ok()).flatten()
}

/// True when `If-None-Match` names this version (or is `*`).
fn none_match(headers: &HeaderMap, version: i64) -> Result<bool, ApiError> {
    let Some(tags) = header_text(headers, "If-None-Match")? else { return Ok(false) };
    Ok(tags.split(',').any(|t| t.trim() == "*" || parse_tag(t) == Some(version)))
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

/// A version's body, streamed from the blob store.
pub(super) async fn body_response(
    state: &AppState,
    lease: &lease::Model,
    v: &checkpoint_version::Model,
) -> Result<Response, ApiError> {
    let mut headers = version_headers(lease, v)?;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(v.size_bytes));
    let stream = match state.blobs.get(&v.blob_key, None).await {
        Ok(stream) => stream,
        // Pruned between the row read and the blob read.
        Err(leasehold_core::blob::BlobError::NotFound) => return Err(version_pruned(v.version)),
        Err(e) => return Err(e.into()),
    };
    state.metrics.bytes_out.inc_by(u64::try_from(v.size_bytes).unwrap_or(0));
    Ok((headers, Body::from_stream(stream)).into_response())
}

pub(super) fn version_pruned(n: i64) -> ApiError {
    ApiError::new(StatusCode::GONE, "version_pruned", format!("version {n} is no longer kept")).with("version", n)
}

#[utoipa::path(get,
    path = "/api/checkpoint/{workflow_id}",
    tag = "checkpoint",
    summary = "The current version",
    extensions(("x-auth" = json!("owner"))),
    params(("workflow_id" = String, Path, description = "`[A-Za-z0-9._-]{1,128}`"), ("If-None-Match" = Option<String>, Header, description = "Optional; a version ETag or `*`")),
    responses((status = 200, description = "The body"), (status = 304, description = "Not modified"), (status = 400, description = "`invalid_workflow_id`", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
async fn current(
    State(state): State<AppState>,
    auth: AccountAuth,
    WorkflowPath(workflow_id): WorkflowPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lease = serving(&state, &auth.owner(), &workflow_id).await?;
    let number = lease.current_version.unwrap_or(1);
    let v = checkpoint::version(&state.db, &lease.id, number)
        .await?
        .ok_or_else(|| ApiError::internal(&"current version missing"))?;
    if none_match(&headers, v.version)? {
        return Ok((StatusCode::NOT_MODIFIED, version_headers(&lease, &v)?).into_response());
    }
    body_response(&state, &lease, &v).await
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    const H: &str = "If-Match";
    match header_text(headers, H)? {
        None | Some("*") => Ok(None),
        Some(v) => parse_tag(v).map(Some).ok_or_else(|| ApiError::invalid_header(H, "must be a version like \"3\"")),
    }
}

#[utoipa::path(put,
    path = "/api/checkpoint/{workflow_id}",
    tag = "checkpoint",
    summary = "Writes a new version",
    extensions(("x-auth" = json!("owner"))),
    params(("workflow_id" = String, Path, description = "`[A-Za-z0-9._-]{1,128}`"), ("If-Match" = Option<String>, Header, description = "Optional; the version ETag (`\"3\"`, `W/\"3\"` or `3`) the write must follow")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The version body, at most the checkpoint's max_body_bytes"),
    responses((status = 200, description = "The new version", body = Value), (status = 400, description = "`invalid_workflow_id`, `invalid_json`, `invalid_header`", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody), (status = 412, description = "`version_conflict`", body = ErrorBody), (status = 413, description = "`payload_too_large`", body = ErrorBody)))]
async fn write(
    State(state): State<AppState>,
    auth: AccountAuth,
    WorkflowPath(workflow_id): WorkflowPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let lease = serving(&state, &auth.owner(), &workflow_id).await?;
    let max = u64::try_from(lease.max_body_bytes.unwrap_or(0)).unwrap_or(0);
    let (content_type, bytes) = read_version_body(body, &headers, max).await?;
    tokio::spawn(async move { store_and_write(&state, lease, expected, content_type, bytes).await })
        .await
        .map_err(|e| ApiError::internal(&e))?
}

async fn store_and_write(
    state: &AppState,
    lease: lease::Model,
    expected: Option<i64>,
    content_type: String,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let new = store_body(state, &lease.id, content_type, bytes).await?;
    let written = match checkpoint::write(&state.db, &lease.id, expected, &new, state.now()).await {
        Ok(w) => w,
        Err(e) => {
            discard(state, &new.blob_key).await;
            return Err(e.into());
        }
    };
    match written {
        Written::Stored { version, pruned } => {
            for key in &pruned {
                if let Err(e) = state.blobs.delete(key).await {
                    // The row is gone; the bytes go with the lease's purge.
                    tracing::error!(lease.id = %lease.id, error = %e, "could not delete a pruned version's bytes");
                }
            }
            let body = json!({
                "status": "ok",
                "lease_id": lease.id,
                "workflow_id": lease.workflow_id,
                "version": version.version,
                "size_bytes": version.size_bytes,
                "sha256": version.sha256,
                "updated_at": rfc3339(version.created_at),
            });
            let mut headers = lease_headers(&lease);
            headers.insert(HeaderName::from_static("x-checkpoint-version"), HeaderValue::from(version.version));
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", version.version)) {
                headers.insert(header::ETAG, etag);
            }
            Ok((headers, Json(body)).into_response())
        }
        Written::Conflict { current } => {
            discard(state, &new.blob_key).await;
            Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "version_conflict",
                format!("If-Match names another version; the current version is {current}"),
            )
            .with("current_version", current))
        }
        Written::Gone(gone) => {
            discard(state, &new.blob_key).await;
            Err(ApiError::gone(gone))
        }
    }
}

#[utoipa::path(delete,
    path = "/api/checkpoint/{workflow_id}",
    tag = "checkpoint",
    summary = "Deletes a checkpoint",
    extensions(("x-auth" = json!("owner"))),
    params(("workflow_id" = String, Path, description = "`[A-Za-z0-9._-]{1,128}`")),
    responses((status = 200, description = "Deleted", body = Value), (status = 400, description = "`invalid_workflow_id`", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    auth: AccountAuth,
    WorkflowPath(workflow_id): WorkflowPath,
) -> Result<Response, ApiError> {
    let owner = auth.owner();
    let lease = checkpoint::find(&state.db, &owner, &workflow_id).await?.ok_or_else(ApiError::not_found)?;
    Ok(delete_lease(&state, &owner, &lease.id).await?.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_name_versions() {
        assert_eq!(parse_tag("\"3\""), Some(3));
        assert_eq!(parse_tag("W/\"12\""), Some(12));
        assert_eq!(parse_tag("7"), Some(7));
        for bad in ["", "\"\"", "\"x\"", "\"-1\"", "abc", "\"1.5\""] {
            assert_eq!(parse_tag(bad), None, "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"1\", \"4\""));
        assert!(none_match(&h, 4).expect("one header") && !none_match(&h, 2).expect("one header"));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, 9).expect("one header"));
        h.append(header::IF_NONE_MATCH, HeaderValue::from_static("\"9\""));
        assert_eq!(none_match(&h, 9).map_err(|e| e.code()), Err("invalid_header"));
    }
}
