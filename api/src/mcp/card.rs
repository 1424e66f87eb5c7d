//! `GET /.well-known/mcp/server-card.json` (SPEC §11): what an agent needs to pick the
//! server up without a human — the `/mcp` URL, every tool with its `inputSchema` and auth
//! mode, how to pay with x402, and the limits. Built from the same tool table as
//! `tools/list`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::call::{PAYMENT_META, PAYMENT_RESPONSE_META};
use super::tools::{INSTRUCTIONS, TOOLS};
use crate::state::AppState;

/// `/.well-known/mcp/server-card.json`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(server_card))
}

/// The MCP server card.
#[utoipa::path(get, path = "/.well-known/mcp/server-card.json", tag = "docs", extensions(("x-auth" = json!("none"))),
    responses((status = 200, description = "The MCP server card: `/mcp` URL, tools with `inputSchema` and auth mode, x402 facts, limits", body = Value)))]
async fn server_card(State(state): State<AppState>) -> Json<Value> {
    Json(card(&state))
}

/// The card's JSON.
pub fn card(state: &AppState) -> Value {
    let x402 = state.config.x402.as_ref();
    let tools: Vec<Value> = TOOLS
        .iter()
        .map(|t| {
            let auth = t.auth_on(x402.is_some());
            json!({
                "name": t.name,
                "title": t.title,
                "description": t.description,
                "inputSchema": t.input_schema(),
                "auth": auth.as_str(),
            })
        })
        .collect();
    let l = &state.config.limits;
    json!({
        "name": "leasehold",
        "title": "Leasehold",
        "version": env!("CARGO_PKG_VERSION"),
        "description": INSTRUCTIONS,
        "serverInfo": { "name": "leasehold", "title": "Leasehold", "version": env!("CARGO_PKG_VERSION") },
        "protocolVersions": ["2025-06-18", "2025-11-25"],
        "remotes": [{ "type": "streamable-http", "url": state.url("/mcp") }],
        "transport": { "type": "streamable-http", "endpoint": "/mcp", "stateless": true },
        "capabilities": { "tools": { "listChanged": false } },
        "authentication": {
            "required": false,
            "schemes": ["bearer"],
            "description": "Owner tools need `Authorization: Bearer rs_live_…` (API key) or `Bearer rs_wallet_…` (wallet session, SIWE at /v1/auth/challenge + /v1/auth/verify) on the MCP HTTP request.",
        },
        "tools": tools,
        "x402": match x402 {
            None => json!({ "enabled": false }),
            Some(x) => json!({
                "enabled": true,
                "version": 2,
                "scheme": "exact",
                "network": x.network.caip2(),
                "asset": x.asset,
                "payTo": x.pay_to,
                "discovery": state.url("/.well-known/x402.json"),
                "mcp": { "paymentMeta": PAYMENT_META, "paymentResponseMeta": PAYMENT_RESPONSE_META },
            }),
        },
        "limits": {
            "inline_max_bytes": l.mcp_inline_max_bytes,
            "max_file_bytes": l.max_file_bytes,
            "max_mailbox_capacity_bytes": l.max_mailbox_capacity_bytes,
            "checkpoint_max_body_bytes": l.checkpoint_max_body_bytes,
            "min_duration_seconds": l.min_duration_seconds,
            "max_duration_seconds": l.max_duration_seconds,
            "long_poll_max_seconds": l.long_poll_max_seconds,
        },
        "documentation": { "llms_txt": state.url("/llms.txt"), "openapi": state.url("/api/openapi.json") },
    })
}
