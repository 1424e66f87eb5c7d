//! Handoff, owner side (SPEC §7): issue a claim URL for any lease, list, show with the
//! claim log, revoke.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use axum::Json;
use leasehold_core::handoff::{self, NewHandoff};
use leasehold_core::time::rfc3339;
use leasehold_core::{ids, tokens};
use leasehold_entities::{handoff as handoff_row, lease};
use sea_orm::DatabaseTransaction;
use serde::Deserialize;
use serde_json::{Value, json};

use super::leases::serving_lease;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, HandoffPath, LeaseIdPath, OwnerAuth};
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::views::{self, handoff_json};
use crate::write::{self, Creation, Idempotent, Payer, Reply, Scope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/api/handoff/{lease_id}`, `/api/handoffs…`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue)).routes(routes!(list)).routes(routes!(show, revoke))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    max_claims: Option<u64>,
    delete_on_claim: Option<bool>,
    ttl_seconds: Option<u64>,
}

#[utoipa::path(post,
    path = "/api/handoff/{lease_id}",
    tag = "handoff",
    summary = "Issues a claim link for a lease",
    extensions(("x-auth" = json!("owner"))),
    params(("lease_id" = String, Path, description = "`lse_<ULID>`"), ("Idempotency-Key" = Option<String>, Header, description = "Optional; 1..=255 printable ASCII. The same key from the same owner within 24 h replays the first response (`Idempotent-Replayed: true`); with a different request → 422 `idempotency_key_reused`")),
    request_body = Value,
    responses((status = 201, description = "The handoff with its claim URL", body = Value), (status = 400, description = "`bad_request`, `invalid_json`", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody), (status = 409, description = "`idempotency_in_progress`", body = ErrorBody), (status = 422, description = "`idempotency_key_reused`", body = ErrorBody)))]
async fn issue(
    State(state): State<AppState>,
    auth: OwnerAuth,
    LeaseIdPath(id): LeaseIdPath,
    headers: HeaderMap,
    ApiJson(body): ApiJson<IssueBody>,
) -> Result<Response, ApiError> {
    let owner = auth.owner();
    let lease = serving_lease(&state, &owner, &id).await?;
    let most = state.config.limits.handoff_max_claims;
    let max_claims = body.max_claims.unwrap_or(1);
    if max_claims == 0 || max_claims > most {
        return Err(ApiError::bad_request(format!("max_claims must be between 1 and {most}")));
    }
    if body.ttl_seconds == Some(0) {
        return Err(ApiError::bad_request("ttl_seconds must be at least 1"));
    }
    let now = state.now();
    let expires_at = match body.ttl_seconds {
        Some(ttl) => {
            now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX).saturating_mul(1000)).min(lease.expires_at)
        }
        None => lease.expires_at,
    };
    let delete_on_claim = body.delete_on_claim.unwrap_or(false);
    let ttl = body.ttl_seconds.map_or_else(|| "-".to_owned(), |t| t.to_string());
    let parts = [max_claims.to_string(), delete_on_claim.to_string(), ttl];
    let parts = parts.each_ref().map(String::as_str);
    let idempotent = Idempotent { headers: &headers, scope: Scope::Handoff(&owner, &lease.id), parts: &parts };
    let token = tokens::random_hex32();
    let new = NewHandoff {
        lease_id: lease.id.clone(),
        owner: owner.clone(),
        token_hash: tokens::sha256_hex(token.as_bytes()),
        max_claims: i64::try_from(max_claims).unwrap_or(i64::MAX),
        delete_on_claim,
        expires_at,
    };
    write::create(&state, Some(idempotent), Payer::Free, IssueHandoff { lease: lease.clone(), new, token }).await
}

/// A handoff on its way through the write pipeline.
struct IssueHandoff {
    lease: lease::Model,
    new: NewHandoff,
    token: String,
}

impl Creation for IssueHandoff {
    type Created = handoff_row::Model;

    async fn write(&self, txn: &DatabaseTransaction, now: i64) -> Result<handoff_row::Model, ApiError> {
        Ok(handoff::issue(txn, self.new.clone(), now).await?)
    }

    /// The response carries the token: its replay copy is sealed.
    fn respond(&self, state: &AppState, h: &handoff_row::Model) -> Reply {
        Reply {
            status: StatusCode::CREATED,
            headers: views::lease_headers(&self.lease),
            body: views::handoff_issued(state, h, &self.lease, &self.token),
            secret: true,
        }
    }

    async fn committed(&self, _state: &AppState, h: &handoff_row::Model) {
        tracing::info!(lease.id = %self.lease.id, handoff.id = %h.id, max_claims = h.max_claims, "handoff issued");
    }
}

#[derive(Deserialize)]
struct ListQuery {
    lease_id: Option<String>,
}

#[utoipa::path(get,
    path = "/api/handoffs",
    tag = "handoff",
    summary = "The caller's handoffs",
    extensions(("x-auth" = json!("owner"))),
    params(("lease_id" = Option<String>, Query, description = "Only this lease's"), ("limit" = Option<u64>, Query, description = "1..=1000 (default 100)"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of handoffs", body = Value), (status = 400, description = "`bad_request` (names the `parameter`)", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    auth: OwnerAuth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(id) = &q.lease_id
        && !ids::is_valid("lse", id)
    {
        return Err(crate::extract::bad_parameter("lease_id", "must be a lease id (lse_…)"));
    }
    let rows = handoff::list_owned(&state.db, &auth.owner(), q.lease_id.as_deref()).await?;
    Ok(Json(json!({ "status": "ok", "items": rows.iter().map(handoff_json).collect::<Vec<_>>() })))
}

#[utoipa::path(get,
    path = "/api/handoffs/{id}",
    tag = "handoff",
    summary = "A handoff",
    extensions(("x-auth" = json!("owner"))),
    params(("id" = String, Path, description = "`hnd_<ULID>`")),
    responses((status = 200, description = "The handoff", body = Value), (status = 404, description = "`handoff_not_found`", body = ErrorBody)))]
async fn show(
    State(state): State<AppState>,
    auth: OwnerAuth,
    HandoffPath(id): HandoffPath,
) -> Result<Json<Value>, ApiError> {
    let h = handoff::find_owned(&state.db, &auth.owner(), &id).await?.ok_or_else(ApiError::handoff_not_found)?;
    let claims: Vec<Value> = handoff::claims(&state.db, &h.id)
        .await?
        .iter()
        .map(|c| {
            json!({
                "at": rfc3339(c.started_at),
                "finished_at": c.finished_at.map(rfc3339),
                "outcome": c.state,
                "bytes_sent": c.bytes_sent,
                "user_agent": c.user_agent,
            })
        })
        .collect();
    let mut body = handoff_json(&h);
    body["status"] = "ok".into();
    body["claims"] = claims.into();
    Ok(Json(body))
}

#[utoipa::path(delete,
    path = "/api/handoffs/{id}",
    tag = "handoff",
    summary = "Revokes a handoff",
    extensions(("x-auth" = json!("owner"))),
    params(("id" = String, Path, description = "`hnd_<ULID>`")),
    responses((status = 200, description = "Revoked", body = Value), (status = 404, description = "`handoff_not_found`", body = ErrorBody)))]
async fn revoke(
    State(state): State<AppState>,
    auth: OwnerAuth,
    HandoffPath(id): HandoffPath,
) -> Result<Json<Value>, ApiError> {
    let h = handoff::find_owned(&state.db, &auth.owner(), &id).await?.ok_or_else(ApiError::handoff_not_found)?;
    let h = handoff::revoke(&state.db, &h.id, state.now()).await?.ok_or_else(ApiError::handoff_not_found)?;
    Ok(Json(json!({
        "status": "ok",
        "handoff_id": h.id,
        "revoked_at": h.revoked_at.map(rfc3339),
        "claims_completed": h.claims_completed,
    })))
}
