//! `GET|HEAD /api/claim/{token}` (SPEC §7): no auth. A `GET` takes a slot, streams the
//! lease's content and counts the claim only when the body was handed over in full; a
//! broken transfer gives its slot back. `HEAD` and link-preview bots consume nothing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use leasehold_core::blob::ByteStream;
use leasehold_core::checkpoint;
use leasehold_core::handoff::{self, Refusal, Slot};
use leasehold_core::leases::{self, Variant};
use leasehold_core::time::rfc3339;
use leasehold_entities::{handoff as handoff_row, lease, storage_object};
use sea_orm::EntityTrait;

use super::store::content_disposition;
use crate::error::{ApiError, put_header};
use crate::extract::HandoffPath;
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::views::version_headers;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/api/claim/{token}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(claim))
}

/// The API's refusal of a claim (also what `/mcp` says when a claim's `HEAD` is refused).
pub(crate) fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::Revoked => ApiError::new(StatusCode::GONE, "handoff_revoked", "this handoff has been revoked"),
        Refusal::Expired => ApiError::new(StatusCode::GONE, "handoff_expired", "this handoff has expired"),
        Refusal::Exhausted => {
            ApiError::new(StatusCode::GONE, "handoff_exhausted", "every claim of this handoff is used")
        }
        Refusal::InProgress => ApiError::new(
            StatusCode::CONFLICT,
            "claim_in_progress",
            "another claim of this handoff is being transferred; try again when it ends",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("5")),
    }
}

fn is_bot(state: &AppState, headers: &HeaderMap) -> bool {
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    !ua.is_empty() && state.config.link_preview_bots.iter().any(|bot| ua.contains(bot.as_str()))
}

/// What the claim will send, prepared before a slot is taken.
struct Content {
    headers: HeaderMap,
    /// Exact length, when known before sending.
    length: Option<u64>,
    source: Source,
}

enum Source {
    Blob(String),
    Mailbox { lease_id: String, last_seq: i64 },
}

/// Every answer of a claim URL, refusals included, carries the no-store, no-referrer and
/// nosniff headers of a success.
#[utoipa::path(method(get, head),
    path = "/api/claim/{token}",
    tag = "claim",
    summary = "Claims a handed-off lease's content (link-preview bots get a page)",
    extensions(("x-auth" = json!("handoff_token"))),
    params(("token" = String, Path, description = "The handoff token (64 hex)")),
    responses((status = 200, description = "The content"), (status = 404, description = "`handoff_not_found`", body = ErrorBody), (status = 409, description = "`claim_in_progress`", body = ErrorBody), (status = 410, description = "`handoff_expired`, `handoff_revoked`, `handoff_exhausted`, `lease_expired`, `lease_deleted`", body = ErrorBody)))]
