//! Path segments: axum's `Path` answers a segment that does not decode (bad UTF-8 in its
//! percent-encoding, `/api/claim/%FF`) with a `text/plain` 400; these extractors answer
//! with the JSON envelope instead. A segment that cannot decode names nothing, so the
//! answer is the route's own 404: `not_found`, or `handoff_not_found` on handoff routes.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Path parameters; a segment that does not decode is `404 not_found`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await.map_err(|_| ApiError::not_found())?;
        Ok(Self(value))
    }
}

/// The one path parameter of a handoff route (its id or its token); a segment that does
/// not decode is `404 handoff_not_found`.
pub struct HandoffPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for HandoffPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) =
            Path::<String>::from_request_parts(parts, state).await.map_err(|_| ApiError::handoff_not_found())?;
        Ok(Self(value))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "one-route routers that test an extractor, not API routes")]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn answer(router: Router, uri: &str) -> (StatusCode, String, String) {
        let res = router.oneshot(Request::get(uri).body(Body::empty()).expect("request")).await.expect("infallible");
        let ct = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        (status, ct, body["code"].as_str().unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn a_segment_that_does_not_decode_answers_the_json_404_of_its_route() {
        let plain = Router::new().route("/x/{id}", get(|ApiPath(id): ApiPath<String>| async move { id }));
        let handoff = Router::new().route("/h/{id}", get(|HandoffPath(id): HandoffPath| async move { id }));
        let pair =
            Router::new().route("/p/{a}/{b}", get(|ApiPath((a, b)): ApiPath<(String, String)>| async move { a + &b }));
        assert_eq!(
            answer(plain.clone(), "/x/%FF").await,
            (StatusCode::NOT_FOUND, "application/json".into(), "not_found".into())
        );
        assert_eq!(
            answer(handoff, "/h/%FF").await,
            (StatusCode::NOT_FOUND, "application/json".into(), "handoff_not_found".into())
        );
        assert_eq!(
            answer(pair, "/p/a/%C3").await,
            (StatusCode::NOT_FOUND, "application/json".into(), "not_found".into())
        );
        assert_eq!(answer(plain, "/x/ok").await.0, StatusCode::OK);
    }
}
