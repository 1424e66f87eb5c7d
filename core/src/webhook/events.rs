//! Event rows: recording an event (its row and its delivery job, in the caller's
//! transaction), the expiry events of a lease, and reading a lease's events.

use leasehold_entities::{lease, webhook_event};
use sea_orm::{ConnectionTrait, DbErr, Set};
use serde_json::{Map, Value};

use super::{DeliveryState, event};
use crate::queue::{self, DeliverWebhook, RunAt};

/// An event about to be recorded.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    /// The lease it is about (which must have a webhook).
    pub lease_id: &'a str,
    /// One of [`event`].
    pub event_type: &'static str,
    /// The event's own fields; the body adds `type`, `event_id`, `lease_id`, `occurred_at`.
    pub fields: Map<String, Value>,
    /// When it occurred (unix ms); its first attempt is due then (or now, if earlier).
    pub occurred_at: i64,
}

/// Records one event and enqueues its delivery, in the caller's transaction; returns the
/// event id.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    lease_id: &str,
    event_type: &'static str,
    fields: Map<String, Value>,
    occurred_at: i64,
    now: i64,
) -> Result<String, DbErr> {
    let ids = record_many(conn, vec![NewEvent { lease_id, event_type, fields, occurred_at }], now).await?;
    Ok(ids.into_iter().next().unwrap_or_default())
}

/// Records events and enqueues their deliveries with one `INSERT` each for the rows and
/// the jobs, in the caller's transaction; returns the event ids.
pub async fn record_many<C: ConnectionTrait>(
    conn: &C,
    events: Vec<NewEvent<'_>>,
    now: i64,
) -> Result<Vec<String>, DbErr> {
    use sea_orm::EntityTrait;
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = Vec::with_capacity(events.len());
    let mut jobs = Vec::with_capacity(events.len());
    for e in events {
        let id = crate::ids::event_id();
        let mut body = Map::new();
        body.insert("type".into(), e.event_type.into());
        body.insert("event_id".into(), id.clone().into());
        body.insert("lease_id".into(), e.lease_id.into());
        body.insert("occurred_at".into(), crate::time::rfc3339(e.occurred_at).into());
        body.extend(e.fields);
        let due_at = e.occurred_at.max(now);
        rows.push(webhook_event::ActiveModel {
            id: Set(id.clone()),
            lease_id: Set(e.lease_id.to_owned()),
            event_type: Set(e.event_type.to_owned()),
            body: Set(Value::Object(body).to_string()),
            state: Set(DeliveryState::Pending),
            attempts: Set(0),
            last_status_code: Set(None),
            last_error: Set(None),
            next_attempt_at: Set(Some(due_at)),
            locked_until: Set(None),
            created_at: Set(e.occurred_at),
            delivered_at: Set(None),
        });
        let run_at = if due_at <= now { RunAt::Now } else { RunAt::NotBefore(due_at) };
        jobs.push((DeliverWebhook { event_id: id.into() }, run_at));
    }
    webhook_event::Entity::insert_many(rows).exec(conn).await?;
    let queued: Vec<(&DeliverWebhook, RunAt, Option<String>)> =
        jobs.iter().map(|(job, at)| (job, *at, Some(format!("deliver:{}:0", job.event_id)))).collect();
    queue::enqueue_many(conn, &queued, now).await?;
    Ok(jobs.into_iter().map(|(job, _)| job.event_id.into()).collect())
}

/// True when the lease has a receiver to send events to.
pub fn wants_events(lease: &lease::Model) -> bool {
    lease.webhook_url.is_some()
}

/// At creation: schedules `lease.expiring` for `expires_at - warning` when asked for.
pub async fn schedule_expiry_warning<C: ConnectionTrait>(
    conn: &C,
    lease: &lease::Model,
    now: i64,
) -> Result<(), DbErr> {
    let Some(warning) = lease.expiry_warning_seconds.filter(|_| wants_events(lease)) else { return Ok(()) };
    let at = lease.expires_at.saturating_sub(warning.saturating_mul(1000)).max(now);
    let mut fields = Map::new();
    fields.insert("expires_at".into(), crate::time::rfc3339(lease.expires_at).into());
    fields.insert("expires_in_seconds".into(), ((lease.expires_at - at) / 1000).into());
    record(conn, &lease.id, event::LEASE_EXPIRING, fields, at, now).await?;
    Ok(())
}

/// `lease.expired` for every lease just turned into an expired tombstone (in the
/// transaction that turned them).
pub async fn record_expired<C: ConnectionTrait>(conn: &C, expired: &[lease::Model], now: i64) -> Result<(), DbErr> {
    let events = expired
        .iter()
        .filter(|l| wants_events(l))
        .map(|l| {
            let mut fields = Map::new();
            fields.insert("variant".into(), l.variant.as_str().into());
            fields.insert("expires_at".into(), crate::time::rfc3339(l.expires_at).into());
            NewEvent { lease_id: &l.id, event_type: event::LEASE_EXPIRED, fields, occurred_at: l.expires_at }
        })
        .collect();
    record_many(conn, events, now).await?;
    Ok(())
}

/// Deletion cancels a `lease.expiring` warning that is not due yet (in the deleting
/// transaction); events already caused are still delivered.
pub async fn cancel_expiry_warning<C: ConnectionTrait>(conn: &C, lease_id: &str, now: i64) -> Result<(), DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    webhook_event::Entity::delete_many()
        .filter(webhook_event::Column::LeaseId.eq(lease_id))
        .filter(webhook_event::Column::EventType.eq(event::LEASE_EXPIRING))
        .filter(webhook_event::Column::Attempts.eq(0))
        .filter(webhook_event::Column::NextAttemptAt.gt(now))
        .exec(conn)
        .await?;
    Ok(())
}

/// A lease's events in creation order, after the `evt_` id `after`, at most `limit`.
pub async fn events_of(
    db: &impl ConnectionTrait,
    lease_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<webhook_event::Model>, DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut query = webhook_event::Entity::find().filter(webhook_event::Column::LeaseId.eq(lease_id));
    if let Some(after) = after {
        query = query.filter(webhook_event::Column::Id.gt(after));
    }
    query.order_by_asc(webhook_event::Column::Id).limit(limit).all(db).await
}