async fn claim(
    State(state): State<AppState>,
    token: Result<HandoffPath, ApiError>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let answered = match token {
        Ok(HandoffPath(token)) => answer(state, token, method, headers).await,
        Err(undecodable) => Err(undecodable),
    };
    answered.map_err(|e| {
        e.with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
            .with_header(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"))
            .with_header(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"))
    })
}

async fn answer(state: AppState, token: String, method: Method, headers: HeaderMap) -> Result<Response, ApiError> {
    let not_found = ApiError::handoff_not_found;
    let h = handoff::find_by_token(&state.db, &token).await?.ok_or_else(not_found)?;
    let now = state.now();
    let lease = lease::Entity::find_by_id(&h.lease_id).one(&state.db).await?.ok_or_else(not_found)?;
    if is_bot(&state, &headers) {
        return Ok(preview(&h, &lease, now));
    }
    match handoff::refusal(&h, now) {
        Some(r) if r != Refusal::InProgress => return Err(refused(r)),
        _ => {}
    }
    leases::check_serving(&lease, now).map_err(ApiError::gone)?;
    let content = prepare(&state, &lease).await?;
    if method == Method::HEAD {
        if let Some(r) = handoff::refusal(&h, now) {
            return Err(refused(r));
        }
        let remaining = h.max_claims - h.claims_completed - h.claims_in_flight;
        return Ok((common_headers(&h, &lease, remaining, content.headers), Body::empty()).into_response());
    }
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let slot = handoff::acquire(&state.db, &h.id, user_agent, now).await?.map_err(refused)?;
    let remaining = slot.handoff.max_claims - slot.handoff.claims_completed - slot.handoff.claims_in_flight;
    let transfer = Transfer::start(state.clone(), &slot, content.length);
    let stream = match open(&state, content.source).await {
        Ok(stream) => stream,
        Err(e) => {
            drop(transfer);
            return Err(e);
        }
    };
    let body = Body::from_stream(Counted::new(stream, transfer));
    Ok((common_headers(&h, &lease, remaining, content.headers), body).into_response())
}

/// The headers every claim answer carries.
fn common_headers(h: &handoff_row::Model, lease: &lease::Model, remaining: i64, mut headers: HeaderMap) -> HeaderMap {
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-claims-remaining", remaining.max(0).to_string());
    put("x-lease-expires-at", rfc3339(lease.expires_at));
    put("x-lease-id", lease.id.clone());
    put("x-handoff-id", h.id.clone());
    put("cache-control", "no-store".into());
    put("referrer-policy", "no-referrer".into());
    put("x-content-type-options", "nosniff".into());
    headers
}

/// Headers and source of the lease's content.
async fn prepare(state: &AppState, lease: &lease::Model) -> Result<Content, ApiError> {
    match lease.variant {
        Variant::Storage => {
            let object = storage_object::Entity::find_by_id(&lease.id)
                .one(&state.db)
                .await?
                .ok_or_else(|| ApiError::internal(&"storage lease without object"))?;
            let mut headers = HeaderMap::new();
            put_header(&mut headers, header::CONTENT_TYPE, object.content_type.clone())?;
            put_header(&mut headers, header::CONTENT_DISPOSITION, content_disposition(&object.file_name))?;
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(object.size_bytes));
            let length = u64::try_from(object.size_bytes).ok();
            Ok(Content { headers, length, source: Source::Blob(object.blob_key) })
        }
        Variant::Checkpoint => {
            let number = lease.current_version.unwrap_or(1);
            let v = checkpoint::version(&state.db, &lease.id, number)
                .await?
                .ok_or_else(|| ApiError::internal(&"current version missing"))?;
            let mut headers = version_headers(lease, &v)?;
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(v.size_bytes));
            let length = u64::try_from(v.size_bytes).ok();
            Ok(Content { headers, length, source: Source::Blob(v.blob_key) })
        }
        _ => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let source = Source::Mailbox { lease_id: lease.id.clone(), last_seq: lease.next_seq - 1 };
            Ok(Content { headers, length: None, source })
        }
    }
}

async fn open(state: &AppState, source: Source) -> Result<ByteStream, ApiError> {
    match source {
        Source::Blob(key) => Ok(state.blobs.get(&key, None).await?),
        Source::Mailbox { lease_id, last_seq } => {
            Ok(crate::claim_json::stream(state.db.clone(), state.blobs.clone(), lease_id, last_seq))
        }
    }
}

/// The page link-preview bots get: what the link is, nothing consumed.
fn preview(h: &handoff_row::Model, lease: &lease::Model, now: i64) -> Response {
    let status = match handoff::refusal(h, now) {
        None | Some(Refusal::InProgress) => "ready to be claimed",
        Some(_) => "no longer claimable",
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
         <title>Leasehold handoff</title><meta property=\"og:title\" content=\"Leasehold handoff\">\
         <meta property=\"og:description\" content=\"A {variant} lease handed off; {status}.\"></head>\
         <body><p>A {variant} lease handed off through Leasehold; {status}. Open this link with the agent \
         it was meant for to claim it.</p></body></html>",
        variant = lease.variant
    );
    let remaining = h.max_claims - h.claims_completed - h.claims_in_flight;
    (common_headers(h, lease, remaining, HeaderMap::new()), Html(page)).into_response()
}

/// A transfer holding a slot: counted when the whole body is handed over, given back
/// otherwise (dropped early, or failed); a heartbeat shows it alive meanwhile.
struct Transfer {
    state: AppState,
    claim_id: String,
    handoff_id: String,
    expected: Option<u64>,
    sent: u64,
    done: bool,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Transfer {
    fn start(state: AppState, slot: &Slot, expected: Option<u64>) -> Self {
        let (db, clock, claim_id) = (state.db.clone(), state.clock.clone(), slot.claim_id.clone());
        let heartbeat = tokio::spawn(async move {
            let every = std::time::Duration::from_millis(u64::try_from(handoff::HEARTBEAT_MS).unwrap_or(60_000));
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = handoff::heartbeat(&db, &claim_id, clock.now_ms()).await {
                    tracing::warn!(error = %e, "claim heartbeat failed");
                }
            }
        });
        Self {
            state,
            claim_id: slot.claim_id.clone(),
            handoff_id: slot.handoff.id.clone(),
            expected,
            sent: 0,
            done: false,
            heartbeat,
        }
    }

