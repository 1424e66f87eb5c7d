//! `GET /api/checkpoint/{workflow_id}/versions` and `…/versions/{n}` (SPEC §6.3): the kept
//! versions of a checkpoint and one version's body.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leasehold_core::checkpoint;
use leasehold_core::time::rfc3339;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::checkpoint::{WorkflowPath, body_response, serving, version_pruned};
use crate::error::ApiError;
use crate::extract::OwnerAuth;
use crate::openapi::ErrorBody;
use crate::path::ApiPath;
use crate::state::AppState;
use crate::views::lease_headers;

/// The versions routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_versions)).routes(routes!(one_version))
}

#[utoipa::path(get,
    path = "/api/checkpoint/{workflow_id}/versions",
    tag = "checkpoint",
    summary = "The kept versions",
    extensions(("x-auth" = json!("owner"))),
    params(("workflow_id" = String, Path, description = "`[A-Za-z0-9._-]{1,128}`")),
    responses((status = 200, description = "The versions", body = Value), (status = 400, description = "`invalid_workflow_id`", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
async fn list_versions(
    State(state): State<AppState>,
    auth: OwnerAuth,
    WorkflowPath(workflow_id): WorkflowPath,
) -> Result<Response, ApiError> {
    let lease = serving(&state, &auth.owner(), &workflow_id).await?;
    let items: Vec<Value> = checkpoint::versions(&state.db, &lease.id)
        .await?
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "size_bytes": v.size_bytes,
                "sha256": v.sha256,
                "content_type": v.content_type,
                "created_at": rfc3339(v.created_at),
            })
        })
        .collect();
    let body = json!({
        "status": "ok",
        "workflow_id": workflow_id,
        "lease_id": lease.id,
        "current_version": lease.current_version,
        "max_versions": lease.max_versions,
        "items": items,
    });
    Ok((lease_headers(&lease), Json(body)).into_response())
}

#[utoipa::path(get,
    path = "/api/checkpoint/{workflow_id}/versions/{n}",
    tag = "checkpoint",
    summary = "One version's body",
    extensions(("x-auth" = json!("owner"))),
    params(("workflow_id" = String, Path, description = "`[A-Za-z0-9._-]{1,128}`"), ("n" = String, Path, description = "The version number")),
    responses((status = 200, description = "The body"), (status = 400, description = "`invalid_workflow_id`", body = ErrorBody), (status = 404, description = "`not_found`, `version_not_found`", body = ErrorBody), (status = 410, description = "`lease_expired`, `lease_deleted`, `version_pruned`", body = ErrorBody)))]
async fn one_version(
    State(state): State<AppState>,
    auth: OwnerAuth,
    WorkflowPath(workflow_id): WorkflowPath,
    ApiPath((_, n)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "version_not_found", format!("there is no version {n}"));
    let number: i64 = match n.parse::<i64>() {
        Ok(v) if v >= 1 && n.bytes().all(|b| b.is_ascii_digit()) => v,
        _ => return Err(not_found()),
    };
    let lease = serving(&state, &auth.owner(), &workflow_id).await?;
    if number > lease.current_version.unwrap_or(0) {
        return Err(not_found());
    }
    match checkpoint::version(&state.db, &lease.id, number).await? {
        Some(v) => body_response(&state, &lease, &v).await,
        None => Err(version_pruned(number)),
    }
}
