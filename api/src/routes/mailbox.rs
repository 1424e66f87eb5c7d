//! Mailbox leases (SPEC §6.2), owner side: create, read messages (cursor pages and long
//! poll), fetch and delete one message, delete the mailbox. Drops are in `drop.rs`, the
//! event stream in `mailbox_events.rs`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use axum::Json;
use leasehold_core::blob::BlobError;
use leasehold_core::leases::{self, Owner, Variant};
use leasehold_core::mailbox::{self, NewMailbox};
use leasehold_core::time::rfc3339;
use leasehold_core::{ids, tokens};
use leasehold_entities::lease;
use sea_orm::DatabaseTransaction;
use serde::Deserialize;
use serde_json::json;

use super::leases::{delete_variant, serving_lease};
use crate::error::{ApiError, put_header};
use crate::extract::{
    ApiPath, ApiQuery, LeaseIdPath, OwnerAuth, bad_parameter, duration_seconds, optional_u64, page_limit, required_u64,
    to_i64,
};
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::views::{self, lease_headers};
use crate::webhook_headers;
use crate::write::{self, Creation, Idempotent, Price, Reply, Scope};
use crate::x402::Buyer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// Largest `X-Max-Messages`.
pub const MAX_MESSAGES_LIMIT: u64 = 1_000_000;

/// `/api/mailbox…` (owner routes and the drop route share the `{id}` segment).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(remove))
        .routes(routes!(list))
        .routes(routes!(fetch, remove_message))
        .routes(routes!(super::mailbox_events::events))
        .routes(routes!(super::drop::drop_message).layer(axum::extract::DefaultBodyLimit::disable()))
}

struct Shape {
    capacity: u64,
    duration: u64,
    max_message_bytes: u64,
    max_messages: u64,
}

fn validate(state: &AppState, headers: &HeaderMap) -> Result<Shape, ApiError> {
    let limits = &state.config.limits;
    let capacity = required_u64(headers, "X-Capacity-Bytes")?;
    if capacity == 0 {
        return Err(ApiError::invalid_header("X-Capacity-Bytes", "must be at least 1"));
    }
    let duration = duration_seconds(headers, state)?;
    let max = limits.max_mailbox_capacity_bytes;
    if capacity > max {
        return Err(
            ApiError::payload_too_large(format!("a mailbox may hold at most {max} bytes")).with("max_bytes", max)
        );
    }
    let max_message_bytes =
        optional_u64(headers, "X-Max-Message-Bytes")?.unwrap_or_else(|| capacity.min(limits.default_max_message_bytes));
    if max_message_bytes == 0 || max_message_bytes > capacity {
        return Err(ApiError::invalid_header("X-Max-Message-Bytes", "must be between 1 and X-Capacity-Bytes"));
    }
    let max_messages = optional_u64(headers, "X-Max-Messages")?.unwrap_or(limits.default_max_messages);
    if max_messages == 0 || max_messages > MAX_MESSAGES_LIMIT {
        return Err(ApiError::invalid_header("X-Max-Messages", format!("must be between 1 and {MAX_MESSAGES_LIMIT}")));
    }
    Ok(Shape { capacity, duration, max_message_bytes, max_messages })
}

#[utoipa::path(post,
    path = "/api/mailbox",
    tag = "mailbox",
    summary = "Creates a mailbox for a duration",
    extensions(("x-auth" = json!("owner")), ("x-priced" = json!(true))),
    params(("X-Duration-Seconds" = u64, Header, description = "Required; whole seconds within the bounds of `/api/pricing` `duration_seconds`"), ("X-Capacity-Bytes" = u64, Header, description = "Required; 1..=`max_mailbox_capacity_bytes`"), ("X-Max-Message-Bytes" = Option<u64>, Header, description = "Optional; at most the capacity"), ("X-Max-Messages" = Option<u64>, Header, description = "Optional; 1..=1000000"), ("Idempotency-Key" = Option<String>, Header, description = "Optional; 1..=255 printable ASCII. The same key from the same owner within 24 h replays the first response (`Idempotent-Replayed: true`); with a different request → 422 `idempotency_key_reused`"), ("X-Webhook-Url" = Option<String>, Header, description = "Optional; an https URL (not private/loopback) that receives lease events"),("X-Webhook-Secret" = Option<String>, Header, description = "Optional; the HMAC key the webhook is signed with"),("X-Expiry-Warning-Seconds" = Option<u64>, Header, description = "Optional; seconds before expiry of the `lease.expiring` event")),
    responses((status = 201, description = "The mailbox with its drop URL", body = Value), (status = 400, description = "`bad_request`, `invalid_header` (names the `header`), `duration_out_of_range`, `webhook_url_forbidden`", body = ErrorBody), (status = 402, description = "`insufficient_balance` (with `required`)", body = ErrorBody), (status = 409, description = "`idempotency_in_progress` (with `Retry-After`)", body = ErrorBody), (status = 413, description = "`payload_too_large` (with `max_bytes`): `X-Capacity-Bytes` above `max_mailbox_capacity_bytes`", body = ErrorBody), (status = 422, description = "`idempotency_key_reused`", body = ErrorBody)))]