    /// Settles the slot once: the future counts the claim (`whole`) or gives the slot back,
    /// and resolves to true only if the count is committed; `None` if it was settled
    /// already.
    fn settle(&mut self, whole: bool) -> Option<futures_util::future::BoxFuture<'static, bool>> {
        if std::mem::replace(&mut self.done, true) {
            return None;
        }
        self.heartbeat.abort();
        let (state, claim_id, handoff_id) = (self.state.clone(), self.claim_id.clone(), self.handoff_id.clone());
        let bytes = i64::try_from(self.sent).unwrap_or(i64::MAX);
        state.metrics.bytes_out.inc_by(self.sent);
        Some(Box::pin(async move {
            if !whole {
                tracing::info!(handoff.id = %handoff_id, bytes_sent = bytes, "claim broke off; slot given back");
                give_back(state, claim_id, handoff_id, bytes).await;
                return false;
            }
            match handoff::complete(&state.db, &claim_id, &handoff_id, bytes, state.now()).await {
                Ok(Some(c)) => {
                    tracing::info!(handoff.id = %handoff_id, claims_completed = c.handoff.claims_completed, deleted_lease = c.deleted_lease, "claim completed");
                    true
                }
                Ok(None) => {
                    tracing::warn!(handoff.id = %handoff_id, "claim's slot was taken back meanwhile; the transfer is cut short");
                    false
                }
                Err(e) => {
                    tracing::error!(handoff.id = %handoff_id, error = %e, "could not count a claim; the transfer is cut short");
                    tokio::spawn(give_back(state, claim_id, handoff_id, bytes));
                    false
                }
            }
        }))
    }
}

/// Gives a slot back, retrying while the database is unreachable; after `STALE_MS` the
/// slot is taken back as abandoned anyway. A claim whose count did commit after all is
/// left alone (only an in-flight claim can be given back).
async fn give_back(state: AppState, claim_id: String, handoff_id: String, bytes: i64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(handoff::STALE_MS.unsigned_abs());
    loop {
        match handoff::release(&state.db, &claim_id, &handoff_id, bytes, state.now()).await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                tracing::error!(handoff.id = %handoff_id, error = %e, "could not give a claim's slot back; it frees as abandoned");
                return;
            }
            Err(e) => {
                tracing::warn!(handoff.id = %handoff_id, error = %e, "could not give a claim's slot back yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        // A body dropped before its end: the transfer broke.
        if let Some(settle) = self.settle(false) {
            tokio::spawn(settle);
        }
    }
}

/// The body stream of a claim, counting what it hands over. The claim is counted (and
/// committed) before the body's last piece is handed over — the final chunk of a body of
/// known length, or the end of a chunked one — so a claimer that has the whole body also
/// sees its claim counted. If the count cannot be committed, the last piece is never
/// sent: the stream fails and the client holds a broken body (fail closed).
struct Counted {
    inner: ByteStream,
    transfer: Transfer,
    /// The count being committed, and the chunk held back until it is.
    settling: Option<(futures_util::future::BoxFuture<'static, bool>, Option<Bytes>)>,
    ended: bool,
}

impl Counted {
    fn new(inner: ByteStream, transfer: Transfer) -> Self {
        Self { inner, transfer, settling: None, ended: false }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // The client went away while the count was committing: let the commit finish.
        if let Some((settle, _)) = self.settling.take() {
            tokio::spawn(settle);
        }
    }
}

impl Stream for Counted {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some((settle, held)) = this.settling.as_mut() {
            let counted = ready!(settle.as_mut().poll(cx));
            let held = held.take();
            this.settling = None;
            if !counted {
                return Poll::Ready(Some(Err(io::Error::other("the claim could not be counted"))));
            }
            return Poll::Ready(held.map(Ok));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        let item = ready!(this.inner.poll_next_unpin(cx));
        let expected = this.transfer.expected;
        match item {
            Some(Ok(chunk)) => {
                this.transfer.sent += chunk.len() as u64;
                if expected.is_some_and(|n| this.transfer.sent >= n) {
                    this.ended = true;
                    if let Some(settle) = this.transfer.settle(true) {
                        this.settling = Some((settle, Some(chunk)));
                        return self.poll_next(cx);
                    }
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(e)) => {
                this.ended = true;
                if let Some(settle) = this.transfer.settle(false) {
                    tokio::spawn(settle);
                }
                Poll::Ready(Some(Err(e)))
            }
            None => {
                this.ended = true;
                let whole = expected.is_none_or(|n| this.transfer.sent >= n);
                match this.transfer.settle(whole) {
                    Some(settle) => {
                        this.settling = Some((settle, None));
                        self.poll_next(cx)
                    }
                    None => Poll::Ready(None),
                }
            }
        }
    }
}
