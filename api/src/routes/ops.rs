//! Health, readiness and metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use leasehold_entities::lease;
use sea_orm::{EntityTrait, ExprTrait, FromQueryResult, QuerySelect};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

/// `/healthz`, `/readyz`, `/metrics`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", extensions(("x-auth" = json!("none"))),
    responses((status = 200, description = "Alive", body = Value)))]
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Readiness: the database and the blob store answer.
#[utoipa::path(get, path = "/readyz", tag = "ops", extensions(("x-auth" = json!("none"))),
    responses((status = 200, description = "Ready", body = Value)))]
async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if let Err(e) = leasehold_core::db::ping(&state.db).await {
        let line = leasehold_core::db::describe(&state.config.database_url, &e);
        tracing::warn!(reason = %line, error = %e, "not ready: database");
        return Err(ApiError::unavailable(line));
    }
    if let Err(e) = state.blobs.check().await {
        tracing::warn!(reason = %e, "not ready: blob store");
        return Err(ApiError::unavailable(e.to_string()));
    }
    Ok(axum::Json(json!({ "status": "ok", "database": "ok", "blob_store": state.blobs.kind() })))
}

#[derive(FromQueryResult)]
struct LeaseCount {
    variant: leasehold_core::leases::Variant,
    state: leasehold_core::leases::LeaseState,
    count: i64,
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "ops", extensions(("x-auth" = json!("none"))),
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text")))]
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let counts = lease::Entity::find()
        .select_only()
        .column(lease::Column::Variant)
        .column(lease::Column::State)
        .column_as(sea_orm::sea_query::Expr::col(lease::Column::Id).count(), "count")
        .group_by(lease::Column::Variant)
        .group_by(lease::Column::State)
        .into_model::<LeaseCount>()
        .all(&state.db)
        .await?;
    for variant in leasehold_core::leases::Variant::ALL {
        for lease_state in leasehold_core::leases::LeaseState::ALL {
            let n = counts.iter().find(|c| c.variant == variant && c.state == lease_state).map_or(0, |c| c.count);
            state.metrics.set_leases(variant.as_str(), lease_state.as_str(), n);
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render()))
}
