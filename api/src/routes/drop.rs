//! `POST /api/mailbox/{drop_token}/drop` (SPEC §6.2): no auth, any content type, rate
//! limited per client IP and per mailbox; room and `seq` are taken atomically in SQL when
//! the drop commits, after its bytes are stored.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use leasehold_core::blob::{BlobError, ByteStream};
use leasehold_core::ids;
use leasehold_core::leases;
use leasehold_core::mailbox::{self, Dropped, NewMessage, PendingDrop};
use leasehold_entities::{lease, mailbox_message};
use sea_orm::DatabaseTransaction;

use crate::after_commit::Committed;
use crate::client_ip::client_ip;
use crate::error::ApiError;
use crate::extract::{ApiPath, BodyError, content_type, optional_u64, read_limited};
use crate::metered;
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::views;
use crate::write::{self, Creation, Idempotent, Payer, Reply, Scope, Unread};

/// Mailboxes whose messages may be this large are read into memory (one allocation per
/// drop, bounded by the cap); larger caps stream into the blob store.
const BUFFERED_MAX: i64 = 1024 * 1024;

fn rate_limited(retry_ms: u64, what: &str) -> ApiError {
    let seconds = retry_ms.div_ceil(1000).max(1);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", format!("too many drops {what}; retry later"))
        .with("retry_after_seconds", seconds)
        .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
}

fn empty_message() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "empty_message", "a message must have at least one byte")
}

fn message_too_large(max: i64) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "message_too_large", format!("messages may be at most {max} bytes"))
        .with("max_message_bytes", max)
}

fn mailbox_full(lease: &lease::Model) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "mailbox_full", "the mailbox has no room for this message")
        .with("capacity_bytes", lease.capacity_bytes)
        .with("max_messages", lease.max_messages)
}

/// The handler.
#[utoipa::path(post,
    path = "/api/mailbox/{id}/drop",
    tag = "mailbox",
    summary = "Drops a message into a mailbox (no auth: the drop token is the capability)",
    extensions(("x-auth" = json!("drop_token"))),
    params(("id" = String, Path, description = "The drop token `drp_<64 hex>`"), ("Content-Type" = Option<String>, Header, description = "Optional; kept with the message"), ("Idempotency-Key" = Option<String>, Header, description = "Optional; 1..=255 printable ASCII. The same key from the same owner within 24 h replays the first response (`Idempotent-Replayed: true`); with a different request → 422 `idempotency_key_reused`")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The message, 1..=max_message_bytes"),
    responses((status = 201, description = "The message", body = Value), (status = 400, description = "`empty_message`, `bad_request`, `invalid_header`", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody), (status = 409, description = "`idempotency_in_progress`", body = ErrorBody), (status = 413, description = "`message_too_large`, `mailbox_full`", body = ErrorBody), (status = 422, description = "`idempotency_key_reused`", body = ErrorBody), (status = 429, description = "`rate_limited` (with `Retry-After`)", body = ErrorBody)))]
pub async fn drop_message(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now = state.now();
    let ip = client_ip(peer.ip(), &headers, &state.config.trusted_proxies);
    state.drop_limits.per_ip.take(&ip.to_string(), now).map_err(|ms| rate_limited(ms, "from this address"))?;
    let lease = state.drop_tokens.find(&state.db, &token, now, false).await?.ok_or_else(ApiError::not_found)?;
    leases::check_serving(&lease, now).map_err(ApiError::gone)?;
    state.drop_limits.per_mailbox.take(&lease.id, now).map_err(|ms| rate_limited(ms, "into this mailbox"))?;
    let content_type = content_type(&headers, "application/octet-stream")?;
    let declared = optional_u64(&headers, "Content-Length")?.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    // The cached row may be a second old: confirm a refusal against the database.
    let lease = match precheck(&lease, declared) {
        Ok(()) => lease,
        Err(_) => {
            let fresh = state.drop_tokens.find(&state.db, &token, now, true).await?.ok_or_else(ApiError::not_found)?;
            leases::check_serving(&fresh, now).map_err(ApiError::gone)?;
            precheck(&fresh, declared)?;
            fresh
        }
    };
    let length = declared.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let parts = [content_type.as_str(), &length];
    let idempotent = Idempotent { headers: &headers, scope: Scope::Drop(&lease.id), parts: &parts };
    let id = ids::message_id();
    let key = mailbox::message_key(&lease.id, &id);
    let message = NewMessage { id, content_type: content_type.clone(), size_bytes: 0, sha256: String::new() };
    let creation = NewDrop { lease: lease.clone(), key, message, body: Unread::new(body) };
    write::create(&state, Some(idempotent), Payer::Free, creation).await
}

/// A drop on its way through the write pipeline. Without an `Idempotency-Key` it commits
/// with whatever other drops are waiting (group commit); with one, in the transaction that
/// stores its replay.
struct NewDrop {
    lease: lease::Model,
    key: String,
    message: NewMessage,
    body: Unread<Body>,
}

