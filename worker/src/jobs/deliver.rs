//! `DeliverWebhook`: one delivery attempt of one event.
//!
//! The event row is the truth; the job only says "look at it now". A run takes the event
//! with a short hold (see [`take`]), so two runs of one event (an early timer, the sweep
//! re-enqueueing a slow one) never send it at the same time; then it sends and
//! settles the outcome in one transaction: delivered, or the next attempt scheduled (a new
//! job for that instant, in the same transaction), or stopped. A worker killed mid-attempt
//! leaves the event pending; once the lock lapses the sweep enqueues it again, so every
//! event is delivered at least once.

use std::collections::BTreeSet;
use std::time::Duration;

use apalis::prelude::{BoxDynError, Data};
use leasehold_core::queue::{self, DeliverWebhook, Job, RunAt};
use leasehold_core::webhook::{self, DeliveryState, event};
use leasehold_entities::{lease, webhook_event};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, DbBackend, EntityTrait, QueryFilter};

use super::JobError;
use crate::WorkerContext;
use crate::delivery::Attempt;

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered,
    /// The attempt failed; the next one is scheduled.
    Retrying,
    /// The attempt failed and no further attempt will be made.
    Exhausted,
    /// The receiver answered 410, or the lease stopped its deliveries.
    Stopped,
    /// Nothing to do: settled already, not due, or another run holds it.
    Skipped,
}

impl Outcome {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Exhausted => "exhausted",
            Self::Stopped => "stopped",
            Self::Skipped => "skipped",
        }
    }
}

/// The apalis handler.
pub async fn run(job: DeliverWebhook, ctx: Data<WorkerContext>) -> Result<(), BoxDynError> {
    counted(&ctx, &job.event_id).await?;
    Ok(())
}

/// [`deliver`], with its metrics and log line.
async fn counted(ctx: &WorkerContext, event_id: &str) -> Result<Outcome, JobError> {
    match deliver(ctx, event_id).await {
        Ok(outcome) => {
            ctx.metrics.job(DeliverWebhook::QUEUE, outcome.label());
            if outcome != Outcome::Skipped {
                ctx.metrics.webhook(outcome.label());
            }
            Ok(outcome)
        }
        Err(e) => {
            ctx.metrics.job(DeliverWebhook::QUEUE, "error");
            tracing::warn!(event.id = %event_id, error = %e, "webhook delivery failed to settle; it will be retried");
            Err(e)
        }
    }
}

/// The embedded shape's fast path: right after drops into `lease_id` commit in this
/// process, makes the first attempt of its due events without waiting for the queue to
/// be polled (SQLite's queue shares the single writer with the drops, so its fetches can
/// wait behind them). The queued jobs stay the durable path: they find these events
/// delivered, or held, and do nothing.
pub async fn deliver_due_of(ctx: &WorkerContext, lease_id: &str) -> Result<(), JobError> {
    use sea_orm::{QueryOrder, QuerySelect};
    let due = webhook_event::Entity::find()
        .filter(webhook_event::Column::LeaseId.eq(lease_id))
        .filter(webhook_event::Column::State.eq(DeliveryState::Pending))
        .filter(webhook_event::Column::Attempts.eq(0))
        .filter(webhook_event::Column::NextAttemptAt.lte(ctx.clock.now_ms()))
        .order_by_asc(webhook_event::Column::Id)
        .limit(128)
        .all(&ctx.db)
        .await?;
    // Each run logs and counts its own outcome; a failed one is retried by its queued job.
    futures_util::future::join_all(due.iter().map(|e| counted(ctx, &e.id))).await;
    Ok(())
}