async fn create(State(state): State<AppState>, buyer: Buyer, headers: HeaderMap) -> Result<Response, ApiError> {
    let shape = validate(&state, &headers)?;
    let webhook = webhook_headers::read(&headers, &state.webhook_policy(), shape.duration).await?;
    let cost = to_i64(state.config.tariff.cost_micros(shape.capacity, shape.duration));
    let (owner, payer) = buyer.terms(&state, "/api/mailbox", "a Mailbox lease", cost)?;
    let numbers = [shape.capacity, shape.duration, shape.max_message_bytes, shape.max_messages].map(|n| n.to_string());
    let hook = webhook.fingerprint();
    let parts = [numbers[0].as_str(), &numbers[1], &numbers[2], &numbers[3], &hook];
    let idempotent = Idempotent { headers: &headers, scope: Scope::Mailbox(&owner), parts: &parts };
    let token = tokens::new_drop_token();
    let new = NewMailbox {
        lease_id: ids::lease_id(),
        capacity_bytes: to_i64(shape.capacity),
        max_message_bytes: to_i64(shape.max_message_bytes),
        max_messages: to_i64(shape.max_messages),
        duration_seconds: to_i64(shape.duration),
        cost_micros: cost,
        drop_token_hash: tokens::sha256_hex(token.as_bytes()),
        hook: webhook.hook(&state.secrets),
    };
    let creation =
        CreateMailbox { owner: owner.clone(), new, token, webhook_secret: webhook.shown_secret().map(str::to_owned) };
    write::create(&state, Some(idempotent), payer, creation).await
}

/// A Mailbox on its way through the write pipeline.
struct CreateMailbox {
    owner: Owner,
    new: NewMailbox,
    token: String,
    webhook_secret: Option<String>,
}

impl Creation for CreateMailbox {
    type Created = lease::Model;

    fn price(&self) -> Option<Price> {
        Some(Price { cost_micros: self.new.cost_micros, lease_id: self.new.lease_id.clone() })
    }

    async fn write(&self, txn: &DatabaseTransaction, now: i64) -> Result<lease::Model, ApiError> {
        Ok(mailbox::create(txn, &self.owner, self.new.clone(), now).await?)
    }

    /// The response carries the drop token (and a minted secret): its replay copy is
    /// sealed.
    fn respond(&self, state: &AppState, lease: &lease::Model) -> Reply {
        Reply {
            status: StatusCode::CREATED,
            headers: views::lease_headers(lease),
            body: views::mailbox_created(state, lease, &self.token, self.webhook_secret.as_deref()),
            secret: true,
        }
    }

    async fn committed(&self, _state: &AppState, lease: &lease::Model) {
        tracing::info!(lease.id = %lease.id, capacity_bytes = self.new.capacity_bytes, cost_micros = lease.cost_micros, "mailbox lease created");
    }
}

/// A serving Mailbox of the caller (404 for other variants).
pub async fn owned_mailbox(state: &AppState, auth: &OwnerAuth, id: &str) -> Result<lease::Model, ApiError> {
    let lease = serving_lease(state, &auth.owner(), id).await?;
    if lease.variant != Variant::Mailbox {
        return Err(ApiError::not_found());
    }
    Ok(lease)
}

#[derive(Deserialize)]
struct ListQuery {
    after: Option<i64>,
    limit: Option<u64>,
    wait: Option<u64>,
}

#[utoipa::path(get,
    path = "/api/mailbox/{id}/messages",
    tag = "mailbox",
    summary = "Lists messages; long-polls with `wait`",
    extensions(("x-auth" = json!("owner"))),
    params(("id" = String, Path, description = "The mailbox's `lse_<ULID>`"), ("after" = Option<String>, Query, description = "Messages after this cursor"), ("limit" = Option<u64>, Query, description = "1..=1000 (default 100)"), ("wait" = Option<u64>, Query, description = "Seconds to long-poll, at most `long_poll_max_seconds`")),
    responses((status = 200, description = "A page of messages", body = Value), (status = 400, description = "`bad_request` (names the `parameter`)", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    auth: OwnerAuth,
    LeaseIdPath(id): LeaseIdPath,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(bad_parameter("after", "must be a sequence number (0 or more)"));
    }
    let limit = page_limit(q.limit)?;
    let max_wait = state.config.limits.long_poll_max_seconds;
    let wait = q.wait.unwrap_or(0);
    if wait > max_wait {
        return Err(bad_parameter("wait", format_args!("must be between 0 and {max_wait} seconds")));
    }
    let mut lease = owned_mailbox(&state, &auth, &id).await?;
    // Subscribe before the first read, so a drop committed in between still wakes us.
    let mut subscription = (wait > 0).then(|| state.wake.subscribe(&lease.id));
    let mut items = mailbox::messages_after(&state.db, &lease.id, after, limit).await?;
    if items.is_empty()
        && let Some(sub) = subscription.as_mut()
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
        let until_expiry = u64::try_from(lease.expires_at - state.now()).unwrap_or(0);
        let deadline = deadline.min(tokio::time::Instant::now() + Duration::from_millis(until_expiry));
        while items.is_empty() {
            let woke = tokio::select! {
                () = sub.changed() => true,
                () = tokio::time::sleep_until(deadline) => false,
                () = state.shutting_down.cancelled() => false,
            };
            if !woke {
                break;
            }
            items = mailbox::messages_after(&state.db, &lease.id, after, limit).await?;
        }
        lease = leases::find_owned(&state.db, &auth.owner(), &id).await?.unwrap_or(lease);
    }
    let next_cursor = items.last().map_or(after, |m| m.seq);
    let body = json!({
        "status": "ok",
        "lease_id": lease.id,
        "items": items.iter().map(views::message_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
        "message_count": lease.message_count,
        "used_bytes": lease.used_bytes,
        "capacity_bytes": lease.capacity_bytes,
        "max_messages": lease.max_messages,
    });
    Ok((lease_headers(&lease), Json(body)).into_response())
}

