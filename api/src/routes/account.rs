//! The caller's account: balance, ledger and API keys (SPEC §4.1).

use axum::extract::State;
use axum::http::StatusCode;

use axum::Json;
use leasehold_core::accounts;
use leasehold_core::time::rfc3339;
use leasehold_entities::ledger_entry;

use crate::api_json::account as account_json;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{AccountAuth, ApiPath, ApiQuery, cursor, page_limit};
use crate::openapi::ErrorBody;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/v1/account…`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(ledger))
        .routes(routes!(list_keys, mint_key))
        .routes(routes!(revoke_key))
}

#[utoipa::path(get,
    path = "/v1/account",
    tag = "account",
    summary = "The caller's account and balance",
    extensions(("x-auth" = json!("owner"))),
    responses((status = 200, description = "The account", body = Value)))]
async fn show(auth: AccountAuth) -> Json<Value> {
    let mut body = account_json(&auth.account);
    body["status"] = "ok".into();
    Json(body)
}

#[derive(Deserialize)]
struct Page {
    limit: Option<u64>,
    cursor: Option<String>,
}

fn entry_json(e: &ledger_entry::Model) -> Value {
    json!({
        "entry_id": e.id,
        "kind": e.kind,
        "amount_micros": e.amount_micros.to_string(),
        "balance_after_micros": e.balance_after_micros.to_string(),
        "lease_id": e.lease_id,
        "memo": e.memo,
        "created_at": rfc3339(e.created_at),
    })
}

#[utoipa::path(get,
    path = "/v1/account/ledger",
    tag = "account",
    summary = "The account's ledger, newest first",
    extensions(("x-auth" = json!("owner"))),
    params(("limit" = Option<u64>, Query, description = "1..=1000 (default 100)"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of entries", body = Value), (status = 400, description = "`bad_request` (names the `parameter`)", body = ErrorBody)))]
async fn ledger(
    State(state): State<AppState>,
    auth: AccountAuth,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(page.limit)?;
    let cursor = cursor(page.cursor.as_deref(), "")?;
    let entries = accounts::ledger(&state.db, &auth.account.id, cursor, limit).await?;
    let next_cursor = (entries.len() as u64 == limit).then(|| entries.last().map(|e| e.id.clone())).flatten();
    Ok(Json(json!({
        "status": "ok",
        "items": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

#[utoipa::path(get,
    path = "/v1/account/api-keys",
    tag = "account",
    summary = "The account's API keys (prefixes only)",
    extensions(("x-auth" = json!("owner"))),
    responses((status = 200, description = "The keys", body = Value)))]
async fn list_keys(State(state): State<AppState>, auth: AccountAuth) -> Result<Json<Value>, ApiError> {
    let keys = accounts::list_keys(&state.db, &auth.account.id).await?;
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| json!({ "prefix": k.prefix, "created_at": rfc3339(k.created_at), "last_used_at": k.last_used_at.map(rfc3339) }))
        .collect();
    Ok(Json(json!({ "status": "ok", "keys": keys })))
}

#[utoipa::path(post,
    path = "/v1/account/api-keys",
    tag = "account",
    summary = "Mints a new API key (shown once)",
    extensions(("x-auth" = json!("owner"))),
    responses((status = 201, description = "The new key", body = Value)))]
async fn mint_key(State(state): State<AppState>, auth: AccountAuth) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (key, row) = accounts::mint_key(&state.db, &auth.account.id, state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "status": "ok", "key": key, "prefix": row.prefix, "created_at": rfc3339(row.created_at) })),
    ))
}

#[utoipa::path(delete,
    path = "/v1/account/api-keys/{prefix}",
    tag = "account",
    summary = "Revokes an API key",
    extensions(("x-auth" = json!("owner"))),
    params(("prefix" = String, Path, description = "The key's display prefix")),
    responses((status = 200, description = "Revoked", body = Value), (status = 404, description = "`not_found`", body = ErrorBody), (status = 409, description = "`last_api_key`", body = ErrorBody)))]
async fn revoke_key(
    State(state): State<AppState>,
    auth: AccountAuth,
    ApiPath(prefix): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let row = accounts::revoke_key(&state.db, &auth.account.id, &prefix, state.now()).await?;
    Ok(Json(json!({ "status": "ok", "prefix": row.prefix, "revoked_at": row.revoked_at.map(rfc3339) })))
}