impl NewDrop {
    fn pending(&self, now: i64) -> PendingDrop {
        PendingDrop { lease_id: self.lease.id.clone(), message: self.message.clone(), now }
    }

    fn outcome(&self, dropped: Dropped) -> Result<mailbox_message::Model, ApiError> {
        match dropped {
            Dropped::Stored(row) => Ok(row),
            Dropped::Full => Err(mailbox_full(&self.lease)),
            Dropped::Gone(gone) => Err(ApiError::gone(gone)),
        }
    }
}

impl Creation for NewDrop {
    type Created = mailbox_message::Model;

    async fn stage(&mut self, state: &AppState) -> Result<(), ApiError> {
        let body = self.body.take()?;
        let max = self.lease.max_message_bytes.unwrap_or(0);
        let (size, sha256) = if max <= BUFFERED_MAX {
            let bytes = read_bounded(body, max).await?;
            let sha = leasehold_core::tokens::sha256_hex(&bytes);
            let size = bytes.len();
            state.blobs.put_bytes(&self.key, bytes).await?;
            (size as u64, sha)
        } else {
            store_streamed(state, &self.key, body, max).await?
        };
        state.metrics.bytes_in.inc_by(size);
        self.message.size_bytes = i64::try_from(size).unwrap_or(i64::MAX);
        self.message.sha256 = sha256;
        Ok(())
    }

    async fn write(&self, txn: &DatabaseTransaction, now: i64) -> Result<Self::Created, ApiError> {
        let mut outcomes = mailbox::commit_drops_in(txn, &[self.pending(now)]).await?;
        self.outcome(outcomes.remove(0))
    }

    async fn commit_alone(&self, state: &AppState, now: i64) -> Result<Self::Created, ApiError> {
        self.outcome(state.drops.commit(self.pending(now)).await?)
    }

    fn respond(&self, _state: &AppState, row: &Self::Created) -> Reply {
        Reply {
            status: StatusCode::CREATED,
            headers: views::lease_headers(&self.lease),
            body: views::message_dropped(row),
            secret: false,
        }
    }

    async fn discard(&self, state: &AppState) {
        if let Err(e) = state.blobs.delete(&self.key).await {
            tracing::error!(lease.id = %self.lease.id, error = %e, "could not remove the bytes of a refused drop");
        }
    }

    /// Wakes the mailbox's long polls and event streams on this pod (other pods hear the
    /// commit's notification) and announces its webhook event.
    async fn committed(&self, state: &AppState, _row: &Self::Created) {
        state.wake.notify(&self.lease.id);
        if self.lease.webhook_url.is_some() {
            state.after_commit.emit(Committed::WebhookEvents { lease_id: self.lease.id.as_str().into() });
        }
    }
}

/// Refuses, before anything is stored, a drop that cannot fit: an empty or oversize
/// declared body, or no room left. The commit decides for real.
fn precheck(lease: &lease::Model, declared: Option<i64>) -> Result<(), ApiError> {
    let max = lease.max_message_bytes.unwrap_or(0);
    let (used, capacity) = (lease.used_bytes, lease.capacity_bytes.unwrap_or(0));
    match declared {
        Some(0) => Err(empty_message()),
        Some(n) if n > max => Err(message_too_large(max)),
        Some(n) if used.saturating_add(n) > capacity => Err(mailbox_full(lease)),
        _ if lease.message_count >= lease.max_messages.unwrap_or(0) || used >= capacity => Err(mailbox_full(lease)),
        _ => Ok(()),
    }
}

/// Reads a body of 1..=`max` bytes into memory.
async fn read_bounded(body: Body, max: i64) -> Result<Bytes, ApiError> {
    match read_limited(body, u64::try_from(max).unwrap_or(0)).await {
        Ok(bytes) if bytes.is_empty() => Err(empty_message()),
        Ok(bytes) => Ok(bytes),
        Err(BodyError::TooLarge) => Err(message_too_large(max)),
        Err(BodyError::Interrupted) => Err(ApiError::bad_request("the message body was interrupted")),
    }
}

/// Streams a body of 1..=`max` bytes into the blob store, hashing it on the way.
async fn store_streamed(state: &AppState, key: &str, body: Body, max: i64) -> Result<(u64, String), ApiError> {
    let stream: ByteStream = Box::pin(body.into_data_stream().map(|r| r.map_err(std::io::Error::other)));
    let (metered, meter) = metered::meter(stream, 1, u64::try_from(max).unwrap_or(0));
    let stored = state.blobs.put_stream(key, Box::pin(metered)).await;
    let (verdict, sha) = meter.finish().await.map_err(|e| ApiError::internal(&e))?;
    match stored {
        Ok(size) => Ok((size, sha)),
        Err(BlobError::Source(_)) if verdict.too_long => Err(message_too_large(max)),
        Err(BlobError::Source(_)) if verdict.too_short => Err(empty_message()),
        Err(BlobError::Source(_)) => Err(ApiError::bad_request("the message body was interrupted")),
        Err(e) => Err(e.into()),
    }
}
