//! One webhook event of a lease and the state of its delivery.

use sea_orm::entity::prelude::*;

pub use crate::states::DeliveryState;

/// A row of `webhook_event`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_event")]
pub struct Model {
    /// `evt_<ULID>`; the `webhook-id` of every attempt.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The lease the event is about.
    pub lease_id: String,
    /// `mailbox.message.received`, `handoff.claimed`, …
    pub event_type: String,
    /// The JSON body, exactly as sent.
    pub body: String,
    /// `pending`, `delivered`, `failed` or `exhausted`.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i32,
    /// HTTP status of the last attempt, if the receiver answered.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (unix ms); `None` once settled.
    pub next_attempt_at: Option<i64>,
    /// An attempt in progress holds the event until then (unix ms).
    pub locked_until: Option<i64>,
    /// When the event occurred (unix ms).
    pub created_at: i64,
    /// When a receiver acknowledged it.
    pub delivered_at: Option<i64>,
}

/// Relations of `webhook_event`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
