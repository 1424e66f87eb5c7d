//! `GET /api/mailbox/{lease_id}/events` (SPEC §6.2): Server-Sent Events. Each message is
//! `event: message`, `id: <seq>`, `data: <item JSON>`, in `seq` order; `Last-Event-ID`
//! resumes after that `seq`; a comment keeps the connection alive every 15 s; at the
//! expiry instant `event: expired` is sent and the stream ends (`event: deleted` when the
//! owner deletes the mailbox meanwhile).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use leasehold_core::leases;
use leasehold_core::mailbox;
use leasehold_core::time::rfc3339;
use leasehold_entities::lease;
use sea_orm::EntityTrait;
use serde_json::json;

use super::mailbox::owned_mailbox;
use crate::error::ApiError;
use crate::extract::{LeaseIdPath, OwnerAuth, header_text};
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::views::{lease_headers, message_json};
use crate::wake::Subscription;

/// Messages read per query.
const PAGE: u64 = 100;
/// How often the stream looks at the lease and the messages without a wake-up (a safety
/// net; wake-ups normally arrive at once).
const RECHECK: Duration = Duration::from_secs(5);
/// Interval of keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct Feed {
    state: AppState,
    lease: lease::Model,
    cursor: i64,
    subscription: Subscription,
    queued: VecDeque<Event>,
    done: bool,
}

/// The handler.
#[utoipa::path(get,
    path = "/api/mailbox/{id}/events",
    tag = "mailbox",
    summary = "Server-sent events of new messages",
    extensions(("x-auth" = json!("owner"))),
    params(("id" = String, Path, description = "The mailbox's `lse_<ULID>`"), ("Last-Event-ID" = Option<String>, Header, description = "Optional; the `seq` of the last message seen: the stream resumes after it")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream"), (status = 400, description = "`invalid_header` (names the `header`): `Last-Event-ID` is not a message `seq`", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    auth: OwnerAuth,
    LeaseIdPath(id): LeaseIdPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    const H: &str = "Last-Event-ID";
    let cursor = match header_text(&headers, H)?.filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0 && v.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| ApiError::invalid_header(H, "must be the seq of a message"))?,
    };
    let lease = owned_mailbox(&state, &auth, &id).await?;
    let headers = lease_headers(&lease);
    let subscription = state.wake.subscribe(&lease.id);
    let feed = Feed { state, lease, cursor, subscription, queued: VecDeque::new(), done: false };
    let sse = Sse::new(stream(feed)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok((headers, sse).into_response())
}

fn stream(feed: Feed) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.queued.pop_front() {
                return Some((Ok(event), feed));
            }
            if feed.done {
                return None;
            }
            feed.step().await;
        }
    })
}

impl Feed {
    /// Queues what there is to send, or waits for a reason to look again.
    async fn step(&mut self) {
        let now = self.state.now();
        if let Err(gone) = leases::check_serving(&self.lease, now) {
            let (name, at) = match gone {
                leases::Gone::Expired { expires_at } => ("expired", expires_at),
                leases::Gone::Deleted => ("deleted", self.lease.deleted_at.unwrap_or(now)),
            };
            let data =
                json!({ "lease_id": self.lease.id, "at": rfc3339(at), "expires_at": rfc3339(self.lease.expires_at) });
            self.queued.push_back(Event::default().event(name).data(data.to_string()));
            self.done = true;
            return;
        }
        match mailbox::messages_after(&self.state.db, &self.lease.id, self.cursor, PAGE).await {
            Ok(items) if !items.is_empty() => {
                for m in &items {
                    self.queued.push_back(
                        Event::default().event("message").id(m.seq.to_string()).data(message_json(m).to_string()),
                    );
                }
                self.cursor = items.last().map_or(self.cursor, |m| m.seq);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(lease.id = %self.lease.id, error = %e, "mailbox event stream failed; closing it");
                self.done = true;
                return;
            }
        }
        let until_expiry = Duration::from_millis(u64::try_from(self.lease.expires_at - now).unwrap_or(0));
        let woke = tokio::select! {
            () = self.subscription.changed() => true,
            () = tokio::time::sleep(until_expiry.min(RECHECK)) => true,
            () = self.state.shutting_down.cancelled() => false,
        };
        if !woke {
            self.done = true;
            return;
        }
        match lease::Entity::find_by_id(&self.lease.id).one(&self.state.db).await {
            Ok(Some(fresh)) => self.lease = fresh,
            Ok(None) => self.done = true,
            Err(e) => tracing::warn!(lease.id = %self.lease.id, error = %e, "could not re-read a mailbox"),
        }
    }
}
