//! The Leasehold HTTP API: `router(state)` builds every route with its middleware and
//! `serve(listener, state, shutdown)` runs it until `shutdown` resolves.

pub mod after_commit;
pub mod api_json;
pub mod body_end;
pub mod bootstrap;
pub mod claim_json;
pub mod client_ip;
pub mod conn;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod mcp;
pub mod metered;
pub mod metrics;
pub mod openapi;
pub mod path;
pub mod query;
pub mod range;
pub mod redact;
pub mod routes;
pub mod state;
pub mod views;
pub mod wake;
pub mod webhook_headers;
pub mod write;
pub mod x402;

use std::future::Future;

use axum::Router;
use axum::http::{HeaderName, Request};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids are ULIDs, unless the client sent one.
#[derive(Clone, Copy)]
struct UlidRequestId;

impl MakeRequestId for UlidRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        ulid::Ulid::generate().to_string().parse().ok().map(RequestId::new)
    }
}

/// A response sent before the request body was read to its end (an early error, an
/// idempotent replay) makes hyper close the connection; say so with `Connection: close`,
/// so clients never reuse it for their next request.
async fn close_after_unread_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let (body, finished) = body_end::Tracked::new(body);
    let mut response = next.run(axum::extract::Request::from_parts(parts, axum::body::Body::new(body))).await;
    if !finished.load(std::sync::atomic::Ordering::Acquire) {
        response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// A client's `X-Request-Id` is kept only if it is `[A-Za-z0-9._-]{1,128}` (SPEC §10);
/// anything else could forge log lines, so it is dropped and a fresh id is made.
async fn sanitize_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let valid = |v: &axum::http::HeaderValue| {
        let b = v.as_bytes();
        (1..=128).contains(&b.len()) && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    };
    let headers = request.headers_mut();
    let values: Vec<_> = headers.get_all(&REQUEST_ID).iter().collect();
    if values.len() != 1 || !values.iter().all(|v| valid(v)) {
        headers.remove(&REQUEST_ID);
    }
    request
}

/// Every route with metrics, request ids and request logging.
pub fn router(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let route = req.extensions().get::<axum::extract::MatchedPath>().map_or("unmatched", |m| m.as_str());
        let path = redact::path(req.uri().path());
        tracing::info_span!("request", method = %req.method(), route, path = %path, request_id = %id)
    });
    let mcp = mcp::service(state.clone(), routes::all().with_state(state.clone()));
    routes::all()
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn(close_after_unread_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, UlidRequestId))
        .layer(axum::middleware::map_request(sanitize_request_id))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting and gives in-flight requests up
/// to the configured shutdown timeout to finish. The API alone: the process that composes
/// it with a worker (the embedded shape) wraps this.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.config.shutdown_timeout;
    let stop = state.shutting_down.clone();
    let http = state.config.http.clone();
    let app = router(state);
    let signalled = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        signalled.cancel();
    });
    let result = conn::serve(listener, app, &http, stop.clone(), grace).await;
    stop.cancel();
    result
}
