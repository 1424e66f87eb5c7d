//! Operator API behind `LEASEHOLD_ADMIN_TOKEN` (SPEC §4.1). Without a token configured
//! every route here answers 404.

use axum::extract::State;
use axum::http::StatusCode;

use axum::Json;
use leasehold_core::{accounts, ids};
use serde::Deserialize;
use serde_json::Value;

use crate::api_json::account as account_json;
use crate::error::ApiError;
use crate::extract::{AdminAuth, ApiJson, ApiPath};
use crate::openapi::ErrorBody;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/admin/accounts…`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create)).routes(routes!(show)).routes(routes!(credit))
}

/// Micros arrive as a JSON number or a decimal string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Micros {
    Number(i64),
    Text(String),
}

impl Micros {
    fn value(&self, field: &str) -> Result<i64, ApiError> {
        match self {
            Self::Number(n) => Ok(*n),
            Self::Text(t) => t.parse().map_err(|_| ApiError::bad_request(format!("{field} must be an integer"))),
        }
    }
}

#[derive(Deserialize)]
struct CreateAccount {
    name: String,
    credit_micros: Option<Micros>,
}

#[utoipa::path(post,
    path = "/admin/accounts",
    tag = "admin",
    summary = "Creates an account with its first API key",
    extensions(("x-auth" = json!("admin"))),
    request_body = Value,
    responses((status = 201, description = "The account and key", body = Value), (status = 400, description = "`bad_request`, `invalid_json`", body = ErrorBody)))]
async fn create(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateAccount>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let credit = body.credit_micros.as_ref().map(|m| m.value("credit_micros")).transpose()?.unwrap_or(0);
    let created = accounts::create(&state.db, &body.name, credit, state.now()).await?;
    let mut out = account_json(&created.account);
    out["status"] = "ok".into();
    out["api_key"] = created.api_key.into();
    Ok((StatusCode::CREATED, Json(out)))
}

fn account_id(id: &str) -> Result<&str, ApiError> {
    if ids::is_valid("acct", id) { Ok(id) } else { Err(ApiError::not_found()) }
}

#[utoipa::path(get,
    path = "/admin/accounts/{account_id}",
    tag = "admin",
    summary = "An account",
    extensions(("x-auth" = json!("admin"))),
    params(("account_id" = String, Path, description = "`acct_<ULID>`")),
    responses((status = 200, description = "The account", body = Value), (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn show(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let account = accounts::find(&state.db, account_id(&id)?).await?;
    let mut out = account_json(&account);
    out["status"] = "ok".into();
    Ok(Json(out))
}

#[derive(Deserialize)]
struct Credit {
    amount_micros: Micros,
    memo: Option<String>,
}

#[utoipa::path(post,
    path = "/admin/accounts/{account_id}/credits",
    tag = "admin",
    summary = "Credits an account",
    extensions(("x-auth" = json!("admin"))),
    params(("account_id" = String, Path, description = "`acct_<ULID>`")),
    request_body = Value,
    responses((status = 200, description = "The new balance", body = Value), (status = 400, description = "`bad_request`, `invalid_json`", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn credit(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Credit>,
) -> Result<Json<Value>, ApiError> {
    let amount = body.amount_micros.value("amount_micros")?;
    if body.memo.as_ref().is_some_and(|m| m.len() > 500) {
        return Err(ApiError::bad_request("memo must be at most 500 bytes"));
    }
    let account = accounts::credit(&state.db, account_id(&id)?, amount, body.memo.as_deref(), state.now()).await?;
    let mut out = account_json(&account);
    out["status"] = "ok".into();
    out["credited_micros"] = amount.to_string().into();
    Ok(Json(out))
}