/// The caller's serving Mailbox and a message id from the path; anything malformed is 404.
async fn message_path(
    state: &AppState,
    auth: &OwnerAuth,
    ApiPath((id, message_id)): ApiPath<(String, String)>,
) -> Result<(lease::Model, String), ApiError> {
    if !(ids::is_valid("lse", &id) && ids::is_valid("msg", &message_id)) {
        return Err(ApiError::not_found());
    }
    Ok((owned_mailbox(state, auth, &id).await?, message_id))
}

#[utoipa::path(get,
    path = "/api/mailbox/{id}/messages/{message_id}",
    tag = "mailbox",
    summary = "A message's body",
    extensions(("x-auth" = json!("owner"))),
    params(("id" = String, Path, description = "The mailbox's `lse_<ULID>`"), ("message_id" = String, Path, description = "`msg_<ULID>`")),
    responses((status = 200, description = "The body"), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
async fn fetch(
    State(state): State<AppState>,
    auth: OwnerAuth,
    path: ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (lease, message_id) = message_path(&state, &auth, path).await?;
    let message = mailbox::find_message(&state.db, &lease.id, &message_id).await?.ok_or_else(ApiError::not_found)?;
    let stream = match state.blobs.get(&message.blob_key, None).await {
        Ok(stream) => stream,
        // Deleted between the row read and the blob read.
        Err(BlobError::NotFound) => return Err(ApiError::not_found()),
        Err(e) => return Err(e.into()),
    };
    let mut h = lease_headers(&lease);
    put_header(&mut h, header::CONTENT_TYPE, message.content_type.clone())?;
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(message.size_bytes));
    put_header(&mut h, header::ETAG, format!("\"{}\"", message.sha256))?;
    put_header(&mut h, HeaderName::from_static("x-message-id"), message.id.clone())?;
    h.insert(HeaderName::from_static("x-message-seq"), HeaderValue::from(message.seq));
    put_header(&mut h, HeaderName::from_static("x-received-at"), rfc3339(message.received_at))?;
    state.metrics.bytes_out.inc_by(u64::try_from(message.size_bytes).unwrap_or(0));
    Ok((h, Body::from_stream(stream)).into_response())
}

#[utoipa::path(delete,
    path = "/api/mailbox/{id}/messages/{message_id}",
    tag = "mailbox",
    summary = "Deletes a message",
    extensions(("x-auth" = json!("owner"))),
    params(("id" = String, Path, description = "The mailbox's `lse_<ULID>`"), ("message_id" = String, Path, description = "`msg_<ULID>`")),
    responses((status = 200, description = "Deleted", body = Value), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
async fn remove_message(
    State(state): State<AppState>,
    auth: OwnerAuth,
    path: ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (lease, message_id) = message_path(&state, &auth, path).await?;
    let message = mailbox::delete_message(&state.db, &lease.id, &message_id).await?.ok_or_else(ApiError::not_found)?;
    if let Err(e) = state.blobs.delete(&message.blob_key).await {
        // The row is gone and the room freed; the bytes go with the lease's purge.
        tracing::error!(lease.id = %lease.id, message.id = %message.id, error = %e, "could not delete a message's bytes");
    }
    let body = json!({ "status": "ok", "message_id": message.id, "freed_bytes": message.size_bytes });
    Ok((lease_headers(&lease), Json(body)).into_response())
}

#[utoipa::path(delete,
    path = "/api/mailbox/{id}",
    tag = "mailbox",
    summary = "Deletes a mailbox",
    extensions(("x-auth" = json!("owner"))),
    params(("id" = String, Path, description = "The mailbox's `lse_<ULID>`")),
    responses((status = 200, description = "Deleted", body = Value), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    auth: OwnerAuth,
    LeaseIdPath(id): LeaseIdPath,
) -> Result<Response, ApiError> {
    Ok(delete_variant(&state, &auth.owner(), &id, Variant::Mailbox).await?.into_response())
}
