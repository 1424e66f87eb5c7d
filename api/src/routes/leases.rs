//! Leases of every variant: list, show, delete (SPEC §5).

use axum::extract::State;
use axum::http::HeaderMap;

use axum::Json;
use leasehold_core::leases::{self, DeleteOutcome, LeaseState, ListFilter, Owner, Variant};
use leasehold_core::time::rfc3339;
use leasehold_core::webhook;
use leasehold_entities::{lease, storage_object};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{ApiQuery, LeaseIdPath, OwnerAuth, bad_parameter, cursor, page_limit};
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::views::{lease_headers, lease_json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/api/leases…`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(show, remove)).routes(routes!(deliveries))
}

/// Loads a lease the caller owns that still serves; 404 for unknown or foreign, 410 when
/// expired or deleted.
pub async fn serving_lease(state: &AppState, owner: &Owner, lease_id: &str) -> Result<lease::Model, ApiError> {
    let lease = leases::find_owned(&state.db, owner, lease_id).await?.ok_or_else(ApiError::not_found)?;
    leases::check_serving(&lease, state.now()).map_err(ApiError::gone)?;
    Ok(lease)
}

#[derive(Deserialize)]
struct ListQuery {
    variant: Option<String>,
    state: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

#[utoipa::path(get,
    path = "/api/leases",
    tag = "leases",
    summary = "The caller's leases",
    extensions(("x-auth" = json!("owner"))),
    params(("variant" = Option<String>, Query, description = "`storage`, `mailbox` or `checkpoint`"), ("state" = Option<String>, Query, description = "Lease state filter"), ("limit" = Option<u64>, Query, description = "1..=1000 (default 100)"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of leases", body = Value), (status = 400, description = "`bad_request` (names the `parameter`)", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    auth: OwnerAuth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let variant = match q.variant.as_deref() {
        Some(v) => {
            Some(Variant::parse(v).ok_or_else(|| bad_parameter("variant", "must be storage, mailbox or checkpoint"))?)
        }
        None => None,
    };
    let lease_state = match q.state.as_deref() {
        Some(s) => {
            Some(LeaseState::parse(s).ok_or_else(|| bad_parameter("state", "must be active, expired or deleted"))?)
        }
        None => None,
    };
    let limit = page_limit(q.limit)?;
    let cursor = cursor(q.cursor.as_deref(), "lse")?;
    let filter = ListFilter { variant, state: lease_state, cursor, limit };
    let rows = leases::list_owned(&state.db, &auth.owner(), &filter, state.now()).await?;
    let storage_ids: Vec<&str> =
        rows.iter().filter(|l| l.variant == leases::Variant::Storage).map(|l| l.id.as_str()).collect();
    let objects = if storage_ids.is_empty() {
        Vec::new()
    } else {
        storage_object::Entity::find().filter(storage_object::Column::LeaseId.is_in(storage_ids)).all(&state.db).await?
    };
    let items: Vec<Value> =
        rows.iter().map(|l| lease_json(&state, l, objects.iter().find(|o| o.lease_id == l.id))).collect();
    let next_cursor = (rows.len() as u64 == limit).then(|| rows.last().map(|l| l.id.clone())).flatten();
    Ok(Json(json!({ "status": "ok", "items": items, "next_cursor": next_cursor })))
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /api/leases/:lease_id/deliveries`: the lease's webhook events and their delivery
/// state, oldest first. Answers for tombstones too (their `lease.expired` event is
/// delivered after the end), until they are reaped.
#[utoipa::path(get,
    path = "/api/leases/{lease_id}/deliveries",
    tag = "leases",
    summary = "The lease's webhook events and their delivery state",
    extensions(("x-auth" = json!("owner"))),
    params(("lease_id" = String, Path, description = "`lse_<ULID>`")),
    responses((status = 200, description = "The events", body = Value), (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn deliveries(
    State(state): State<AppState>,
    auth: OwnerAuth,
    LeaseIdPath(id): LeaseIdPath,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let lease = leases::find_owned(&state.db, &auth.owner(), &id).await?.ok_or_else(ApiError::not_found)?;
    let limit = page_limit(q.limit)?;
    let cursor = cursor(q.cursor.as_deref(), "evt")?;
    let rows = webhook::events_of(&state.db, &lease.id, cursor, limit).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|e| {
            json!({
                "event_id": e.id,
                "type": e.event_type,
                "state": e.state,
                "attempts": e.attempts,
                "last_status_code": e.last_status_code,
                "last_error": e.last_error,
                "next_attempt_at": e.next_attempt_at.map(rfc3339),
                "created_at": rfc3339(e.created_at),
                "delivered_at": e.delivered_at.map(rfc3339),
            })
        })
        .collect();
    let next_cursor = (rows.len() as u64 == limit).then(|| rows.last().map(|e| e.id.clone())).flatten();
    let body = json!({ "status": "ok", "lease_id": lease.id, "items": items, "next_cursor": next_cursor });
    Ok((lease_headers(&lease), Json(body)))
}

#[utoipa::path(get,
    path = "/api/leases/{lease_id}",
    tag = "leases",
    summary = "A lease",
    extensions(("x-auth" = json!("owner"))),
    params(("lease_id" = String, Path, description = "`lse_<ULID>`")),
    responses((status = 200, description = "The lease", body = Value), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
async fn show(
    State(state): State<AppState>,
    auth: OwnerAuth,
    LeaseIdPath(id): LeaseIdPath,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let lease = serving_lease(&state, &auth.owner(), &id).await?;
    let object = storage_object::Entity::find_by_id(&lease.id).one(&state.db).await?;
    Ok((lease_headers(&lease), Json(json!({ "status": "ok", "lease": lease_json(&state, &lease, object.as_ref()) }))))
}

#[utoipa::path(delete,
    path = "/api/leases/{lease_id}",
    tag = "leases",
    summary = "Deletes a lease of any variant",
    extensions(("x-auth" = json!("owner"))),
    params(("lease_id" = String, Path, description = "`lse_<ULID>`")),
    responses((status = 200, description = "Deleted", body = Value), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    auth: OwnerAuth,
    LeaseIdPath(id): LeaseIdPath,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    delete_lease(&state, &auth.owner(), &id).await
}

/// `DELETE /api/<variant path>/{id}`: deletes a lease of that variant the caller owns (a
/// lease of another variant is 404).
pub async fn delete_variant(
    state: &AppState,
    owner: &Owner,
    lease_id: &str,
    variant: Variant,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let lease = leases::find_owned(&state.db, owner, lease_id).await?.ok_or_else(ApiError::not_found)?;
    if lease.variant != variant {
        return Err(ApiError::not_found());
    }
    delete_lease(state, owner, lease_id).await
}

/// Deletes a lease the caller owns (no refund); the worker removes its bytes.
pub async fn delete_lease(
    state: &AppState,
    owner: &Owner,
    lease_id: &str,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let lease = leases::find_owned(&state.db, owner, lease_id).await?.ok_or_else(ApiError::not_found)?;
    match leases::mark_deleted(&state.db, &lease, state.now()).await? {
        DeleteOutcome::Gone(gone) => Err(ApiError::gone(gone)),
        DeleteOutcome::Deleted => {
            tracing::info!(lease.id = %lease.id, "lease deleted by its owner");
            Ok((lease_headers(&lease), Json(json!({ "status": "ok", "lease_id": lease.id, "state": "deleted" }))))
        }
    }
}
