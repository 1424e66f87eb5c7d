//! Every route, one module per resource, each exporting `router()`.

pub mod account;
pub mod admin;
pub mod checkpoint;
pub mod claim;
pub mod drop;
pub mod handoff;
pub mod leases;
pub mod mailbox;
pub mod mailbox_events;
pub mod ops;
pub mod pricing;
pub mod store;

use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// One route as listed by `GET /api/pricing` (`endpoints`).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Endpoint {
    /// HTTP method.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// Whether the route charges.
    pub priced: bool,
    /// `none`, `owner` (API key), `drop_token` / `handoff_token` (the token in the path) or `admin`.
    pub auth: &'static str,
}

const fn ep(method: &'static str, path: &'static str, priced: bool, auth: &'static str) -> Endpoint {
    Endpoint { method, path, priced, auth }
}

/// Every public route of this server.
pub const ENDPOINTS: &[Endpoint] = &[
    ep("GET", "/healthz", false, "none"),
    ep("GET", "/readyz", false, "none"),
    ep("GET", "/metrics", false, "none"),
    ep("GET", "/api/pricing", false, "none"),
    ep("GET", "/api/quote", false, "none"),
    ep("POST", "/api/store", true, "owner"),
    ep("GET", "/api/download/{lease_id}", false, "owner"),
    ep("HEAD", "/api/download/{lease_id}", false, "owner"),
    ep("DELETE", "/api/store/{lease_id}", false, "owner"),
    ep("POST", "/api/mailbox", true, "owner"),
    ep("POST", "/api/mailbox/{drop_token}/drop", false, "drop_token"),
    ep("GET", "/api/mailbox/{lease_id}/messages", false, "owner"),
    ep("GET", "/api/mailbox/{lease_id}/messages/{message_id}", false, "owner"),
    ep("DELETE", "/api/mailbox/{lease_id}/messages/{message_id}", false, "owner"),
    ep("GET", "/api/mailbox/{lease_id}/events", false, "owner"),
    ep("DELETE", "/api/mailbox/{lease_id}", false, "owner"),
    ep("POST", "/api/checkpoint", true, "owner"),
    ep("GET", "/api/checkpoint/{workflow_id}", false, "owner"),
    ep("PUT", "/api/checkpoint/{workflow_id}", false, "owner"),
    ep("DELETE", "/api/checkpoint/{workflow_id}", false, "owner"),
    ep("GET", "/api/checkpoint/{workflow_id}/versions", false, "owner"),
    ep("GET", "/api/checkpoint/{workflow_id}/versions/{n}", false, "owner"),
    ep("POST", "/api/handoff/{lease_id}", false, "owner"),
    ep("GET", "/api/handoffs", false, "owner"),
    ep("GET", "/api/handoffs/{id}", false, "owner"),
    ep("DELETE", "/api/handoffs/{id}", false, "owner"),
    ep("GET", "/api/claim/{token}", false, "handoff_token"),
    ep("HEAD", "/api/claim/{token}", false, "handoff_token"),
    ep("GET", "/api/leases", false, "owner"),
    ep("GET", "/api/leases/{lease_id}", false, "owner"),
    ep("DELETE", "/api/leases/{lease_id}", false, "owner"),
    ep("GET", "/api/leases/{lease_id}/deliveries", false, "owner"),
    ep("GET", "/v1/account", false, "owner"),
    ep("GET", "/v1/account/ledger", false, "owner"),
    ep("GET", "/v1/account/api-keys", false, "owner"),
    ep("POST", "/v1/account/api-keys", false, "owner"),
    ep("DELETE", "/v1/account/api-keys/{prefix}", false, "owner"),
    ep("POST", "/admin/accounts", false, "admin"),
    ep("GET", "/admin/accounts/{account_id}", false, "admin"),
    ep("POST", "/admin/accounts/{account_id}/credits", false, "admin"),
];

/// All routes, without middleware.
pub fn all() -> Router<AppState> {
    Router::new()
        .merge(ops::router())
        .merge(pricing::router())
        .merge(account::router())
        .merge(admin::router())
        .merge(store::router())
        .merge(mailbox::router())
        .merge(checkpoint::router())
        .merge(handoff::router())
        .merge(claim::router())
        .merge(leases::router())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed")
        })
}
