//! `GET /api/pricing` and `GET /api/quote` (SPEC §3). No auth.

use axum::Json;
use axum::extract::State;
use leasehold_core::pricing::micros_to_usdc;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiQuery, check_duration};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `/api/pricing`, `/api/quote`, `/.well-known/x402.json`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(pricing)).routes(routes!(quote)).routes(routes!(x402_discovery))
}

/// `payment` of `/api/pricing`: which ways of paying are on, with the x402 facts.
fn payment(state: &AppState) -> Value {
    match &state.config.x402 {
        None => json!({ "api_key": true, "x402": false }),
        Some(x) => json!({
            "api_key": true,
            "x402": true,
            "versions": [1, 2],
            "network": x.network.v1_name(),
            "network_caip2": x.network.caip2(),
            "wallet_address": x.pay_to,
            "asset": x.asset,
            "facilitator_url": x.facilitator_url,
        }),
    }
}

/// x402 discovery (SPEC §4.2): how to pay, and the priced routes. 404 when x402 is off.
#[utoipa::path(get, path = "/.well-known/x402.json", tag = "pricing", extensions(("x-auth" = json!("none"))),
    responses((status = 200, description = "x402 payment facts and the priced endpoints", body = Value), (status = 404, description = "`not_found`: x402 is off", body = ErrorBody)))]
async fn x402_discovery(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let x = state.config.x402.as_ref().ok_or_else(ApiError::not_found)?;
    let endpoints: Vec<_> = crate::openapi::endpoints().into_iter().filter(|e| e.priced).collect();
    Ok(Json(json!({
        "status": "ok",
        "payment": {
            "protocol": "x402",
            "versions": [1, 2],
            "networks": [x.network.v1_name(), x.network.caip2()],
            "currency": "USDC",
            "schemes": ["exact"],
        },
        "walletAddress": x.pay_to,
        "network": x.network.v1_name(),
        "asset": x.asset,
        "facilitator_url": x.facilitator_url,
        "pricing_url": state.url("/api/pricing"),
        "endpoints": endpoints,
    })))
}

/// Rates, limits and every endpoint (from the OpenAPI document).
#[utoipa::path(get, path = "/api/pricing", tag = "pricing", extensions(("x-auth" = json!("none"))),
    responses((status = 200, description = "Rates, formulas, limits and endpoints", body = Value)))]
async fn pricing(State(state): State<AppState>) -> Json<Value> {
    let tariff = state.config.tariff;
    let l = &state.config.limits;
    Json(json!({
        "status": "ok",
        "currency": "USDC",
        "unit": "micros",
        "rate": { "micros_per_gb_day": tariff.micros_per_gb_day.to_string() },
        "minimum_charge_micros": tariff.minimum_charge_micros.to_string(),
        "formulas": {
            "storage": { "basis": "bytes_seconds", "size": "file size in bytes",
                "cost_micros": "max(minimum_charge_micros, ceil(size_bytes * duration_seconds * micros_per_gb_day / (1e9 * 86400)))" },
            "mailbox": { "basis": "bytes_seconds", "size": "capacity_bytes",
                "cost_micros": "max(minimum_charge_micros, ceil(capacity_bytes * duration_seconds * micros_per_gb_day / (1e9 * 86400)))" },
            "checkpoint": { "basis": "reservation", "size": "max_body_bytes",
                "cost_micros": "max(minimum_charge_micros, ceil(max_body_bytes * duration_seconds * micros_per_gb_day / (1e9 * 86400)))" },
        },
        "duration_seconds": { "min": l.min_duration_seconds, "max": l.max_duration_seconds },
        "limits": {
            "max_file_bytes": l.max_file_bytes,
            "max_mailbox_capacity_bytes": l.max_mailbox_capacity_bytes,
            "default_max_message_bytes": l.default_max_message_bytes,
            "default_max_messages": l.default_max_messages,
            "checkpoint_default_body_bytes": l.checkpoint_default_body_bytes,
            "checkpoint_max_body_bytes": l.checkpoint_max_body_bytes,
            "checkpoint_default_versions": l.checkpoint_default_versions,
            "checkpoint_max_versions": l.checkpoint_max_versions,
            "handoff_max_claims": l.handoff_max_claims,
            "long_poll_max_seconds": l.long_poll_max_seconds,
            "tombstone_retention_seconds": l.tombstone_retention_seconds,
        },
        "handoff": { "issue_micros": "0", "claim_micros": "0" },
        "payment": payment(&state),
        "endpoints": crate::openapi::endpoints(),
    }))
}

#[derive(Deserialize)]
struct QuoteQuery {
    size_bytes: Option<String>,
    duration_seconds: Option<String>,
}

fn query_u64(name: &str, value: Option<&str>) -> Result<u64, ApiError> {
    let text = value.ok_or_else(|| ApiError::bad_request(format!("{name} is required")))?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!("{name} must be a whole number")).with("parameter", name));
    }
    text.parse().map_err(|_| ApiError::bad_request(format!("{name} is too large")).with("parameter", name))
}

/// What a lease of this size and duration costs.
#[utoipa::path(get, path = "/api/quote", tag = "pricing", extensions(("x-auth" = json!("none"))),
    params(
        ("size_bytes" = u64, Query, description = "Bytes (file size, mailbox capacity or checkpoint body cap); at most the largest limit"),
        ("duration_seconds" = u64, Query, description = "Seconds, within the duration bounds of `/api/pricing`"),
    ),
    responses(
        (status = 200, description = "The price", body = Value),
        (status = 400, description = "`bad_request` (names the `parameter`), `duration_out_of_range`", body = ErrorBody),
    ))]
async fn quote(State(state): State<AppState>, ApiQuery(q): ApiQuery<QuoteQuery>) -> Result<Json<Value>, ApiError> {
    let size = query_u64("size_bytes", q.size_bytes.as_deref())?;
    let duration = query_u64("duration_seconds", q.duration_seconds.as_deref())?;
    check_duration(&state, duration, "duration_seconds")?;
    let l = &state.config.limits;
    let largest = l.max_file_bytes.max(l.max_mailbox_capacity_bytes).max(l.checkpoint_max_body_bytes);
    if size > largest {
        return Err(
            ApiError::bad_request(format!("size_bytes must be at most {largest}")).with("parameter", "size_bytes")
        );
    }
    let cost = state.config.tariff.cost_micros(size, duration);
    Ok(Json(json!({
        "status": "ok",
        "size_bytes": size,
        "duration_seconds": duration,
        "priceMicros": cost.to_string(),
        "priceUsdc": micros_to_usdc(cost),
        "cost_micros": cost.to_string(),
    })))
}
