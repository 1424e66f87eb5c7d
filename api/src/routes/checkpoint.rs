//! Checkpoint leases (SPEC §6.3): create with version 1, read the current version
//! (conditional GET), write new versions (optional compare-and-swap), list and read kept
//! versions, delete.

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use bytes::Bytes;
use leasehold_core::checkpoint::{self, CreateError, NewCheckpoint, NewVersion, Written};
use leasehold_core::leases::{self, Owner};
use leasehold_core::{ids, tokens};
use leasehold_entities::{checkpoint_version, lease};
use sea_orm::DatabaseTransaction;

use super::leases::delete_lease;
use crate::error::ApiError;
use crate::extract::{
    BodyError, OwnerAuth, content_type, duration_seconds, header_text, optional_u64, read_limited, single_header,
    to_i64,
};
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::views::{self, version_headers};
use crate::webhook_headers;
use crate::write::{self, Creation, Idempotent, Payer, Price, Reply, Scope};
use crate::x402::Buyer;
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

/// A version's body about to be stored under a fresh key of its lease.
fn new_version(lease_id: &str, content_type: String, bytes: &Bytes) -> NewVersion {
    NewVersion {
        blob_key: checkpoint::version_key(lease_id),
        content_type,
        size_bytes: to_i64(bytes.len() as u64),
        sha256: tokens::sha256_hex(bytes),
    }
}

/// Stores a version's body (the pipeline's stage step).
async fn store_body(state: &AppState, version: &NewVersion, bytes: &mut Option<Bytes>) -> Result<(), ApiError> {
    let bytes = bytes.take().ok_or_else(|| ApiError::internal(&"version body taken twice"))?;
    state.metrics.bytes_in.inc_by(bytes.len() as u64);
    state.blobs.put_bytes(&version.blob_key, bytes).await?;
    Ok(())
}

/// Removes a stored body that did not become a version.
async fn discard(state: &AppState, key: &str) {
    if let Err(e) = state.blobs.delete(key).await {
        tracing::error!(blob.key = %key, error = %e, "could not remove the body of a refused version");
    }
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
    buyer: Buyer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let shape = validate(&state, &headers)?;
    let webhook = webhook_headers::read(&headers, &state.webhook_policy(), shape.duration).await?;
    let cost = to_i64(state.config.tariff.cost_micros(shape.max_body_bytes, shape.duration));
    let (owner, payer) = buyer.terms(&state, "/api/checkpoint", "a Checkpoint lease", cost)?;
    let (content_type, bytes) = read_version_body(body, &headers, shape.max_body_bytes).await?;
    let numbers = [shape.duration, shape.max_body_bytes, shape.max_versions].map(|n| n.to_string());
    let body_hash = tokens::sha256_hex(&bytes);
    let hook = webhook.fingerprint();
    let parts = [shape.workflow_id.as_str(), &numbers[0], &numbers[1], &numbers[2], &content_type, &body_hash, &hook];
    let idempotent = Idempotent { headers: &headers, scope: Scope::Checkpoint(&owner), parts: &parts };
    let new = NewCheckpoint {
        lease_id: ids::lease_id(),
        workflow_id: shape.workflow_id.clone(),
        max_body_bytes: to_i64(shape.max_body_bytes),
        max_versions: to_i64(shape.max_versions),
        duration_seconds: to_i64(shape.duration),
        cost_micros: cost,
        hook: webhook.hook(&state.secrets),
    };
    let first = new_version(&new.lease_id, content_type.clone(), &bytes);
    let creation = CreateCheckpoint {
        owner: owner.clone(),
        new,
        first,
        bytes: Some(bytes),
        webhook_secret: webhook.shown_secret().map(str::to_owned),
    };
    write::create(&state, Some(idempotent), payer, creation).await
}

/// A Checkpoint with its first version on its way through the write pipeline.
struct CreateCheckpoint {
    owner: Owner,
    new: NewCheckpoint,
    first: NewVersion,
    bytes: Option<Bytes>,
    webhook_secret: Option<String>,
}

impl Creation for CreateCheckpoint {
    type Created = (lease::Model, checkpoint_version::Model);

