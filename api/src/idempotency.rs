//! `Idempotency-Key` on creating POSTs: claim, replay, or refuse (SPEC §2).

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use leasehold_core::idempotency::{self, Claim};
use leasehold_core::secretbox::SecretBox;

use crate::error::ApiError;
use crate::extract::header_text;
use crate::state::AppState;

/// Outcome of looking at a request's `Idempotency-Key`.
pub enum Start {
    /// Do the work; `Some(claim)` must be completed in the committing transaction or
    /// released on failure.
    Proceed(Option<Held>),
    /// Answer with this (a replay) without doing anything.
    Respond(Response),
}

/// Claims the request's key (if any) in `scope` for a request defined by `parts`.
pub async fn start(state: &AppState, headers: &HeaderMap, scope: &str, parts: &[&str]) -> Result<Start, ApiError> {
    const H: &str = "Idempotency-Key";
    let Some(key) = header_text(headers, H)? else { return Ok(Start::Proceed(None)) };
    if !idempotency::valid_key(key) {
        return Err(ApiError::invalid_header(H, "must be 1 to 255 printable ASCII characters"));
    }
    let fingerprint = idempotency::fingerprint(parts);
    match idempotency::claim(&state.db, scope, key, &fingerprint, state.now()).await? {
        Claim::Fresh(id) => Ok(Start::Proceed(Some(Held::new(state, id)))),
        Claim::Replay { status, body } => Ok(Start::Respond(replay(status, &open(state, &body)?))),
        Claim::Mismatch => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        )),
        Claim::InProgress => Err(ApiError::idempotency_in_progress()),
    }
}

/// A `pending` claim held by this request: its heartbeat runs until the value is dropped
/// (when the request has completed or released it, or its task ended), so a retry can tell
/// a live holder (`409 idempotency_in_progress`) from a crashed one (taken over). Derefs
/// to the claim id.
pub struct Held {
    id: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Held {
    fn new(state: &AppState, id: String) -> Self {
        let (db, clock, claim) = (state.db.clone(), state.clock.clone(), id.clone());
        let heartbeat = tokio::spawn(async move {
            let every = std::time::Duration::from_millis(idempotency::HEARTBEAT_MS.unsigned_abs());
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = idempotency::heartbeat(&db, &claim, clock.now_ms()).await {
                    tracing::warn!(error = %e, "idempotency claim heartbeat failed");
                }
            }
        });
        Self { id, heartbeat }
    }
}

impl std::ops::Deref for Held {
    type Target = str;

    fn deref(&self) -> &str {
        &self.id
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Releases a claim after a failed request (logged, never fails the response).
pub async fn release(state: &AppState, claim: Option<&str>) {
    if let Some(id) = claim
        && let Err(e) = idempotency::release(&state.db, id).await
    {
        tracing::warn!(error = %e, "could not release an idempotency claim; a retry takes it over once its heartbeat is stale");
    }
}

/// Context of sealed idempotent responses (those that carry a secret, such as a drop URL).
pub const SEALED_CONTEXT: &str = "idempotency-response";

/// Seals a response body that carries a secret before it is stored for replays.
pub fn seal(state: &AppState, body: &str) -> String {
    state.secrets.seal(SEALED_CONTEXT, body)
}

fn open(state: &AppState, body: &str) -> Result<String, ApiError> {
    if SecretBox::is_sealed(body) {
        state.secrets.open(SEALED_CONTEXT, body).map_err(|e| ApiError::internal(&e))
    } else {
        Ok(body.to_owned())
    }
}

/// The stored response again, with `Idempotent-Replayed: true` and the lease headers.
fn replay(status: u16, body: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("true"));
    headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(body) {
        for (field, header) in [("lease_id", "x-lease-id"), ("expires_at", "x-lease-expires-at")] {
            if let Some(v) = json[field].as_str().and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert(HeaderName::from_static(header), v);
            }
        }
    }
    (status, headers, body.to_owned()).into_response()
}
