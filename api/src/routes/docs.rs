//! `GET /api/openapi.json` and `GET /llms.txt`: the API described, from one document
//! (`crate::openapi`). No auth.

use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// `/api/openapi.json`, `/llms.txt`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json)).routes(routes!(llms_txt))
}

/// The OpenAPI 3.1 document of every route.
#[utoipa::path(get, path = "/api/openapi.json", tag = "docs", extensions(("x-auth" = json!("none"))),
    responses((status = 200, description = "OpenAPI 3.1 document", body = Value)))]
async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}

/// The API in plain text for agents.
#[utoipa::path(get, path = "/llms.txt", tag = "docs", extensions(("x-auth" = json!("none"))),
    responses((status = 200, description = "Plain text", body = String, content_type = "text/plain")))]
async fn llms_txt() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], crate::openapi::llms_txt())
}