/// One attempt of this event, if it is due and nobody else is sending it.
pub async fn deliver(ctx: &WorkerContext, event_id: &str) -> Result<Outcome, JobError> {
    let Some(evt) = webhook_event::Entity::find_by_id(event_id).one(&ctx.db).await? else {
        return Ok(Outcome::Skipped);
    };
    let Some(due) = evt.next_attempt_at.filter(|_| evt.state == DeliveryState::Pending) else {
        return Ok(Outcome::Skipped);
    };
    let now = ctx.clock.now_ms();
    if due > now {
        // apalis's timers have whole seconds and may fire up to a second early.
        if due - now > 1500 {
            return Ok(Outcome::Skipped);
        }
        tokio::time::sleep(Duration::from_millis(u64::try_from(due - now).unwrap_or(0))).await;
    }
    let Some(_attempt) = take(ctx, &evt).await? else { return Ok(Outcome::Skipped) };
    let now = ctx.clock.now_ms();
    let lease = lease::Entity::find_by_id(&evt.lease_id).one(&ctx.db).await?;
    let target = lease.as_ref().and_then(|l| Some((l.webhook_url.clone()?, l.webhook_secret_enc.clone()?)));
    let Some((url, sealed)) = target else {
        let why = match lease {
            Some(_) => "deliveries for this lease were stopped (the receiver answered 410 Gone)",
            None => "the lease no longer exists",
        };
        settle_stopped(ctx, &evt, None, why, now).await?;
        return Ok(Outcome::Stopped);
    };
    let attempt = match ctx.secrets.open(webhook::SECRET_CONTEXT, &sealed) {
        Ok(secret) => ctx.webhooks.send(&url, &secret, &evt.id, &evt.body, now).await,
        Err(e) => Attempt::failed(format!("webhook secret unreadable: {e}")),
    };
    if attempt.refused {
        let error = attempt.error.as_deref().unwrap_or_default();
        tracing::warn!(lease.id = %evt.lease_id, event.id = %evt.id, error, "webhook delivery refused by the SSRF guard");
    }
    let lease_end = lease.as_ref().map_or(now, |l| l.expires_at);
    settle(ctx, &evt, &attempt, lease_end).await
}

/// Events whose attempt runs in this process.
static IN_FLIGHT: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());

/// This process's hold on an event for one attempt; released when dropped.
pub struct Hold {
    id: String,
}

impl Drop for Hold {
    fn drop(&mut self) {
        IN_FLIGHT.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.id);
    }
}

/// Takes the event for one attempt, or `None` if another attempt holds it. Within this
/// process an in-memory set decides; across processes (PostgreSQL: any number of
/// workers) a conditional `UPDATE` sets `locked_until` (timeout + 5 s), which the sweep
/// respects. SQLite has one worker process by design, so the in-memory hold is the whole
/// lock there and spares a write per attempt on the single-writer database.
async fn take(ctx: &WorkerContext, evt: &webhook_event::Model) -> Result<Option<Hold>, JobError> {
    if !IN_FLIGHT.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(evt.id.clone()) {
        return Ok(None);
    }
    let hold = Hold { id: evt.id.clone() };
    if ctx.db.get_database_backend() == DbBackend::Sqlite {
        // Another run may have settled the attempt between our read and the hold.
        let fresh = webhook_event::Entity::find_by_id(&evt.id).one(&ctx.db).await?;
        let unchanged = fresh.is_some_and(|f| f.state == DeliveryState::Pending && f.attempts == evt.attempts);
        return Ok(unchanged.then_some(hold));
    }
    let now = ctx.clock.now_ms();
    let until = now.saturating_add(
        i64::try_from((ctx.config.webhook.timeout + Duration::from_secs(5)).as_millis()).unwrap_or(i64::MAX),
    );
    let taken = webhook_event::Entity::update_many()
        .col_expr(webhook_event::Column::LockedUntil, Expr::value(until))
        .filter(webhook_event::Column::Id.eq(&evt.id))
        .filter(webhook_event::Column::State.eq(DeliveryState::Pending))
        .filter(webhook_event::Column::Attempts.eq(evt.attempts))
        .filter(
            Condition::any()
                .add(webhook_event::Column::LockedUntil.is_null())
                .add(webhook_event::Column::LockedUntil.lte(now)),
        )
        .exec(&ctx.db)
        .await?;
    Ok((taken.rows_affected == 1).then_some(hold))
}

