//! The caller's account: balance, ledger and API keys (SPEC §4.1).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use leasehold_core::accounts;
use leasehold_core::time::rfc3339;
use leasehold_entities::ledger_entry;

use crate::api_json::account as account_json;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{AccountAuth, ApiQuery, cursor, page_limit};
use crate::state::AppState;

/// `/v1/account…`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/account", get(show))
        .route("/v1/account/ledger", get(ledger))
        .route("/v1/account/api-keys", get(list_keys).post(mint_key))
        .route("/v1/account/api-keys/{prefix}", delete(revoke_key))
}

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

async fn list_keys(State(state): State<AppState>, auth: AccountAuth) -> Result<Json<Value>, ApiError> {
    let keys = accounts::list_keys(&state.db, &auth.account.id).await?;
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| json!({ "prefix": k.prefix, "created_at": rfc3339(k.created_at), "last_used_at": k.last_used_at.map(rfc3339) }))
        .collect();
    Ok(Json(json!({ "status": "ok", "keys": keys })))
}

async fn mint_key(State(state): State<AppState>, auth: AccountAuth) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (key, row) = accounts::mint_key(&state.db, &auth.account.id, state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "status": "ok", "key": key, "prefix": row.prefix, "created_at": rfc3339(row.created_at) })),
    ))
}

async fn revoke_key(
    State(state): State<AppState>,
    auth: AccountAuth,
    Path(prefix): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = accounts::revoke_key(&state.db, &auth.account.id, &prefix, state.now()).await?;
    Ok(Json(json!({ "status": "ok", "prefix": row.prefix, "revoked_at": row.revoked_at.map(rfc3339) })))
}
