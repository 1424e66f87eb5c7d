//! Every route, one module per resource, each exporting `router()`.

pub mod account;
pub mod admin;
pub mod auth;
pub mod checkpoint;
pub mod checkpoint_versions;
pub mod claim;
pub mod docs;
pub mod drop;
pub mod handoff;
pub mod leases;
pub mod mailbox;
pub mod mailbox_events;
pub mod ops;
pub mod pricing;
pub mod store;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route, each declared once with its OpenAPI operation (`utoipa_axum::routes!`):
/// the router and the document (`crate::openapi`) come from this one declaration.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(ops::router())
        .merge(docs::router())
        .merge(pricing::router())
        .merge(account::router())
        .merge(auth::router())
        .merge(admin::router())
        .merge(store::router())
        .merge(mailbox::router())
        .merge(checkpoint::router())
        .merge(checkpoint_versions::router())
        .merge(handoff::router())
        .merge(claim::router())
        .merge(leases::router())
        .merge(crate::mcp::card::router())
}

/// All routes, without middleware.
pub fn all() -> Router<AppState> {
    let (router, _) = api().split_for_parts();
    router.fallback(|| async { ApiError::not_found() }).method_not_allowed_fallback(|| async {
        ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed")
    })
}