/// Records an attempt's outcome and schedules the next one, in one transaction.
async fn settle(
    ctx: &WorkerContext,
    evt: &webhook_event::Model,
    attempt: &Attempt,
    lease_end: i64,
) -> Result<Outcome, JobError> {
    let now = ctx.clock.now_ms();
    let attempts = evt.attempts + 1;
    if attempt.status == Some(410) {
        let why = "the receiver answered 410 Gone: deliveries for this lease stopped";
        settle_stopped(ctx, evt, Some(410), why, now).await?;
        return Ok(Outcome::Stopped);
    }
    let status = attempt.status.map(i32::from);
    let mut update = webhook_event::Entity::update_many()
        .col_expr(webhook_event::Column::Attempts, Expr::value(attempts))
        .col_expr(webhook_event::Column::LastStatusCode, Expr::value(status))
        .col_expr(webhook_event::Column::LockedUntil, Expr::value(Option::<i64>::None))
        .filter(webhook_event::Column::Id.eq(&evt.id))
        .filter(webhook_event::Column::State.eq(DeliveryState::Pending))
        .filter(webhook_event::Column::Attempts.eq(evt.attempts));
    let _gate = leasehold_core::db::write_gate(&ctx.db).await;
    let txn = leasehold_core::db::begin_write(&ctx.db).await?;
    let outcome = if attempt.delivered() {
        update = update
            .col_expr(webhook_event::Column::State, Expr::value(DeliveryState::Delivered))
            .col_expr(webhook_event::Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(webhook_event::Column::NextAttemptAt, Expr::value(Option::<i64>::None))
            .col_expr(webhook_event::Column::DeliveredAt, Expr::value(now));
        update.exec(&txn).await?;
        Outcome::Delivered
    } else {
        let made = usize::try_from(attempts).unwrap_or(usize::MAX);
        let delay = webhook::next_delay(&ctx.config.webhook, made, attempt.retry_after, webhook::random_unit());
        let next = delay.map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        // Retries never run past the lease's end, except for the final `lease.expired`.
        let next = next.filter(|at| evt.event_type == event::LEASE_EXPIRED || *at <= lease_end);
        let error = attempt.error.clone().unwrap_or_else(|| "failed".into());
        update = update.col_expr(webhook_event::Column::NextAttemptAt, Expr::value(next));
        match next {
            Some(at) => {
                update = update.col_expr(webhook_event::Column::LastError, Expr::value(error));
                if update.exec(&txn).await?.rows_affected == 1 {
                    let job = DeliverWebhook { event_id: evt.id.as_str().into() };
                    let key = format!("deliver:{}:{attempts}", evt.id);
                    queue::enqueue(&txn, &job, RunAt::NotBefore(at), Some(key), now).await?;
                }
                Outcome::Retrying
            }
            None => {
                let why = if delay.is_none() {
                    format!("{error}; no attempts left in the retry schedule")
                } else {
                    format!("{error}; the lease ends before the next attempt")
                };
                update
                    .col_expr(webhook_event::Column::State, Expr::value(DeliveryState::Exhausted))
                    .col_expr(webhook_event::Column::LastError, Expr::value(why))
                    .exec(&txn)
                    .await?;
                Outcome::Exhausted
            }
        }
    };
    txn.commit().await?;
    tracing::debug!(event.id = %evt.id, attempts, status = ?attempt.status, outcome = outcome.label(), "webhook attempt");
    Ok(outcome)
}

/// The receiver answered 410 (or had before): this event and every other pending event of
/// the lease fail, and the lease stops emitting events (its `webhook_url` is cleared).
async fn settle_stopped(
    ctx: &WorkerContext,
    evt: &webhook_event::Model,
    status: Option<i32>,
    why: &str,
    now: i64,
) -> Result<(), JobError> {
    let _gate = leasehold_core::db::write_gate(&ctx.db).await;
    let txn = leasehold_core::db::begin_write(&ctx.db).await?;
    let mut this = webhook_event::Entity::update_many()
        .col_expr(webhook_event::Column::State, Expr::value(DeliveryState::Failed))
        .col_expr(webhook_event::Column::LastError, Expr::value(why))
        .col_expr(webhook_event::Column::NextAttemptAt, Expr::value(Option::<i64>::None))
        .col_expr(webhook_event::Column::LockedUntil, Expr::value(Option::<i64>::None))
        .filter(webhook_event::Column::Id.eq(&evt.id))
        .filter(webhook_event::Column::State.eq(DeliveryState::Pending));
    if status.is_some() {
        this = this
            .col_expr(webhook_event::Column::Attempts, Expr::value(evt.attempts + 1))
            .col_expr(webhook_event::Column::LastStatusCode, Expr::value(status));
    }
    this.exec(&txn).await?;
    if status.is_some() {
        webhook_event::Entity::update_many()
            .col_expr(webhook_event::Column::State, Expr::value(DeliveryState::Failed))
            .col_expr(webhook_event::Column::LastError, Expr::value(why))
            .col_expr(webhook_event::Column::NextAttemptAt, Expr::value(Option::<i64>::None))
            .filter(webhook_event::Column::LeaseId.eq(&evt.lease_id))
            .filter(webhook_event::Column::State.eq(DeliveryState::Pending))
            .filter(webhook_event::Column::Id.ne(&evt.id))
            .exec(&txn)
            .await?;
        lease::Entity::update_many()
            .col_expr(lease::Column::WebhookUrl, Expr::value(Option::<String>::None))
            .filter(lease::Column::Id.eq(&evt.lease_id))
            .exec(&txn)
            .await?;
        tracing::info!(lease.id = %evt.lease_id, event.id = %evt.id, at = now, "receiver answered 410; webhook deliveries stopped");
    }
    txn.commit().await?;
    Ok(())
}