    async fn stage(&mut self, state: &AppState) -> Result<(), ApiError> {
        store_body(state, &self.first, &mut self.bytes).await
    }

    fn price(&self) -> Option<Price> {
        Some(Price { cost_micros: self.new.cost_micros, lease_id: self.new.lease_id.clone() })
    }

    async fn write(&self, txn: &DatabaseTransaction, now: i64) -> Result<Self::Created, ApiError> {
        checkpoint::create(txn, &self.owner, &self.new, &self.first, now).await.map_err(|e| match e {
            CreateError::WorkflowExists => ApiError::new(
                StatusCode::CONFLICT,
                "workflow_exists",
                "an active checkpoint of this workflow already exists",
            )
            .with("workflow_id", self.new.workflow_id.clone()),
            CreateError::Db(e) => e.into(),
        })
    }

    fn respond(&self, state: &AppState, (lease, version): &Self::Created) -> Reply {
        let shown_secret = self.webhook_secret.as_deref();
        Reply {
            status: StatusCode::CREATED,
            headers: views::lease_headers(lease),
            body: views::checkpoint_created(state, lease, version, shown_secret),
            secret: shown_secret.is_some(),
        }
    }

    async fn discard(&self, state: &AppState) {
        if let Err(e) = state.blobs.delete_prefix(&leasehold_core::blob::lease_prefix(&self.new.lease_id)).await {
            tracing::error!(lease.id = %self.new.lease_id, error = %e, "could not remove the bytes of an uncommitted lease");
        }
    }

    async fn committed(&self, _state: &AppState, (lease, _): &Self::Created) {
        tracing::info!(lease.id = %lease.id, cost_micros = lease.cost_micros, "checkpoint lease created");
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
    auth: OwnerAuth,
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
    auth: OwnerAuth,
    WorkflowPath(workflow_id): WorkflowPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let lease = serving(&state, &auth.owner(), &workflow_id).await?;
    let max = u64::try_from(lease.max_body_bytes.unwrap_or(0)).unwrap_or(0);
    let (content_type, bytes) = read_version_body(body, &headers, max).await?;
    let version = new_version(&lease.id, content_type, &bytes);
    write::create(&state, None, Payer::Free, WriteVersion { lease, expected, version, bytes: Some(bytes) }).await
}

/// A new version on its way through the write pipeline (no `Idempotency-Key`: `If-Match`
/// makes a retry safe).
struct WriteVersion {
    lease: lease::Model,
    expected: Option<i64>,
    version: NewVersion,
    bytes: Option<Bytes>,
}

impl Creation for WriteVersion {
    /// The version and the blob keys of the versions it pruned.
    type Created = (checkpoint_version::Model, Vec<String>);

    async fn stage(&mut self, state: &AppState) -> Result<(), ApiError> {
        store_body(state, &self.version, &mut self.bytes).await
    }

    async fn write(&self, txn: &DatabaseTransaction, now: i64) -> Result<Self::Created, ApiError> {
        match checkpoint::write(txn, &self.lease.id, self.expected, &self.version, now).await? {
            Written::Stored { version, pruned } => Ok((version, pruned)),
            Written::Conflict { current } => Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "version_conflict",
                format!("If-Match names another version; the current version is {current}"),
            )
            .with("current_version", current)),
            Written::Gone(gone) => Err(ApiError::gone(gone)),
        }
    }

    fn respond(&self, _state: &AppState, (version, _): &Self::Created) -> Reply {
        let (headers, body) = views::version_written(&self.lease, version);
        Reply { status: StatusCode::OK, headers, body, secret: false }
    }

    async fn discard(&self, state: &AppState) {
        discard(state, &self.version.blob_key).await;
    }

    /// Deletes the pruned versions' bytes (their rows went in the commit; bytes that
    /// cannot be deleted now go with the lease's purge).
    async fn committed(&self, state: &AppState, (_, pruned): &Self::Created) {
        for key in pruned {
            if let Err(e) = state.blobs.delete(key).await {
                tracing::error!(lease.id = %self.lease.id, error = %e, "could not delete a pruned version's bytes");
            }
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
    auth: OwnerAuth,
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
